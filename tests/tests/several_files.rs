//! `teamform validate|plan|apply` over several team files and directories:
//! one combined summary, one JSON document, one Markdown comment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::path::Path;

use serde_json::Value;
use teamform_tests::cli::{Run, teamform};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).expect("write fixture");
    path.display().to_string()
}

fn team(name: &str, members: &[&str]) -> String {
    let mut out = format!("version: 1\nteam: {name}\nowner: alice@acme.com\nmembers:\n");
    for m in members {
        out.push_str(&format!("  - email: {m}\n    roles: [viewer]\n"));
    }
    out
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr))
}

#[test]
fn a_directory_of_team_files_is_validated_planned_and_applied_as_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(
        root,
        "teams/red.yaml",
        &team("red", &["a@acme.com", "b@acme.com"]),
    );
    write(root, "teams/blue/team.yml", &team("blue", &["c@acme.com"]));
    // Not team files: other YAML, hidden directories.
    write(root, "teams/catalog.yaml", "name: custom\nroles: []\n");
    write(root, "teams/.github/x.yaml", "team: hidden\n");
    let extra = write(root, "green.yaml", &team("green", &["d@acme.com"]));

    let v = teamform(
        root,
        &["validate", "teams", &extra, "--format", "json"],
        &[],
    );
    assert_eq!(v.code, 0, "{}", v.stderr);
    let doc = json(&v);
    assert_eq!(doc["ok"], true);
    let files: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["team"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        ["blue", "red", "green"],
        "sorted within a directory, then in order"
    );
    let text = teamform(root, &["validate", "teams", &extra], &[]);
    assert!(
        text.stdout
            .contains("Validated 3 file(s): 3 ok, 0 with errors."),
        "{}",
        text.stdout
    );

    let plan = teamform(
        root,
        &[
            "plan",
            "teams",
            &extra,
            "--format",
            "json",
            "--detailed-exitcode",
        ],
        &[],
    );
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    let doc = json(&plan);
    assert_eq!(doc["kind"], "teamform-plans");
    assert_eq!(doc["plans"].as_array().unwrap().len(), 3);
    // Each new team: created, plus one invitation per member.
    assert_eq!(doc["counts"]["add"], 3 + 4);
    assert_eq!(doc["plans"][1]["team"], "red");
    assert!(
        doc["plans"][1]["file"]
            .as_str()
            .unwrap()
            .ends_with("red.yaml")
    );

    let md = teamform(
        root,
        &["plan", "teams", &extra, "--format", "markdown"],
        &[],
    );
    assert_eq!(md.code, 0, "{}", md.stderr);
    assert!(
        md.stdout
            .starts_with("**Plan: 7 to add, 0 to change, 0 to remove.** (3 teams)\n"),
        "{}",
        md.stdout
    );
    assert_eq!(md.stdout.matches("### Team `").count(), 3);

    let text = teamform(root, &["plan", "teams", &extra], &[]);
    assert!(
        text.stdout.contains("Total for 3 file(s): 7 to add, 0 to change, 0 to remove. 3 team(s) with changes, 0 refused, 0 file(s) failed."),
        "{}",
        text.stdout
    );

    let apply = teamform(
        root,
        &[
            "apply",
            "teams",
            &extra,
            "--auto-approve",
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let doc = json(&apply);
    assert_eq!(doc["ok"], true);
    let applied: Vec<u64> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "applied", "{r}");
            r["applied"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(applied, [2, 3, 2]);

    let after = teamform(root, &["plan", "teams", &extra, "--detailed-exitcode"], &[]);
    assert_eq!(after.code, 0, "{}\n{}", after.stdout, after.stderr);
    let again = teamform(
        root,
        &[
            "apply",
            "teams",
            &extra,
            "--auto-approve",
            "--format",
            "json",
        ],
        &[],
    );
    let doc = json(&again);
    assert!(
        doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "no_changes")
    );
}

#[test]
fn one_bad_file_fails_the_run_but_every_file_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write(root, "teams/good.yaml", &team("good", &["a@acme.com"]));
    write(
        root,
        "teams/bad.yaml",
        "version: 1\nteam: bad\nowner: nobody\nmembers: nope\n",
    );

    let v = teamform(root, &["validate", "teams", "--format", "json"], &[]);
    assert_eq!(v.code, 1);
    let doc = json(&v);
    assert_eq!(doc["ok"], false);
    let bad = &doc["files"][0];
    assert_eq!(bad["ok"], false);
    assert!(bad["errors"].as_array().unwrap().len() >= 2, "{bad}");
    assert_eq!(bad["errors"][0]["line"], 3);
    assert_eq!(doc["files"][1]["ok"], true);

    let plan = teamform(root, &["plan", "teams", "--format", "json"], &[]);
    assert_eq!(plan.code, 1);
    let doc = json(&plan);
    assert_eq!(doc["plans"].as_array().unwrap().len(), 1);
    assert!(
        doc["failures"][0]["file"]
            .as_str()
            .unwrap()
            .ends_with("bad.yaml")
    );
    assert!(plan.stderr.contains("bad.yaml:3"), "{}", plan.stderr);

    let md = teamform(root, &["plan", "teams", "--format", "markdown"], &[]);
    assert_eq!(md.code, 1);
    assert!(
        md.stdout.contains("> **Plan failed** for "),
        "{}",
        md.stdout
    );
    assert!(
        md.stdout.contains("(1 team, 1 file that failed)"),
        "{}",
        md.stdout
    );

    let apply = teamform(
        root,
        &["apply", "teams", "--auto-approve", "--format", "json"],
        &[],
    );
    assert_eq!(apply.code, 1);
    let doc = json(&apply);
    let statuses: Vec<&str> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["error", "applied"]);

    let empty = tempfile::tempdir().unwrap();
    let none = teamform(root, &["plan", &empty.path().display().to_string()], &[]);
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("no team files in"), "{}", none.stderr);
}
