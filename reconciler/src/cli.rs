//! Command-line flags. Parsing only: `run` turns them into work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use teamform_core::RemovalLimit;

#[derive(Debug, Parser)]
#[command(
    name = "teamform",
    version,
    about = "Manage who belongs to a team and what they may do, from team.yaml"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The team service to talk to; without it, the embedded store is used.
    #[arg(long, env = "TEAMFORM_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
    /// Bearer credential for --endpoint (an API key `tfk_...` or a personal token `tfp_...`).
    #[arg(long, env = "TEAMFORM_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// The embedded store used without --endpoint.
    #[arg(
        long,
        env = "TEAMFORM_STATE",
        global = true,
        default_value = ".teamform/state.db"
    )]
    pub state: PathBuf,
    /// Catalog for the embedded store: a preset (standard, ably, digitalocean) or a YAML file.
    /// Defaults to the file's `catalog:` field, else `standard`.
    #[arg(long, env = "TEAMFORM_CATALOG", global = true)]
    pub catalog: Option<String>,
    /// Never color the output (NO_COLOR is respected too).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check team.yaml files without contacting any service.
    Validate {
        /// Team files, and directories searched for them (every *.yaml or
        /// *.yml file with a top-level `team:` field).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `json`: one document with every file's result.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Show what apply would change. Never writes.
    Plan {
        /// Team files, and directories searched for them (every *.yaml or
        /// *.yml file with a top-level `team:` field).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Save the plan, bound to the live version, for `apply PLAN` (one file only).
        #[arg(long)]
        out: Option<PathBuf>,
        /// `markdown`: one pull-request comment for all the files; `json`:
        /// the plan, or for several files (or a directory) one document
        /// with every plan, the files that failed and the total counts.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Allow more removals than the default 25% of members: a count or a percentage.
        #[arg(long, value_parser = parse_limit)]
        max_removals: Option<RemovalLimit>,
        /// Most characters of `--format markdown` output (a pull-request
        /// comment); the longest groups of changes are cut to fit, each
        /// saying how many it leaves out. 0: no limit.
        #[arg(long, value_name = "N", default_value_t = crate::markdown::DEFAULT_BUDGET)]
        markdown_budget: usize,
        /// List every pending invitation in JSON (by default: their count and the oldest).
        #[arg(long)]
        show_pending: bool,
        /// Also write the full Markdown plan, without the budget, to FILE.
        #[arg(long, value_name = "FILE")]
        markdown_out: Option<PathBuf>,
        /// Where the full plan can be read (a CI run's page with the
        /// `--out`/`--markdown-out` artifacts); the Markdown links it when it
        /// leaves something out.
        #[arg(long, value_name = "URL")]
        full_plan_url: Option<String>,
    },
    /// Apply team.yaml files, or a plan saved with `plan --out`.
    Apply {
        /// Team files, directories searched for them, or plans saved with `plan --out`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Apply without asking.
        #[arg(long)]
        auto_approve: bool,
        /// Allow more removals than the default 25% of members: a count or a percentage.
        #[arg(long, value_parser = parse_limit)]
        max_removals: Option<RemovalLimit>,
        /// Let the plan remove the person whose token applies it (refused otherwise).
        #[arg(long)]
        allow_self_removal: bool,
        /// A note recorded with each change in the audit trail and its events
        /// (`commit abc123`), at most 200 characters.
        #[arg(long, value_name = "NOTE")]
        source: Option<String>,
        /// `json`: one document with each file's plan and outcome (needs --auto-approve).
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// No progress while applying (a bar on a terminal, else a line per batch);
        /// the plan and the summary are still printed.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print a team's live state as team.yaml.
    Export {
        /// The team to export.
        #[arg(long)]
        team: String,
    },
    /// Print a team's audit trail, oldest first, filtered.
    Audit {
        /// The team whose trail to print.
        #[arg(long)]
        team: String,
        /// Only records by this actor (`user:EMAIL`, `api-key:ID`, `local-owner`,
        /// `system:expiry`).
        #[arg(long)]
        actor: Option<String>,
        /// Only records of this action (`invite`, `change_roles`, ...).
        #[arg(long)]
        action: Option<String>,
        /// Only records about this person, role or API key.
        #[arg(long)]
        subject: Option<String>,
        /// Only records at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only records before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Only records from this source: `api`, `page` (the team pages), `apply`
        /// or `sweep` (recorded expiries).
        #[arg(long)]
        source: Option<String>,
        /// Only the records of the request with this id (its `x-request-id`).
        #[arg(long)]
        request_id: Option<String>,
        /// `jsonl`: one JSON record per line; `csv`: a header row, then one row per record.
        #[arg(long, value_enum, default_value_t = AuditFormat::Jsonl)]
        format: AuditFormat,
    },
    /// Print the roles x permissions matrix.
    Catalog {
        /// A preset to show instead of the service's catalog.
        #[arg(long)]
        preset: Option<String>,
        /// `text`: an aligned table; `markdown`: a table for a document; `json`: for machines.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Render a plan saved with `plan --out` (text, Markdown or JSON), without contacting any service.
    Show {
        /// The saved plan (JSON).
        file: PathBuf,
        /// `text` as plan prints it, `markdown` for a comment, `json` as `plan --format json`.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// List every pending invitation in JSON (by default: their count and the oldest).
        #[arg(long)]
        show_pending: bool,
        /// Most characters of `--format markdown` output; 0: no limit.
        #[arg(long, value_name = "N", default_value_t = crate::markdown::DEFAULT_BUDGET)]
        markdown_budget: usize,
    },
    /// Print the JSON Schema of team.yaml (for editors and validators), built
    /// from the fields the reader accepts.
    Schema,
    /// Print a shell completion script (e.g. `teamform completions bash > /etc/bash_completion.d/teamform`).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Run the team service locally over HTTP.
    Serve {
        /// Address and port to listen on (port 0: any free port, printed at start).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// `sqlite:PATH` (default: the --state file) or `dynamodb:TABLE`
        /// (in a build with the `dynamodb` feature).
        #[arg(long)]
        store: Option<String>,
        /// Base URL for links in emails.
        #[arg(long)]
        public_url: Option<String>,
        /// Mint the bootstrap token for this person instead of the local owner
        /// (owner of every team): they own only the teams they own. Required
        /// with `dynamodb:TABLE`.
        #[arg(long, value_name = "EMAIL")]
        owner: Option<String>,
        /// Sign people in with this OpenID Connect issuer: bearer JWTs it
        /// signs are accepted, and browsers sign in at `/signin`.
        #[arg(long, env = "TEAMFORM_OIDC_ISSUER", value_name = "URL")]
        oidc_issuer: Option<String>,
        /// The client id the issuer's tokens are for (comma separated for
        /// several; the first signs browsers in).
        #[arg(
            long,
            env = "TEAMFORM_OIDC_AUDIENCE",
            value_name = "CLIENT_ID",
            default_value = "teamform"
        )]
        oidc_audience: String,
        /// Append each committed change as a CloudEvents JSON line to this file.
        #[arg(long, value_name = "PATH")]
        events_file: Option<PathBuf>,
        /// POST each committed change as a signed CloudEvents event to this URL.
        #[arg(long, value_name = "URL")]
        webhook: Option<String>,
        /// The file holding the webhook's signing secret (or set
        /// TEAMFORM_WEBHOOK_SECRET to the secret itself).
        #[arg(long, value_name = "FILE", env = "TEAMFORM_WEBHOOK_SECRET_FILE")]
        webhook_secret_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

/// Output of commands that have no Markdown form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

fn parse_limit(s: &str) -> Result<RemovalLimit, String> {
    s.parse()
}
