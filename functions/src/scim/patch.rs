//! What SCIM requests say, read leniently where providers differ (Entra ID
//! capitalises `op` values and sends booleans as strings): attribute names,
//! `filter` expressions (`attr eq "value"`), and PATCH operations on a
//! user.

use serde_json::{Map, Value};

use super::{KEPT, ScimError, UserRecord, bad};

/// An attribute name as the service spells it (names are case-insensitive,
/// RFC 7643 2.1), without a core schema URN prefix.
pub fn attribute(name: &str) -> String {
    let name = name
        .strip_prefix(super::USER_SCHEMA)
        .map(|rest| rest.trim_start_matches(':'))
        .unwrap_or(name);
    for known in [
        "userName",
        "externalId",
        "active",
        "name",
        "displayName",
        "emails",
        "id",
        "members",
        "groups",
        "schemas",
        "meta",
    ] {
        if name.eq_ignore_ascii_case(known) {
            return known.to_owned();
        }
    }
    name.to_owned()
}

pub fn string(value: &Value, what: &str) -> Result<String, ScimError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad("invalidValue", format!("{what} is a string")))
}

/// A boolean, or its text (`"True"`, `"false"`), as Entra ID sends it.
pub fn boolean(value: &Value) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(bad("invalidValue", "active is true or false")),
    }
}

/// `attr eq "value"`: the one filter providers send to find a user.
#[derive(Debug, Clone)]
pub struct Filter {
    /// `userName`, `externalId`, `id`, `emails.value`, or
    /// `emails[type eq "T"].value` (attribute `emails.value`, `email_type`).
    pub attribute: String,
    pub email_type: Option<String>,
    pub value: String,
}

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, ScimError> {
        let invalid = || {
            bad(
                "invalidFilter",
                format!(
                    "unsupported filter `{text}`: supported are userName, externalId, id and emails.value with `eq` and a quoted value"
                ),
            )
        };
        let text = text.trim();
        let (left, right) = split_eq(text).ok_or_else(invalid)?;
        let value = unquote(right).ok_or_else(invalid)?;
        let left = left.trim();
        let (attribute, email_type) = if let Some(rest) = strip_ci(left, "emails[") {
            // emails[type eq "work"].value
            let (inner, tail) = rest.split_once(']').ok_or_else(invalid)?;
            if !tail.eq_ignore_ascii_case(".value") {
                return Err(invalid());
            }
            let (l, r) = split_eq(inner).ok_or_else(invalid)?;
            if !l.trim().eq_ignore_ascii_case("type") {
                return Err(invalid());
            }
            (
                "emails.value".to_owned(),
                Some(unquote(r).ok_or_else(invalid)?),
            )
        } else if left.eq_ignore_ascii_case("emails.value") || left.eq_ignore_ascii_case("emails") {
            ("emails.value".to_owned(), None)
        } else {
            let a = attribute(left);
            if !["userName", "externalId", "id"].contains(&a.as_str()) {
                return Err(invalid());
            }
            (a, None)
        };
        Ok(Filter {
            attribute,
            email_type,
            value,
        })
    }

    pub fn matches(&self, r: &UserRecord) -> bool {
        match self.attribute.as_str() {
            "userName" => r.user_name.eq_ignore_ascii_case(&self.value),
            "id" => r.id == self.value,
            "externalId" => r.external_id.as_deref() == Some(self.value.as_str()),
            "emails.value" => {
                let doc: Value = serde_json::from_str(&r.doc).unwrap_or(Value::Null);
                let listed = doc
                    .get("emails")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|e| {
                        self.email_type.as_ref().is_none_or(|t| {
                            e.get("type")
                                .and_then(Value::as_str)
                                .is_some_and(|x| x.eq_ignore_ascii_case(t))
                        })
                    })
                    .any(|e| {
                        e.get("value")
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.eq_ignore_ascii_case(&self.value))
                    });
                listed
                    || (self.email_type.is_none()
                        && r.email
                            .as_ref()
                            .is_some_and(|e| e.as_str().eq_ignore_ascii_case(&self.value)))
            }
            _ => false,
        }
    }
}

pub(crate) fn strip_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Splits `left eq right` at the first ` eq ` outside quotes and brackets.
fn split_eq(text: &str) -> Option<(&str, &str)> {
    let lower = text.to_ascii_lowercase();
    let mut depth = 0i32;
    let mut quoted = false;
    let bytes = lower.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'[' if !quoted => depth += 1,
            b']' if !quoted => depth -= 1,
            b' ' if !quoted && depth == 0 && lower.get(i..i + 4) == Some(" eq ") => {
                return Some((&text[..i], &text[i + 4..]));
            }
            _ => {}
        }
    }
    None
}

fn unquote(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text.trim()).ok()?;
    v.as_str().map(str::to_owned)
}

/// A user as a JSON object of its writable attributes.
pub fn user_document(r: &UserRecord) -> Map<String, Value> {
    let mut doc = match serde_json::from_str::<Value>(&r.doc) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    doc.insert("userName".into(), r.user_name.clone().into());
    if let Some(x) = &r.external_id {
        doc.insert("externalId".into(), x.clone().into());
    }
    doc
}

/// Applies PATCH operations (RFC 7644 3.5.2) to a user's document.
pub fn apply(doc: &mut Map<String, Value>, body: &Value) -> Result<(), ScimError> {
    let ops = body
        .get("Operations")
        .or_else(|| body.get("operations"))
        .and_then(Value::as_array)
        .ok_or_else(|| bad("invalidSyntax", "a PATCH body has a list of Operations"))?;
    if ops.is_empty() {
        return Err(bad("invalidSyntax", "Operations is empty"));
    }
    for (i, op) in ops.iter().enumerate() {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| bad("invalidSyntax", format!("Operations[{i}] has no op")))?;
        let path = op.get("path").and_then(Value::as_str);
        let value = op.get("value");
        match (kind.as_str(), path, value) {
            ("add" | "replace", None, Some(Value::Object(map))) => {
                for (k, v) in map {
                    set(doc, &attribute(k), v.clone(), kind == "add")?;
                }
            }
            ("add" | "replace", Some(path), Some(v)) => {
                set_path(doc, path, v.clone(), kind == "add")?
            }
            ("remove", Some(path), _) => remove_path(doc, path)?,
            ("remove", None, _) => {
                return Err(bad(
                    "noTarget",
                    format!("Operations[{i}]: remove needs a path"),
                ));
            }
            ("add" | "replace", _, _) => {
                return Err(bad("invalidValue", format!("Operations[{i}] has no value")));
            }
            _ => {
                return Err(bad(
                    "invalidSyntax",
                    format!("Operations[{i}]: op is add, remove or replace"),
                ));
            }
        }
    }
    Ok(())
}

fn writable(name: &str) -> Result<(), ScimError> {
    if name == "userName" || name == "externalId" || name == "active" || KEPT.contains(&name) {
        return Ok(());
    }
    if ["id", "meta", "groups", "schemas"].contains(&name) {
        return Err(bad("mutability", format!("{name} is read-only")));
    }
    Err(bad("invalidPath", format!("unknown attribute `{name}`")))
}

fn set(doc: &mut Map<String, Value>, name: &str, value: Value, add: bool) -> Result<(), ScimError> {
    writable(name)?;
    let value = if name == "active" {
        Value::Bool(boolean(&value)?)
    } else {
        value
    };
    match (add, doc.get_mut(name), &value) {
        // `add` to a multi-valued attribute appends (RFC 7644 3.5.2.1).
        (true, Some(Value::Array(list)), Value::Array(more)) => {
            for v in more {
                if !list.contains(v) {
                    list.push(v.clone());
                }
            }
        }
        // `add` of a complex attribute merges its sub-attributes.
        (true, Some(Value::Object(map)), Value::Object(more)) => {
            for (k, v) in more {
                map.insert(k.clone(), v.clone());
            }
        }
        _ => {
            doc.insert(name.to_owned(), value);
        }
    }
    Ok(())
}

/// A PATCH path: attribute, `[attr eq "value"]` filter, sub-attribute.
type PathParts = (String, Option<(String, String)>, Option<String>);

/// `emails[type eq "work"].value`: the attribute, the filter inside
/// brackets, and the sub-attribute.
fn split_filter(path: &str) -> Result<PathParts, ScimError> {
    let path = path.trim();
    let stripped = path
        .strip_prefix(super::USER_SCHEMA)
        .map(|r| r.trim_start_matches(':'))
        .unwrap_or(path);
    if let Some((head, rest)) = stripped.split_once('[') {
        let (inner, tail) = rest
            .split_once(']')
            .ok_or_else(|| bad("invalidPath", format!("`{path}`: unclosed [")))?;
        let (l, r) = split_eq(inner)
            .ok_or_else(|| bad("invalidFilter", format!("`{path}`: only `eq` filters")))?;
        let v =
            unquote(r).ok_or_else(|| bad("invalidFilter", format!("`{path}`: quote the value")))?;
        let sub = tail.strip_prefix('.').map(str::to_owned);
        return Ok((attribute(head), Some((l.trim().to_owned(), v)), sub));
    }
    match stripped.split_once('.') {
        Some((head, sub)) => Ok((attribute(head), None, Some(sub.to_owned()))),
        None => Ok((attribute(stripped), None, None)),
    }
}

fn set_path(
    doc: &mut Map<String, Value>,
    path: &str,
    value: Value,
    add: bool,
) -> Result<(), ScimError> {
    let (name, filter, sub) = split_filter(path)?;
    writable(&name)?;
    match (filter, sub) {
        (None, None) => set(doc, &name, value, add),
        (None, Some(sub)) => {
            let entry = doc
                .entry(name.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let map = entry
                .as_object_mut()
                .ok_or_else(|| bad("invalidPath", format!("{name} has no sub-attributes")))?;
            map.insert(sub, value);
            Ok(())
        }
        (Some((fattr, fvalue)), sub) => {
            let entry = doc
                .entry(name.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            let list = entry
                .as_array_mut()
                .ok_or_else(|| bad("invalidPath", format!("{name} is not multi-valued")))?;
            let hits = |e: &Value| {
                e.get(&fattr)
                    .map(|x| match x {
                        Value::String(s) => s.eq_ignore_ascii_case(&fvalue),
                        Value::Bool(b) => {
                            fvalue.eq_ignore_ascii_case(if *b { "true" } else { "false" })
                        }
                        _ => false,
                    })
                    .unwrap_or(false)
            };
            let mut found = false;
            for e in list.iter_mut().filter(|e| hits(e)) {
                found = true;
                if let Value::Object(m) = e {
                    match (&sub, &value) {
                        (Some(s), v) => {
                            m.insert(s.clone(), v.clone());
                        }
                        (None, Value::Object(more)) => {
                            for (k, v) in more {
                                m.insert(k.clone(), v.clone());
                            }
                        }
                        (None, _) => {
                            return Err(bad("invalidValue", format!("`{path}` takes an object")));
                        }
                    }
                }
            }
            if !found {
                // Entra ID and Okta set `emails[type eq "work"].value` on a
                // user that has no such email yet: it is created.
                let mut m = Map::new();
                m.insert(fattr, Value::String(fvalue));
                match (sub, value) {
                    (Some(s), v) => {
                        m.insert(s, v);
                    }
                    (None, Value::Object(more)) => m.extend(more),
                    (None, _) => {
                        return Err(bad("invalidValue", format!("`{path}` takes an object")));
                    }
                }
                if list.is_empty() {
                    m.entry("primary").or_insert(Value::Bool(true));
                }
                list.push(Value::Object(m));
            }
            Ok(())
        }
    }
}

fn remove_path(doc: &mut Map<String, Value>, path: &str) -> Result<(), ScimError> {
    let (name, filter, sub) = split_filter(path)?;
    writable(&name)?;
    if name == "userName" {
        return Err(bad(
            "mutability",
            "userName is required and cannot be removed",
        ));
    }
    match (filter, sub) {
        (None, None) => {
            doc.remove(&name);
        }
        (None, Some(sub)) => {
            if let Some(Value::Object(m)) = doc.get_mut(&name) {
                m.remove(&sub);
            }
        }
        (Some((fattr, fvalue)), sub) => {
            if let Some(Value::Array(list)) = doc.get_mut(&name) {
                let hits = |e: &Value| {
                    e.get(&fattr)
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case(&fvalue))
                };
                match sub {
                    None => list.retain(|e| !hits(e)),
                    Some(sub) => {
                        for e in list.iter_mut().filter(|e| hits(e)) {
                            if let Value::Object(m) = e {
                                m.remove(&sub);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
