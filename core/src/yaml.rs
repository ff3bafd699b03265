//! Reading YAML with locations.
//!
//! team.yaml and catalog files are read from saphyr's event parser into a
//! compact tree of our own (`Node`: a value and the `line:col` where it
//! starts, nothing else), then converted by hand, so that every error,
//! syntactic or semantic, carries the place of the node it is about, and so
//! that conversion can go on after an error and report all of them at once.
//! One top-level list (team.yaml's `members`) can be streamed: its items are
//! handed over one at a time and never held together as a tree. Nothing here
//! panics on input.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

use saphyr::{ScalarOwned, ScalarStyle, ScanError, Tag};
use saphyr_parser::{Event, Marker, Parser, StrInput};
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

/// A node of a YAML document: its value and the place where it starts.
#[derive(Debug, Clone)]
pub struct Node {
    line: u32,
    col: u32,
    pub data: Data,
}

/// The value of a node, its scalars resolved by the YAML core schema.
#[derive(Debug, Clone)]
pub enum Data {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    /// A list or mapping with a tag outside the core schema: the tag and the node.
    Tagged(Box<(Box<str>, Node)>),
    /// A scalar its core-schema tag does not admit (`!!int x`), or an empty document.
    Bad,
}

impl Node {
    fn at(mark: Marker, data: Data) -> Node {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Node {
            line: clamp(mark.line()),
            col: clamp(mark.col().saturating_add(1)),
            data,
        }
    }

    /// Where the node starts (1-based line and column).
    pub fn loc(&self) -> Loc {
        Loc {
            line: self.line as usize,
            col: self.col as usize,
        }
    }

    /// This node and every node under it.
    fn size(&self) -> usize {
        1 + match &self.data {
            Data::Seq(items) => items.iter().map(Node::size).sum(),
            Data::Map(entries) => entries.iter().map(|(k, v)| k.size() + v.size()).sum(),
            Data::Tagged(inner) => inner.1.size(),
            _ => 0,
        }
    }
}

/// Equality of mapping keys: by value, places ignored (NaN equals NaN, as
/// in the YAML loader's ordered floats).
fn same(a: &Data, b: &Data) -> bool {
    match (a, b) {
        (Data::Null, Data::Null) | (Data::Bad, Data::Bad) => true,
        (Data::Bool(x), Data::Bool(y)) => x == y,
        (Data::Int(x), Data::Int(y)) => x == y,
        (Data::Float(x), Data::Float(y)) => x == y || (x.is_nan() && y.is_nan()),
        (Data::Str(x), Data::Str(y)) => x == y,
        (Data::Seq(x), Data::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| same(&a.data, &b.data))
        }
        (Data::Map(x), Data::Map(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .any(|(k2, v2)| same(&k.data, &k2.data) && same(&v.data, &v2.data))
                })
        }
        (Data::Tagged(x), Data::Tagged(y)) => x.0 == y.0 && same(&x.1.data, &y.1.data),
        _ => false,
    }
}

/// Total nodes aliases may expand to in one file, so that a few nested
/// anchors cannot grow into billions of nodes.
const ALIAS_BUDGET: usize = 100_000;

/// Mappings up to this size look for a duplicate key by scanning; larger
/// ones keep a set of their scalar keys.
const SCAN_KEYS: usize = 16;

/// A scalar key, for the duplicate check of large mappings.
#[derive(PartialEq, Eq, Hash)]
enum KeyId {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
}

fn key_id(data: &Data) -> Option<KeyId> {
    Some(match data {
        Data::Null => KeyId::Null,
        Data::Bool(b) => KeyId::Bool(*b),
        Data::Int(i) => KeyId::Int(*i),
        Data::Float(f) if f.is_nan() => KeyId::Float(f64::NAN.to_bits()),
        Data::Float(f) if *f == 0.0 => KeyId::Float(0),
        Data::Float(f) => KeyId::Float(f.to_bits()),
        Data::Str(s) => KeyId::Str(s.clone()),
        _ => return None,
    })
}

enum Open {
    Seq {
        items: Vec<Node>,
        /// Items go to the stream callback instead of `items`.
        streamed: bool,
    },
    Map {
        entries: Vec<(Node, Node)>,
        /// The key read, waiting for its value, and where it started.
        key: Option<(Node, Marker)>,
        /// Scalar keys of a large mapping.
        keys: Option<HashSet<KeyId>>,
    },
}

struct Frame {
    mark: Marker,
    anchor: usize,
    /// A tag outside the core schema.
    tag: Option<Box<str>>,
    open: Open,
}

fn non_core(tag: Option<&Cow<'_, Tag>>) -> Option<Box<str>> {
    tag.filter(|t| !t.is_yaml_core_schema())
        .map(|t| format!("{}{}", t.handle, t.suffix).into_boxed_str())
}

/// Takes each item of a streamed list, with the root's entries read so far.
pub type OnItem<'a> = dyn FnMut(&[(Node, Node)], Node) + 'a;

/// Builds nodes from parser events.
struct Builder<'s, 'f> {
    stack: Vec<Frame>,
    anchors: BTreeMap<usize, Node>,
    alias_budget: usize,
    /// The root of the document being read.
    root: Option<Node>,
    /// The top-level key whose list is streamed (first document only).
    stream_key: Option<&'s str>,
    on_item: &'f mut OnItem<'f>,
}

impl Builder<'_, '_> {
    fn scalar(
        &mut self,
        value: Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<&Cow<'_, Tag>>,
    ) -> Data {
        match ScalarOwned::parse_from_cow_and_metadata(value, style, tag) {
            None => Data::Bad,
            Some(ScalarOwned::Null) => Data::Null,
            Some(ScalarOwned::Boolean(b)) => Data::Bool(b),
            Some(ScalarOwned::Integer(i)) => Data::Int(i),
            Some(ScalarOwned::FloatingPoint(f)) => Data::Float(f.into_inner()),
            Some(ScalarOwned::String(s)) => Data::Str(s),
        }
    }

    fn open(&mut self, mark: Marker, anchor: usize, tag: Option<&Cow<'_, Tag>>, map: bool) {
        let open = if map {
            Open::Map {
                entries: Vec::new(),
                key: None,
                keys: None,
            }
        } else {
            // The value of the streamed key in the root mapping.
            let streamed = self.stream_key.is_some_and(|want| {
                matches!(self.stack.as_slice(), [Frame { open: Open::Map { key: Some((k, _)), .. }, .. }]
                    if matches!(&k.data, Data::Str(s) if &**s == want))
            });
            Open::Seq {
                items: Vec::new(),
                streamed,
            }
        };
        self.stack.push(Frame {
            mark,
            anchor,
            tag: non_core(tag),
            open,
        });
    }

    fn close(&mut self) -> Result<(), ScanError> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let data = match frame.open {
            Open::Seq { items, .. } => Data::Seq(items),
            Open::Map { entries, .. } => Data::Map(entries),
        };
        let mut node = Node::at(frame.mark, data);
        if let Some(tag) = frame.tag {
            node = Node {
                line: node.line,
                col: node.col,
                data: Data::Tagged(Box::new((tag, node))),
            };
        }
        self.insert(node, frame.anchor, frame.mark)
    }

    fn alias(&mut self, id: usize, mark: Marker) -> Result<Node, ScanError> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Ok(Node::at(mark, Data::Bad));
        };
        let size = anchored.size();
        if size > self.alias_budget {
            return Err(ScanError::new_str(
                mark,
                "alias expansion exceeded the maximum node budget (possible billion-laughs attack)",
            ));
        }
        self.alias_budget -= size;
        let mut node = anchored.clone();
        node.line = Node::at(mark, Data::Null).line;
        node.col = Node::at(mark, Data::Null).col;
        Ok(node)
    }

    fn insert(&mut self, node: Node, anchor: usize, mark: Marker) -> Result<(), ScanError> {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        // An item of the streamed list (always two levels down: the root
        // mapping, then the list) goes to the callback.
        if let [root, .., last] = self.stack.as_mut_slice()
            && matches!(last.open, Open::Seq { streamed: true, .. })
        {
            let before = match &root.open {
                Open::Map { entries, .. } => entries.as_slice(),
                Open::Seq { .. } => &[],
            };
            (self.on_item)(before, node);
            return Ok(());
        }
        match self.stack.last_mut().map(|f| &mut f.open) {
            None => self.root = Some(node),
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map { entries, key, keys }) => match key.take() {
                None => *key = Some((node, mark)),
                Some((k, key_mark)) => {
                    let dup = match (keys.as_mut(), key_id(&k.data)) {
                        (Some(set), Some(id)) => !set.insert(id),
                        _ => entries.iter().any(|(e, _)| same(&e.data, &k.data)),
                    };
                    if dup {
                        return Err(ScanError::new_str(key_mark, "duplicated key in mapping"));
                    }
                    if keys.is_none() && entries.len() >= SCAN_KEYS {
                        let scalars = entries.iter().filter_map(|(e, _)| key_id(&e.data));
                        let mut set: HashSet<KeyId> = scalars.collect();
                        if let Some(id) = key_id(&k.data) {
                            set.insert(id);
                        }
                        *keys = Some(set);
                    }
                    entries.push((k, node));
                }
            },
        }
        Ok(())
    }
}

/// Parses one YAML document. A syntax error is a single diagnostic at its place;
/// an empty file is a diagnostic too.
pub fn parse(file: &str, source: &str) -> Result<Node, Diagnostics> {
    parse_streaming(file, source, None, &mut |_, _| {})
}

/// Like `parse`, but when the root is a mapping and `stream_key` names a
/// list in it, the list's items are handed to `on_item` one at a time, in
/// order, with the root's entries read so far; the returned tree holds an
/// empty list in its place. Items may be handed over before a syntax error
/// later in the file is found: the caller then has only the error to report.
pub fn parse_streaming(
    file: &str,
    source: &str,
    stream_key: Option<&str>,
    on_item: &mut OnItem<'_>,
) -> Result<Node, Diagnostics> {
    let syntax = |e: ScanError| {
        let m = e.marker();
        let loc = Loc {
            line: m.line(),
            col: m.col() + 1,
        };
        let mut c = Collector::new(file);
        c.error(loc, format!("invalid YAML: {}", e.info()));
        Diagnostics(c.found)
    };
    let mut b = Builder {
        stack: Vec::new(),
        anchors: BTreeMap::new(),
        alias_budget: ALIAS_BUDGET,
        root: None,
        stream_key,
        on_item,
    };
    let mut first: Option<Node> = None;
    let mut second: Option<Loc> = None;
    let mut parser = Parser::new(StrInput::new(source));
    for next in &mut parser {
        let (event, span) = next.map_err(syntax)?;
        let mark = span.start;
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart(_) => {}
            Event::DocumentEnd => {
                let root = b.root.take().unwrap_or(Node::at(mark, Data::Bad));
                if first.is_none() {
                    first = Some(root);
                    // Later documents are read for their errors only.
                    b.stream_key = None;
                } else if second.is_none() {
                    second = Some(root.loc());
                }
            }
            Event::Scalar(value, style, anchor, tag) => {
                let data = b.scalar(value, style, tag.as_ref());
                b.insert(Node::at(mark, data), anchor, mark)
                    .map_err(syntax)?;
            }
            Event::SequenceStart(anchor, tag) => b.open(mark, anchor, tag.as_ref(), false),
            Event::MappingStart(anchor, tag) => b.open(mark, anchor, tag.as_ref(), true),
            Event::SequenceEnd | Event::MappingEnd => b.close().map_err(syntax)?,
            Event::Alias(id) => {
                let node = b.alias(id, mark).map_err(syntax)?;
                b.insert(node, 0, mark).map_err(syntax)?;
            }
        }
    }
    let mut c = Collector::new(file);
    match (first, second) {
        (None, _) => c.error(Loc { line: 1, col: 1 }, "the file is empty"),
        (Some(root), None) => return Ok(root),
        (Some(_), Some(loc)) => c.error(loc, "expected one YAML document, found several"),
    }
    Err(Diagnostics(c.found))
}

/// The string value of `key` in the root mapping, read without building the
/// document: reading stops at the key. `None` when the file does not start
/// as a mapping, has no such key before a syntax error, or its value is not
/// a string.
pub fn top_level_string(source: &str, key: &str) -> Option<String> {
    let mut parser = Parser::new(StrInput::new(source));
    // Depth of nesting; at depth 1 (in the root mapping) keys and values alternate.
    let mut depth = 0usize;
    let mut at_key = true;
    let mut found = false;
    for next in &mut parser {
        let (event, _) = next.ok()?;
        match event {
            Event::Nothing | Event::StreamStart | Event::DocumentStart(_) => {}
            Event::StreamEnd | Event::DocumentEnd => return None,
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if depth == 0 && !matches!(event, Event::MappingStart(..)) {
                    return None;
                }
                if found {
                    return None;
                }
                depth += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                depth = depth.saturating_sub(1);
                match depth {
                    0 => return None,
                    1 => at_key = !at_key,
                    _ => {}
                }
            }
            Event::Scalar(value, style, _, tag) if depth == 1 => {
                let scalar = ScalarOwned::parse_from_cow_and_metadata(value, style, tag.as_ref());
                let text = match scalar {
                    Some(ScalarOwned::String(s)) => Some(s),
                    _ => None,
                };
                if found {
                    return text;
                }
                found = at_key && text.as_deref() == Some(key);
                at_key = !at_key;
            }
            Event::Alias(_) if depth == 1 => {
                if found {
                    return None;
                }
                at_key = !at_key;
            }
            Event::Scalar(..) | Event::Alias(_) => {
                if depth == 0 {
                    return None;
                }
            }
        }
    }
    None
}

pub fn loc_of(node: &Node) -> Loc {
    node.loc()
}

/// What kind of node this is, for "expected X, found Y" messages.
pub fn kind(node: &Node) -> &'static str {
    match &node.data {
        Data::Null => "null",
        Data::Bool(_) => "a boolean",
        Data::Int(_) => "an integer",
        Data::Float(_) => "a number",
        Data::Str(_) => "a string",
        Data::Seq(_) => "a list",
        Data::Map(_) => "a mapping",
        Data::Tagged(_) => "a tagged value",
        Data::Bad => "an invalid value",
    }
}

/// The entries of a mapping node with string keys, in source order.
/// Reports a non-mapping node and non-string keys; reports keys outside
/// `allowed` as unknown fields (with the list of known ones).
pub fn mapping<'a>(
    node: &'a Node,
    what: &str,
    allowed: Option<&[&str]>,
    c: &mut Collector,
) -> Vec<(&'a str, Loc, &'a Node)> {
    let Data::Map(map) = &node.data else {
        c.error(
            loc_of(node),
            format!("{what} must be a mapping, found {}", kind(node)),
        );
        return Vec::new();
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map.iter() {
        let Some(key) = str_of(k) else {
            c.error(
                loc_of(k),
                format!("keys of {what} must be strings, found {}", kind(k)),
            );
            continue;
        };
        if let Some(allowed) = allowed
            && !allowed.contains(&key)
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

pub fn sequence<'a>(node: &'a Node, what: &str, c: &mut Collector) -> &'a [Node] {
    match &node.data {
        Data::Seq(items) => items,
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
pub fn str_of(node: &Node) -> Option<&str> {
    match &node.data {
        Data::Str(s) => Some(s),
        _ => None,
    }
}

/// The text of a string scalar, or an error naming `what`.
pub fn text<'a>(node: &'a Node, what: &str, c: &mut Collector) -> Option<&'a str> {
    let s = str_of(node);
    if s.is_none() {
        c.error(
            loc_of(node),
            format!("{what} must be a string, found {}", kind(node)),
        );
    }
    s
}

pub fn string(node: &Node, what: &str, c: &mut Collector) -> Option<String> {
    text(node, what, c).map(str::to_owned)
}

pub fn boolean(node: &Node, what: &str, c: &mut Collector) -> Option<bool> {
    match &node.data {
        Data::Bool(b) => Some(*b),
        _ => {
            c.error(
                loc_of(node),
                format!("{what} must be true or false, found {}", kind(node)),
            );
            None
        }
    }
}

pub fn integer(node: &Node, what: &str, c: &mut Collector) -> Option<i64> {
    match &node.data {
        Data::Int(i) => Some(*i),
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
pub fn text_or_int(node: &Node) -> Option<String> {
    match &node.data {
        Data::Int(i) => Some(i.to_string()),
        _ => str_of(node).map(str::to_owned),
    }
}

pub fn is_null(node: &Node) -> bool {
    matches!(node.data, Data::Null)
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
