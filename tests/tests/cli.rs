//! The `teamform` binary run as a process: plan, apply, validate, catalog,
//! saved plans, the removal limit, and `serve` giving the same plan as the
//! in-process run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::path::Path;

use serde_json::Value;
use teamform_tests::cli::{Run, root, serve, teamform};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write fixture");
    path.display().to_string()
}

fn team_yaml(members: &[(&str, &str)]) -> String {
    let mut out = String::from("version: 1\nteam: acme\nowner: alice@acme.com\nmembers:\n");
    for (email, role) in members {
        out.push_str(&format!("  - email: {email}\n    roles: [{role}]\n"));
    }
    out
}

const TEN: &[(&str, &str)] = &[
    ("m0@acme.com", "viewer"),
    ("m1@acme.com", "viewer"),
    ("m2@acme.com", "developer"),
    ("m3@acme.com", "developer"),
    ("m4@acme.com", "admin"),
    ("m5@acme.com", "billing"),
    ("m6@acme.com", "viewer"),
    ("m7@acme.com", "modifier"),
    ("m8@acme.com", "viewer"),
];

fn ok(run: &Run) {
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

/// Lines of a text plan that describe changes.
fn change_lines(plan: &str) -> Vec<String> {
    plan.lines()
        .map(str::trim)
        .filter(|l| ["+ ", "~ ", "- ", "! "].iter().any(|p| l.starts_with(p)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn example_applies_then_plans_clean_and_one_edit_is_one_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = root().join("examples/acme/team.yaml");
    let text = std::fs::read_to_string(&example).expect("example");
    let file = write(dir.path(), "team.yaml", &text);

    let plan = teamform(dir.path(), &["plan", &file, "--detailed-exitcode"], &[]);
    assert_eq!(plan.code, 2, "changes present: {}", plan.stderr);
    assert!(
        plan.stdout.contains("+ invite bob@acme.com as admin"),
        "{}",
        plan.stdout
    );
    ok(&teamform(
        dir.path(),
        &["apply", &file, "--auto-approve"],
        &[],
    ));
    let again = teamform(dir.path(), &["plan", &file, "--detailed-exitcode"], &[]);
    ok(&again);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);

    let edited = text.replace("roles: [modifier]", "roles: [developer]");
    assert_ne!(edited, text);
    write(dir.path(), "team.yaml", &edited);
    let one = teamform(dir.path(), &["plan", &file, "--detailed-exitcode"], &[]);
    assert_eq!(one.code, 2);
    assert_eq!(
        change_lines(&one.stdout),
        ["~ change invitation roles of frank@acme.com: modifier -> developer"],
        "{}",
        one.stdout
    );
}

#[test]
fn validate_reports_every_mistake_with_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "bad.yaml",
        "version: 1\nteam: Acme Corp\nowner: alice@acme.com\ncolour: blue\nmembers:\n  - email: bob@acme.com\n    roles: [wizard]\n  - email: BOB@acme.com\n    roles: [viewer]\n  - email: alice@acme.com\n    roles: [admin]\n  - email: not-an-email\n    roles: [viewer]\n",
    );
    let run = teamform(dir.path(), &["validate", &file], &[]);
    assert_eq!(run.code, 1);
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with(file.as_str()))
        .filter(|l| !l.ends_with("error(s)"))
        .collect();
    assert_eq!(errors.len(), 6, "{}", run.stderr);
    for (line, col, what) in [
        (2, 7, "team id"),
        (4, 1, "unknown field `colour`"),
        (7, 13, "unknown role `wizard`"),
        (8, 12, "duplicate member BOB@acme.com"),
        (10, 12, "is the owner"),
        (12, 12, "not a valid email"),
    ] {
        let place = format!("{file}:{line}:{col}: ");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&place) && e.contains(what)),
            "expected `{what}` at {place}\n{}",
            run.stderr
        );
    }
}

#[test]
fn no_input_makes_any_command_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inputs: &[&[u8]] = &[
        b"",
        b"\xff\xfe\x00binary",
        b"[[[[",
        b":",
        b"- - -",
        b"version: 1\nteam: [a]\nowner: {x: 1}\nmembers: 7\n",
        b"\t- x",
    ];
    for (i, input) in inputs.iter().enumerate() {
        let path = dir.path().join(format!("in{i}.yaml"));
        std::fs::write(&path, input).expect("write");
        let p = path.display().to_string();
        for args in [
            vec!["validate", &p],
            vec!["plan", &p],
            vec!["apply", "--auto-approve", &p],
        ] {
            let run = teamform(dir.path(), &args, &[]);
            assert_eq!(run.code, 1, "{args:?} on {input:?}: {}", run.stderr);
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        }
    }
    let run = teamform(dir.path(), &["plan", "does-not-exist.yaml"], &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("cannot read does-not-exist.yaml"),
        "{}",
        run.stderr
    );
    let run = teamform(dir.path(), &["export", "--team", "NOT VALID"], &[]);
    assert_eq!(run.code, 1);
    let run = teamform(
        dir.path(),
        &["plan", "x.yaml", "--max-removals", "lots"],
        &[],
    );
    assert_eq!(
        run.code, 1,
        "usage errors are errors, never \"changes present\""
    );
    assert!(run.stderr.contains("removal limit"), "{}", run.stderr);
}

/// Parses the seed table rows of the Ably page and compares them with the
/// binary's catalog JSON, cell by cell.
#[test]
fn ably_catalog_matches_the_seed_table_cell_by_cell() {
    let seed =
        std::fs::read_to_string(root().join("core/tests/fixtures/ably_seed.txt")).expect("seed");
    let run = teamform(
        Path::new("."),
        &["catalog", "--preset", "ably", "--format", "json"],
        &[],
    );
    ok(&run);
    let json: Value = serde_json::from_str(&run.stdout).expect("catalog json");
    let perms = json["permissions"].as_array().expect("permissions");
    let roles = ["developer", "billing", "admin", "owner"];
    let mut compared = 0;
    for line in seed.lines() {
        let cells: String = line
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if cells.chars().count() != 4 || !cells.chars().all(|c| c == '✓' || c == '-') {
            continue;
        }
        let label = line.trim_end_matches(['✓', '-']);
        if label.is_empty() || label == "Permission" {
            continue;
        }
        let perm = perms
            .iter()
            .find(|p| p["label"] == label)
            .unwrap_or_else(|| panic!("no permission labelled {label:?}"));
        for (role, cell) in roles.iter().zip(cells.chars()) {
            assert_eq!(perm["roles"][role], cell == '✓', "{label} / {role}");
            compared += 1;
        }
    }
    assert_eq!(compared, 18 * 4);
}

#[test]
fn removing_thirty_percent_is_refused_until_the_limit_is_raised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "team.yaml", &team_yaml(TEN));
    ok(&teamform(
        dir.path(),
        &["apply", &file, "--auto-approve"],
        &[],
    ));
    // 10 members (owner included); remove 3 = 30 %.
    write(dir.path(), "team.yaml", &team_yaml(&TEN[3..]));
    let plan = teamform(dir.path(), &["plan", &file], &[]);
    assert_eq!(plan.code, 1, "{}", plan.stdout);
    // Markdown goes to a comment; the refusal is said on stderr as well.
    let md = teamform(dir.path(), &["plan", &file, "--format", "markdown"], &[]);
    assert_eq!(md.code, 1);
    assert!(
        md.stdout.contains("> **Refused** (team `acme`)"),
        "{}",
        md.stdout
    );
    assert!(md.stderr.contains("removal limit is 2"), "{}", md.stderr);
    let apply = teamform(dir.path(), &["apply", &file, "--auto-approve"], &[]);
    assert_eq!(apply.code, 1);
    assert!(
        apply.stderr.contains("removal limit is 2"),
        "{}",
        apply.stderr
    );
    assert!(
        apply.stderr.contains("--max-removals") && apply.stderr.contains("max_removals"),
        "{}",
        apply.stderr
    );
    let still = teamform(
        dir.path(),
        &[
            "plan",
            &file,
            "--detailed-exitcode",
            "--max-removals",
            "30%",
        ],
        &[],
    );
    assert_eq!(still.code, 2, "nothing was removed by the refused apply");
    ok(&teamform(
        dir.path(),
        &["apply", &file, "--auto-approve", "--max-removals", "30%"],
        &[],
    ));
    ok(&teamform(
        dir.path(),
        &["plan", &file, "--detailed-exitcode"],
        &[],
    ));
}

#[test]
fn a_saved_plan_is_refused_once_the_team_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "team.yaml", &team_yaml(&TEN[..3]));
    ok(&teamform(
        dir.path(),
        &["apply", &file, "--auto-approve"],
        &[],
    ));
    write(dir.path(), "team.yaml", &team_yaml(&TEN[..4]));
    let saved = dir.path().join("plan.json").display().to_string();
    ok(&teamform(
        dir.path(),
        &["plan", &file, "--out", &saved],
        &[],
    ));
    // Someone else changes the team before the saved plan is applied.
    let other = write(dir.path(), "other.yaml", &team_yaml(&TEN[..5]));
    ok(&teamform(
        dir.path(),
        &["apply", &other, "--auto-approve"],
        &[],
    ));
    let stale = teamform(dir.path(), &["apply", &saved, "--auto-approve"], &[]);
    assert_eq!(stale.code, 1);
    assert!(stale.stderr.contains("stale"), "{}", stale.stderr);

    // A fresh saved plan applies.
    ok(&teamform(
        dir.path(),
        &["plan", &file, "--out", &saved, "--max-removals", "1"],
        &[],
    ));
    ok(&teamform(
        dir.path(),
        &["apply", &saved, "--auto-approve"],
        &[],
    ));
}

#[test]
fn apply_refuses_to_prompt_without_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "team.yaml", &team_yaml(&TEN[..2]));
    let run = teamform(dir.path(), &["apply", &file], &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--auto-approve"), "{}", run.stderr);
    let after = teamform(dir.path(), &["plan", &file, "--detailed-exitcode"], &[]);
    assert_eq!(after.code, 2, "nothing was applied");
}

#[test]
fn markdown_and_json_plans_carry_summary_diff_and_format_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "team.yaml", &team_yaml(&TEN[..2]));
    ok(&teamform(
        dir.path(),
        &["apply", &file, "--auto-approve"],
        &[],
    ));
    write(
        dir.path(),
        "team.yaml",
        &team_yaml(&[("m0@acme.com", "admin"), ("m1@acme.com", "viewer")]),
    );
    let md = teamform(dir.path(), &["plan", &file, "--format", "markdown"], &[]);
    ok(&md);
    assert!(
        md.stdout
            .starts_with("**Plan: 0 to add, 1 to change, 0 to remove.**\n"),
        "{}",
        md.stdout
    );
    // Under a small budget the comment is cut; the full one is saved.
    let full = dir.path().join("plan.md");
    let cut = teamform(
        dir.path(),
        &[
            "plan",
            &file,
            "--format",
            "markdown",
            "--markdown-budget",
            "400",
            "--markdown-out",
            &full.display().to_string(),
        ],
        &[],
    );
    ok(&cut);
    assert!(
        cut.stdout.trim_end().chars().count() <= 400,
        "{}",
        cut.stdout
    );
    assert!(cut.stdout.contains("lines of YAML diff"), "{}", cut.stdout);
    let saved = std::fs::read_to_string(&full).expect("--markdown-out file");
    assert_eq!(saved, md.stdout, "the saved plan is the whole comment");
    assert!(
        md.stdout.contains("<details>")
            && md.stdout.contains("-    roles: [viewer]")
            && md.stdout.contains("+    roles: [admin]"),
        "{}",
        md.stdout
    );
    let json = teamform(dir.path(), &["plan", &file, "--format", "json"], &[]);
    ok(&json);
    let v: Value = serde_json::from_str(&json.stdout).expect("json plan");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["changes"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["changes"][0]["op"], "change_invitation_roles");
    assert_eq!(v["counts"]["change"], 1);
    let plain = teamform(dir.path(), &["plan", &file], &[("NO_COLOR", "1")]);
    assert!(!plain.stdout.contains('\u{1b}'), "no color off a terminal");
}

#[test]
fn serve_gives_the_same_plan_as_the_in_process_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "team.yaml", &team_yaml(&TEN[..4]));
    ok(&teamform(
        dir.path(),
        &["apply", &file, "--auto-approve"],
        &[],
    ));
    write(
        dir.path(),
        "team.yaml",
        &team_yaml(&[
            ("m0@acme.com", "admin"),
            ("m1@acme.com", "viewer"),
            ("new@acme.com", "viewer"),
            ("m3@acme.com", "developer"),
        ]),
    );
    let local = teamform(dir.path(), &["plan", &file, "--format", "json"], &[]);
    ok(&local);

    let served = serve(dir.path(), &[]);
    let remote = teamform(
        dir.path(),
        &[
            "plan",
            &file,
            "--format",
            "json",
            "--endpoint",
            &served.url,
            "--token",
            &served.token,
        ],
        &[],
    );
    ok(&remote);
    let strip = |s: &str| {
        let mut v: Value = serde_json::from_str(s).expect("json");
        v["generated_at"] = Value::Null;
        v
    };
    assert_eq!(strip(&local.stdout), strip(&remote.stdout));
    let without_token = teamform(dir.path(), &["plan", &file, "--endpoint", &served.url], &[]);
    assert_eq!(without_token.code, 1);
    assert!(
        without_token.stderr.contains("unauthenticated"),
        "{}",
        without_token.stderr
    );
    ok(&teamform(
        dir.path(),
        &[
            "apply",
            &file,
            "--auto-approve",
            "--endpoint",
            &served.url,
            "--token",
            &served.token,
        ],
        &[],
    ));
    ok(&teamform(
        dir.path(),
        &["plan", &file, "--detailed-exitcode"],
        &[],
    ));
}

/// The DigitalOcean table: six roles by three areas, each cell an access
/// level expressed as the permissions the role holds in that area.
#[test]
fn digitalocean_catalog_matches_the_seed_table_cell_by_cell() {
    let seed = std::fs::read_to_string(root().join("core/tests/fixtures/digitalocean_seed.txt"))
        .expect("seed");
    let run = teamform(
        Path::new("."),
        &["catalog", "--preset", "digitalocean", "--format", "json"],
        &[],
    );
    ok(&run);
    let json: Value = serde_json::from_str(&run.stdout).expect("catalog json");
    let held = |role: &str, perm: &str| {
        json["permissions"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["id"] == perm))
            .map(|p| p["roles"][role] == true)
            .unwrap_or(false)
    };
    let areas: [&[&str]; 3] = [
        &["resources.read", "resources.write", "resources.delete"],
        &["billing.summary.read", "billing.read", "billing.manage"],
        &["team.settings.read", "team.settings.manage"],
    ];
    let level = |area: usize, cell: &str| -> Vec<&str> {
        let all = areas[area].to_vec();
        if cell.contains("Full access except delete") {
            vec!["resources.read", "resources.write"]
        } else if cell.contains("Full access") {
            all
        } else if cell.contains("Limited read only") {
            vec!["billing.summary.read"]
        } else if cell.contains("Read only") {
            vec![all[0]]
        } else {
            assert!(cell.contains("No access"), "unknown level {cell:?}");
            vec![]
        }
    };
    let mut compared = 0;
    for line in seed.lines() {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        if cols.len() < 4 || cols[0] == "Role" || cols[0].starts_with("---") {
            continue;
        }
        let role = cols[0].to_lowercase().replace(' ', "_");
        for area in 0..3 {
            let want = level(area, cols[area + 1]);
            let have: Vec<&str> = areas[area]
                .iter()
                .copied()
                .filter(|p| held(&role, p))
                .collect();
            assert_eq!(have, want, "{role} / area {area} / {}", cols[area + 1]);
            compared += 1;
        }
    }
    assert_eq!(compared, 6 * 3);
}

/// On a terminal (a pseudo-terminal from util-linux `script`), apply asks and
/// applies only on "yes".
#[test]
fn apply_asks_on_a_terminal_and_applies_only_on_yes() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "team.yaml", &team_yaml(&TEN[..2]));
    let on_terminal = |answer: &str| {
        let line = format!("{} apply {file}", teamform_tests::cli::bin().display());
        let mut child = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .current_dir(dir.path())
            .env_remove("TEAMFORM_ENDPOINT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("util-linux script runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(answer.as_bytes())
            .expect("answer");
        let out = child.wait_with_output().expect("finishes");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = on_terminal("no\n");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Only 'yes' will be accepted"), "{out}");
    assert!(out.contains("Apply cancelled"), "{out}");
    assert_eq!(
        teamform(dir.path(), &["plan", &file, "--detailed-exitcode"], &[]).code,
        2,
        "nothing applied"
    );
    let (code, out) = on_terminal("yes\n");
    assert_eq!(code, 0, "{out}");
    ok(&teamform(
        dir.path(),
        &["plan", &file, "--detailed-exitcode"],
        &[],
    ));
}

/// The service refuses part of a plan (more invitations than seats): apply
/// reports every change that failed, not only the first, and applies the rest.
#[test]
fn apply_reports_every_failed_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = team_yaml(&TEN[..5]);
    text.push_str("settings:\n  seat_limit: 3\n");
    let file = write(dir.path(), "team.yaml", &text);
    let run = teamform(dir.path(), &["apply", &file, "--auto-approve"], &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let failed: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("failed: invite"))
        .collect();
    assert_eq!(
        failed.len(),
        3,
        "owner plus 2 invitations fit 3 seats: {}",
        run.stderr
    );
    assert!(
        failed.iter().all(|l| l.contains("seat_limit_reached")),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("3 failed"), "{}", run.stdout);
    let after = teamform(dir.path(), &["plan", &file], &[]);
    assert_eq!(
        change_lines(&after.stdout).len(),
        3,
        "only the refused invitations remain: {}",
        after.stdout
    );
}

/// The recipients of the `.eml` files in `outbox`, sorted.
fn recipients(outbox: &Path) -> Vec<String> {
    let mut to: Vec<String> = std::fs::read_dir(outbox)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .filter_map(|p| {
                    let text = std::fs::read_to_string(&p).expect("eml");
                    let line = text.lines().find(|l| l.starts_with("To: "))?;
                    Some(line.trim_start_matches("To: ").to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    to.sort();
    to
}

#[tokio::test(flavor = "multi_thread")]
async fn in_process_runs_mail_each_invitation_once_and_write_what_a_killed_run_left() {
    use std::sync::Arc;

    use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
    use teamform_functions::auth::Principal;
    use teamform_functions::clock::SystemClock;
    use teamform_functions::service::{BatchOptions, Service};
    use teamform_functions::store::Store;
    use teamform_functions::store::sqlite::SqliteStore;

    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = dir.path().join(".teamform/outbox");
    let file = write(dir.path(), "team.yaml", &team_yaml(TEN));
    ok(&teamform(
        dir.path(),
        &["apply", &file, "--auto-approve"],
        &[],
    ));
    let mut want: Vec<String> = TEN.iter().map(|(e, _)| (*e).to_owned()).collect();
    want.sort();
    assert_eq!(recipients(&outbox), want, "one email per invitation");
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join(".teamform/state.db")).expect("store"));
    assert!(store.scan("OUTBOX#").await.expect("scan").is_empty());

    // A run killed after committing an invitation, before writing its email.
    let svc = Service::new(
        store.clone(),
        Arc::new(Catalog::standard()),
        Arc::new(SystemClock),
        "http://localhost".into(),
    );
    let team = TeamId::parse("acme").expect("id");
    let version = svc.load(&team).await.expect("load").expect("team").version;
    let late = Change::Invite {
        email: Email::parse("late@acme.com").expect("email"),
        name: None,
        roles: [RoleName::parse("viewer").expect("role")].into(),
    };
    svc.execute(
        &team,
        &Principal::LocalOwner,
        &[late],
        Some(version),
        &BatchOptions::default(),
    )
    .await
    .expect("committed");
    assert_eq!(store.scan("OUTBOX#").await.expect("scan").len(), 1);
    assert!(!recipients(&outbox).contains(&"late@acme.com".to_owned()));

    ok(&teamform(dir.path(), &["export", "--team", "acme"], &[]));
    want.push("late@acme.com".into());
    want.sort();
    assert_eq!(recipients(&outbox), want, "the next run wrote it, once");
    assert!(store.scan("OUTBOX#").await.expect("scan").is_empty());
}

#[test]
fn audit_prints_the_filtered_trail_as_json_lines_and_csv() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "team.yaml", &team_yaml(TEN));
    ok(&teamform(
        dir.path(),
        &["apply", &file, "--auto-approve"],
        &[],
    ));
    let all = teamform(dir.path(), &["audit", "--team", "acme"], &[]);
    ok(&all);
    let records: Vec<Value> = all
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        records.len(),
        1 + TEN.len(),
        "the team's creation and one invitation each"
    );
    let one = teamform(
        dir.path(),
        &[
            "audit",
            "--team",
            "acme",
            "--subject",
            "M4@acme.com",
            "--format",
            "csv",
        ],
        &[],
    );
    ok(&one);
    let mut reader = csv::Reader::from_reader(one.stdout.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{}", one.stdout);
    assert_eq!((&rows[0][4], &rows[0][5]), ("invite", "m4@acme.com"));
    let bad = teamform(
        dir.path(),
        &["audit", "--team", "acme", "--since", "yesterday"],
        &[],
    );
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("since"), "{}", bad.stderr);
}

/// `apply` off a terminal (a CI log): a line per batch on stderr, then the
/// per-kind summary on stdout; `--quiet` drops the batch lines only.
#[test]
fn apply_prints_a_line_per_batch_and_a_summary_by_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let people: Vec<(String, &str)> = (0..501)
        .map(|i| (format!("p{i:03}@acme.com"), "viewer"))
        .collect();
    let refs: Vec<(&str, &str)> = people.iter().map(|(e, r)| (e.as_str(), *r)).collect();
    let file = write(dir.path(), "team.yaml", &team_yaml(&refs));
    let run = teamform(dir.path(), &["apply", &file, "--auto-approve"], &[]);
    ok(&run);
    // The team itself plus 501 invitations: two batches of at most 500.
    let batches: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("batch "))
        .collect();
    assert_eq!(
        batches,
        [
            "batch 1/2: 500 change(s) applied (500/502 done)",
            "batch 2/2: 2 change(s) applied (502/502 done)",
        ],
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l == "Applied: 1 team created, 501 invited"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("batch "), "progress stays off stdout");

    // Three role changes and one removal, one batch; quiet drops the line.
    let mut edited = refs[1..].to_vec();
    for person in edited.iter_mut().take(3) {
        person.1 = "developer";
    }
    write(dir.path(), "team.yaml", &team_yaml(&edited));
    let quiet = teamform(
        dir.path(),
        &["apply", &file, "--auto-approve", "--quiet"],
        &[],
    );
    ok(&quiet);
    assert!(!quiet.stderr.contains("batch "), "{}", quiet.stderr);
    assert!(
        quiet
            .stdout
            .lines()
            .any(|l| l == "Applied: 3 roles changed, 1 invitation(s) revoked"),
        "{}",
        quiet.stdout
    );
    edited.truncate(400);
    let text = team_yaml(&edited) + "policy:\n  max_removals: 30%\n";
    write(dir.path(), "team.yaml", &text);
    let run = teamform(dir.path(), &["apply", &file, "--auto-approve"], &[]);
    ok(&run);
    let batches: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("batch "))
        .collect();
    assert_eq!(
        batches,
        ["batch 1/1: 100 change(s) applied (100/100 done)"],
        "{}",
        run.stderr
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l == "Applied: 100 invitation(s) revoked"),
        "{}",
        run.stdout
    );
}

/// On a terminal the progress is a bar, not batch lines, and the summary
/// still follows.
#[test]
fn apply_on_a_terminal_shows_no_batch_lines() {
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "team.yaml", &team_yaml(&TEN[..3]));
    let line = format!(
        "{} apply --auto-approve {file}",
        teamform_tests::cli::bin().display()
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .current_dir(dir.path())
        .env_remove("TEAMFORM_ENDPOINT")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux script runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // The bar was drawn (and its final state is 4 of 4); no batch lines.
    assert!(text.contains("4/4 changes"), "{text}");
    assert!(!text.contains("change(s) applied ("), "{text}");
    assert!(
        text.contains("Applied: 1 team created, 3 invited"),
        "{text}"
    );
}
