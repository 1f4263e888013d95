//! `labelSelector` and `fieldSelector`, with Kubernetes' syntax and meaning (`k8s.io/apimachinery/pkg/labels`
//! and `pkg/fields`), so the HPA's selectors and `kubectl top -l` select what they select on a real cluster.
//!
//! Label selectors: `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (a,b)`, `key notin (a,b)`,
//! `key>3`, `key<3`, joined by commas (all must hold). `!=` and `notin` also match objects without the key, as in
//! Kubernetes. Keys and values are validated as Kubernetes does, so a typo is a 400 with the reason, not an empty
//! list. Field selectors: `metadata.name` and `metadata.namespace` with `=`, `==` or `!=`.

use heapster_model::Labels;

/// One parsed requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Exists(String),
    DoesNotExist(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A parsed label selector; the empty selector selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Whether no requirement is set, so callers can skip reading labels at all.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.iter().any(|w| w == v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.iter().any(|w| w == v)),
            Requirement::GreaterThan(k, n) => labels.get(k).and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v > *n),
            Requirement::LessThan(k, n) => labels.get(k).and_then(|v| v.parse::<i64>().ok()).is_some_and(|v| v < *n),
        })
    }

    /// Parses `text`; the error names the offending part and what was expected there.
    pub fn parse(text: &str) -> Result<Self, String> {
        let tokens = lex(text);
        let mut p = Parser { tokens, pos: 0 };
        let mut requirements = Vec::new();
        if p.peek().is_none() {
            return Ok(LabelSelector::default());
        }
        loop {
            requirements.push(p.requirement()?);
            match p.next() {
                None => break,
                Some(Token::Comma) => continue,
                Some(t) => return Err(format!("expected ',' or the end after a requirement, found {}", t.show())),
            }
        }
        Ok(LabelSelector { requirements })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
}

impl Token {
    fn show(&self) -> String {
        match self {
            Token::Ident(s) => format!("{s:?}"),
            Token::Not => "'!'".into(),
            Token::Eq => "'='".into(),
            Token::DoubleEq => "'=='".into(),
            Token::NotEq => "'!='".into(),
            Token::Gt => "'>'".into(),
            Token::Lt => "'<'".into(),
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::Comma => "','".into(),
        }
    }
}

fn is_special(c: char) -> bool {
    c.is_whitespace() || matches!(c, '!' | '=' | '>' | '<' | '(' | ')' | ',')
}

fn lex(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_eq = chars.peek().is_some_and(|&(_, n)| n == '=');
        let token = match c {
            c if c.is_whitespace() => continue,
            '!' if next_is_eq => {
                chars.next();
                Token::NotEq
            }
            '!' => Token::Not,
            '=' if next_is_eq => {
                chars.next();
                Token::DoubleEq
            }
            '=' => Token::Eq,
            '>' => Token::Gt,
            '<' => Token::Lt,
            '(' => Token::Open,
            ')' => Token::Close,
            ',' => Token::Comma,
            _ => {
                let mut end = i + c.len_utf8();
                while let Some(&(j, n)) = chars.peek() {
                    if is_special(n) {
                        break;
                    }
                    end = j + n.len_utf8();
                    chars.next();
                }
                Token::Ident(text[i..end].to_owned())
            }
        };
        out.push(token);
    }
    out
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn key(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Token::Ident(k)) => {
                validate_key(&k)?;
                Ok(k)
            }
            Some(t) => Err(format!("expected a label key, found {}", t.show())),
            None => Err("expected a label key, found the end".into()),
        }
    }

    /// A value after `=`, `==` or `!=`: an identifier, or nothing (the empty value) before `,` or the end.
    fn value(&mut self) -> Result<String, String> {
        match self.peek() {
            None | Some(Token::Comma) => Ok(String::new()),
            Some(Token::Ident(v)) => {
                let v = v.clone();
                self.pos += 1;
                validate_value(&v)?;
                Ok(v)
            }
            Some(t) => Err(format!("expected a label value, found {}", t.show())),
        }
    }

    /// `(a, b, c)` after `in` or `notin`.
    fn values(&mut self) -> Result<Vec<String>, String> {
        match self.next() {
            Some(Token::Open) => {}
            other => {
                return Err(format!(
                    "expected '(' after in/notin, found {}",
                    other.map(|t| t.show()).unwrap_or_else(|| "the end".into())
                ));
            }
        }
        let mut values = Vec::new();
        loop {
            match self.next() {
                Some(Token::Ident(v)) => {
                    validate_value(&v)?;
                    values.push(v);
                }
                // `in (a,)` and `in ()` hold the empty value, as in Kubernetes.
                Some(Token::Comma) => {
                    values.push(String::new());
                    continue;
                }
                Some(Token::Close) => {
                    values.push(String::new());
                    return Ok(values);
                }
                Some(t) => return Err(format!("expected a value in the set, found {}", t.show())),
                None => return Err("unclosed set: expected ')'".into()),
            }
            match self.next() {
                Some(Token::Comma) => {
                    if self.peek() == Some(&Token::Close) {
                        self.next();
                        values.push(String::new());
                        return Ok(values);
                    }
                }
                Some(Token::Close) => return Ok(values),
                Some(t) => return Err(format!("expected ',' or ')' in the set, found {}", t.show())),
                None => return Err("unclosed set: expected ')'".into()),
            }
        }
    }

    fn integer(&mut self) -> Result<i64, String> {
        match self.next() {
            Some(Token::Ident(v)) => {
                v.parse().map_err(|_| format!("{v:?} is not an integer: '>' and '<' compare integers"))
            }
            Some(t) => Err(format!("expected an integer, found {}", t.show())),
            None => Err("expected an integer, found the end".into()),
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        if self.peek() == Some(&Token::Not) {
            self.next();
            return Ok(Requirement::DoesNotExist(self.key()?));
        }
        let key = self.key()?;
        let op = match self.peek() {
            None | Some(Token::Comma) => return Ok(Requirement::Exists(key)),
            Some(_) => self.next().unwrap_or(Token::Comma),
        };
        Ok(match op {
            Token::Eq | Token::DoubleEq => Requirement::In(key, vec![self.value()?]),
            Token::NotEq => Requirement::NotIn(key, vec![self.value()?]),
            Token::Ident(w) if w == "in" => Requirement::In(key, self.values()?),
            Token::Ident(w) if w == "notin" => Requirement::NotIn(key, self.values()?),
            Token::Gt => Requirement::GreaterThan(key, self.integer()?),
            Token::Lt => Requirement::LessThan(key, self.integer()?),
            t => {
                return Err(format!(
                    "expected one of =, ==, !=, in, notin, >, < after key {key:?}, found {}",
                    t.show()
                ));
            }
        })
    }
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters: a label name or value.
fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS subdomain: lower-case alphanumerics, `-` and `.`, at most 253 characters.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

fn validate_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if prefix.is_some_and(|p| !is_dns_subdomain(p)) {
        return Err(format!("invalid label key {key:?}: the prefix before '/' must be a DNS subdomain (example.com)"));
    }
    if !is_name(name) {
        return Err(format!(
            "invalid label key {key:?}: a name must be 1-63 characters of letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn validate_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name(value) {
        Ok(())
    } else {
        Err(format!(
            "invalid label value {value:?}: at most 63 characters of letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ))
    }
}

/// The fields a field selector may name on these resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
}

/// A parsed field selector: every term must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<(Field, bool, String)>,
}

impl FieldSelector {
    /// Parses `metadata.name=x,metadata.namespace!=y`; other fields are refused with the list of those supported.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for term in split_unescaped(text, ',') {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid field selector term {term:?}: expected field=value, field==value or field!=value"
                ));
            };
            let field = match field.trim() {
                "metadata.name" => Field::Name,
                "metadata.namespace" => Field::Namespace,
                other => {
                    return Err(format!(
                        "field label not supported: {other:?} (supported: metadata.name, metadata.namespace)"
                    ));
                }
            };
            terms.push((field, equal, unescape(value.trim())));
        }
        Ok(FieldSelector { terms })
    }

    /// Whether an object named `name` in `namespace` (empty for nodes) is selected.
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        self.terms.iter().all(|(field, equal, value)| {
            let actual = match field {
                Field::Name => name,
                Field::Namespace => namespace,
            };
            (actual == value) == *equal
        })
    }

    /// The one name this selector pins with `metadata.name=`, so a lookup can go straight to it.
    pub fn exact_name(&self) -> Option<&str> {
        self.terms.iter().find(|(f, eq, _)| *f == Field::Name && *eq).map(|(_, _, v)| v.as_str())
    }
}

/// Splits on `sep` not preceded by a backslash (field selector values escape `,`, `=` and `\` that way).
fn split_unescaped(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            c if c == sep => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn sel(text: &str) -> LabelSelector {
        LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn every_operator_selects_as_kubernetes_does() {
        let web = labels(&[("app", "web"), ("tier", "front"), ("replicas", "3")]);
        let db = labels(&[("app", "db")]);
        let cases: &[(&str, bool, bool)] = &[
            ("", true, true),
            ("app", true, true),
            ("tier", true, false),
            ("!tier", false, true),
            ("app=web", true, false),
            ("app==web", true, false),
            ("app!=web", false, true),
            ("tier!=back", true, true),
            ("app in (web,db)", true, true),
            ("app in (web)", true, false),
            ("app notin (web)", false, true),
            ("tier notin (front)", false, true),
            ("app=web,tier=front", true, false),
            ("app=web, tier=back", false, false),
            ("replicas>2", true, false),
            ("replicas<3", false, false),
            ("  app  =  db  ", false, true),
            ("app in (db,)", false, true),
            ("tier=", false, false),
            ("example.com/app", false, false),
        ];
        for &(text, on_web, on_db) in cases {
            let s = sel(text);
            assert_eq!(s.matches(&web), on_web, "{text:?} on web");
            assert_eq!(s.matches(&db), on_db, "{text:?} on db");
        }
        assert!(sel("").is_empty());
        assert!(!sel("a").is_empty());
    }

    #[test]
    fn bad_selectors_say_why() {
        for (text, needle) in [
            ("app=web=x", "expected ','"),
            ("=web", "expected a label key"),
            ("app in web", "expected '('"),
            ("app in (web", "unclosed"),
            ("app notin (a b)", "expected ',' or ')'"),
            ("-app", "invalid label key"),
            ("app=-web-", "invalid label value"),
            ("Example.com/app", "DNS subdomain"),
            ("app>x", "not an integer"),
            ("app,", "expected a label key"),
            ("app !", "expected one of"),
            ("!", "found the end"),
            (&"k".repeat(64), "invalid label key"),
        ] {
            let e = LabelSelector::parse(text).expect_err(text);
            assert!(e.contains(needle), "{text:?}: {e:?} does not mention {needle:?}");
        }
    }

    #[test]
    fn field_selectors() {
        let f = FieldSelector::parse("metadata.name=p1").unwrap();
        assert!(f.matches("ns", "p1") && !f.matches("ns", "p2"));
        assert_eq!(f.exact_name(), Some("p1"));
        let f = FieldSelector::parse("metadata.namespace==ns1,metadata.name!=p1").unwrap();
        assert!(f.matches("ns1", "p2") && !f.matches("ns1", "p1") && !f.matches("ns2", "p2"));
        assert_eq!(f.exact_name(), None);
        let f = FieldSelector::parse("metadata.name=a\\,b").unwrap();
        assert!(f.matches("", "a,b"));
        assert!(FieldSelector::parse("").unwrap().matches("x", "y"));
        let e = FieldSelector::parse("spec.nodeName=n1").unwrap_err();
        assert!(e.contains("not supported") && e.contains("spec.nodeName"), "{e}");
        assert!(FieldSelector::parse("metadata.name").unwrap_err().contains("expected field=value"));
    }
}
