//! `apply`'s progress: a bar on a terminal, a line per batch elsewhere (a CI
//! log keeps every line a bar would redraw), nothing with `--quiet`; and the
//! per-kind summary printed when a team is done.
//!
//! Progress goes to stderr, so stdout holds the plan and the outcome alone.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use teamform_core::Change;

/// How progress is shown for one team's apply.
pub enum Progress {
    Hidden,
    Bar { bar: ProgressBar, batches: usize },
    Lines { total: usize, batches: usize },
}

impl Progress {
    /// For `total` changes sent in `batches` batches: a bar when stderr is a
    /// terminal, else lines; nothing when `quiet`.
    pub fn new(total: usize, batches: usize, quiet: bool) -> Progress {
        if quiet {
            Progress::Hidden
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(
                Some(u64::try_from(total).unwrap_or(u64::MAX)),
                ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {pos}/{len} changes, batch {msg} ({elapsed})",
            ) {
                bar.set_style(style);
            }
            bar.set_message(format!("1/{batches}"));
            Progress::Bar { bar, batches }
        } else {
            Progress::Lines { total, batches }
        }
    }

    /// Batch `batch` (1-based) is done: `done` changes handled so far
    /// (applied or refused), `applied` of them in this batch.
    pub fn batch(&self, batch: usize, applied: usize, done: usize) {
        match self {
            Progress::Hidden => {}
            Progress::Bar { bar, batches } => {
                bar.set_position(u64::try_from(done).unwrap_or(u64::MAX));
                bar.set_message(format!("{}/{batches}", (batch + 1).min(*batches)));
            }
            Progress::Lines { total, batches } => {
                eprintln!(
                    "batch {batch}/{batches}: {applied} change(s) applied ({done}/{total} done)"
                );
            }
        }
    }

    /// The team is done (or failed): the bar leaves the screen.
    pub fn finish(&self) {
        if let Progress::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

/// What a kind of change did, as the summary names it; in the order the
/// summary lists them. Every kind of change is named here (the match has no
/// catch-all), so a new kind cannot go uncounted.
fn kind(change: &Change) -> (usize, &'static str) {
    match change {
        Change::CreateTeam { .. } => (0, "team created"),
        Change::RenameTeam { .. } => (1, "team renamed"),
        Change::UpdateSettings { .. } => (2, "settings updated"),
        Change::CreateRole { .. } => (3, "custom role(s) created"),
        Change::UpdateRole { .. } => (4, "custom role(s) updated"),
        Change::DeleteRole { .. } => (5, "custom role(s) deleted"),
        Change::Invite { .. } => (6, "invited"),
        Change::Reinvite { .. } => (7, "re-invited"),
        Change::AddMember { .. } => (8, "added as member(s)"),
        Change::ChangeRoles { .. } | Change::ChangeInvitationRoles { .. } => (9, "roles changed"),
        Change::RemoveMember { .. } => (10, "removed"),
        Change::RevokeInvitation { .. } => (11, "invitation(s) revoked"),
        Change::TransferOwnership { .. } => (12, "ownership transfer(s) started"),
    }
}

/// `Applied: 12 invited, 3 roles changed, 1 removed`: the changes applied,
/// counted by kind; `Applied: nothing` for none.
pub fn summary<'a>(applied: impl IntoIterator<Item = &'a Change>) -> String {
    let mut counts: Vec<(usize, &'static str, usize)> = Vec::new();
    for change in applied {
        let (order, label) = kind(change);
        match counts.iter_mut().find(|(o, ..)| *o == order) {
            Some(entry) => entry.2 += 1,
            None => counts.push((order, label, 1)),
        }
    }
    counts.sort_by_key(|(order, ..)| *order);
    if counts.is_empty() {
        return "Applied: nothing".to_owned();
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(_, label, n)| format!("{n} {label}"))
        .collect();
    format!("Applied: {}", parts.join(", "))
}
