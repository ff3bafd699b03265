//! team.yaml: a valid file parses, the canonical form reads back equal,
//! every mistake is reported at once with its `line:col`, and no input, however
//! odd, makes the parser panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::fmt::Write as _;

use teamform_core::spec::{Policy, Unmanaged};
use teamform_core::yaml::Diagnostics;
use teamform_core::{Catalog, Email, RoleName, TeamSpec};

fn standard() -> Catalog {
    Catalog::standard()
}

fn preset(name: &str) -> Catalog {
    Catalog::preset(name).unwrap_or_else(|| panic!("preset `{name}` does not load"))
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn role(s: &str) -> RoleName {
    RoleName::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_ok(source: &str, catalog: &Catalog) -> TeamSpec {
    match TeamSpec::parse("team.yaml", source, catalog) {
        Ok(spec) => spec,
        Err(d) => panic!("expected the file to parse, got:\n{d}\n--- source ---\n{source}"),
    }
}

fn parse_err(source: &str, catalog: &Catalog) -> Diagnostics {
    match TeamSpec::parse("team.yaml", source, catalog) {
        Ok(spec) => panic!("expected diagnostics, got {spec:?}"),
        Err(d) => d,
    }
}

fn lines(d: &Diagnostics) -> Vec<usize> {
    d.0.iter().map(|d| d.loc.line).collect()
}

/// The example of DESIGN.md; its roles all exist in the standard catalog.
const DESIGN_EXAMPLE: &str = "\
version: 1
team: acme                  # team id: lowercase slug
display_name: Acme Inc
owner: alice@acme.com       # exactly one; changing it plans an ownership transfer
settings:
  require_2fa: false        # members must sign in with a second factor
  invitation_ttl_days: 15
  seat_limit: 50            # members plus pending invitations; absent = no limit
roles:                      # custom roles, where the catalog allows them
  release-manager:
    description: Ships releases
    permissions: [apps.read, apps.config.write]
members:
  - email: bob@acme.com
    name: Bob               # used in the invitation
    roles: [admin]
  - email: carol@acme.com
    roles: [developer, billing]
policy:
  unmanaged: remove         # or ignore: leave members added elsewhere alone
  max_removals: 25%         # raise deliberately, where a reviewer sees it
";

#[test]
fn the_design_example_parses() {
    let spec = parse_ok(DESIGN_EXAMPLE, &standard());
    assert_eq!(spec.team.as_str(), "acme");
    assert_eq!(spec.display_name.as_deref(), Some("Acme Inc"));
    assert_eq!(spec.owner, email("alice@acme.com"));
    let settings = spec.settings.as_ref().expect("settings are managed");
    assert!(!settings.require_2fa);
    assert_eq!(settings.invitation_ttl_days, 15);
    assert_eq!(settings.seat_limit, Some(50));
    let roles = spec.roles.as_ref().expect("custom roles are managed");
    let release = roles
        .get(&role("release-manager"))
        .expect("release-manager");
    assert_eq!(release.description, "Ships releases");
    let perms: Vec<&str> = release.permissions.iter().map(|p| p.as_str()).collect();
    assert_eq!(perms, ["apps.config.write", "apps.read"]);
    assert_eq!(spec.members.len(), 2);
    let bob = spec.members.get(&email("bob@acme.com")).expect("bob");
    assert_eq!(bob.name.as_deref(), Some("Bob"));
    assert_eq!(
        bob.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["admin"]
    );
    let carol = spec.members.get(&email("carol@acme.com")).expect("carol");
    assert_eq!(carol.name, None);
    assert_eq!(
        carol.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        ["billing", "developer"]
    );
    assert_eq!(spec.policy.unmanaged, Unmanaged::Remove);
    assert_eq!(
        spec.policy.max_removals.map(|l| l.to_string()).as_deref(),
        Some("25%")
    );
}

#[test]
fn canonical_yaml_reads_back_to_an_equal_spec() {
    let catalog = standard();
    let spec = parse_ok(DESIGN_EXAMPLE, &catalog);
    let written = spec.to_yaml();
    let again = parse_ok(&written, &catalog);
    assert_eq!(again, spec);
    // Canonical means a fixed point.
    assert_eq!(again.to_yaml(), written);
    insta::assert_snapshot!(written);
}

#[test]
fn canonical_yaml_quotes_what_would_not_read_back() {
    let catalog = standard();
    let source = r#"
version: 1
team: odd-names
display_name: "yes"
owner: Alice@Example.com
roles:
  "on-call":
    description: "Paged at night: # not a comment, 'quoted' \"double\""
    permissions: [apps.read]
members:
  - email: o'brien@example.com
    name: "O'Brien: the 2nd #1"
    roles: [on-call]
  - email: n@example.com
    name: "123"
    roles: [viewer]
  - email: z@example.com
    name: " leading space"
    roles: [viewer]
  - email: u@example.com
    name: Zoë Ünïcode
    roles: [viewer]
policy:
  unmanaged: ignore
  max_removals: 3
"#;
    let spec = parse_ok(source, &catalog);
    let again = parse_ok(&spec.to_yaml(), &catalog);
    assert_eq!(again, spec);
    assert_eq!(again.display_name.as_deref(), Some("yes"));
    assert_eq!(
        again.policy,
        Policy {
            unmanaged: Unmanaged::Ignore,
            max_removals: "3".parse().ok()
        }
    );
}

#[test]
fn canonical_yaml_of_a_minimal_spec_reads_back() {
    let catalog = standard();
    let spec = parse_ok("version: 1\nteam: ab\nowner: a@b.co\n", &catalog);
    assert!(spec.members.is_empty());
    assert_eq!(spec.settings, None);
    assert_eq!(spec.roles, None);
    assert_eq!(parse_ok(&spec.to_yaml(), &catalog), spec);
    let with_empty_roles = parse_ok(
        "version: 1\nteam: ab\nowner: a@b.co\nroles: {}\nmembers: []\n",
        &catalog,
    );
    assert_eq!(with_empty_roles.roles.as_ref().map(|r| r.len()), Some(0));
    assert_eq!(
        parse_ok(&with_empty_roles.to_yaml(), &catalog),
        with_empty_roles
    );
}

/// Seven mistakes, each of a different kind, parsed under the digitalocean
/// catalog (one role per member).
const MISTAKES: &str = "\
version: 1
team: Acme_Inc
owner: alice@acme.com
colour: blue
members:
  - email: bob@acme.com
    roles: [member]
  - email: BOB@acme.com
    roles: [modifier]
  - email: alice@acme.com
    roles: [member]
  - email: not-an-email
    roles: [member]
  - email: dave@acme.com
    roles: [membr]
  - email: erin@acme.com
    roles: [biller, modifier]
";

#[test]
fn every_mistake_is_reported_at_once_with_its_place() {
    let d = parse_err(MISTAKES, &preset("digitalocean"));
    assert_eq!(d.0.len(), 7, "{d}");
    assert_eq!(lines(&d), [2, 4, 8, 10, 12, 15, 17], "{d}");
    let has = |line: usize, col: usize, text: &str| {
        d.0.iter()
            .any(|x| x.loc.line == line && x.loc.col == col && x.message.contains(text))
    };
    assert!(has(2, 7, "not a valid team id"), "{d}");
    assert!(has(4, 1, "unknown field `colour`"), "{d}");
    assert!(
        has(
            8,
            12,
            "duplicate member BOB@acme.com (first listed at line 6)"
        ),
        "{d}"
    );
    assert!(has(10, 12, "is the owner"), "{d}");
    assert!(
        has(12, 12, "`not-an-email` is not a valid email address"),
        "{d}"
    );
    assert!(
        has(15, 13, "unknown role `membr` (did you mean `member`?)"),
        "{d}"
    );
    assert!(has(17, 12, "allows one role per member"), "{d}");
    assert!(d.0.iter().all(|x| x.file == "team.yaml"));
    insta::assert_snapshot!(d.to_string());
}

#[test]
fn a_yaml_syntax_error_is_one_diagnostic_with_its_place() {
    let d = parse_err(
        "version: 1\nteam: acme\nmembers: [\n  - email: x\n",
        &standard(),
    );
    assert_eq!(d.0.len(), 1, "{d}");
    let only = &d.0[0];
    assert!(only.loc.line >= 3 && only.loc.col >= 1, "{d}");
    assert!(only.message.starts_with("invalid YAML"), "{d}");
    assert!(
        d.to_string()
            .starts_with(&format!("team.yaml:{}:{}: ", only.loc.line, only.loc.col))
    );
}

#[test]
fn an_unclosed_quote_is_located() {
    let d = parse_err("version: 1\nteam: \"acme\nowner: a@b.co\n", &standard());
    assert_eq!(d.0.len(), 1, "{d}");
    assert!(d.0[0].loc.line >= 2, "{d}");
}

#[test]
fn an_empty_file_is_a_diagnostic() {
    for source in ["", "\n\n", "# only a comment\n", "---\n"] {
        let d = parse_err(source, &standard());
        assert!(!d.0.is_empty());
        assert!(
            d.0.iter().all(|x| x.loc.line >= 1 && x.loc.col >= 1),
            "{source:?}: {d}"
        );
    }
}

#[test]
fn a_list_at_top_level_is_a_diagnostic() {
    let d = parse_err("- version: 1\n- team: acme\n", &standard());
    assert!(
        d.0.iter().any(|x| x.message.contains("must be a mapping")),
        "{d}"
    );
    assert_eq!(d.0[0].loc.line, 1);
}

#[test]
fn numbers_where_strings_are_expected_are_diagnostics() {
    let source = "\
version: 1
team: 42
owner: 7
display_name: 3.5
members:
  - email: 9
    name: 10
    roles: [1, true]
";
    let d = parse_err(source, &standard());
    assert!(
        d.0.iter().any(|x| x.loc.line == 2
            && x.message
                .contains("`team` must be a string, found an integer")),
        "{d}"
    );
    assert!(
        d.0.iter()
            .any(|x| x.loc.line == 3 && x.message.contains("`owner` must be a string")),
        "{d}"
    );
    assert!(
        d.0.iter()
            .any(|x| x.loc.line == 4 && x.message.contains("found a number")),
        "{d}"
    );
    assert!(d.0.iter().any(|x| x.loc.line == 6), "{d}");
    assert!(d.0.iter().any(|x| x.loc.line == 7), "{d}");
    assert_eq!(d.0.iter().filter(|x| x.loc.line == 8).count(), 2, "{d}");
}

#[test]
fn wrong_shapes_everywhere_are_diagnostics() {
    let sources = [
        "version: one\nteam: acme\nowner: a@b.co\n",
        "version: 2\nteam: acme\nowner: a@b.co\n",
        "team: acme\nowner: a@b.co\n",
        "version: 1\nowner: a@b.co\n",
        "version: 1\nteam: acme\n",
        "version: 1\nteam: acme\nowner: a@b.co\nmembers: {bob: admin}\n",
        "version: 1\nteam: acme\nowner: a@b.co\nmembers: [bob]\n",
        "version: 1\nteam: acme\nowner: a@b.co\nmembers: [{email: b@b.co}]\n",
        "version: 1\nteam: acme\nowner: a@b.co\nmembers: [{email: b@b.co, roles: admin}]\n",
        "version: 1\nteam: acme\nowner: a@b.co\nmembers: [{email: b@b.co, roles: []}]\n",
        "version: 1\nteam: acme\nowner: a@b.co\nmembers: [{email: b@b.co, roles: [owner]}]\n",
        "version: 1\nteam: acme\nowner: a@b.co\nmembers: [{email: b@b.co, roles: [admin, admin]}]\n",
        "version: 1\nteam: acme\nowner: a@b.co\nsettings: [1]\n",
        "version: 1\nteam: acme\nowner: a@b.co\nsettings: {invitation_ttl_days: 0}\n",
        "version: 1\nteam: acme\nowner: a@b.co\nsettings: {invitation_ttl_days: 99999999999999}\n",
        "version: 1\nteam: acme\nowner: a@b.co\nsettings: {seat_limit: -1}\n",
        "version: 1\nteam: acme\nowner: a@b.co\nsettings: {require_2fa: maybe}\n",
        "version: 1\nteam: acme\nowner: a@b.co\nroles: [a]\n",
        "version: 1\nteam: acme\nowner: a@b.co\nroles: {x: {}}\n",
        "version: 1\nteam: acme\nowner: a@b.co\nroles: {admin: {permissions: [apps.read]}}\n",
        "version: 1\nteam: acme\nowner: a@b.co\nroles: {Bad Name: {permissions: [apps.read]}}\n",
        "version: 1\nteam: acme\nowner: a@b.co\nroles: {x: {permissions: [apps.read, apps.read]}}\n",
        "version: 1\nteam: acme\nowner: a@b.co\npolicy: {unmanaged: keep}\n",
        "version: 1\nteam: acme\nowner: a@b.co\npolicy: {max_removals: 250%}\n",
        "version: 1\nteam: acme\nowner: a@b.co\npolicy: {max_removals: [1]}\n",
        "version: 1\nteam: acme\nowner: a@b.co\ndisplay_name: \"  \"\n",
        "version: 1\nteam: acme\nowner: a@b.co\n1: x\n",
    ];
    for source in sources {
        let d = parse_err(source, &standard());
        assert!(!d.0.is_empty(), "{source}");
        for x in &d.0 {
            assert!(x.loc.line >= 1 && x.loc.col >= 1, "{source}: {d}");
            assert!(!x.message.is_empty());
        }
    }
}

#[test]
fn odd_input_never_panics() {
    let tabbed =
        "version: 1\nteam: acme\nowner: a@b.co\nmembers:\n\t- email: b@b.co\n\t  roles: [admin]\n";
    let mut odd: Vec<String> = [
        "[[[[",
        ":",
        "]]]]",
        "{",
        "- - - -",
        "&a [*a]",
        "*a",
        "!!binary x",
        "? [a]\n: b\n",
        "version: 1\nversion: 1\n",
        "---\na: 1\n---\nb: 2\n",
        "\u{feff}version: 1",
        "\0",
        "team: \"\\uD800\"",
        "version: 1\nteam: acme\nowner: a@b.co\nmembers:\n  - &m {email: b@b.co, roles: [admin]}\n  - *m\n",
        "version: 1\nteam: acme\nowner: a@b.co\nmembers: !!map {}\n",
        "version: 1\nteam: acme\nowner: a@b.co\nmembers: ~\n",
        "version: 999999999999999999999999\n",
        tabbed,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    odd.push("[".repeat(2_000));
    odd.push("a:\n".repeat(1_000));
    odd.push(format!("team: {}\n", "x".repeat(100_000)));
    odd.push(format!(
        "version: 1\nteam: acme\nowner: {}@b.co\n",
        "a".repeat(300)
    ));
    for catalog in ["standard", "ably", "digitalocean"].map(preset) {
        for source in &odd {
            // Any answer will do, as long as it is an answer.
            let _ = TeamSpec::parse("team.yaml", source, &catalog);
        }
    }
    let d = parse_err(tabbed, &standard());
    assert!(d.0.iter().all(|x| x.loc.line >= 1), "{d}");
}

#[test]
fn a_team_of_ten_thousand_members_parses() {
    let mut source = String::from("version: 1\nteam: big\nowner: owner@big.example\nmembers:\n");
    for i in 0..10_000 {
        let role = ["admin", "developer", "viewer", "billing"][i % 4];
        let _ = writeln!(
            source,
            "  - email: user{i}@big.example\n    roles: [{role}]"
        );
    }
    let spec = parse_ok(&source, &standard());
    assert_eq!(spec.members.len(), 10_000);
    // And one duplicate at the very end is found and placed.
    let _ = writeln!(source, "  - email: USER0@big.example\n    roles: [admin]");
    let d = parse_err(&source, &standard());
    assert_eq!(d.0.len(), 1);
    assert_eq!(d.0[0].loc.line, 4 + 2 * 10_000 + 1, "{d}");
}

#[test]
fn emails_compare_case_insensitively_but_display_as_written() {
    let source = "\
version: 1
team: acme
owner: Alice@Acme.COM
members:
  - email: Bob.Smith@Acme.com
    roles: [viewer]
";
    let spec = parse_ok(source, &standard());
    assert_eq!(spec.owner, email("alice@acme.com"));
    assert_eq!(spec.owner.to_string(), "Alice@Acme.COM");
    let bob = spec
        .members
        .get(&email("BOB.SMITH@ACME.COM"))
        .expect("found whatever the case");
    assert_eq!(bob.email.as_str(), "Bob.Smith@Acme.com");
    assert_eq!(bob.email.key(), "bob.smith@acme.com");
    let written = spec.to_yaml();
    assert!(written.contains("owner: Alice@Acme.COM"), "{written}");
    assert!(written.contains("email: Bob.Smith@Acme.com"), "{written}");
}

#[test]
fn the_owner_listed_as_a_member_in_another_case_is_an_error() {
    let source = "\
version: 1
team: acme
owner: alice@acme.com
members:
  - email: ALICE@acme.com
    roles: [admin]
";
    let d = parse_err(source, &standard());
    assert_eq!(d.0.len(), 1, "{d}");
    assert_eq!((d.0[0].loc.line, d.0[0].loc.col), (5, 12));
    assert!(
        d.0[0].message.contains("ALICE@acme.com is the owner"),
        "{d}"
    );
}

#[test]
fn custom_roles_are_rejected_where_the_catalog_forbids_them() {
    let source = "\
version: 1
team: acme
owner: alice@acme.com
roles:
  release-manager:
    permissions: [apps.read]
members:
  - email: bob@acme.com
    roles: [release-manager]
";
    let d = parse_err(source, &preset("ably"));
    insta::assert_snapshot!(d.to_string());
    let forbidden: Vec<_> =
        d.0.iter()
            .filter(|x| x.message.contains("does not allow custom roles"))
            .collect();
    assert_eq!(forbidden.len(), 1, "{d}");
    assert!(forbidden[0].message.contains("`ably`"), "{d}");
    assert!((4..=5).contains(&forbidden[0].loc.line), "{d}");
    // The role the member names then does not exist either, and says so where it is named.
    assert!(
        d.0.iter()
            .any(|x| x.loc.line == 9 && x.message.contains("unknown role `release-manager`")),
        "{d}"
    );
    // The same file is fine where custom roles are allowed.
    parse_ok(source, &standard());
}

#[test]
fn an_unknown_permission_says_what_was_meant() {
    let source = "\
version: 1
team: acme
owner: alice@acme.com
roles:
  release-manager:
    permissions: [apps.read, apps.config.wirte]
";
    let d = parse_err(source, &standard());
    assert_eq!(d.0.len(), 1, "{d}");
    assert_eq!((d.0[0].loc.line, d.0[0].loc.col), (6, 30), "{d}");
    assert_eq!(
        d.0[0].message,
        "unknown permission `apps.config.wirte` (did you mean `apps.config.write`?)"
    );
}

#[test]
fn a_far_off_permission_points_to_the_catalog() {
    let source = "\
version: 1
team: acme
owner: alice@acme.com
roles:
  x:
    permissions: [rockets.launch]
";
    let d = parse_err(source, &standard());
    assert_eq!(d.0.len(), 1, "{d}");
    assert!(
        d.0[0].message.contains("`teamform catalog` lists them"),
        "{d}"
    );
}

#[test]
fn an_unknown_role_far_from_any_lists_the_known_ones() {
    let source = "\
version: 1
team: acme
owner: alice@acme.com
members:
  - email: bob@acme.com
    roles: [astronaut]
";
    let d = parse_err(source, &standard());
    assert_eq!(d.0.len(), 1, "{d}");
    assert_eq!(
        d.0[0].message,
        "unknown role `astronaut`; known roles: admin, developer, modifier, viewer, billing, billing_viewer"
    );
}

#[test]
fn members_may_hold_custom_roles_of_the_same_file() {
    let source = "\
version: 1
team: acme
owner: alice@acme.com
roles:
  release-manager:
    permissions: [apps.read]
members:
  - email: bob@acme.com
    roles: [release-manager, viewer]
";
    let spec = parse_ok(source, &standard());
    let bob = spec.members.get(&email("bob@acme.com")).expect("bob");
    assert!(bob.roles.contains(&role("release-manager")));
}

#[test]
fn absent_sections_are_not_managed() {
    let spec = parse_ok("version: 1\nteam: acme\nowner: a@acme.com\n", &standard());
    assert_eq!(spec.settings, None);
    assert_eq!(spec.roles, None);
    assert_eq!(spec.display_name, None);
    assert_eq!(spec.policy, Policy::default());
}

/// `owner` and `roles` after `members`: the streamed reading cannot check
/// members against them as it goes, so the file is read again whole; the
/// result is the same as in the canonical order.
#[test]
fn owner_and_roles_after_members_read_as_in_canonical_order() {
    let canonical = "\
version: 1
team: acme
owner: alice@acme.com
roles:
  release-manager:
    permissions: [apps.read]
members:
  - email: bob@acme.com
    roles: [release-manager]
  - email: carol@acme.com
    roles: [developer]
";
    let reordered = "\
version: 1
team: acme
members:
  - email: bob@acme.com
    roles: [release-manager]
  - email: carol@acme.com
    roles: [developer]
roles:
  release-manager:
    permissions: [apps.read]
owner: alice@acme.com
";
    let catalog = standard();
    let spec = parse_ok(canonical, &catalog);
    assert_eq!(spec, parse_ok(reordered, &catalog));
    assert!(
        spec.members[&email("bob@acme.com")]
            .roles
            .contains(&role("release-manager"))
    );

    // The owner listed as a member is found whichever comes first.
    let owner_last = "\
version: 1
team: acme
members:
  - email: Alice@acme.com
    roles: [developer]
  - email: bob@acme.com
    roles: [nope]
owner: alice@acme.com
";
    let d = parse_err(owner_last, &standard());
    assert_eq!(lines(&d), [4, 7], "{d}");
    assert!(d.0[0].message.contains("is the owner"), "{d}");
    assert!(d.0[1].message.contains("unknown role `nope`"), "{d}");
}

/// Errors found while `members` streams by and errors in the fields around
/// it come out together, in file order.
#[test]
fn errors_in_streamed_members_and_other_fields_come_out_in_order() {
    let source = "\
version: 2
team: acme
owner: alice@acme.com
members:
  - email: bob@acme.com
    roles: [admin, admin]
  - email: not-an-email
    roles: [viewer]
  - roles: [viewer]
policy:
  unmanaged: sometimes
";
    let d = parse_err(source, &standard());
    assert_eq!(lines(&d), [1, 6, 7, 9, 11], "{d}");
    assert!(d.0[1].message.contains("listed twice"), "{d}");
    assert!(d.0[3].message.contains("needs an `email`"), "{d}");
}

/// A key given twice in one mapping is an error at the second one, not a
/// silent choice of one value.
#[test]
fn a_key_given_twice_is_an_error_at_its_second_place() {
    let source = "\
version: 1
team: acme
owner: alice@acme.com
members:
  - email: bob@acme.com
    roles: [admin]
    email: carol@acme.com
";
    let d = parse_err(source, &standard());
    assert_eq!(d.0.len(), 1, "{d}");
    assert_eq!((d.0[0].loc.line, d.0[0].loc.col), (7, 5), "{d}");
    assert!(d.0[0].message.contains("duplicated key"), "{d}");
}

/// Aliases read as their anchors, placed where the alias is; nested
/// aliases that would expand to billions of nodes are refused at once.
#[test]
fn aliases_expand_within_a_budget() {
    let source = "\
version: 1
team: acme
owner: alice@acme.com
members:
  - email: bob@acme.com
    roles: &dev [developer]
  - email: carol@acme.com
    roles: *dev
  - email: dan@acme.com
    roles: *nope
";
    let d = parse_err(source, &standard());
    assert_eq!(d.0.len(), 1, "{d}");
    assert_eq!(d.0[0].loc.line, 10, "{d}");
    let fixed = source.replace("*nope", "*dev");
    let spec = parse_ok(&fixed, &standard());
    assert_eq!(spec.members.len(), 3);
    assert!(
        spec.members
            .values()
            .all(|m| m.roles.contains(&role("developer")))
    );

    let mut bomb = String::from(
        "version: 1\nteam: acme\nowner: alice@acme.com\nx0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n",
    );
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        let _ = writeln!(bomb, "x{i}: &a{i} [{refs}]");
    }
    let started = std::time::Instant::now();
    let d = parse_err(&bomb, &standard());
    assert_eq!(d.0.len(), 1, "{d}");
    assert!(d.0[0].message.contains("alias expansion"), "{d}");
    assert!(started.elapsed().as_secs() < 5, "refused quickly");
}

/// The catalog a file names is found without reading the file whole, and
/// only when it is a string in the root mapping.
#[test]
fn the_declared_catalog_is_read_from_the_root_mapping() {
    use teamform_core::spec::declared_catalog;
    assert_eq!(
        declared_catalog("version: 1\ncatalog: digitalocean\nmembers: []\n").as_deref(),
        Some("digitalocean")
    );
    assert_eq!(
        declared_catalog("members:\n  - catalog: x\n    roles: [a]\ncatalog: \"standard\"\n")
            .as_deref(),
        Some("standard")
    );
    assert_eq!(declared_catalog("catalog: 5\n"), None);
    assert_eq!(declared_catalog("catalog: [a]\n"), None);
    assert_eq!(declared_catalog("settings:\n  catalog: x\n"), None);
    assert_eq!(declared_catalog("- catalog: x\n"), None);
    assert_eq!(declared_catalog(""), None);
}

#[test]
fn scim_provisioning_is_read_written_back_and_checked() {
    use teamform_core::model::ScimProvisioning;
    let catalog = standard();
    let base = "version: 1\nteam: acme\nowner: a@b.co\nsettings:\n";
    let spec = parse_ok(&format!("{base}  scim_provisioning: members\n"), &catalog);
    let settings = spec.settings.clone().unwrap();
    assert_eq!(settings.scim_provisioning, ScimProvisioning::Members);
    let yaml = spec.to_yaml();
    assert!(yaml.contains("  scim_provisioning: members\n"), "{yaml}");
    assert_eq!(parse_ok(&yaml, &catalog), spec);

    // Absent: the default, and not written back (older files stay as they are).
    let spec = parse_ok(&format!("{base}  require_2fa: false\n"), &catalog);
    let settings = spec.settings.clone().unwrap();
    assert_eq!(settings.scim_provisioning, ScimProvisioning::Invitations);
    assert!(!spec.to_yaml().contains("scim_provisioning"));

    let d = parse_err(&format!("{base}  scim_provisioning: everyone\n"), &catalog);
    let text = d.to_string();
    assert!(
        text.contains("`scim_provisioning` must be `invitations` or `members`, found `everyone`"),
        "{text}"
    );
    assert_eq!(lines(&d), [5]);
}

/// The shortcut for files that never mention a catalog still finds a key
/// spelled with escapes (double quotes have them).
#[test]
fn a_catalog_key_spelled_with_escapes_is_found() {
    use teamform_core::spec::declared_catalog;
    assert_eq!(
        declared_catalog("\"c\\x61talog\": standard\nmembers: []\n").as_deref(),
        Some("standard")
    );
    assert_eq!(
        declared_catalog("\"cat\\u0061log\": digitalocean\n").as_deref(),
        Some("digitalocean")
    );
    assert_eq!(declared_catalog("team: acme\nmembers: []\n"), None);
}
