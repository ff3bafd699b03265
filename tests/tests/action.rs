//! The GitHub Action's script (scripts/action.sh, what action.yml runs)
//! against `teamform serve`, with a fake `gh` that keeps comments and issues
//! in files: the plan comment is posted once, then edited in place through
//! its hidden marker; a failed plan says so with teamform's error output;
//! drift opens an issue once and updates it after.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::path::{Path, PathBuf};
use std::process::Command;

use teamform_tests::cli::{bin, root, serve};

/// Records each call (arguments, then the body file it was given) in
/// calls.log; keeps comments and issues as files named by their id; answers
/// the listing calls with the ids whose body holds the marker.
const FAKE_GH: &str = r#"#!/bin/sh
set -eu
d="$FAKE_GH_DIR"
mkdir -p "$d/comments" "$d/issues"
echo "gh $*" >> "$d/calls.log"
method=GET; path=; body=
while [ $# -gt 0 ]; do
    case "$1" in
        api | --paginate) ;;
        --method) method=$2; shift ;;
        -F) case "$2" in body=@*) body=${2#body=@} ;; esac; shift ;;
        -f | --jq) shift ;;
        *) path=$1 ;;
    esac
    shift
done
if [ -n "$body" ]; then
    echo "--- body" >> "$d/calls.log"
    cat "$body" >> "$d/calls.log"
    echo "--- end" >> "$d/calls.log"
fi
if [ "$method" = GET ]; then
    case "$path" in
        */comments) dir=comments; marker='<!-- teamform-plan -->' ;;
        *) dir=issues; marker='<!-- teamform-drift -->' ;;
    esac
    for f in "$d/$dir"/*; do
        if [ -f "$f" ] && grep -qF "$marker" "$f"; then basename "$f"; fi
    done
    exit 0
fi
count() { ls "$1" | wc -l | tr -d ' '; }
case "$method $path" in
    "PATCH "*/issues/comments/*) cp "$body" "$d/comments/${path##*/}" ;;
    "POST "*/comments) cp "$body" "$d/comments/$((1000 + $(count "$d/comments")))" ;;
    "POST "*/issues) cp "$body" "$d/issues/$((1 + $(count "$d/issues")))" ;;
    "PATCH "*/issues/*) cp "$body" "$d/issues/${path##*/}" ;;
    *) echo "fake gh: unexpected call $method $path" >&2; exit 1 ;;
esac
"#;

struct Harness {
    dir: tempfile::TempDir,
    url: String,
    token: String,
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Harness {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    fn files(&self, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(sub))
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn calls(&self, what: &str) -> usize {
        self.read("gh/calls.log")
            .lines()
            .filter(|l| l.starts_with("gh ") && l.contains(what))
            .count()
    }

    fn action(&self, command: &str, files: &str) -> Ran {
        let out = Command::new("bash")
            .arg(root().join("scripts/action.sh"))
            .arg(command)
            .current_dir(self.dir.path())
            .env("TEAMFORM", bin())
            .env("GH", self.path("fake-gh"))
            .env("FAKE_GH_DIR", self.path("gh"))
            .env("INPUT_FILES", files)
            .env("PR_NUMBER", "7")
            .env("GITHUB_REPOSITORY", "acme/teams")
            .env("GITHUB_SERVER_URL", "https://github.example")
            .env("GITHUB_RUN_ID", "42")
            .env("GITHUB_STEP_SUMMARY", self.path("summary.md"))
            .env("GITHUB_OUTPUT", self.path("output.txt"))
            .env("TEAMFORM_OUT_DIR", self.path("out"))
            .env("TEAMFORM_ENDPOINT", &self.url)
            .env("TEAMFORM_TOKEN", &self.token)
            .env_remove("TEAMFORM_STATE")
            .output()
            .unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn team(members: &[&str]) -> String {
    let mut out = String::from("version: 1\nteam: acme\nowner: alice@acme.com\nmembers:\n");
    for m in members {
        out.push_str(&format!("  - email: {m}\n    roles: [viewer]\n"));
    }
    out
}

fn harness(dir: tempfile::TempDir, served: &teamform_tests::cli::Served) -> Harness {
    let h = Harness {
        dir,
        url: served.url.clone(),
        token: served.token.clone(),
    };
    h.write("fake-gh", FAKE_GH);
    let status = Command::new("chmod")
        .arg("+x")
        .arg(h.path("fake-gh"))
        .status()
        .unwrap();
    assert!(status.success());
    h
}

fn assert_ran(ran: &Ran, code: i32) {
    assert_eq!(
        ran.code, code,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
}

#[test]
fn the_plan_comment_is_posted_once_then_edited_in_place_errors_included() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &[]);
    assert!(served.token.starts_with("tfp_"), "{}", served.output());
    let h = harness(dir, &served);

    h.write(
        "teams/acme.yaml",
        &team(&["bob@acme.com", "carol@acme.com"]),
    );
    let first = h.action("plan", "teams");
    assert_ran(&first, 0);
    assert_eq!(
        h.calls("--method POST repos/acme/teams/issues/7/comments"),
        1
    );
    assert_eq!(h.files("gh/comments"), ["1000"]);
    let comment = h.read("gh/comments/1000");
    assert!(
        comment
            .starts_with("<!-- teamform-plan -->\n**Plan: 3 to add, 0 to change, 0 to remove.**\n"),
        "{comment}"
    );
    assert!(
        comment.contains("- `+` invite bob@acme.com as viewer"),
        "{comment}"
    );
    assert!(
        h.read("output.txt")
            .contains("exitcode=2\nhas-changes=true\n")
    );
    assert!(h.read("summary.md").contains("**Plan: 3 to add"));
    assert!(h.path("out/plan-full.md").exists(), "the full plan is kept");

    // A new push: the same comment is edited, no second one is posted.
    h.write(
        "teams/acme.yaml",
        &team(&["bob@acme.com", "carol@acme.com", "dan@acme.com"]),
    );
    let second = h.action("plan", "teams");
    assert_ran(&second, 0);
    assert_eq!(h.calls("--method POST"), 1);
    assert_eq!(
        h.calls("--method PATCH repos/acme/teams/issues/comments/1000"),
        1
    );
    assert_eq!(h.files("gh/comments"), ["1000"]);
    assert!(
        h.read("gh/comments/1000").contains("**Plan: 4 to add"),
        "{}",
        h.read("gh/comments/1000")
    );

    // A broken file: the plan fails, and the comment says so with the error.
    h.write(
        "teams/acme.yaml",
        "version: 1\nteam: acme\nowner: alice@acme.com\nmembers: nope\n",
    );
    let broken = h.action("plan", "teams");
    assert_ran(&broken, 1);
    assert_eq!(h.calls("--method POST"), 1);
    assert_eq!(h.files("gh/comments"), ["1000"]);
    let comment = h.read("gh/comments/1000");
    assert!(
        comment.starts_with("<!-- teamform-plan -->\n### teamform plan failed\n"),
        "{comment}"
    );
    assert!(
        comment.contains("teams/acme.yaml:4:10: `members` must be a list"),
        "{comment}"
    );
    assert!(
        h.read("output.txt")
            .ends_with("exitcode=1\nhas-changes=false\n")
    );
}

#[test]
fn apply_then_drift_opens_one_issue_and_updates_it() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &[]);
    let h = harness(dir, &served);
    h.write("team.yaml", &team(&["bob@acme.com"]));

    let applied = h.action("apply", "team.yaml");
    assert_ran(&applied, 0);
    assert!(
        applied.stdout.contains("Apply complete"),
        "{}",
        applied.stdout
    );
    assert!(h.read("summary.md").contains("### teamform apply\n"));

    let clean = h.action("drift", "team.yaml");
    assert_ran(&clean, 0);
    assert!(h.files("gh/issues").is_empty());

    // The file moves on without an apply: live state no longer matches.
    h.write("team.yaml", &team(&["bob@acme.com", "carol@acme.com"]));
    let drifted = h.action("drift", "team.yaml");
    assert_ran(&drifted, 1);
    assert_eq!(h.files("gh/issues"), ["1"]);
    let issue = h.read("gh/issues/1");
    assert!(issue.starts_with("<!-- teamform-drift -->\n"), "{issue}");
    assert!(issue.contains("invite carol@acme.com"), "{issue}");
    assert!(
        issue.contains("([drift check](https://github.example/acme/teams/actions/runs/42))"),
        "{issue}"
    );

    let again = h.action("drift", "team.yaml");
    assert_ran(&again, 1);
    assert_eq!(h.files("gh/issues"), ["1"], "the open issue is updated");
    assert_eq!(h.calls("--method PATCH repos/acme/teams/issues/1"), 1);
    assert_eq!(h.calls("--method POST repos/acme/teams/issues"), 1);
}

#[test]
fn install_unpacks_a_prebuilt_download() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::copy(bin(), pack.join("teamform")).unwrap();
    let tarball = dir.path().join("teamform-0.1.0.tar.gz");
    let status = Command::new("tar")
        .args(["-czf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&pack)
        .arg("teamform")
        .status()
        .unwrap();
    assert!(status.success());
    let url = format!(
        "file://{}/teamform-{{version}}.tar.gz",
        dir.path().display()
    );
    let out = Command::new("bash")
        .arg(root().join("scripts/action.sh"))
        .arg("install")
        .env("INPUT_VERSION", "0.1.0")
        .env("INPUT_DOWNLOAD_URL", &url)
        .env("TEAMFORM_OUT_DIR", dir.path().join("out"))
        .env("GITHUB_PATH", dir.path().join("path.txt"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("teamform 0.1.0"), "{stdout}");
    let path = std::fs::read_to_string(dir.path().join("path.txt")).unwrap();
    assert_eq!(Path::new(path.trim()), dir.path().join("out/install/bin"));
}
