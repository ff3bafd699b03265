//! The CLI's own surface: help on every flag, shell completions, and
//! `teamform show` rendering a saved plan as `plan` did.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::path::Path;
use std::process::{Command, Stdio};

use clap::CommandFactory;
use teamform::cli::Cli;

fn teamform(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_teamform"))
        .args(args)
        .current_dir(dir)
        .env_remove("TEAMFORM_ENDPOINT")
        .env_remove("TEAMFORM_TOKEN")
        .env_remove("TEAMFORM_STATE")
        .env_remove("TEAMFORM_CATALOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn every_flag_and_argument_says_what_it_does() {
    let cli = Cli::command();
    let mut missing = Vec::new();
    let mut commands = vec![cli.clone()];
    commands.extend(cli.get_subcommands().cloned());
    for command in &commands {
        assert!(
            command.get_name() == "teamform" || command.get_about().is_some(),
            "{} has no description",
            command.get_name()
        );
        for arg in command.get_arguments() {
            if matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{} {}", command.get_name(), arg.get_id()));
            }
        }
    }
    assert!(missing.is_empty(), "without help: {missing:?}");
    let help = cli
        .find_subcommand("plan")
        .unwrap()
        .clone()
        .render_help()
        .to_string();
    assert!(help.contains("--max-removals <MAX_REMOVALS>"), "{help}");
    assert!(
        help.contains("Allow more removals than the default 25%"),
        "{help}"
    );
}

#[test]
fn completions_cover_the_commands_and_their_flags() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = teamform(dir.path(), &["completions", shell]);
        assert_eq!(code, 0, "{err}");
        for word in [
            "plan",
            "apply",
            "validate",
            // fish names long flags without their dashes (`-l markdown-budget`).
            "markdown-budget",
            "show-pending",
        ] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (code, _, err) = teamform(dir.path(), &["completions", "tcsh"]);
    assert_eq!(code, 1, "an unknown shell is a usage error: {err}");
}

#[test]
fn show_renders_a_saved_plan_as_plan_did() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("team.yaml"),
        "version: 1\nteam: acme\nowner: alice@acme.com\nmembers:\n  - email: bob@acme.com\n    roles: [viewer]\n",
    )
    .unwrap();
    let (code, json, err) = teamform(
        dir.path(),
        &[
            "plan",
            "team.yaml",
            "--out",
            "plan.json",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, shown, err) = teamform(dir.path(), &["show", "plan.json", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(shown, json, "the same plan, the same document");

    let (_, text, _) = teamform(dir.path(), &["show", "plan.json", "--no-color"]);
    assert!(text.contains("+ invite bob@acme.com as viewer"), "{text}");
    assert!(
        text.contains("Plan: 2 to add, 0 to change, 0 to remove."),
        "{text}"
    );

    let (_, md, _) = teamform(dir.path(), &["show", "plan.json", "--format", "markdown"]);
    assert!(
        md.starts_with("**Plan: 2 to add, 0 to change, 0 to remove.**\n"),
        "{md}"
    );
    assert!(
        !md.contains("Diff of live vs desired"),
        "a saved plan has no files: {md}"
    );

    let (code, _, err) = teamform(dir.path(), &["show", "team.yaml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("is not a plan saved with `teamform plan --out`"),
        "{err}"
    );
}
