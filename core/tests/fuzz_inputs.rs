//! Random input never makes the readers panic: arbitrary text, and mutations
//! of a valid team.yaml (lines dropped, duplicated, swapped, characters
//! replaced). Every error they report carries a place inside the file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use proptest::prelude::*;
use teamform_core::{Catalog, TeamSpec};

const VALID: &str = "version: 1
team: acme
display_name: Acme Inc
owner: alice@acme.com
settings:
  require_2fa: true
  invitation_ttl_days: 15
  seat_limit: 50
roles:
  release-manager:
    description: Ships releases
    permissions: [apps.read, apps.config.write]
members:
  - email: bob@acme.com
    name: Bob
    roles: [admin]
  - email: carol@acme.com
    roles: [developer, billing]
policy:
  unmanaged: remove
  max_removals: 25%
";

fn check(source: &str) {
    let catalog = Catalog::standard();
    if let Err(diags) = TeamSpec::parse("t.yaml", source, &catalog) {
        // YAML breaks lines at \n, \r\n and a lone \r: an upper bound of its lines.
        let lines = source.matches(['\n', '\r']).count() + 2;
        assert!(!diags.0.is_empty(), "an error is reported");
        for d in &diags.0 {
            assert!(
                d.loc.line >= 1 && d.loc.line <= lines,
                "{d} is outside the file of {lines} lines"
            );
            assert!(d.loc.col >= 1, "{d}");
        }
    }
    let _ = Catalog::from_yaml("c.yaml", source);
    let _ = teamform_core::spec::declared_catalog(source);
}

#[derive(Debug, Clone)]
enum Edit {
    Drop(usize),
    Duplicate(usize),
    Swap(usize, usize),
    Replace(usize, usize, char),
    Insert(usize, String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let junk = prop::sample::select(vec![
        "",
        ":",
        "- ",
        "  ",
        "\t",
        "[",
        "]",
        "{",
        "}",
        "&a",
        "*a",
        "!!binary x",
        "? ",
        "|",
        ">",
        "#",
        "'",
        "\"",
        "null",
        "~",
        "1e9",
        "-1",
        "owner",
        "email: x@y.z",
        "roles: [owner]",
        "members:",
        "version: 2",
    ]);
    prop_oneof![
        (0..40usize).prop_map(Edit::Drop),
        (0..40usize).prop_map(Edit::Duplicate),
        (0..40usize, 0..40usize).prop_map(|(a, b)| Edit::Swap(a, b)),
        (0..40usize, 0..60usize, any::<char>()).prop_map(|(l, c, ch)| Edit::Replace(l, c, ch)),
        (0..40usize, junk).prop_map(|(l, j)| Edit::Insert(l, j.to_owned())),
    ]
}

fn apply(edits: &[Edit]) -> String {
    let mut lines: Vec<String> = VALID.lines().map(str::to_owned).collect();
    for e in edits {
        let n = lines.len().max(1);
        match e {
            Edit::Drop(i) if !lines.is_empty() => {
                lines.remove(i % n);
            }
            Edit::Duplicate(i) if !lines.is_empty() => {
                let l = lines[i % n].clone();
                lines.insert(i % n, l);
            }
            Edit::Swap(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
            Edit::Replace(l, c, ch) if !lines.is_empty() => {
                let line: Vec<char> = lines[l % n].chars().collect();
                if !line.is_empty() {
                    let mut line = line;
                    let at = c % line.len();
                    line[at] = *ch;
                    lines[l % n] = line.into_iter().collect();
                }
            }
            Edit::Insert(l, text) => lines.insert(l % (lines.len() + 1), text.clone()),
            _ => {}
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(source in ".{0,400}") {
        check(&source);
    }

    #[test]
    fn mutated_team_yaml_never_panics(edits in prop::collection::vec(edit(), 1..6)) {
        check(&apply(&edits));
    }
}

#[test]
fn the_unmutated_file_is_valid() {
    assert!(TeamSpec::parse("t.yaml", VALID, &Catalog::standard()).is_ok());
}
