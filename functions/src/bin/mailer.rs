//! The `mailer` Lambda function: on the table's stream, sends outbox emails
//! through SES v2 from `TEAMFORM_MAIL_FROM`. Clients are built once at init.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use teamform_functions::init_json_logs;
use teamform_functions::mail::mailer::{Ses, deliver};
use teamform_functions::store::dynamodb::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_json_logs();
    let table = std::env::var("TEAMFORM_TABLE").map_err(|_| "TEAMFORM_TABLE is not set")?;
    let from = std::env::var("TEAMFORM_MAIL_FROM").map_err(|_| "TEAMFORM_MAIL_FROM is not set")?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ses = Arc::new(Ses::new(aws_sdk_sesv2::Client::new(&config), from));
    let store = Arc::new(DynamoStore::from_env(&table).await);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let (ses, store) = (ses.clone(), store.clone());
        async move {
            Ok::<_, lambda_runtime::Error>(
                deliver(event.payload, ses.as_ref(), store.as_ref()).await,
            )
        }
    }))
    .await
}
