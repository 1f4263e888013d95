//! `--token_auth_file`: Kubernetes' static token file (kube-apiserver's `--token-auth-file`), so that a file an
//! operator already keeps works here unchanged. One CSV record per line: `token,user,uid[,"group1,group2"]`.

use super::Identity;
use std::collections::HashMap;
use std::path::Path;

/// The tokens of one file, read once at start-up.
#[derive(Debug, Default)]
pub struct TokenFile {
    tokens: HashMap<String, Identity>,
}

impl TokenFile {
    /// Reads `path`; an error names the flag, the line and what is wrong.
    pub fn load(path: &Path) -> Result<TokenFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--token_auth_file={}: cannot read it: {e}", path.display()))?;
        TokenFile::parse(&text).map_err(|e| format!("--token_auth_file={}: {e}", path.display()))
    }

    /// Parses the file's text as Kubernetes does: records with fewer than 3 fields are an error, an empty token is
    /// skipped, a token listed twice keeps its last line.
    pub fn parse(text: &str) -> Result<TokenFile, String> {
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
        Ok(TokenFile { tokens })
    }

    /// Who `token` belongs to, if anyone.
    pub fn authenticate(&self, token: &str) -> Option<&Identity> {
        self.tokens.get(token)
    }

    /// How many tokens the file holds (for the start-up log line).
    pub fn len(&self) -> usize {
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
        let f = TokenFile::parse(
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
            TokenFile::parse("ok,a,1\nshort,b").unwrap_err(),
            "line 2: needs at least 3 columns (token, user name, uid), found 2"
        );
        assert!(TokenFile::parse("t,a,1,\"open").unwrap_err().contains("line 1: a quoted field is not closed"));
        assert!(TokenFile::parse("t,a,1,\"g\"x").unwrap_err().contains("after a closing quote"));
        assert!(TokenFile::parse("t,a\"b,1").unwrap_err().contains("quote inside"));
        assert_eq!(csv_fields("\"a,\"\"b\",c").unwrap(), ["a,\"b", "c"]);
        assert_eq!(csv_fields("a,,").unwrap(), ["a", "", ""]);
    }
}
