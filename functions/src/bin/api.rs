//! The `api` Lambda function: the team service router behind API Gateway.
//! Clients are built once at init; logs are JSON lines carrying the request id.

use std::sync::Arc;

use teamform_functions::auth::oidc::{OidcConfig, Verifier};
use teamform_functions::clock::SystemClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::Service;
use teamform_functions::service::close::CloseSettings;
use teamform_functions::store::dynamodb::DynamoStore;
use teamform_functions::{catalog_from_env, init_json_logs};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    init_json_logs();
    let table = std::env::var("TEAMFORM_TABLE").map_err(|_| "TEAMFORM_TABLE is not set")?;
    let catalog = catalog_from_env().map_err(|e| e.to_string())?;
    let public_url = std::env::var("TEAMFORM_PUBLIC_URL").unwrap_or_default();
    let store = DynamoStore::from_env(&table).await;
    let service = Service::new(
        Arc::new(store),
        Arc::new(catalog),
        Arc::new(SystemClock),
        public_url,
    )
    .with_close_settings(CloseSettings::from_env()?);
    let service = Arc::new(service);
    let mut state = AppState::new(service.clone(), Anonymous::Refused);
    if let Some(config) = OidcConfig::from_env()? {
        state = state.with_oidc(Verifier::new(config));
    }
    let router = app(state).layer(axum::middleware::from_fn(
        teamform_functions::lambda_request_span,
    ));
    lambda_http::run(router).await
}
