//! `teamform serve`: the team service router on a local socket, over the
//! embedded SQLite store or DynamoDB. Every request needs a credential; on
//! first start a personal token for the local owner is printed, once.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use teamform_core::TeamId;
use teamform_functions::api::{Anonymous, AppState, app};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::service::{Mail, MailSink, Service};
use teamform_functions::store::Store;
use teamform_functions::store::dynamodb::DynamoStore;
use teamform_functions::store::sqlite::SqliteStore;

use crate::cli::Global;

/// Prints each email and keeps a copy under the outbox directory.
struct PrintMail(PathBuf);

impl MailSink for PrintMail {
    fn deliver(&self, team: &TeamId, mails: &[Mail]) {
        let _ = std::fs::create_dir_all(&self.0);
        for (i, mail) in mails.iter().enumerate() {
            eprintln!(
                "--- email to {} ({team}) ---\nSubject: {}\n\n{}",
                mail.to, mail.subject, mail.body
            );
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f");
            let _ = std::fs::write(
                self.0.join(format!("{stamp}-{i}-{team}.eml")),
                format!(
                    "To: {}\nSubject: {}\n\n{}",
                    mail.to, mail.subject, mail.body
                ),
            );
        }
    }
}

pub async fn serve(
    g: &Global,
    addr: &str,
    store: Option<&str>,
    public_url: Option<String>,
) -> Result<u8> {
    let catalog = match g.catalog.as_deref() {
        Some(c) => teamform_functions::load_catalog(c).map_err(|e| anyhow!(e))?,
        None => teamform_functions::catalog_from_env().map_err(|e| anyhow!(e))?,
    };
    let store: Arc<dyn Store> = match store {
        Some(s) if s.starts_with("dynamodb:") => {
            let table = s.trim_start_matches("dynamodb:");
            let dynamo = DynamoStore::from_env(table).await;
            dynamo
                .create_table_if_missing()
                .await
                .with_context(|| format!("cannot prepare table {table}"))?;
            Arc::new(dynamo)
        }
        Some(s) => {
            let path = PathBuf::from(s.trim_start_matches("sqlite:"));
            Arc::new(
                SqliteStore::open(&path)
                    .with_context(|| format!("cannot open {}", path.display()))?,
            )
        }
        None => Arc::new(
            SqliteStore::open(&g.state)
                .with_context(|| format!("cannot open {}", g.state.display()))?,
        ),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let url = public_url.unwrap_or_else(|| format!("http://{local}"));
    let outbox = g
        .state
        .parent()
        .map(|p| p.join("outbox"))
        .unwrap_or_else(|| PathBuf::from(".teamform/outbox"));
    let service = Service::new(store, Arc::new(catalog.clone()), Arc::new(SystemClock), url)
        .with_mail_sink(Arc::new(PrintMail(outbox)))
        .with_local_owner_tokens();
    let service = Arc::new(service);
    println!(
        "teamform serve: catalog {}, listening on http://{local}",
        catalog.name
    );
    if !service.has_local_owner_token().await? {
        let created = service
            .create_token(&Principal::LocalOwner, "bootstrap (local owner)", None)
            .await?;
        println!(
            "bootstrap token for the local owner (shown once, stored hashed): {}",
            created.secret
        );
    }
    let router = app(AppState::new(service, Anonymous::Refused));
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("server failed")?;
    Ok(0)
}
