#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report

//! Every subcommand and every flag or argument of `teamform` has help text.

use clap::CommandFactory;
use teamform::cli::Cli;

fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        // clap's own --help and --version describe themselves.
        if id == "help" || id == "version" {
            continue;
        }
        let help = arg
            .get_help()
            .or(arg.get_long_help())
            .map(|h| h.to_string());
        if help.is_none_or(|h| h.trim().is_empty()) {
            missing.push(format!("{path} {id}"));
        }
    }
    for sub in command.get_subcommands() {
        let name = sub.get_name();
        if name == "help" {
            continue;
        }
        let path = format!("{path} {name}");
        if sub.get_about().is_none() {
            missing.push(format!("{path} (no about)"));
        }
        walk(sub, &path, missing);
    }
}

#[test]
fn every_flag_and_subcommand_has_help() {
    let mut command = Cli::command();
    command.build();
    let mut missing = Vec::new();
    walk(&command, "teamform", &mut missing);
    assert!(missing.is_empty(), "without help text: {missing:?}");
    // The walk sees the flags at all (a broken walk must not pass).
    let apply = command.find_subcommand("apply").unwrap();
    let flags: Vec<&str> = apply.get_arguments().map(|a| a.get_id().as_str()).collect();
    for flag in ["max_removals", "quiet", "auto_approve", "files"] {
        assert!(flags.contains(&flag), "{flags:?}");
    }
}
