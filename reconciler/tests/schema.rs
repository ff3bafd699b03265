#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report

//! team.yaml's JSON Schema (`teamform schema`): the committed copy is the
//! command's output, its fields are exactly the reader's, every example and
//! every team.yaml written out in the test suites that the reader accepts
//! passes a real JSON Schema validator, and invalid documents do not.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Value};
use teamform::schema::{SCHEMA_PATH, team_schema, team_schema_text};
use teamform_core::Catalog;
use teamform_core::catalog::PRESETS;
use teamform_core::spec::{TeamSpec, fields};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&team_schema().unwrap()).unwrap()
}

/// A YAML document as the JSON value a validator sees (what
/// yaml-language-server does with it too).
fn to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => Value::Bool(*b),
        Yaml::Value(Scalar::Integer(i)) => Value::from(*i),
        Yaml::Value(Scalar::FloatingPoint(f)) => Value::from(f.into_inner()),
        Yaml::Value(Scalar::String(s)) => Value::from(s.as_ref()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match to_json(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, to_json(v));
            }
            Value::Object(out)
        }
        Yaml::Tagged(_, inner) => to_json(inner),
        other => panic!("unexpected YAML node {other:?}"),
    }
}

fn yaml_to_json(source: &str) -> Value {
    let docs = Yaml::load_from_str(source).unwrap();
    docs.first().map(to_json).unwrap_or(Value::Null)
}

fn errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The reader accepts `source` with one of the preset catalogs.
fn reader_accepts(source: &str) -> bool {
    PRESETS.iter().any(|(name, _)| {
        Catalog::preset(name).is_some_and(|c| TeamSpec::parse("t.yaml", source, &c).is_ok())
    })
}

#[test]
fn the_committed_schema_is_the_commands_output() {
    let committed = std::fs::read_to_string(root().join(SCHEMA_PATH)).unwrap();
    let text = team_schema_text().unwrap();
    assert_eq!(
        committed, text,
        "{SCHEMA_PATH} is stale: run `teamform schema > {SCHEMA_PATH}`"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_teamform"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
    // A valid JSON Schema (2020-12) by its meta-schema.
    let schema: Value = serde_json::from_str(&committed).unwrap();
    assert!(jsonschema::meta::is_valid(&schema));
}

/// The schema's properties per section are exactly the reader's fields.
#[test]
fn schema_fields_are_the_readers_fields() {
    let schema = team_schema().unwrap();
    let keys = |v: &Value| -> BTreeSet<String> {
        v["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let set = |f: &[&str]| -> BTreeSet<String> { f.iter().map(|s| s.to_string()).collect() };
    let p = &schema["properties"];
    assert_eq!(keys(&schema), set(fields::TOP));
    assert_eq!(keys(&p["settings"]), set(fields::SETTINGS));
    assert_eq!(keys(&p["roles"]["additionalProperties"]), set(fields::ROLE));
    assert_eq!(keys(&p["members"]["items"]), set(fields::MEMBER));
    assert_eq!(keys(&p["policy"]), set(fields::POLICY));
    for section in [
        &schema,
        &p["settings"],
        &p["roles"]["additionalProperties"],
        &p["members"]["items"],
        &p["policy"],
    ] {
        assert_eq!(section["additionalProperties"], Value::Bool(false));
    }
}

/// The tables are what the reader really accepts: each field of each
/// section is taken, and a field outside them is refused as unknown, by the
/// reader and by the schema alike.
#[test]
fn the_reader_accepts_exactly_the_table_fields() {
    let validator = validator();
    let catalog = Catalog::standard();
    // One document per section, with `{EXTRA}` where a field is added.
    let base = "version: 1\nteam: acme\nowner: alice@acme.com\n";
    let cases: [(&str, &[&str], String); 5] = [
        ("top", fields::TOP, format!("{base}{{EXTRA}}: x\n")),
        (
            "settings",
            fields::SETTINGS,
            format!("{base}settings:\n  require_2fa: true\n  {{EXTRA}}: x\n"),
        ),
        (
            "role",
            fields::ROLE,
            format!("{base}roles:\n  ops:\n    permissions: [apps.read]\n    {{EXTRA}}: x\n"),
        ),
        (
            "member",
            fields::MEMBER,
            format!(
                "{base}members:\n  - email: bob@acme.com\n    roles: [viewer]\n    {{EXTRA}}: x\n"
            ),
        ),
        (
            "policy",
            fields::POLICY,
            format!("{base}policy:\n  unmanaged: ignore\n  {{EXTRA}}: x\n"),
        ),
    ];
    for (section, table, template) in cases {
        let unknown = template.replace("{EXTRA}", "colour");
        let err = TeamSpec::parse("t.yaml", &unknown, &catalog).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `colour`"),
            "{section}: {err}"
        );
        assert!(
            !validator.is_valid(&yaml_to_json(&unknown)),
            "{section}: the schema took an unknown field"
        );
        for field in table {
            let doc = template.replace("{EXTRA}", field);
            let message = match TeamSpec::parse("t.yaml", &doc, &catalog) {
                Ok(_) => String::new(),
                Err(e) => e.to_string(),
            };
            assert!(
                !message.contains(&format!("unknown field `{field}`")),
                "{section}: the reader refuses `{field}`, listed in its table: {message}"
            );
        }
    }
}

#[test]
fn examples_carry_the_modeline_and_pass_the_schema() {
    let validator = validator();
    let mut seen = 0;
    let mut dirs = vec![root().join("examples")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !(name.starts_with("team") && (name.ends_with(".yaml") || name.ends_with(".yml"))) {
                continue;
            }
            seen += 1;
            let source = std::fs::read_to_string(&path).unwrap();
            let first = source.lines().next().unwrap_or_default();
            let target = first
                .strip_prefix("# yaml-language-server: $schema=")
                .unwrap_or_else(|| panic!("{} has no schema modeline", path.display()));
            let resolved = path.parent().unwrap().join(target);
            assert_eq!(
                resolved.canonicalize().unwrap(),
                root().join(SCHEMA_PATH).canonicalize().unwrap(),
                "{}: the modeline points elsewhere",
                path.display()
            );
            assert!(reader_accepts(&source), "{}", path.display());
            let errs = errors(&validator, &yaml_to_json(&source));
            assert!(errs.is_empty(), "{}: {errs:?}", path.display());
        }
    }
    assert!(seen >= 2, "found {seen} example team files");
}

/// The string literals of a Rust source file, unescaped (plain, raw and
/// byte strings); good enough for the test suites' team.yaml texts.
fn string_literals(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '\'' {
            // A char literal ('"', '\"', '\n') or a lifetime.
            if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else if chars.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else {
                i += 1;
            }
            continue;
        }
        if c == 'r' && (chars.get(i + 1) == Some(&'#') || chars.get(i + 1) == Some(&'"')) {
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                let start = j + 1;
                let mut k = start;
                loop {
                    if k >= chars.len() {
                        break;
                    }
                    if chars[k] == '"' && (1..=hashes).all(|h| chars.get(k + h) == Some(&'#')) {
                        break;
                    }
                    k += 1;
                }
                out.push(chars[start..k.min(chars.len())].iter().collect());
                i = k + 1 + hashes;
                continue;
            }
        }
        if c == '"' {
            let mut s = String::new();
            let mut k = i + 1;
            while k < chars.len() && chars[k] != '"' {
                if chars[k] == '\\' {
                    k += 1;
                    match chars.get(k) {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('r') => s.push('\r'),
                        Some('0') => s.push('\0'),
                        Some('\n') => {
                            while chars.get(k + 1).is_some_and(|c| c.is_whitespace()) {
                                k += 1;
                            }
                        }
                        Some(other) => s.push(*other),
                        None => {}
                    }
                } else {
                    s.push(chars[k]);
                }
                k += 1;
            }
            out.push(s);
            i = k + 1;
            continue;
        }
        i += 1;
    }
    out
}

/// Every whole team.yaml the suites write out literally (`version: 1`,
/// `team:` and `owner:` in one string) that the reader accepts also passes
/// the schema: the schema is never stricter than the reader.
#[test]
fn team_yaml_fixtures_of_the_suites_pass_the_schema() {
    let validator = validator();
    let mut files = Vec::new();
    for dir in [
        "tests/tests",
        "tests/src",
        "functions/tests",
        "core/tests",
        "core/src",
        "reconciler/tests",
        "reconciler/src",
    ] {
        let mut dirs = vec![root().join(dir)];
        while let Some(d) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs" || e == "yaml") {
                    files.push(path);
                }
            }
        }
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let texts = if file.extension().is_some_and(|e| e == "yaml") {
            vec![source]
        } else {
            string_literals(&source)
        };
        for text in texts {
            let is_team_yaml = text.contains("version: 1")
                && text.lines().any(|l| l.starts_with("team:"))
                && text.lines().any(|l| l.starts_with("owner:"));
            if !is_team_yaml || !reader_accepts(&text) {
                continue;
            }
            checked += 1;
            let errs = errors(&validator, &yaml_to_json(&text));
            if !errs.is_empty() {
                failures.push(format!("{}: {errs:?}\n{text}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        checked >= 20,
        "only {checked} team.yaml fixtures found: the extraction broke"
    );
    println!("{checked} team.yaml fixtures pass the schema");
}

#[test]
fn invalid_documents_are_refused_by_the_schema() {
    let validator = validator();
    let base = "version: 1\nteam: acme\nowner: alice@acme.com\n";
    let bad = [
        ("no owner", "version: 1\nteam: acme\n".to_owned()),
        (
            "no version",
            "team: acme\nowner: alice@acme.com\n".to_owned(),
        ),
        (
            "version 2",
            "version: 2\nteam: acme\nowner: alice@acme.com\n".to_owned(),
        ),
        (
            "team not a slug",
            "version: 1\nteam: Acme Corp\nowner: alice@acme.com\n".to_owned(),
        ),
        (
            "owner not an email",
            "version: 1\nteam: acme\nowner: alice\n".to_owned(),
        ),
        ("unknown top field", format!("{base}colour: blue\n")),
        (
            "member without roles",
            format!("{base}members:\n  - email: bob@acme.com\n"),
        ),
        (
            "member with no role",
            format!("{base}members:\n  - email: bob@acme.com\n    roles: []\n"),
        ),
        (
            "member roles not a list",
            format!("{base}members:\n  - email: bob@acme.com\n    roles: admin\n"),
        ),
        (
            "ttl out of range",
            format!("{base}settings:\n  invitation_ttl_days: 0\n"),
        ),
        (
            "2fa not a boolean",
            format!("{base}settings:\n  require_2fa: maybe\n"),
        ),
        (
            "role without permissions",
            format!("{base}roles:\n  ops:\n    description: x\n"),
        ),
        (
            "unmanaged other",
            format!("{base}policy:\n  unmanaged: keep\n"),
        ),
        (
            "removal limit words",
            format!("{base}policy:\n  max_removals: lots\n"),
        ),
        ("members a number", format!("{base}members: 7\n")),
    ];
    for (what, doc) in bad {
        let json = yaml_to_json(&doc);
        assert!(!validator.is_valid(&json), "{what}: the schema took\n{doc}");
        assert!(
            !reader_accepts(&doc),
            "{what}: the reader takes it, the schema should too\n{doc}"
        );
    }
    // And the smallest valid document passes.
    assert!(validator.is_valid(&yaml_to_json(base)));
}
