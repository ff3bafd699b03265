//! The commands. Each reads everything first, prints the whole plan, and
//! only then (for `apply`, after confirmation) writes: rendering is never
//! interleaved with writes, and `plan` has no code path that writes.

use std::io::{BufRead, IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use teamform_core::plan::{LimitSource, PlanOptions, plan_with};
use teamform_core::spec::{TeamSpec, declared_catalog};
use teamform_core::{Catalog, Change, Plan, RemovalLimit, TeamId, TeamState};

use crate::cli::{Cli, Command, Format, Global, OutputFormat};
use crate::client::{Applier, Client};
use crate::progress::{self, Progress};
use crate::{files, markdown, render};

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
        Command::Validate { files, format } => {
            let several = files.len() > 1 || files::names_a_directory(&files);
            let files = files::expand(&files)?;
            validate(g, &files, format, several)
        }
        Command::Plan {
            files,
            out,
            format,
            detailed_exitcode,
            max_removals,
            show_pending,
            markdown_budget,
            markdown_out,
            full_plan_url,
        } => {
            let args = PlanArgs {
                out,
                format,
                detailed: detailed_exitcode,
                max_removals,
                show_pending,
                markdown_budget,
                markdown_out,
                full_plan_url,
            };
            let several = files.len() > 1 || files::names_a_directory(&files);
            let files = files::expand(&files)?;
            plan_cmd(g, &files, &args, several).await
        }
        Command::Apply {
            files,
            auto_approve,
            max_removals,
            allow_self_removal,
            source,
            format,
            quiet,
        } => {
            let options = ApplyOptions {
                auto_approve,
                max_removals,
                allow_self_removal,
                format,
                source,
                quiet,
            };
            let files = files::expand(&files)?;
            apply_cmd(g, &files, options).await
        }
        Command::Export { team } => export(g, &team).await,
        Command::Audit {
            team,
            actor,
            action,
            subject,
            since,
            until,
            source,
            request_id,
            format,
        } => {
            let filters = [
                ("actor", actor),
                ("action", action),
                ("subject", subject),
                ("since", since),
                ("until", until),
                ("source", source),
                ("request_id", request_id),
            ];
            audit(g, &team, &filters, format).await
        }
        Command::Catalog { preset, format } => catalog_cmd(g, preset.as_deref(), format).await,
        Command::Show {
            file,
            format,
            show_pending,
            markdown_budget,
        } => show(g, &file, format, show_pending, markdown_budget),
        Command::Schema => {
            let schema = crate::schema::team_schema_text()?;
            print!("{schema}");
            Ok(EXIT_OK)
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "teamform", &mut std::io::stdout());
            Ok(EXIT_OK)
        }
        Command::Serve {
            addr,
            store,
            public_url,
            owner,
            oidc_issuer,
            oidc_audience,
            events_file,
            webhook,
            webhook_secret_file,
        } => {
            let options = crate::serve::ServeOptions {
                addr,
                store,
                public_url,
                owner,
                oidc_issuer,
                oidc_audience,
                events_file,
                webhook,
                webhook_secret_file,
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

fn validate(g: &Global, files: &[PathBuf], format: OutputFormat, several: bool) -> Result<u8> {
    let text = format == OutputFormat::Text;
    let mut results: Vec<Value> = Vec::new();
    let (mut good, mut bad) = (0usize, 0usize);
    for file in files {
        let name = file.display().to_string();
        let source = match read(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e:#}");
                bad += 1;
                results.push(json!({"file": name, "ok": false, "errors": [{"file": name, "message": format!("{e:#}")}]}));
                continue;
            }
        };
        let catalog = match local_catalog(g, declared_catalog(&source).as_deref()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{name}: {e:#}");
                bad += 1;
                results.push(json!({"file": name, "ok": false, "errors": [{"file": name, "message": format!("{e:#}")}]}));
                continue;
            }
        };
        match TeamSpec::parse(&name, &source, &catalog) {
            Ok(spec) => {
                good += 1;
                if text {
                    println!(
                        "{name}: ok (team {}, owner {}, {} members, catalog {})",
                        spec.team,
                        spec.owner,
                        spec.members.len(),
                        catalog.name
                    );
                }
                results.push(json!({
                    "file": name,
                    "ok": true,
                    "team": spec.team.as_str(),
                    "owner": spec.owner.as_str(),
                    "members": spec.members.len(),
                    "catalog": catalog.name,
                }));
            }
            Err(diags) => {
                bad += 1;
                for d in &diags.0 {
                    eprintln!("{d}");
                }
                eprintln!("{name}: {} error(s)", diags.0.len());
                let errors: Vec<Value> = diags
                    .0
                    .iter()
                    .map(|d| {
                        json!({
                            "file": d.file,
                            "line": d.loc.line,
                            "column": d.loc.col,
                            "message": d.message,
                        })
                    })
                    .collect();
                results.push(json!({"file": name, "ok": false, "errors": errors}));
            }
        }
    }
    match format {
        OutputFormat::Text if several => {
            println!(
                "Validated {} file(s): {good} ok, {bad} with errors.",
                files.len()
            );
        }
        OutputFormat::Text => {}
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "kind": "teamform-validation",
                "ok": bad == 0,
                "files": results,
            }))?
        ),
    }
    Ok(if bad == 0 { EXIT_OK } else { EXIT_ERROR })
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
    let source: Arc<str> = read(file)?.into();
    let (client, catalog) = connect(g, declared_catalog(&source).as_deref()).await?;
    // The file is read on a blocking thread while the live team it names in
    // its header is fetched: on two cores (or across a network) the two
    // overlap, and a large team's plan takes the longer of them, not both.
    let parse = {
        let (name, source, catalog) = (file.display().to_string(), source.clone(), catalog.clone());
        tokio::task::spawn_blocking(move || TeamSpec::parse(&name, &source, &catalog))
    };
    let named =
        teamform_core::yaml::top_level_string(&source, "team").and_then(|t| TeamId::parse(&t).ok());
    let early = match &named {
        Some(team) => Some(client.state(team).await),
        None => None,
    };
    let spec = parse
        .await
        .map_err(|e| anyhow!("reading {}: {e}", file.display()))?
        .map_err(|d| anyhow!("{d}"))?;
    let now = Utc::now();
    // The early read is the live team only if the file named it (the
    // header's `team` is what the reader took, unless it was invalid).
    let live = match early {
        Some(read) if named.as_ref() == Some(&spec.team) => read,
        _ => client.state(&spec.team).await,
    }
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

/// What `plan` was told beyond its files.
#[derive(Debug)]
struct PlanArgs {
    out: Option<PathBuf>,
    format: Format,
    detailed: bool,
    max_removals: Option<RemovalLimit>,
    show_pending: bool,
    markdown_budget: usize,
    markdown_out: Option<PathBuf>,
    full_plan_url: Option<String>,
}

async fn plan_cmd(g: &Global, files: &[PathBuf], args: &PlanArgs, several: bool) -> Result<u8> {
    if args.out.is_some() && files.len() != 1 {
        bail!("--out saves the plan of exactly one file");
    }
    let color = color_enabled(g);
    let mut planned: Vec<(String, Planned)> = Vec::new();
    let mut failures: Vec<(String, String)> = Vec::new();
    for file in files {
        let name = file.display().to_string();
        match plan_file(g, file, args.max_removals, args.format == Format::Markdown).await {
            Ok(p) => planned.push((name, p)),
            Err(e) => {
                eprintln!("{e:#}");
                failures.push((name, format!("{e:#}")));
            }
        }
    }
    if args.format != Format::Text {
        // The document on stdout is for a machine or a comment; a person
        // watching the run still sees why it fails.
        for (_, p) in &planned {
            if let Some(why) = p.plan.refusal() {
                eprintln!("team {}: refused: {why}", p.plan.team);
            }
        }
    }
    match args.format {
        Format::Text => {
            for (_, p) in &planned {
                print_plan(p, Format::Text, color);
            }
            if several {
                println!("{}", total_line(&planned, failures.len()));
            }
        }
        Format::Markdown => {
            let several = planned.len() + failures.len() > 1;
            let sections: Vec<markdown::Section<'_>> = planned
                .iter()
                .map(|(file, p)| markdown::Section {
                    file: several.then_some(file.as_str()),
                    plan: &p.plan,
                    live_yaml: &p.live_yaml,
                    desired_yaml: &p.desired_yaml,
                })
                .collect();
            let failed: Vec<markdown::Failure<'_>> = failures
                .iter()
                .map(|(file, message)| markdown::Failure { file, message })
                .collect();
            let full_plan = match (&args.full_plan_url, &args.markdown_out, &args.out) {
                (Some(url), _, _) => Some(format!("[the full plan]({url})")),
                (None, Some(md), _) => {
                    Some(format!("`{}`", md.display().to_string().replace('`', "'")))
                }
                (None, None, Some(json)) => Some(format!(
                    "`{}`",
                    json.display().to_string().replace('`', "'")
                )),
                (None, None, None) => None,
            };
            let budget = (args.markdown_budget > 0).then_some(args.markdown_budget);
            let options = markdown::Options { budget, full_plan };
            let shown = markdown::comment(&sections, &failed, &options);
            print!("{}", ensure_newline(shown.text));
            if let Some(path) = &args.markdown_out {
                let full = markdown::comment(&sections, &failed, &markdown::Options::default());
                std::fs::write(path, ensure_newline(full.text))
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
        }
        Format::Json if !several => {
            for (_, p) in &planned {
                let json = render::plan_json_with(&p.plan, args.show_pending);
                println!("{}", serde_json::to_string_pretty(&json)?);
            }
        }
        Format::Json => {
            let plans: Vec<Value> = planned
                .iter()
                .map(|(file, p)| {
                    let mut json = render::plan_json_with(&p.plan, args.show_pending);
                    if let Value::Object(fields) = &mut json {
                        fields.insert("file".into(), Value::from(file.as_str()));
                    }
                    json
                })
                .collect();
            let failed: Vec<Value> = failures
                .iter()
                .map(|(file, error)| json!({"file": file, "error": error}))
                .collect();
            let total = totals(planned.iter().map(|(_, p)| &p.plan));
            let doc = json!({
                "kind": "teamform-plans",
                "format_version": teamform_core::plan::FORMAT_VERSION,
                "counts": {
                    "add": total.add,
                    "change": total.change,
                    "remove": total.remove,
                    "transfer": total.transfer,
                },
                "refused": planned.iter().filter(|(_, p)| p.plan.refusal().is_some()).count(),
                "plans": plans,
                "failures": failed,
            });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
    }
    let any_changes = planned.iter().any(|(_, p)| !p.plan.is_empty());
    let failed = !failures.is_empty() || planned.iter().any(|(_, p)| p.plan.refusal().is_some());
    if let (Some(out), Some((_, p))) = (&args.out, planned.into_iter().next()) {
        let saved = SavedPlan {
            kind: SAVED_KIND.into(),
            catalog: p.catalog.name.clone(),
            plan: p.plan,
        };
        let text = serde_json::to_string_pretty(&saved)?;
        std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
        eprintln!(
            "Saved the plan to {}. Apply it with: teamform apply {}",
            out.display(),
            out.display()
        );
    }
    Ok(if failed {
        EXIT_ERROR
    } else if args.detailed && any_changes {
        EXIT_CHANGES
    } else {
        EXIT_OK
    })
}

/// The counts of several plans added up.
fn totals<'a>(plans: impl Iterator<Item = &'a Plan>) -> teamform_core::plan::Counts {
    let mut total = teamform_core::plan::Counts::default();
    for plan in plans {
        let c = plan.counts();
        total.add += c.add;
        total.change += c.change;
        total.remove += c.remove;
        total.transfer += c.transfer;
    }
    total
}

/// One summary for several files: the counts added up, then how many teams
/// have changes, were refused, and how many files failed.
fn total_line(planned: &[(String, Planned)], failed: usize) -> String {
    let total = totals(planned.iter().map(|(_, p)| &p.plan));
    let line = render::summary_line(total);
    let changed = planned.iter().filter(|(_, p)| !p.plan.is_empty()).count();
    let refused = planned
        .iter()
        .filter(|(_, p)| p.plan.refusal().is_some())
        .count();
    format!(
        "\nTotal for {} file(s): {} {changed} team(s) with changes, {refused} refused, {failed} file(s) failed.",
        planned.len() + failed,
        line.replacen("Plan: ", "", 1)
    )
}

/// `teamform show`: a saved plan rendered as `plan` would have, minus the
/// YAML diff (a saved plan holds the changes, not the files).
fn show(
    g: &Global,
    file: &Path,
    format: Format,
    show_pending: bool,
    markdown_budget: usize,
) -> Result<u8> {
    let source = read(file)?;
    let saved = load_saved(&source).ok_or_else(|| {
        anyhow!(
            "{} is not a plan saved with `teamform plan --out`",
            file.display()
        )
    })?;
    let plan = &saved.plan;
    match format {
        Format::Text => print!(
            "{}",
            ensure_newline(render::plan_text(plan, color_enabled(g)))
        ),
        Format::Markdown => {
            let section = markdown::Section {
                file: None,
                plan,
                live_yaml: "",
                desired_yaml: "",
            };
            let options = markdown::Options {
                budget: (markdown_budget > 0).then_some(markdown_budget),
                full_plan: None,
            };
            let shown = markdown::comment(&[section], &[], &options);
            print!("{}", ensure_newline(shown.text));
        }
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&render::plan_json_with(plan, show_pending))?
        ),
    }
    Ok(EXIT_OK)
}

fn load_saved(source: &str) -> Option<SavedPlan> {
    let saved: SavedPlan = serde_json::from_str(source).ok()?;
    (saved.kind == SAVED_KIND).then_some(saved)
}

/// What `apply` was told beyond its files.
#[derive(Debug, Clone)]
struct ApplyOptions {
    auto_approve: bool,
    max_removals: Option<RemovalLimit>,
    allow_self_removal: bool,
    format: OutputFormat,
    /// The note sent as `Teamform-Source: apply; NOTE`.
    source: Option<String>,
    quiet: bool,
}

/// How applying one file ended, for the JSON document. The plan is
/// rendered into it only for that document (`with_plan`): text output
/// counts statuses only, and a plan of 100,000 changes as JSON values
/// would be the largest thing an apply holds.
fn outcome(
    file: &str,
    plan: Option<&Plan>,
    status: &str,
    with_plan: bool,
) -> serde_json::Map<String, Value> {
    let mut fields = serde_json::Map::new();
    fields.insert("file".into(), Value::from(file));
    fields.insert("status".into(), Value::from(status));
    if let Some(plan) = plan.filter(|_| with_plan) {
        fields.insert("team".into(), Value::from(plan.team.as_str()));
        fields.insert("plan".into(), render::plan_json(plan));
    }
    fields
}

async fn apply_cmd(g: &Global, files: &[PathBuf], options: ApplyOptions) -> Result<u8> {
    let ApplyOptions {
        auto_approve,
        max_removals,
        allow_self_removal,
        format,
        source: note,
        quiet,
    } = options;
    let source_header = crate::client::source_header(note.as_deref())?;
    let text = format == OutputFormat::Text;
    if !text && !auto_approve {
        bail!("apply --format json does not ask for confirmation: pass --auto-approve");
    }
    let color = color_enabled(g);
    let mut code = EXIT_OK;
    let mut results: Vec<Value> = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let mut fail = |status: &str, plan: Option<&Plan>, error: String| {
            eprintln!("{error}");
            let mut fields = outcome(&name, plan, status, !text);
            fields.insert("error".into(), Value::from(error));
            results.push(Value::Object(fields));
        };
        let source = match read(file) {
            Ok(s) => s,
            Err(e) => {
                fail("error", None, format!("{e:#}"));
                code = EXIT_ERROR;
                continue;
            }
        };
        let planned = match load_saved(&source) {
            Some(saved) => connect(g, Some(&saved.catalog))
                .await
                .map(|(client, catalog)| Planned {
                    client,
                    catalog,
                    plan: saved.plan,
                    live_yaml: String::new(),
                    desired_yaml: String::new(),
                }),
            None => plan_file(g, file, max_removals, false).await,
        };
        let mut planned = match planned {
            Ok(p) => p,
            Err(e) => {
                fail("error", None, format!("{e:#}"));
                code = EXIT_ERROR;
                continue;
            }
        };
        if let Some(limit) = max_removals {
            let guard = &mut planned.plan.removals;
            guard.limit = limit;
            guard.source = LimitSource::Flag;
            guard.allowed = limit.allowed(guard.members);
        }
        let plan = &planned.plan;
        if text {
            print_plan(&planned, Format::Text, color);
        }
        if plan.is_empty() {
            results.push(Value::Object(outcome(
                &name,
                Some(plan),
                "no_changes",
                !text,
            )));
            continue;
        }
        if let Some(why) = plan.refusal() {
            fail("refused", Some(plan), format!("Apply refused: {why}"));
            code = EXIT_ERROR;
            continue;
        }
        if !auto_approve && !confirm(&plan.team)? {
            fail("cancelled", Some(plan), "Apply cancelled.".into());
            code = EXIT_ERROR;
            continue;
        }
        let applier = Applier::new(planned.client.clone(), source_header.clone());
        let progress = Progress::new(
            plan.changes.len(),
            plan.changes.len().div_ceil(BATCH),
            quiet || !text,
        );
        let executed = execute(&applier, plan, allow_self_removal, &progress).await;
        progress.finish();
        match executed {
            Ok(done) => {
                let failed: Vec<Value> = done
                    .failures
                    .iter()
                    .map(|(change, why)| {
                        json!({
                            "change": render::change_line(change, plan.generated_at),
                            "error": why,
                        })
                    })
                    .collect();
                if done.failures.is_empty() {
                    if text {
                        println!(
                            "Apply complete: {} change(s) applied to team {} (now at version {}).",
                            done.applied, plan.team, done.version
                        );
                        println!("{}", progress::summary(&done.changes));
                    }
                } else {
                    code = EXIT_ERROR;
                    if text {
                        println!(
                            "Applied {} change(s) to team {}; {} failed:",
                            done.applied,
                            plan.team,
                            done.failures.len()
                        );
                        println!("{}", progress::summary(&done.changes));
                    }
                    for (change, why) in &done.failures {
                        let line = render::change_line(change, plan.generated_at);
                        eprintln!("  failed: {line}: {why}");
                    }
                }
                let status = if done.failures.is_empty() {
                    "applied"
                } else {
                    "partly_applied"
                };
                let mut fields = outcome(&name, Some(plan), status, !text);
                fields.insert("applied".into(), Value::from(done.applied));
                fields.insert("version".into(), Value::from(done.version));
                fields.insert("failures".into(), Value::Array(failed));
                results.push(Value::Object(fields));
            }
            Err(e) => {
                fail("error", Some(plan), format!("{e:#}"));
                code = EXIT_ERROR;
            }
        }
    }
    match format {
        OutputFormat::Text if files.len() > 1 => {
            let count = |status: &str| results.iter().filter(|r| r["status"] == status).count();
            println!(
                "\nApplied {} file(s): {} applied, {} without changes, {} with errors.",
                files.len(),
                count("applied"),
                count("no_changes"),
                files.len() - count("applied") - count("no_changes")
            );
        }
        OutputFormat::Text => {}
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "kind": "teamform-apply",
                "ok": code == EXIT_OK,
                "results": results,
            }))?
        ),
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

/// What `execute` did: changes applied, the version reached, and the
/// changes the service refused with its reason.
struct Executed {
    applied: usize,
    /// The changes applied, in order (for the per-kind summary).
    changes: Vec<Change>,
    version: u64,
    failures: Vec<(Change, String)>,
}

/// Sends the plan in atomic batches chained by version. A change the service
/// refuses is reported and left out, and the rest of its batch is sent again,
/// so one run reports every failing change; running apply again converges.
/// Stops at once when the team changed underneath (a stale plan).
async fn execute(
    client: &Applier,
    plan: &Plan,
    allow_self_removal: bool,
    progress: &Progress,
) -> Result<Executed> {
    let mut version = plan.base_version;
    let mut failures: Vec<(Change, String)> = Vec::new();
    let mut applied = 0;
    let mut changes: Vec<Change> = Vec::new();
    let mut done = 0;
    for (index, chunk) in plan.changes.chunks(BATCH).enumerate() {
        let before = applied;
        let mut pending: Vec<Change> = chunk.to_vec();
        while !pending.is_empty() {
            match client
                .apply(&plan.team, &pending, version, allow_self_removal)
                .await
            {
                Ok(result) => {
                    applied += result.applied;
                    version = result.version;
                    changes.append(&mut pending);
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
        done += chunk.len();
        progress.batch(index + 1, applied - before, done);
    }
    Ok(Executed {
        applied,
        changes,
        version,
        failures,
    })
}

async fn export(g: &Global, team: &str) -> Result<u8> {
    let team = TeamId::parse(team)?;
    let (client, _) = connect(g, None).await?;
    let yaml = crate::export::export(&client, &team)
        .await?
        .ok_or_else(|| anyhow!("team {team} does not exist at {}", client.describe))?;
    print!("{yaml}");
    Ok(EXIT_OK)
}

/// Reads the whole filtered trail page by page (the service reads a
/// bounded stretch per request) and prints it as it comes.
async fn audit(
    g: &Global,
    team: &str,
    filters: &[(&str, Option<String>)],
    format: crate::cli::AuditFormat,
) -> Result<u8> {
    let team = TeamId::parse(team)?;
    for (name, value) in filters {
        if let (true, Some(v)) = (matches!(*name, "since" | "until"), value)
            && v.parse::<teamform_core::Timestamp>().is_err()
        {
            bail!("--{name} {v:?} is not a time: write it as RFC 3339, e.g. 2026-11-30T09:00:00Z");
        }
    }
    let (client, _) = connect(g, None).await?;
    let mut query = String::new();
    for (name, value) in filters {
        if let Some(v) = value {
            query.push_str(&format!(
                "&{name}={}",
                teamform_functions::auth::oidc::form_encode(v)
            ));
        }
    }
    let mut cursor: Option<String> = None;
    let mut header = true;
    loop {
        let mut path = format!("/teams/{team}/audit?limit=1000{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!(
                "&cursor={}",
                teamform_functions::auth::oidc::form_encode(c)
            ));
        }
        let page = client.get(&path).await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let text = match format {
            crate::cli::AuditFormat::Jsonl => {
                teamform_functions::service::audit::write_jsonl(&items)
            }
            crate::cli::AuditFormat::Csv => {
                teamform_functions::service::audit::write_csv(&items, header)?
            }
        };
        header = false;
        print!("{text}");
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(EXIT_OK),
        }
    }
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
