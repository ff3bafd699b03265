//! Reading YAML with locations.
//!
//! team.yaml and catalog files are read into saphyr's marked tree and then
//! converted by hand, so that every error, syntactic or semantic, carries the
//! `line:col` of the node it is about, and so that conversion can go on after
//! an error and report all of them at once. Nothing here panics on input.

use std::fmt;

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};

/// A position in a source file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Loc {
    pub line: usize,
    pub col: usize,
}

/// One error in a file: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub loc: Loc,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.loc.line, self.loc.col, self.message
        )
    }
}

/// Every error found in one file, in source order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one file while a converter walks its tree.
pub struct Collector {
    file: String,
    found: Vec<Diagnostic>,
}

impl Collector {
    pub fn new(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            found: Vec::new(),
        }
    }

    pub fn error(&mut self, loc: Loc, message: impl Into<String>) {
        self.found.push(Diagnostic {
            file: self.file.clone(),
            loc,
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Ok with `value` when nothing was reported, else every error sorted by place.
    pub fn finish<T>(mut self, value: T) -> Result<T, Diagnostics> {
        if self.found.is_empty() {
            Ok(value)
        } else {
            self.found.sort_by_key(|a| a.loc);
            Err(Diagnostics(self.found))
        }
    }
}

/// Parses one YAML document. A syntax error is a single diagnostic at its place;
/// an empty file is a diagnostic too.
pub fn parse(file: &str, source: &str) -> Result<MarkedYamlOwned, Diagnostics> {
    let mut c = Collector::new(file);
    match MarkedYamlOwned::load_from_str(source) {
        Err(e) => {
            let m = e.marker();
            c.error(
                Loc {
                    line: m.line(),
                    col: m.col() + 1,
                },
                format!("invalid YAML: {}", e.info()),
            );
        }
        Ok(mut docs) => match docs.len() {
            0 => c.error(Loc { line: 1, col: 1 }, "the file is empty"),
            1 => {
                if let Some(doc) = docs.pop() {
                    return Ok(doc);
                }
            }
            _ => {
                let loc = docs.get(1).map(loc_of).unwrap_or(Loc { line: 1, col: 1 });
                c.error(loc, "expected one YAML document, found several");
            }
        },
    }
    Err(Diagnostics(c.found))
}

pub fn loc_of(node: &MarkedYamlOwned) -> Loc {
    Loc {
        line: node.span.start.line(),
        col: node.span.start.col() + 1,
    }
}

/// What kind of node this is, for "expected X, found Y" messages.
pub fn kind(node: &MarkedYamlOwned) -> &'static str {
    match &node.data {
        YamlDataOwned::Value(ScalarOwned::Null) => "null",
        YamlDataOwned::Value(ScalarOwned::Boolean(_)) => "a boolean",
        YamlDataOwned::Value(ScalarOwned::Integer(_)) => "an integer",
        YamlDataOwned::Value(ScalarOwned::FloatingPoint(_)) => "a number",
        YamlDataOwned::Value(ScalarOwned::String(_)) | YamlDataOwned::Representation(..) => {
            "a string"
        }
        YamlDataOwned::Sequence(_) => "a list",
        YamlDataOwned::Mapping(_) => "a mapping",
        YamlDataOwned::Tagged(..) => "a tagged value",
        YamlDataOwned::Alias(_) => "an alias",
        YamlDataOwned::BadValue => "an invalid value",
    }
}

/// The entries of a mapping node with string keys, in source order.
/// Reports a non-mapping node and non-string keys; reports keys outside
/// `allowed` as unknown fields (with the list of known ones).
pub fn mapping<'a>(
    node: &'a MarkedYamlOwned,
    what: &str,
    allowed: Option<&[&str]>,
    c: &mut Collector,
) -> Vec<(String, Loc, &'a MarkedYamlOwned)> {
    let YamlDataOwned::Mapping(map) = &node.data else {
        c.error(
            loc_of(node),
            format!("{what} must be a mapping, found {}", kind(node)),
        );
        return Vec::new();
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let Some(key) = scalar_str(k) else {
            c.error(
                loc_of(k),
                format!("keys of {what} must be strings, found {}", kind(k)),
            );
            continue;
        };
        if let Some(allowed) = allowed
            && !allowed.contains(&key.as_str())
        {
            c.error(
                loc_of(k),
                format!(
                    "unknown field `{key}` in {what}; expected one of: {}",
                    allowed.join(", ")
                ),
            );
            continue;
        }
        out.push((key, loc_of(k), v));
    }
    out
}

pub fn sequence<'a>(
    node: &'a MarkedYamlOwned,
    what: &str,
    c: &mut Collector,
) -> &'a [MarkedYamlOwned] {
    match &node.data {
        YamlDataOwned::Sequence(items) => items,
        _ => {
            c.error(
                loc_of(node),
                format!("{what} must be a list, found {}", kind(node)),
            );
            &[]
        }
    }
}

/// The text of a string scalar (numbers and booleans are not strings).
fn scalar_str(node: &MarkedYamlOwned) -> Option<String> {
    match &node.data {
        YamlDataOwned::Value(ScalarOwned::String(s)) => Some(s.clone()),
        YamlDataOwned::Representation(s, ..) => Some(s.clone()),
        _ => None,
    }
}

pub fn string(node: &MarkedYamlOwned, what: &str, c: &mut Collector) -> Option<String> {
    let s = scalar_str(node);
    if s.is_none() {
        c.error(
            loc_of(node),
            format!("{what} must be a string, found {}", kind(node)),
        );
    }
    s
}

pub fn boolean(node: &MarkedYamlOwned, what: &str, c: &mut Collector) -> Option<bool> {
    match &node.data {
        YamlDataOwned::Value(ScalarOwned::Boolean(b)) => Some(*b),
        _ => {
            c.error(
                loc_of(node),
                format!("{what} must be true or false, found {}", kind(node)),
            );
            None
        }
    }
}

pub fn integer(node: &MarkedYamlOwned, what: &str, c: &mut Collector) -> Option<i64> {
    match &node.data {
        YamlDataOwned::Value(ScalarOwned::Integer(i)) => Some(*i),
        _ => {
            c.error(
                loc_of(node),
                format!("{what} must be an integer, found {}", kind(node)),
            );
            None
        }
    }
}

/// Either a string or an integer, as text (for values like `25%` or `3`).
pub fn text_or_int(node: &MarkedYamlOwned) -> Option<String> {
    match &node.data {
        YamlDataOwned::Value(ScalarOwned::Integer(i)) => Some(i.to_string()),
        _ => scalar_str(node),
    }
}

pub fn is_null(node: &MarkedYamlOwned) -> bool {
    matches!(node.data, YamlDataOwned::Value(ScalarOwned::Null))
}

/// Writes a string as a YAML scalar: plain where that reads back as the same
/// string, otherwise double-quoted (JSON string syntax is valid YAML).
pub fn scalar(s: &str) -> String {
    let plain_safe = !s.is_empty()
        && s.chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "@._-+/ ".contains(ch))
        && !s.starts_with([' ', '-', '.'])
        && !s.ends_with(' ')
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
        && s.parse::<f64>().is_err()
        && !s.contains(" #");
    if plain_safe {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
    }
}
