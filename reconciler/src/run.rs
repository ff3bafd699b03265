//! The commands. Each reads everything first, prints the whole plan, and
//! only then (for `apply`, after confirmation) writes: rendering is never
//! interleaved with writes, and `plan` has no code path that writes.

use std::io::{BufRead, IsTerminal, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use teamform_core::plan::{LimitSource, PlanOptions, plan_with};
use teamform_core::spec::{TeamSpec, declared_catalog};
use teamform_core::{Catalog, Change, Plan, RemovalLimit, TeamId, TeamState};

use crate::cli::{Cli, Command, Format, Global};
use crate::client::Client;
use crate::render;

/// Changes sent per request; each request is atomic at one version.
const BATCH: usize = 500;

pub const EXIT_OK: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_CHANGES: u8 = 2;

/// A plan saved by `plan --out`, bound to the live version it was made from.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    pub kind: String,
    /// The catalog the plan was made with (used for the embedded store).
    pub catalog: String,
    pub plan: Plan,
}

const SAVED_KIND: &str = "teamform-plan";

pub async fn run(cli: Cli) -> Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Validate { files } => validate(g, &files),
        Command::Plan {
            files,
            out,
            format,
            detailed_exitcode,
            max_removals,
        } => {
            plan_cmd(
                g,
                &files,
                out.as_deref(),
                format,
                detailed_exitcode,
                max_removals,
            )
            .await
        }
        Command::Apply {
            files,
            auto_approve,
            max_removals,
            allow_self_removal,
        } => {
            let options = ApplyOptions {
                auto_approve,
                max_removals,
                allow_self_removal,
            };
            apply_cmd(g, &files, options).await
        }
        Command::Export { team } => export(g, &team).await,
        Command::Catalog { preset, format } => catalog_cmd(g, preset.as_deref(), format).await,
        Command::Serve {
            addr,
            store,
            public_url,
            owner,
        } => {
            let options = crate::serve::ServeOptions {
                addr,
                store,
                public_url,
                owner,
            };
            crate::serve::serve(g, options).await
        }
    }
}

pub fn color_enabled(g: &Global) -> bool {
    !g.no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal()
}

fn read(file: &Path) -> Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

/// The catalog for offline work and the embedded store: the flag, else the
/// file's own `catalog:` field, else `standard`.
fn local_catalog(g: &Global, declared: Option<&str>) -> Result<Catalog> {
    let name = g.catalog.as_deref().or(declared).unwrap_or("standard");
    teamform_functions::load_catalog(name).map_err(|e| anyhow!(e))
}

/// A client and the catalog it serves.
async fn connect(g: &Global, declared: Option<&str>) -> Result<(Client, Catalog)> {
    match g.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
        Some(endpoint) => {
            let client = Client::remote(endpoint, g.token.clone());
            let catalog = client
                .catalog()
                .await
                .context("cannot read the service's catalog")?;
            Ok((client, catalog))
        }
        None => {
            let catalog = local_catalog(g, declared)?;
            let client = Client::in_process(&g.state, catalog.clone()).await?;
            Ok((client, catalog))
        }
    }
}

fn validate(g: &Global, files: &[PathBuf]) -> Result<u8> {
    let mut code = EXIT_OK;
    for file in files {
        let source = match read(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e:#}");
                code = EXIT_ERROR;
                continue;
            }
        };
        let catalog = local_catalog(g, declared_catalog(&source).as_deref())?;
        match TeamSpec::parse(&file.display().to_string(), &source, &catalog) {
            Ok(spec) => println!(
                "{}: ok (team {}, owner {}, {} members, catalog {})",
                file.display(),
                spec.team,
                spec.owner,
                spec.members.len(),
                catalog.name
            ),
            Err(diags) => {
                for d in &diags.0 {
                    eprintln!("{d}");
                }
                eprintln!("{}: {} error(s)", file.display(), diags.0.len());
                code = EXIT_ERROR;
            }
        }
    }
    Ok(code)
}

/// Everything one file's plan needs, read before anything is printed.
struct Planned {
    client: Client,
    catalog: Catalog,
    plan: Plan,
    live_yaml: String,
    desired_yaml: String,
}

/// `with_yaml`: also write the live and desired team.yaml (for markdown).
async fn plan_file(
    g: &Global,
    file: &Path,
    max_removals: Option<RemovalLimit>,
    with_yaml: bool,
) -> Result<Planned> {
    let source = read(file)?;
    let (client, catalog) = connect(g, declared_catalog(&source).as_deref()).await?;
    let spec = TeamSpec::parse(&file.display().to_string(), &source, &catalog)
        .map_err(|d| anyhow!("{d}"))?;
    let now = Utc::now();
    let live = client
        .state(&spec.team)
        .await
        .with_context(|| format!("cannot read team {} live", spec.team))?;
    // An API key never creates teams: a team it cannot see is an error, not
    // a plan to create it. The key is known by its own prefix; asking the
    // service (`GET /me`) would not pass an API gateway that keeps `/me` for
    // people's sign-ins (see infra/template.yaml).
    if live.is_none() && client.uses_api_key() {
        bail!(
            "team {} is not visible to this API key (a key sees only its own team and never creates one)",
            spec.team
        );
    }
    let options = PlanOptions { max_removals };
    let plan = match &live {
        Some(state) => plan_with(&spec, state, &catalog, now, options),
        None => {
            let absent = TeamState::new(spec.team.clone(), String::new(), spec.owner.clone(), now);
            plan_with(&spec, &absent, &catalog, now, options)
        }
    };
    // Only the markdown rendering shows the two files side by side.
    let (live_yaml, desired_yaml) = if with_yaml {
        let live_yaml = live
            .map(|l| live_as_managed(&l, &spec).to_yaml())
            .unwrap_or_default();
        (live_yaml, spec.to_yaml())
    } else {
        (String::new(), String::new())
    };
    Ok(Planned {
        client,
        catalog,
        plan,
        live_yaml,
        desired_yaml,
    })
}

/// The live state shown only in the sections the spec manages, so the diff
/// shows drift and nothing else.
fn live_as_managed(live: &TeamState, spec: &TeamSpec) -> TeamSpec {
    let mut view = TeamSpec::from_state(live);
    if spec.settings.is_none() {
        view.settings = None;
    }
    if spec.roles.is_none() {
        view.roles = None;
    }
    if spec.display_name.is_none() {
        view.display_name = None;
    }
    view.policy = spec.policy.clone();
    view
}

fn print_plan(p: &Planned, format: Format, color: bool) {
    match format {
        Format::Text => print!("{}", ensure_newline(render::plan_text(&p.plan, color))),
        Format::Markdown => print!(
            "{}",
            ensure_newline(render::plan_markdown(
                &p.plan,
                &p.live_yaml,
                &p.desired_yaml
            ))
        ),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::plan_json(&p.plan)).unwrap_or_default()
        ),
    }
}

fn ensure_newline(mut s: String) -> String {
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

async fn plan_cmd(
    g: &Global,
    files: &[PathBuf],
    out: Option<&Path>,
    format: Format,
    detailed: bool,
    max_removals: Option<RemovalLimit>,
) -> Result<u8> {
    if out.is_some() && files.len() != 1 {
        bail!("--out saves the plan of exactly one file");
    }
    let color = color_enabled(g);
    let mut any_changes = false;
    let mut failed = false;
    for file in files {
        let with_yaml = matches!(format, Format::Markdown);
        let planned = match plan_file(g, file, max_removals, with_yaml).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
                continue;
            }
        };
        print_plan(&planned, format, color);
        any_changes |= !planned.plan.is_empty();
        if planned.plan.refusal().is_some() {
            failed = true;
        }
        if let Some(out) = out {
            let saved = SavedPlan {
                kind: SAVED_KIND.into(),
                catalog: planned.catalog.name.clone(),
                plan: planned.plan,
            };
            let text = serde_json::to_string_pretty(&saved)?;
            std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!(
                "Saved the plan to {}. Apply it with: teamform apply {}",
                out.display(),
                out.display()
            );
        }
    }
    Ok(if failed {
        EXIT_ERROR
    } else if detailed && any_changes {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}

fn load_saved(source: &str) -> Option<SavedPlan> {
    let saved: SavedPlan = serde_json::from_str(source).ok()?;
    (saved.kind == SAVED_KIND).then_some(saved)
}

/// What `apply` was told beyond its files.
#[derive(Debug, Clone, Copy)]
struct ApplyOptions {
    auto_approve: bool,
    max_removals: Option<RemovalLimit>,
    allow_self_removal: bool,
}

async fn apply_cmd(g: &Global, files: &[PathBuf], options: ApplyOptions) -> Result<u8> {
    let ApplyOptions {
        auto_approve,
        max_removals,
        allow_self_removal,
    } = options;
    let color = color_enabled(g);
    let mut code = EXIT_OK;
    for file in files {
        let source = read(file)?;
        let mut planned = match load_saved(&source) {
            Some(saved) => {
                let (client, catalog) = connect(g, Some(&saved.catalog)).await?;
                Planned {
                    client,
                    catalog,
                    plan: saved.plan,
                    live_yaml: String::new(),
                    desired_yaml: String::new(),
                }
            }
            None => match plan_file(g, file, max_removals, false).await {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e:#}");
                    code = EXIT_ERROR;
                    continue;
                }
            },
        };
        if let Some(limit) = max_removals {
            let guard = &mut planned.plan.removals;
            guard.limit = limit;
            guard.source = LimitSource::Flag;
            guard.allowed = limit.allowed(guard.members);
        }
        print_plan(&planned, Format::Text, color);
        if planned.plan.is_empty() {
            continue;
        }
        if let Some(why) = planned.plan.refusal() {
            eprintln!("Apply refused: {why}");
            code = EXIT_ERROR;
            continue;
        }
        if !auto_approve && !confirm(&planned.plan.team)? {
            eprintln!("Apply cancelled.");
            code = EXIT_ERROR;
            continue;
        }
        if !execute(&planned.client, &planned.plan, allow_self_removal).await? {
            code = EXIT_ERROR;
        }
    }
    Ok(code)
}

fn confirm(team: &TeamId) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "refusing to prompt for confirmation: stdin is not a terminal; pass --auto-approve to apply without asking"
        );
    }
    print!("\nApply these changes to team {team}? Only 'yes' will be accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// Sends the plan in atomic batches chained by version. A change the service
/// refuses is reported and left out, and the rest of its batch is sent again,
/// so one run reports every failing change; running apply again converges.
/// Stops at once when the team changed underneath (a stale plan).
async fn execute(client: &Client, plan: &Plan, allow_self_removal: bool) -> Result<bool> {
    let mut version = plan.base_version;
    let mut failures: Vec<(Change, String)> = Vec::new();
    let mut applied = 0;
    for chunk in plan.changes.chunks(BATCH) {
        let mut pending: Vec<Change> = chunk.to_vec();
        while !pending.is_empty() {
            match client
                .apply(&plan.team, &pending, version, allow_self_removal)
                .await
            {
                Ok(done) => {
                    applied += done.applied;
                    version = done.version;
                    break;
                }
                Err(e) if matches!(e.code(), Some("version_conflict" | "team_exists")) => {
                    bail!(
                        "the plan is stale: team {} changed since it was planned (planned at version {}); run plan again\n  ({e})",
                        plan.team,
                        plan.base_version
                    );
                }
                Err(e) => match e.change_index().filter(|i| *i < pending.len()) {
                    Some(i) => {
                        let change = pending.remove(i);
                        failures.push((change, e.to_string()));
                    }
                    None => return Err(anyhow::Error::new(e).context("apply failed")),
                },
            }
        }
    }
    if failures.is_empty() {
        println!(
            "Apply complete: {applied} change(s) applied to team {} (now at version {version}).",
            plan.team
        );
        Ok(true)
    } else {
        println!(
            "Applied {applied} change(s) to team {}; {} failed:",
            plan.team,
            failures.len()
        );
        for (change, why) in &failures {
            let line = render::change_line(change, plan.generated_at);
            eprintln!("  failed: {line}: {why}");
        }
        Ok(false)
    }
}

async fn export(g: &Global, team: &str) -> Result<u8> {
    let team = TeamId::parse(team)?;
    let (client, _) = connect(g, None).await?;
    let live = client
        .state(&team)
        .await?
        .ok_or_else(|| anyhow!("team {team} does not exist at {}", client.describe))?;
    print!("{}", TeamSpec::from_state(&live).to_yaml());
    Ok(EXIT_OK)
}

async fn catalog_cmd(g: &Global, preset: Option<&str>, format: Format) -> Result<u8> {
    let catalog = match preset {
        Some(name) => Catalog::preset(name).ok_or_else(|| {
            let names: Vec<&str> = teamform_core::catalog::PRESETS
                .iter()
                .map(|(n, _)| *n)
                .collect();
            anyhow!("no preset named `{name}`; presets: {}", names.join(", "))
        })?,
        None if g.endpoint.as_deref().is_some_and(|e| !e.trim().is_empty()) => {
            connect(g, None).await?.1
        }
        None => local_catalog(g, None)?,
    };
    match format {
        Format::Text => print!(
            "{}",
            ensure_newline(render::catalog_text(&catalog, color_enabled(g)))
        ),
        Format::Markdown => print!("{}", ensure_newline(render::catalog_markdown(&catalog))),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::catalog_json(&catalog))?
        ),
    }
    Ok(EXIT_OK)
}
