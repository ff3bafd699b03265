//! `teamform serve`: the team service router on a local socket, over the
//! embedded SQLite store or DynamoDB. Every request needs a credential; on
//! first start a personal token is printed on stdout, once: the local
//! owner's over SQLite, or the `--owner` person's.
//!
//! A token that owns every team (the local owner's) is honoured only over a
//! SQLite file this host serves, never over DynamoDB, whose table others may
//! share. Logs go to stderr through `tracing`; they must never carry an
//! email's body or any link secret: mail is written to the outbox directory
//! beside the store and only its path and recipient are logged. Mail is
//! delivered from the committed outbox items, after each change and, for
//! what a killed run left, at start. Every hour (and at start) it deletes
//! the closed teams whose grace period ended, archiving their audit trails
//! beside the store (`<store>.archive/`).
//!
//! With `--events-file` and/or `--webhook`, each committed change is
//! published as a CloudEvents event (`teamform_functions::events`), from a
//! cursor per target kept in the store: after each change and, for what an
//! earlier run left, at start.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use teamform_core::Email;
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::events::{JsonlFile, LocalEvents, Retry, Target, Webhook};
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::mail::OutboxDir;
use teamform_functions::service::Service;
use teamform_functions::service::close::{CloseSettings, DirArchive, spawn_sweeper};
use teamform_functions::store::Store;
#[cfg(feature = "dynamodb")]
use teamform_functions::store::dynamodb::DynamoStore;
use teamform_functions::store::sqlite::SqliteStore;
use tracing::Instrument;

use crate::cli::Global;

/// How often `serve` records expired invitations and deletes the closed
/// teams whose grace period ended.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// What `serve` was told beyond the global flags.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: String,
    /// `sqlite:PATH`, `dynamodb:TABLE`, or `None` for the `--state` file.
    pub store: Option<String>,
    pub public_url: Option<String>,
    /// The person whose bootstrap token is minted, instead of the local owner.
    pub owner: Option<String>,
    /// The OpenID Connect issuer people sign in with, and its client id(s).
    pub oidc_issuer: Option<String>,
    pub oidc_audience: String,
    /// Append events as JSON lines to this file.
    pub events_file: Option<PathBuf>,
    /// POST signed events to this URL.
    pub webhook: Option<String>,
    /// The webhook's secret, in a file (else `TEAMFORM_WEBHOOK_SECRET`).
    pub webhook_secret_file: Option<PathBuf>,
}

/// The event targets the flags name.
fn event_targets(
    events_file: Option<PathBuf>,
    webhook: Option<String>,
    secret_file: Option<PathBuf>,
) -> Result<Vec<Arc<dyn Target>>> {
    let mut targets: Vec<Arc<dyn Target>> = Vec::new();
    if let Some(path) = events_file {
        targets.push(Arc::new(JsonlFile::new(path)));
    }
    if let Some(url) = webhook {
        let parsed =
            reqwest::Url::parse(&url).with_context(|| format!("--webhook {url:?} is not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            bail!("--webhook {url:?}: only http and https URLs are posted to");
        }
        let secret = match secret_file {
            Some(file) => std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read --webhook-secret-file {}", file.display()))?,
            None => std::env::var("TEAMFORM_WEBHOOK_SECRET").map_err(|_| {
                anyhow!("--webhook needs a signing secret: --webhook-secret-file FILE or TEAMFORM_WEBHOOK_SECRET")
            })?,
        };
        let secret = secret.trim().to_owned();
        if secret.len() < 16 {
            bail!(
                "the webhook secret has {} characters; use at least 16",
                secret.len()
            );
        }
        targets.push(Arc::new(Webhook::new(url, secret.into_bytes())));
    }
    Ok(targets)
}

/// Where the state lives.
enum Backend {
    Sqlite(PathBuf),
    #[cfg(feature = "dynamodb")]
    Dynamo(String),
}

impl Backend {
    fn from_flag(g: &Global, store: Option<&str>) -> Result<Backend> {
        Ok(match store {
            Some(s) if s.starts_with("dynamodb:") => dynamo(s.trim_start_matches("dynamodb:"))?,
            Some(s) => Backend::Sqlite(PathBuf::from(s.trim_start_matches("sqlite:"))),
            None => Backend::Sqlite(g.state.clone()),
        })
    }

    /// Mail follows the SQLite file actually used; a DynamoDB store has no
    /// file, so its mail goes beside `--state`.
    #[cfg_attr(not(feature = "dynamodb"), allow(unused_variables))]
    fn outbox(&self, g: &Global) -> OutboxDir {
        match self {
            Backend::Sqlite(path) => OutboxDir::beside(path),
            #[cfg(feature = "dynamodb")]
            Backend::Dynamo(_) => OutboxDir::beside(&g.state),
        }
    }
}

#[cfg(feature = "dynamodb")]
fn dynamo(table: &str) -> Result<Backend> {
    Ok(Backend::Dynamo(table.to_owned()))
}

/// DynamoDB (and the AWS SDK) is compiled in only with the `dynamodb`
/// feature; a build without it says so rather than failing later.
#[cfg(not(feature = "dynamodb"))]
fn dynamo(table: &str) -> Result<Backend> {
    bail!(
        "--store dynamodb:{table}: this teamform was built without DynamoDB support; \
         build it with the `dynamodb` feature \
         (cargo build --locked -p teamform --features dynamodb)"
    )
}

/// Human-readable log lines on stderr, filtered by `RUST_LOG` (default
/// `info`): a 500 tells its client that the cause "has been logged", and this
/// is where.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Runs each request in a span naming its method and path (never its query,
/// where a link's secret may ride), so an error logged while handling it says
/// which request failed.
async fn request_span(req: Request, next: Next) -> Response {
    let span = tracing::info_span!("request", method = %req.method(), path = %req.uri().path());
    async move {
        let res = next.run(req).await;
        tracing::debug!(status = res.status().as_u16(), "handled");
        res
    }
    .instrument(span)
    .await
}

pub async fn serve(g: &Global, options: ServeOptions) -> Result<u8> {
    init_logs();
    let ServeOptions {
        addr,
        store,
        public_url,
        owner,
        oidc_issuer,
        oidc_audience,
        events_file,
        webhook,
        webhook_secret_file,
    } = options;
    let targets = event_targets(events_file, webhook, webhook_secret_file)?;
    let oidc = oidc_issuer
        .map(|issuer| {
            teamform_functions::auth::oidc::OidcConfig::new(&issuer, &oidc_audience)
                .map_err(|e| anyhow!(e))
        })
        .transpose()?;
    let catalog = match g.catalog.as_deref() {
        Some(c) => teamform_functions::load_catalog(c).map_err(|e| anyhow!(e))?,
        None => teamform_functions::catalog_from_env().map_err(|e| anyhow!(e))?,
    };
    let owner = owner
        .map(|o| Email::parse(&o).with_context(|| format!("--owner {o:?} is not an email")))
        .transpose()?;
    let backend = Backend::from_flag(g, store.as_deref())?;
    #[cfg(feature = "dynamodb")]
    if let (Backend::Dynamo(table), None) = (&backend, &owner) {
        bail!(
            "serve over DynamoDB (table {table}) needs a named owner: pass --owner EMAIL. \
             A token that owns every team is honoured only over a local SQLite file."
        );
    }
    let outbox = backend.outbox(g);
    let store: Arc<dyn Store> = match &backend {
        #[cfg(feature = "dynamodb")]
        Backend::Dynamo(table) => {
            let dynamo = DynamoStore::from_env(table).await;
            dynamo
                .create_table_if_missing()
                .await
                .with_context(|| format!("cannot prepare table {table}"))?;
            Arc::new(dynamo)
        }
        Backend::Sqlite(path) => Arc::new(
            SqliteStore::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        ),
    };
    // Bound before any token is minted: a token shown once must not be lost
    // to a busy port.
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let url = public_url.unwrap_or_else(|| format!("http://{local}"));
    tracing::info!(outbox = %outbox.dir().display(), "local mail goes to the outbox directory");
    deliver_left(&outbox, store.as_ref()).await;
    let mut service = Service::new(store, Arc::new(catalog.clone()), Arc::new(SystemClock), url)
        .with_mail_sink(Arc::new(outbox))
        .with_close_settings(CloseSettings::from_env()?);
    // Closed teams' audit trails: files beside a SQLite store; in the table
    // itself (with a TTL) over DynamoDB.
    #[cfg_attr(not(feature = "dynamodb"), allow(irrefutable_let_patterns))]
    if let Backend::Sqlite(path) = &backend {
        service = service.with_archive(Arc::new(DirArchive::beside(path)));
    }
    if owner.is_none() {
        service = service.with_local_owner_tokens();
    }
    if !targets.is_empty() {
        let events = LocalEvents::start(service.store().clone(), targets, Retry::default());
        match events.catch_up(service.store().as_ref()).await {
            Ok(teams) => tracing::info!(teams, "events are published from each team's cursor"),
            Err(error) => tracing::error!(%error, "cannot look for events an earlier run left"),
        }
        service = service.with_commit_listener(events);
    }
    let service = Arc::new(service);
    bootstrap(&service, owner).await?;
    let _sweeper = spawn_sweeper(service.clone(), SWEEP_EVERY);
    // The last line of start-up: everything printed before it is complete.
    println!(
        "teamform serve: catalog {}, listening on http://{local}",
        catalog.name
    );
    let mut state = AppState::new(service, Anonymous::Refused);
    if let Some(config) = oidc {
        tracing::info!(issuer = %config.issuer, "people sign in with OpenID Connect");
        state = state.with_oidc(teamform_functions::auth::oidc::Verifier::new(config));
    }
    let router = app(state).layer(axum::middleware::from_fn(request_span));
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("server failed")?;
    Ok(0)
}

/// Delivers the emails a previous run committed but did not deliver (it
/// stopped between a commit and its delivery). A store that cannot be read
/// is logged, not fatal: each team's next change delivers its own.
async fn deliver_left(outbox: &OutboxDir, store: &dyn Store) {
    match outbox.deliver_left(store).await {
        Ok(done) if done == Default::default() => {}
        Ok(done) => tracing::info!(
            sent = done.sent,
            left = done.left,
            "delivered the emails an earlier run left in the outbox"
        ),
        Err(error) => tracing::error!(%error, "cannot look for emails an earlier run left"),
    }
}

/// Mints the first token, once, and prints it on stdout: for the local owner
/// (owner of every team) when no owner is named, else for that person, who
/// is then an ordinary person, owner only of the teams they own.
async fn bootstrap(service: &Service, owner: Option<Email>) -> Result<()> {
    match owner {
        None => {
            if !service.has_local_owner_token().await? {
                let created = service
                    .create_token(&Principal::LocalOwner, "bootstrap (local owner)", None)
                    .await?;
                println!(
                    "bootstrap token for the local owner (shown once, stored hashed): {}",
                    created.secret
                );
            }
        }
        Some(email) => {
            // No second factor vouched for this token: a team that requires
            // 2FA refuses it, as it would a password-only sign-in.
            let person = Principal::person(email.clone());
            if service.list_tokens(&person).await?.is_empty() {
                let created = service
                    .create_token(&person, "bootstrap (serve --owner)", None)
                    .await?;
                println!(
                    "bootstrap token for {email} (shown once, stored hashed): {}",
                    created.secret
                );
            }
        }
    }
    Ok(())
}
