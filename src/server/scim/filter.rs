//! Parser of SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2). Bounded: filters longer
//! than `MAX_LENGTH`, nested deeper than `MAX_DEPTH` or with more than `MAX_NODES` expressions are
//! refused with `invalidFilter` / `invalidPath` before any work is done.

use crate::server::domain::directory::filter::{AttrPath, CompareOp, Filter};
use serde_json::Value;

pub const MAX_LENGTH: usize = 2048;
pub const MAX_DEPTH: usize = 10;
pub const MAX_NODES: usize = 64;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Open,
    Close,
    OpenBracket,
    CloseBracket,
    Word(String),
    Literal(Value),
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    if input.len() > MAX_LENGTH {
        return Err(format!("the filter is longer than {MAX_LENGTH} characters"));
    }
    let mut tokens = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '[' => {
                tokens.push(Token::OpenBracket);
                i += 1;
            }
            ']' => {
                tokens.push(Token::CloseBracket);
                i += 1;
            }
            '"' => {
                // A JSON string: find the closing quote that is not escaped, then decode.
                let start = i;
                i += 1;
                let mut escaped = false;
                while i < chars.len() && (escaped || chars[i] != '"') {
                    escaped = !escaped && chars[i] == '\\';
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("a string is missing its closing quote".into());
                }
                let raw: String = chars[start..=i].iter().collect();
                let value: String = serde_json::from_str(&raw).map_err(|_| format!("{raw} is not a valid string"))?;
                tokens.push(Token::Literal(Value::String(value)));
                i += 1;
            }
            _ => {
                let start = i;
                while i < chars.len() && !matches!(chars[i], ' ' | '\t' | '\n' | '\r' | '(' | ')' | '[' | ']' | '"') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let literal = match word.to_ascii_lowercase().as_str() {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    "null" => Some(Value::Null),
                    _ if word.starts_with(|c: char| c.is_ascii_digit() || c == '-') => Some(
                        serde_json::from_str::<serde_json::Number>(&word)
                            .map(Value::Number)
                            .map_err(|_| format!("{word} is not a number"))?,
                    ),
                    _ => None,
                };
                tokens.push(match literal {
                    Some(value) => Token::Literal(value),
                    None => Token::Word(word),
                });
            }
        }
    }
    Ok(tokens)
}

/// Parses an attribute path: `userName`, `name.givenName`, `urn:...:User:userName`,
/// `urn:...:enterprise:2.0:User:manager.value`.
pub fn parse_attr_path(word: &str) -> Result<AttrPath, String> {
    let (uri, rest) = if word.to_ascii_lowercase().starts_with("urn:") {
        match word.rfind(':') {
            Some(i) if i + 1 < word.len() => (Some(word[..i].to_string()), &word[i + 1..]),
            _ => return Err(format!("{word} is not a valid attribute path")),
        }
    } else {
        (None, word)
    };
    let mut parts = rest.splitn(2, '.');
    let attr = parts.next().unwrap_or_default().to_string();
    let sub = parts.next().map(str::to_string);
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '$')
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
    };
    if !name_ok(&attr) || sub.as_deref().is_some_and(|s| !name_ok(s)) {
        return Err(format!("{word} is not a valid attribute path"));
    }
    Ok(AttrPath { uri, attr, sub })
}

fn compare_op(word: &str) -> Option<CompareOp> {
    Some(match word.to_ascii_lowercase().as_str() {
        "eq" => CompareOp::Eq,
        "ne" => CompareOp::Ne,
        "co" => CompareOp::Co,
        "sw" => CompareOp::Sw,
        "ew" => CompareOp::Ew,
        "gt" => CompareOp::Gt,
        "ge" => CompareOp::Ge,
        "lt" => CompareOp::Lt,
        "le" => CompareOp::Le,
        _ => return None,
    })
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
    nodes: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn count(&mut self) -> Result<(), String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(format!("the filter has more than {MAX_NODES} expressions"));
        }
        Ok(())
    }

    fn or(&mut self, depth: usize) -> Result<Filter, String> {
        if depth > MAX_DEPTH {
            return Err(format!("the filter nests deeper than {MAX_DEPTH} levels"));
        }
        let mut left = self.and(depth)?;
        while self.keyword("or") {
            self.next();
            self.count()?;
            let right = self.and(depth)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Filter, String> {
        let mut left = self.unary(depth)?;
        while self.keyword("and") {
            self.next();
            self.count()?;
            let right = self.unary(depth)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Filter, String> {
        self.count()?;
        if self.keyword("not") {
            self.next();
            if self.next() != Some(Token::Open) {
                return Err("not must be followed by ( )".into());
            }
            let inner = self.or(depth + 1)?;
            self.expect_close()?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Token::Open) {
            self.next();
            let inner = self.or(depth + 1)?;
            self.expect_close()?;
            return Ok(inner);
        }
        let Some(Token::Word(word)) = self.next() else {
            return Err("expected an attribute name".into());
        };
        let path = parse_attr_path(&word)?;
        if self.peek() == Some(&Token::OpenBracket) {
            self.next();
            let inner = self.or(depth + 1)?;
            if self.next() != Some(Token::CloseBracket) {
                return Err("a [ is not closed".into());
            }
            return Ok(Filter::ValuePath(path, Box::new(inner)));
        }
        let Some(Token::Word(op)) = self.next() else {
            return Err(format!("expected an operator after {word}"));
        };
        if op.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op = compare_op(&op).ok_or_else(|| format!("{op} is not an operator (eq ne co sw ew gt ge lt le pr)"))?;
        match self.next() {
            Some(Token::Literal(value)) => Ok(Filter::Compare(path, op, value)),
            _ => Err(format!("expected a value after {word}")),
        }
    }

    fn expect_close(&mut self) -> Result<(), String> {
        if self.next() == Some(Token::Close) {
            Ok(())
        } else {
            Err("a ( is not closed".into())
        }
    }
}

/// Parses a filter (`?filter=`); errors are messages for `invalidFilter`.
pub fn parse_filter(input: &str) -> Result<Filter, String> {
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err("the filter is empty".into());
    }
    let mut parser = Parser { tokens, position: 0, nodes: 0 };
    let filter = parser.or(0)?;
    if parser.position < parser.tokens.len() {
        return Err("unexpected text after the end of the filter".into());
    }
    Ok(filter)
}

/// A PATCH operation's `path`: an attribute, optionally with a value filter and a
/// sub-attribute (`emails[type eq "work"].value`).
#[derive(Clone, Debug, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// Sub-attribute after a value filter.
    pub sub: Option<String>,
}

pub fn parse_patch_path(input: &str) -> Result<PatchPath, String> {
    let input = input.trim();
    if input.len() > MAX_LENGTH {
        return Err("the path is too long".into());
    }
    let Some(open) = input.find('[') else {
        return Ok(PatchPath { attr: parse_attr_path(input)?, filter: None, sub: None });
    };
    let close = input.rfind(']').ok_or_else(|| "a [ is not closed".to_string())?;
    if close < open {
        return Err(format!("{input} is not a valid path"));
    }
    let attr = parse_attr_path(&input[..open])?;
    if attr.sub.is_some() {
        return Err(format!("{input}: a value filter applies to a multi-valued attribute"));
    }
    let filter = parse_filter(&input[open + 1..close])?;
    let rest = &input[close + 1..];
    let sub = match rest.strip_prefix('.') {
        Some(sub) if !sub.is_empty() && sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            Some(sub.to_string())
        }
        None if rest.is_empty() => None,
        _ => return Err(format!("{input} is not a valid path")),
    };
    Ok(PatchPath { attr, filter: Some(filter), sub })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(attr: &str, sub: Option<&str>) -> AttrPath {
        AttrPath { uri: None, attr: attr.into(), sub: sub.map(str::to_string) }
    }

    #[test]
    fn parses_the_rfc_examples() {
        assert_eq!(
            parse_filter(r#"userName eq "bjensen""#).unwrap(),
            Filter::Compare(path("userName", None), CompareOp::Eq, json!("bjensen"))
        );
        assert_eq!(parse_filter("title pr").unwrap(), Filter::Present(path("title", None)));
        assert_eq!(
            parse_filter(r#"name.familyName co "O'Malley""#).unwrap(),
            Filter::Compare(path("name", Some("familyName")), CompareOp::Co, json!("O'Malley"))
        );
        let f = parse_filter(r#"title pr and userType eq "Employee""#).unwrap();
        assert!(matches!(f, Filter::And(..)));
        let f =
            parse_filter(r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#)
                .unwrap();
        assert!(matches!(f, Filter::And(_, ref r) if matches!(**r, Filter::Or(..))));
        let f = parse_filter(
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        )
        .unwrap();
        assert!(matches!(f, Filter::And(_, ref r) if matches!(**r, Filter::Not(..))));
        let f = parse_filter(r#"emails[type eq "work" and value co "@example.com"]"#).unwrap();
        assert!(matches!(f, Filter::ValuePath(ref p, _) if p.attr == "emails"));
        let f = parse_filter(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#).unwrap();
        assert!(
            matches!(f, Filter::Compare(ref p, CompareOp::Sw, _) if p.uri.as_deref() == Some("urn:ietf:params:scim:schemas:core:2.0:User") && p.attr == "userName")
        );
        assert_eq!(
            parse_filter("active EQ True").unwrap(),
            Filter::Compare(path("active", None), CompareOp::Eq, json!(true))
        );
        assert_eq!(
            parse_filter(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#).unwrap(),
            Filter::Compare(path("meta", Some("lastModified")), CompareOp::Gt, json!("2011-05-13T04:42:34Z"))
        );
        assert_eq!(
            parse_filter(r#"displayName eq "a \"quoted\" name""#).unwrap(),
            Filter::Compare(path("displayName", None), CompareOp::Eq, json!("a \"quoted\" name"))
        );
    }

    #[test]
    fn refuses_malformed_and_oversized_filters() {
        for bad in [
            "",
            "userName",
            "userName eq",
            r#"userName zz "x""#,
            r#"userName eq "unterminated"#,
            r#"(userName eq "x""#,
            r#"userName eq "x")"#,
            r#"emails[type eq "work""#,
            r#"not userName eq "x""#,
            r#"userName eq "x" garbage"#,
            r#"1abc eq "x""#,
            r#"user;drop eq "x""#,
        ] {
            assert!(parse_filter(bad).is_err(), "{bad:?} should be refused");
        }
        let deep = format!("{}userName pr{}", "(".repeat(MAX_DEPTH + 2), ")".repeat(MAX_DEPTH + 2));
        assert!(parse_filter(&deep).unwrap_err().contains("deeper"));
        let wide = vec![r#"userName eq "x""#; MAX_NODES].join(" or ");
        assert!(parse_filter(&wide).unwrap_err().contains("expressions"));
        assert!(parse_filter(&"a".repeat(MAX_LENGTH + 1)).is_err());
    }

    /// A cheap fuzz: random strings over the filter alphabet never panic the parser, and
    /// anything accepted stays within the limits.
    #[test]
    fn random_input_never_panics() {
        let alphabet: Vec<char> = "()[]\" \\.:abeqnorctpwsgl0123456789-truefalsenull".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 60) as usize;
            let input: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            if let Ok(filter) = parse_filter(&input) {
                fn depth(f: &Filter) -> usize {
                    match f {
                        Filter::And(a, b) | Filter::Or(a, b) => 1 + depth(a).max(depth(b)),
                        Filter::Not(a) | Filter::ValuePath(_, a) => 1 + depth(a),
                        _ => 1,
                    }
                }
                assert!(depth(&filter) <= MAX_NODES + 1, "{input}");
            }
            let _ = parse_patch_path(&input);
        }
    }

    #[test]
    fn parses_patch_paths() {
        assert_eq!(
            parse_patch_path("displayName").unwrap(),
            PatchPath { attr: path("displayName", None), filter: None, sub: None }
        );
        let p = parse_patch_path(r#"members[value eq "2819c223"]"#).unwrap();
        assert_eq!(p.attr, path("members", None));
        assert!(p.filter.is_some());
        let p = parse_patch_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p = parse_patch_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager").unwrap();
        assert_eq!(p.attr.attr, "manager");
        assert!(parse_patch_path("members[value eq").is_err());
        assert!(parse_patch_path("emails[type eq \"work\"]x").is_err());
    }
}
