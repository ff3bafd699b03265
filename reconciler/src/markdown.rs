//! The plan as a reviewer's page, for a pull-request comment: the `Plan:`
//! line first; then what must stop a merge (files that failed, refused
//! plans) and a warning for removals and ownership transfers; then, team by
//! team, the changes grouped by kind under headings (a long group folded in
//! `<details>`); the YAML diff last.
//!
//! A comment has a size limit (GitHub refuses bodies over 65,536
//! characters), so the page can be held to a budget: the longest groups are
//! cut first, each with an exact "N more not shown" line, the diff gets what
//! room is left, and a note at the top says how much is left out and where
//! the full plan is. Pure, like [`crate::render`]: data in, string out.

use std::fmt::Write as _;

use similar::TextDiff;
use teamform_core::change::Change;
use teamform_core::plan::{Counts, Plan};

use crate::render::{
    Context, Symbol, describe, longest_backtick_run, md_escape, pending_line, summary_line,
};

/// Characters a comment may use unless told otherwise: under GitHub's
/// 65,536 with room for a marker and a few lines a workflow adds.
pub const DEFAULT_BUDGET: usize = 60_000;

/// Groups with more changes than this are folded in `<details>`.
pub const FOLD_ABOVE: usize = 10;

/// Characters of one failure's message shown when a budget applies.
const FAILURE_CHARS: usize = 4_000;

/// One team's plan and the two sides of its YAML diff.
#[derive(Debug, Clone, Copy)]
pub struct Section<'a> {
    /// The team file the plan comes from, when there are several.
    pub file: Option<&'a str>,
    pub plan: &'a Plan,
    /// Canonical YAML of the live team (empty for a new team; both sides
    /// empty, as for a saved plan: no diff is shown).
    pub live_yaml: &'a str,
    pub desired_yaml: &'a str,
}

/// A file that could not be planned, and why (the error as printed).
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    pub file: &'a str,
    pub message: &'a str,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Most characters the comment may have; `None` for no limit.
    pub budget: Option<usize>,
    /// Where the full plan is, as Markdown ("[the full plan](URL)" or a
    /// file name), said when something is left out.
    pub full_plan: Option<String>,
}

/// A rendered comment and what it leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub text: String,
    /// Changes in all the plans.
    pub changes: usize,
    /// Changes listed in the comment; the rest are counted in
    /// "N more not shown" lines.
    pub shown: usize,
    /// Lines of YAML diff left out.
    pub diff_lines_omitted: usize,
    /// Whether the page itself had to be cut (when even the headings and
    /// banners do not fit the budget).
    pub truncated: bool,
}

/// The kinds of change, in the order a reviewer should read them:
/// what takes something away first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Transfer,
    RemoveMember,
    RevokeInvitation,
    DeleteRole,
    CreateTeam,
    Team,
    Roles,
    Invite,
    Reinvite,
    AddMember,
    ChangeRoles,
    ChangeInvitationRoles,
}

impl Kind {
    // No wildcard arm: a new kind of change must choose its group.
    fn of(change: &Change) -> Kind {
        match change {
            Change::TransferOwnership { .. } => Kind::Transfer,
            Change::RemoveMember { .. } => Kind::RemoveMember,
            Change::RevokeInvitation { .. } => Kind::RevokeInvitation,
            Change::DeleteRole { .. } => Kind::DeleteRole,
            Change::CreateTeam { .. } => Kind::CreateTeam,
            Change::RenameTeam { .. } | Change::UpdateSettings { .. } => Kind::Team,
            Change::CreateRole { .. } | Change::UpdateRole { .. } => Kind::Roles,
            Change::Invite { .. } => Kind::Invite,
            Change::Reinvite { .. } => Kind::Reinvite,
            Change::AddMember { .. } => Kind::AddMember,
            Change::ChangeRoles { .. } => Kind::ChangeRoles,
            Change::ChangeInvitationRoles { .. } => Kind::ChangeInvitationRoles,
        }
    }

    fn heading(self) -> &'static str {
        match self {
            Kind::Transfer => "Ownership transfer",
            Kind::RemoveMember => "Members removed",
            Kind::RevokeInvitation => "Invitations revoked",
            Kind::DeleteRole => "Custom roles deleted",
            Kind::CreateTeam => "Team created",
            Kind::Team => "Team name and settings",
            Kind::Roles => "Custom roles created or updated",
            Kind::Invite => "Invitations",
            Kind::Reinvite => "Re-invitations",
            Kind::AddMember => "Members added by provisioning",
            Kind::ChangeRoles => "Role changes of members",
            Kind::ChangeInvitationRoles => "Role changes of invitations",
        }
    }
}

/// One group of a section: its kind and its list items, each a full line.
struct Group {
    kind: Kind,
    items: Vec<String>,
}

/// A section with everything rendered that does not depend on the budget.
struct Prepared {
    /// Heading and the line under it.
    head: String,
    groups: Vec<Group>,
    /// Pending invitations and notes.
    tail: String,
    /// The unified diff's lines (each with its newline); `None` when the
    /// plan is empty.
    diff: Option<Vec<String>>,
    /// Whether nothing is to be said beyond "no changes".
    quiet: bool,
    team: String,
}

/// How much of each part to show.
#[derive(Debug, Clone)]
struct Limits {
    /// Items shown per group at most.
    items: usize,
    /// Diff lines shown per section.
    diff: Vec<usize>,
    /// Characters shown per failure message.
    failure: usize,
}

/// The comment for several plans (one per team file) and the files that
/// failed, under `options.budget` if there is one.
pub fn comment(sections: &[Section<'_>], failures: &[Failure<'_>], options: &Options) -> Comment {
    let prepared: Vec<Prepared> = sections.iter().map(prepare).collect();
    let changes: usize = sections.iter().map(|s| s.plan.changes.len()).sum();
    let longest_group = prepared
        .iter()
        .flat_map(|p| p.groups.iter().map(|g| g.items.len()))
        .max()
        .unwrap_or(0);
    let full_diff: Vec<usize> = prepared
        .iter()
        .map(|p| p.diff.as_ref().map_or(0, Vec::len))
        .collect();
    let full = Limits {
        items: usize::MAX,
        diff: full_diff.clone(),
        failure: usize::MAX,
    };
    let render = |limits: &Limits| page(sections, &prepared, failures, limits, options, changes);
    let whole = render(&full);
    let Some(budget) = options.budget else {
        return whole;
    };
    if size(&whole.text) <= budget {
        return whole;
    }
    // Groups first, with the diffs out of the way: the most items per group
    // that fits (binary search; any answer found fits).
    let mut limits = Limits {
        items: 0,
        diff: vec![0; prepared.len()],
        failure: FAILURE_CHARS,
    };
    let fits = |limits: &Limits| size(&render(limits).text) <= budget;
    if !fits(&limits) {
        return truncate(render(&limits), budget, options);
    }
    let (mut lo, mut hi) = (0usize, longest_group);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        limits.items = mid;
        if fits(&limits) {
            lo = mid;
        } else {
            hi = mid.saturating_sub(1);
        }
    }
    limits.items = lo;
    // Then the diffs, in order, each taking the most lines that still fit.
    for (i, &lines) in full_diff.iter().enumerate() {
        let (mut lo, mut hi) = (0usize, lines);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let mut trial = limits.clone();
            if let Some(d) = trial.diff.get_mut(i) {
                *d = mid;
            }
            if fits(&trial) {
                lo = mid;
            } else {
                hi = mid.saturating_sub(1);
            }
        }
        if let Some(d) = limits.diff.get_mut(i) {
            *d = lo;
        }
    }
    render(&limits)
}

/// Characters, as GitHub counts a comment's length.
pub fn size(s: &str) -> usize {
    s.chars().count()
}

fn prepare(section: &Section<'_>) -> Prepared {
    let plan = section.plan;
    let cx = Context::markdown(plan);
    let mut head = format!("### Team `{}`", plan.team);
    if !plan.is_empty() {
        let line = summary_line(plan.counts());
        let _ = write!(head, ": {}", line.trim_start_matches("Plan: "));
    }
    head.push_str("\n\n");
    if let Some(file) = section.file {
        let _ = write!(head, "From {}. ", md_escape(file));
    }
    if plan.is_empty() {
        head.push_str("No changes: the team matches its file.\n");
    } else {
        match plan.base_version {
            0 => head.push_str("The team does not exist yet: this plan creates it.\n"),
            n => {
                let _ = writeln!(head, "Computed against live version {n}.");
            }
        }
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut changes: Vec<&Change> = plan.changes.iter().collect();
    // Stable: within a group, changes keep the plan's (apply) order.
    changes.sort_by_key(|c| Kind::of(c));
    for change in changes {
        let kind = Kind::of(change);
        let item = format!(
            "- `{}` {}\n",
            Symbol::of(change).as_str(),
            describe(change, &cx)
        );
        match groups.last_mut() {
            Some(g) if g.kind == kind => g.items.push(item),
            _ => groups.push(Group {
                kind,
                items: vec![item],
            }),
        }
    }
    let mut tail = String::new();
    if let Some(line) = pending_line(plan) {
        let _ = write!(tail, "\n{}\n", md_escape(&line));
    }
    for note in &plan.notes {
        let _ = write!(tail, "\n> **Note:** {}\n", md_escape(note));
    }
    // No files at all (a saved plan): no diff to show.
    let files = !(section.live_yaml.is_empty() && section.desired_yaml.is_empty());
    let diff = (!plan.is_empty() && files).then(|| {
        TextDiff::from_lines(section.live_yaml, section.desired_yaml)
            .unified_diff()
            .context_radius(3)
            .header("live", "desired")
            .to_string()
            .split_inclusive('\n')
            .map(|l| {
                if l.ends_with('\n') {
                    l.to_owned()
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    });
    Prepared {
        head,
        groups,
        tail,
        diff,
        quiet: plan.is_empty() && plan.notes.is_empty() && plan.refusal().is_none(),
        team: plan.team.to_string(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn fence(s: &str) -> String {
    "`".repeat(longest_backtick_run(s).saturating_add(1).max(3))
}

/// `text` shown to at most `limit` characters, saying how many are left out.
fn clip(text: &str, limit: usize) -> String {
    let n = size(text);
    if n <= limit {
        return text.to_owned();
    }
    let kept: String = text.chars().take(limit).collect();
    format!(
        "{kept}\n[{} more characters not shown]",
        n.saturating_sub(limit)
    )
}

/// Blockquote lines (for GitHub's alert boxes).
fn quoted(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        if line.is_empty() {
            out.push_str(">\n");
        } else {
            let _ = writeln!(out, "> {line}");
        }
    }
    out
}

fn page(
    sections: &[Section<'_>],
    prepared: &[Prepared],
    failures: &[Failure<'_>],
    limits: &Limits,
    options: &Options,
    changes: usize,
) -> Comment {
    let mut total = Counts::default();
    for s in sections {
        let c = s.plan.counts();
        total.add += c.add;
        total.change += c.change;
        total.remove += c.remove;
        total.transfer += c.transfer;
    }
    let mut out = format!("**{}**", summary_line(total));
    if sections.len() + failures.len() > 1 {
        let _ = write!(
            out,
            " ({}{})",
            plural(sections.len(), "team", "teams"),
            if failures.is_empty() {
                String::new()
            } else {
                format!(", {} that failed", plural(failures.len(), "file", "files"))
            }
        );
    }
    out.push('\n');

    // What stops a merge.
    let refused: Vec<(&Section<'_>, String)> = sections
        .iter()
        .filter_map(|s| s.plan.refusal().map(|r| (s, r)))
        .collect();
    if !failures.is_empty() || !refused.is_empty() {
        let mut body = String::from("[!CAUTION]\n");
        for f in failures {
            let message = clip(f.message.trim_end(), limits.failure);
            let fence = fence(&message);
            let _ = write!(
                body,
                "**Plan failed** for {}:\n\n{fence}text\n{message}\n{fence}\n\n",
                md_escape(f.file)
            );
        }
        for (s, why) in &refused {
            // Our own wording, code spans included: not escaped.
            let _ = write!(body, "**Refused** (team `{}`): {why}\n\n", s.plan.team);
        }
        out.push('\n');
        out.push_str(&quoted(body.trim_end()));
    }

    // Removals and ownership transfers, said before any list.
    let mut warnings: Vec<String> = Vec::new();
    for s in sections {
        let (mut members, mut invitations, mut roles) = (0usize, 0usize, 0usize);
        for change in &s.plan.changes {
            match change {
                Change::RemoveMember { .. } => members += 1,
                Change::RevokeInvitation { .. } => invitations += 1,
                Change::DeleteRole { .. } => roles += 1,
                Change::TransferOwnership { from, to } => warnings.push(format!(
                    "**Ownership transfer** of team `{}`: {} -> {} (both must confirm).",
                    s.plan.team,
                    md_escape(from.as_str()),
                    md_escape(to.as_str())
                )),
                _ => {}
            }
        }
        let mut parts = Vec::new();
        if members > 0 {
            parts.push(plural(members, "member", "members"));
        }
        if invitations > 0 {
            parts.push(plural(invitations, "invitation", "invitations"));
        }
        if roles > 0 {
            parts.push(plural(roles, "custom role", "custom roles"));
        }
        if !parts.is_empty() {
            warnings.push(format!(
                "**Removes** from team `{}`: {}.",
                s.plan.team,
                parts.join(", ")
            ));
        }
    }
    if !warnings.is_empty() {
        out.push('\n');
        out.push_str(&quoted(&format!("[!WARNING]\n{}", warnings.join("\n\n"))));
    }

    // The sections, rendered first so that the note above them can count.
    let mut body = String::new();
    let mut shown = 0usize;
    let mut diff_lines_omitted = 0usize;
    let mut quiet: Vec<&str> = Vec::new();
    for (i, p) in prepared.iter().enumerate() {
        if p.quiet && prepared.len() > 1 {
            quiet.push(&p.team);
            continue;
        }
        body.push('\n');
        body.push_str(&p.head);
        for g in &p.groups {
            let n = g.items.len();
            let k = n.min(limits.items);
            shown += k;
            let _ = write!(body, "\n#### {} ({n})\n\n", g.kind.heading());
            let fold = n > FOLD_ABOVE;
            if fold {
                let _ = write!(
                    body,
                    "<details><summary>Show {}</summary>\n\n",
                    plural(n, "change", "changes")
                );
            }
            for item in g.items.iter().take(k) {
                body.push_str(item);
            }
            if k < n {
                let _ = writeln!(body, "- _{} more not shown_", n - k);
            }
            if fold {
                body.push_str("\n</details>\n");
            }
        }
        body.push_str(&p.tail);
        if let Some(diff) = &p.diff {
            let keep = limits.diff.get(i).copied().unwrap_or(0).min(diff.len());
            diff_lines_omitted += diff.len() - keep;
            body.push_str("\n<details><summary>Diff of live vs desired team.yaml</summary>\n\n");
            if diff.is_empty() {
                body.push_str("The files are the same; the changes come from live state team.yaml does not show, such as expired invitations.\n");
            } else if keep == 0 {
                let _ = writeln!(
                    body,
                    "The diff ({}) is not shown here: see the full plan.",
                    plural(diff.len(), "line", "lines")
                );
            } else {
                let text: String = diff.iter().take(keep).map(String::as_str).collect();
                let fence = fence(&text);
                let _ = write!(body, "{fence}diff\n{text}{fence}\n");
                if keep < diff.len() {
                    let _ = writeln!(body, "\n{} more diff lines not shown.", diff.len() - keep);
                }
            }
            body.push_str("\n</details>\n");
        }
    }
    if !quiet.is_empty() {
        let _ = write!(
            body,
            "\nNo changes in {}: {}.\n",
            plural(quiet.len(), "team", "teams"),
            quiet
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    let omitted = changes - shown;
    if omitted > 0 || diff_lines_omitted > 0 {
        let mut left_out = Vec::new();
        if omitted > 0 {
            left_out.push(format!("{omitted} of {changes} changes"));
        }
        if diff_lines_omitted > 0 {
            left_out.push(format!("{diff_lines_omitted} lines of YAML diff"));
        }
        let budget = options
            .budget
            .map_or_else(String::new, |b| format!(" to stay under {b} characters"));
        let full = options
            .full_plan
            .clone()
            .unwrap_or_else(|| "`teamform plan --format markdown --markdown-budget 0`".into());
        let _ = write!(
            out,
            "\n> [!NOTE]\n> Not shown{budget}: {}. The full plan: {full}.\n",
            left_out.join(" and ")
        );
    }
    out.push_str(&body);
    Comment {
        text: out,
        changes,
        shown,
        diff_lines_omitted,
        truncated: false,
    }
}

/// The last resort, when even headings and banners exceed the budget: the
/// page cut at a line, and a last line saying so.
fn truncate(mut c: Comment, budget: usize, options: &Options) -> Comment {
    let full = options
        .full_plan
        .clone()
        .unwrap_or_else(|| "`teamform plan --format markdown --markdown-budget 0`".into());
    let tail = format!(
        "\n\n**This comment is cut to stay under {budget} characters; {} changes are listed in the full plan: {full}.**\n",
        c.changes
    );
    let room = budget.saturating_sub(size(&tail));
    let mut kept = String::new();
    let mut used = 0usize;
    for line in c.text.split_inclusive('\n') {
        let n = size(line);
        if used + n > room {
            break;
        }
        used += n;
        kept.push_str(line);
    }
    kept.push_str(&tail);
    c.text = if size(&kept) <= budget {
        kept
    } else {
        c.text.chars().take(budget).collect()
    };
    c.shown = 0;
    c.truncated = true;
    c
}
