//! The `sweeper` Lambda function, on a schedule: records the expiry of every
//! invitation past its `expires_at` (an `expire_invitation` audit record,
//! published as an event), then deletes the teams whose grace period after
//! closing has ended, each after archiving its audit trail into the table
//! (items with a TTL of `TEAMFORM_AUDIT_RETENTION_DAYS`). One run does a
//! bounded amount of work; the next run resumes.

use std::sync::Arc;

use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};
use teamform_functions::clock::SystemClock;
use teamform_functions::service::Service;
use teamform_functions::service::close::CloseSettings;
use teamform_functions::store::dynamodb::DynamoStore;
use teamform_functions::{catalog_from_env, init_json_logs};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_json_logs();
    let table = std::env::var("TEAMFORM_TABLE").map_err(|_| "TEAMFORM_TABLE is not set")?;
    let catalog = catalog_from_env().map_err(|e| e.to_string())?;
    let settings = CloseSettings::from_env()?;
    let store = DynamoStore::from_env(&table).await;
    let service = Arc::new(
        Service::new(
            Arc::new(store),
            Arc::new(catalog),
            Arc::new(SystemClock),
            String::new(),
        )
        .with_close_settings(settings),
    );
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let service = service.clone();
        async move {
            let expired = service.sweep_expired(service.now()).await?;
            tracing::info!(
                recorded = expired.recorded,
                stale = expired.stale,
                unfinished = expired.unfinished,
                "recorded expired invitations"
            );
            let closed = service.sweep_closed(service.now()).await?;
            tracing::info!(
                deleted = closed.deleted.len(),
                items = closed.items_deleted,
                unfinished = closed.unfinished,
                "swept closed teams"
            );
            Ok::<_, lambda_runtime::Error>(json!({ "expired": expired, "closed": closed }))
        }
    }))
    .await
}
