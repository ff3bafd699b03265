//! `teamform apply --source NOTE` as a process: the audit trail records
//! source `apply` and the note with every change, in-process and through
//! `teamform serve`, whose `--events-file` publishes the same changes as
//! CloudEvents lines.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use teamform_tests::cli::{Run, serve, teamform};

fn ok(run: &Run) {
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

fn write_team(dir: &Path, members: &[&str]) -> String {
    let mut text = String::from("version: 1\nteam: acme\nowner: alice@acme.com\nmembers:\n");
    for m in members {
        text.push_str(&format!("  - email: {m}\n    roles: [viewer]\n"));
    }
    let path = dir.join("team.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn records(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn apply_records_its_source_note_in_the_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_team(dir.path(), &["bob@acme.com"]);
    ok(&teamform(
        dir.path(),
        &[
            "apply",
            &file,
            "--auto-approve",
            "--source",
            "commit abc123",
        ],
        &[],
    ));
    let file = write_team(dir.path(), &["bob@acme.com", "carol@acme.com"]);
    ok(&teamform(
        dir.path(),
        &["apply", &file, "--auto-approve"],
        &[],
    ));
    let too_long = "x".repeat(201);
    let refused = teamform(
        dir.path(),
        &["apply", &file, "--auto-approve", "--source", &too_long],
        &[],
    );
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("--source"), "{}", refused.stderr);

    let audit = teamform(dir.path(), &["audit", "--team", "acme"], &[]);
    ok(&audit);
    let recs = records(&audit);
    assert_eq!(recs.len(), 3, "{}", audit.stdout);
    for r in &recs[..2] {
        assert_eq!(r["source"], "apply", "{r}");
        assert_eq!(r["source_note"], "commit abc123", "{r}");
        assert_eq!(r["actor_kind"], "local_owner", "{r}");
        assert!(r["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    assert_eq!(recs[2]["source"], "apply");
    assert!(recs[2].get("source_note").is_none(), "{}", recs[2]);
    assert_eq!(recs[2]["change"]["email"], "carol@acme.com");

    // The trail filtered by request: the first apply's two records share
    // its request id, and only they carry it.
    let first = recs[0]["request_id"].as_str().unwrap();
    assert_eq!(recs[1]["request_id"], first);
    let by_request = teamform(
        dir.path(),
        &["audit", "--team", "acme", "--request-id", first],
        &[],
    );
    ok(&by_request);
    assert_eq!(records(&by_request), recs[..2].to_vec());
    let from_api = teamform(
        dir.path(),
        &["audit", "--team", "acme", "--source", "api"],
        &[],
    );
    ok(&from_api);
    assert!(records(&from_api).is_empty(), "{}", from_api.stdout);
    let from_apply = teamform(
        dir.path(),
        &["audit", "--team", "acme", "--source", "apply"],
        &[],
    );
    assert_eq!(records(&from_apply).len(), 3, "{}", from_apply.stdout);
}

#[test]
fn serve_publishes_applied_changes_to_its_events_file() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    let served = serve(dir.path(), &["--events-file", events.to_str().unwrap()]);
    let file = write_team(dir.path(), &["bob@acme.com", "carol@acme.com"]);
    ok(&teamform(
        dir.path(),
        &[
            "apply",
            &file,
            "--auto-approve",
            "--source",
            "commit def456",
            "--endpoint",
            &served.url,
            "--token",
            &served.token,
        ],
        &[],
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let text = std::fs::read_to_string(&events).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= 3 || Instant::now() >= deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let kinds: Vec<&str> = lines.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["team.created", "team.member.invited", "team.member.invited"]
    );
    let ids: Vec<&str> = lines.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "acme/000000000001/0000",
            "acme/000000000001/0001",
            "acme/000000000001/0002"
        ]
    );
    for e in &lines {
        assert_eq!(e["specversion"], "1.0");
        assert_eq!(e["data"]["source"], "apply");
        assert_eq!(e["data"]["source_note"], "commit def456");
        assert_eq!(e["data"]["actor_kind"], "local_owner");
    }
    drop(served);
}
