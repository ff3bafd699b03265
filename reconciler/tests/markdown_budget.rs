//! The Markdown plan at real scale: whatever the number of changes, the
//! comment stays under its budget, says the `Plan:` line first, warns about
//! removals and ownership transfers at the top, and says exactly how many
//! changes it leaves out.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::fmt::Write as _;

use chrono::{DateTime, Duration};
use teamform::markdown::{self, Comment, DEFAULT_BUDGET, Failure, Options, Section, size};
use teamform::render::plan_markdown;
use teamform_core::model::Member;
use teamform_core::plan::{PlanOptions, plan_with};
use teamform_core::{Catalog, Email, Plan, RoleName, TeamId, TeamSpec, TeamState, Timestamp};

fn now() -> Timestamp {
    DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
        .map(|t| t.to_utc())
        .unwrap()
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

/// A plan with `n` changes: half invitations, a quarter role changes, the
/// rest removals (allowed by the file's policy), plus an ownership transfer
/// when `transfer`.
struct Big {
    plan: Plan,
    live_yaml: String,
    desired_yaml: String,
}

fn big(n: usize) -> Big {
    big_with(n, "100%")
}

fn big_with(n: usize, max_removals: &str) -> Big {
    let invites = n / 2;
    let changes = n / 4;
    let removals = n - invites - changes;
    let mut live = TeamState::new(
        TeamId::parse("acme").unwrap(),
        "Acme".into(),
        email("owner@acme.com"),
        now() - Duration::days(400),
    );
    live.version = 3;
    let mut member = |who: String, role: &str| {
        let e = email(&who);
        live.members.insert(
            e.clone(),
            Member {
                email: e,
                name: None,
                roles: [RoleName::parse(role).unwrap()].into_iter().collect(),
                joined_at: now() - Duration::days(30),
                two_factor: false,
            },
        );
    };
    for i in 0..changes {
        member(format!("changed{i:05}@acme.com"), "viewer");
    }
    for i in 0..removals {
        member(format!("gone{i:05}@acme.com"), "developer");
    }
    let mut yaml = String::from("version: 1\nteam: acme\nowner: owner@acme.com\nmembers:\n");
    for i in 0..changes {
        let _ = write!(
            yaml,
            "  - email: changed{i:05}@acme.com\n    roles: [admin]\n"
        );
    }
    for i in 0..invites {
        let _ = write!(
            yaml,
            "  - email: new{i:05}@acme.com\n    roles: [developer]\n"
        );
    }
    let _ = writeln!(yaml, "policy:\n  max_removals: {max_removals:?}");
    let spec = TeamSpec::parse("team.yaml", &yaml, &Catalog::standard()).unwrap();
    let plan = plan_with(
        &spec,
        &live,
        &Catalog::standard(),
        now(),
        PlanOptions::default(),
    );
    assert_eq!(plan.changes.len(), n);
    let mut view = TeamSpec::from_state(&live);
    view.settings = None;
    view.roles = None;
    view.display_name = None;
    view.policy = spec.policy.clone();
    Big {
        plan,
        live_yaml: view.to_yaml(),
        desired_yaml: spec.to_yaml(),
    }
}

impl Big {
    fn section(&self) -> Section<'_> {
        Section {
            file: None,
            plan: &self.plan,
            live_yaml: &self.live_yaml,
            desired_yaml: &self.desired_yaml,
        }
    }

    fn comment(&self, budget: usize) -> Comment {
        let options = Options {
            budget: Some(budget),
            full_plan: Some("[the full plan](https://ci.example/run/1)".into()),
        };
        markdown::comment(&[self.section()], &[], &options)
    }
}

/// The numbers in every "- _N more not shown_" line.
fn not_shown(text: &str) -> Vec<usize> {
    text.lines()
        .filter_map(|l| l.strip_prefix("- _")?.strip_suffix(" more not shown_"))
        .map(|n| n.parse().unwrap())
        .collect()
}

/// List items that are changes (they start with the change's symbol).
fn listed(text: &str) -> usize {
    text.lines()
        .filter(|l| {
            ["- `+` ", "- `~` ", "- `-` ", "- `!` "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .count()
}

/// The checks every comment must pass, whatever its size.
fn check(c: &Comment, budget: usize, total: usize) {
    let text = &c.text;
    assert!(size(text) <= budget, "{} > {budget}", size(text));
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("**Plan: "), "first line: {first}");
    assert_eq!(c.changes, total);
    assert_eq!(listed(text), c.shown, "items listed vs counted as shown");
    let omitted: usize = not_shown(text).iter().sum();
    assert_eq!(c.shown + omitted, total, "shown + not shown = all changes");
    if omitted > 0 {
        assert!(
            text.contains(&format!(
                "Not shown to stay under {budget} characters: {omitted} of {total} changes"
            )) && text.contains("[the full plan](https://ci.example/run/1)"),
            "the note says how many are left out and where the rest is"
        );
    }
}

#[test]
fn comments_fit_their_budget_at_every_size() {
    for n in [10, 500, 2_000, 20_000] {
        let b = big(n);
        let c = b.comment(DEFAULT_BUDGET);
        check(&c, DEFAULT_BUDGET, n);
        println!(
            "{n} changes: {} characters, {} listed, diff lines left out {}",
            size(&c.text),
            c.shown,
            c.diff_lines_omitted
        );
        // Removals come first, under a warning at the top.
        let warning = c.text.find("> [!WARNING]").unwrap();
        let groups = c.text.find("#### ").unwrap();
        assert!(warning < groups);
        assert!(
            c.text.contains(&format!(
                "**Removes** from team `acme`: {} members.",
                n - n / 2 - n / 4
            )),
            "{}",
            &c.text[..500.min(c.text.len())]
        );
        let order: Vec<usize> = [
            "#### Members removed",
            "#### Invitations",
            "#### Role changes of members",
        ]
        .iter()
        .map(|h| c.text.find(h).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        // Plans that fit are shown whole; bigger ones are cut, not dropped.
        let full = plan_markdown(&b.plan, &b.live_yaml, &b.desired_yaml);
        if size(&full) <= DEFAULT_BUDGET {
            assert_eq!(c.shown, n);
            assert_eq!(c.text, full);
        } else {
            assert!(
                n >= 2_000,
                "{n} changes: {} characters in full",
                size(&full)
            );
            assert!(c.shown > 0 && c.shown < n, "{n}: {} shown", c.shown);
            assert!(
                c.text.contains("<details><summary>Show "),
                "long groups fold"
            );
        }
        // The diff comes last, if at all.
        if let Some(diff) = c.text.find("Diff of live vs desired") {
            assert!(c.text[diff..].find("#### ").is_none());
        }
    }
}

#[test]
fn tight_budgets_still_add_up() {
    let b = big(2_000);
    for budget in [2_000, 5_000, 12_345] {
        let c = b.comment(budget);
        check(&c, budget, 2_000);
    }
    // Below what the headings need, the page is cut and says so.
    let c = b.comment(300);
    assert!(size(&c.text) <= 300, "{}", size(&c.text));
    assert!(c.truncated);
    assert!(c.text.starts_with("**Plan: "));
    assert!(c.text.contains("This comment is cut"), "{}", c.text);
}

#[test]
fn refused_plans_say_so_at_the_top() {
    let b = big_with(400, "10");
    assert!(b.plan.refusal().is_some());
    let c = b.comment(DEFAULT_BUDGET);
    check(&c, DEFAULT_BUDGET, 400);
    let caution = c.text.find("> [!CAUTION]").unwrap();
    let refused = c
        .text
        .find("> **Refused** (team `acme`): this plan removes 100")
        .unwrap();
    let warning = c.text.find("> [!WARNING]").unwrap();
    let groups = c.text.find("#### ").unwrap();
    assert!(caution < refused && refused < warning && warning < groups);
}

#[test]
fn failed_files_are_shown_with_their_error_and_counted_apart() {
    let b = big(20);
    let message =
        "teams/bad.yaml:3:1: `members` must be a list, found a string\nteams/bad.yaml: 1 error(s)";
    let failures = [Failure {
        file: "teams/bad.yaml",
        message,
    }];
    let c = markdown::comment(
        &[b.section()],
        &failures,
        &Options {
            budget: Some(DEFAULT_BUDGET),
            full_plan: None,
        },
    );
    assert!(
        c.text.starts_with(
            "**Plan: 10 to add, 5 to change, 5 to remove.** (1 team, 1 file that failed)\n"
        ),
        "{}",
        c.text
    );
    assert!(c.text.contains("> **Plan failed** for teams/bad.yaml:"));
    assert!(
        c.text
            .contains("> teams/bad.yaml:3:1: `members` must be a list, found a string")
    );
}

#[test]
fn a_small_plan_layout() {
    let b = big(12);
    insta::assert_snapshot!(b.comment(DEFAULT_BUDGET).text);
}
