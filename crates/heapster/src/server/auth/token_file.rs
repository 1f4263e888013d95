//! `--token_auth_file`: Kubernetes' static token file (kube-apiserver's `--token-auth-file`), so that a file an
//! operator already keeps works here unchanged. One CSV record per line: `token,user,uid[,"group1,group2"]`.
//!
//! Unlike kube-apiserver, which reads it once, the file is read again when it changes: a token added or revoked
//! takes effect without a restart, which would empty the store.

use super::Identity;
use crate::server::reload::Reloading;
use std::collections::HashMap;
use std::path::Path;

/// `--token_auth_file`, read again when it changes (a version that does not parse keeps the previous tokens).
#[derive(Debug)]
pub struct TokenFile(Reloading<Tokens>);

impl TokenFile {
    /// Reads `path`; an error names the flag, the line and what is wrong.
    pub fn load(path: &Path) -> Result<TokenFile, String> {
        let file = path.to_path_buf();
        Ok(TokenFile(Reloading::load(&[path], "tokens", move || Tokens::load(&file))?))
    }

    /// Who `token` belongs to, if anyone, by the file as it is now.
    pub fn authenticate(&self, token: &str) -> Option<Identity> {
        self.0.get().authenticate(token).cloned()
    }

    /// How many tokens the file holds (for the start-up log line).
    pub fn len(&self) -> usize {
        self.0.get().len()
    }
}

/// The tokens of one version of the file.
#[derive(Debug, Default)]
pub struct Tokens {
    tokens: HashMap<String, Identity>,
}

impl Tokens {
    fn load(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--token_auth_file={}: cannot read it: {e}", path.display()))?;
        Tokens::parse(&text).map_err(|e| format!("--token_auth_file={}: {e}", path.display()))
    }

    /// Parses the file's text as Kubernetes does: records with fewer than 3 fields are an error, an empty token is
    /// skipped, a token listed twice keeps its last line.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut tokens = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let fields = csv_fields(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            if fields.len() < 3 {
                return Err(format!(
                    "line {}: needs at least 3 columns (token, user name, uid), found {}",
                    n + 1,
                    fields.len()
                ));
            }
            if fields[0].is_empty() {
                tracing::warn!("--token_auth_file: line {} has an empty token; skipped", n + 1);
                continue;
            }
            let groups = fields.get(3).map(|g| g.split(',').map(str::to_string).collect()).unwrap_or_default();
            tokens.insert(fields[0].clone(), Identity { name: fields[1].clone(), groups });
        }
        Ok(Tokens { tokens })
    }

    /// Who `token` belongs to, if anyone.
    pub fn authenticate(&self, token: &str) -> Option<&Identity> {
        self.tokens.get(token)
    }

    fn len(&self) -> usize {
        self.tokens.len()
    }
}

/// Splits one CSV record: fields separated by `,`, leading spaces trimmed (as Go's `TrimLeadingSpace`), a field in
/// double quotes may hold commas and `""` for a quote.
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    None => return Err("a quoted field is not closed".into()),
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            if chars.peek().is_some_and(|c| *c != ',') {
                return Err("text after a closing quote".into());
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                if c == '"' {
                    return Err("a quote inside an unquoted field".into());
                }
                field.push(c);
            }
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_static_token_file() {
        let f = Tokens::parse(
            "t1,alice,uid1,\"system:masters,dev\"\n\nt2, bob ,uid2\r\n,nobody,uid3\nt4,carol,uid4,ops\nt2,bob2,uid5\n",
        )
        .unwrap();
        assert_eq!(f.len(), 3);
        let a = f.authenticate("t1").unwrap();
        assert_eq!((a.name.as_str(), a.groups.clone()), ("alice", vec!["system:masters".into(), "dev".into()]));
        assert_eq!(f.authenticate("t2").unwrap().name, "bob2", "the last line of a token wins");
        assert_eq!(f.authenticate("t4").unwrap().groups, ["ops"]);
        assert!(f.authenticate("").is_none() && f.authenticate("t3").is_none());
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(
            Tokens::parse("ok,a,1\nshort,b").unwrap_err(),
            "line 2: needs at least 3 columns (token, user name, uid), found 2"
        );
        assert!(Tokens::parse("t,a,1,\"open").unwrap_err().contains("line 1: a quoted field is not closed"));
        assert!(Tokens::parse("t,a,1,\"g\"x").unwrap_err().contains("after a closing quote"));
        assert!(Tokens::parse("t,a\"b,1").unwrap_err().contains("quote inside"));
        assert_eq!(csv_fields("\"a,\"\"b\",c").unwrap(), ["a,\"b", "c"]);
        assert_eq!(csv_fields("a,,").unwrap(), ["a", "", ""]);
    }
}
