//! The `events` Lambda function: on the table's stream, puts one CloudEvents
//! event per new audit item on the EventBridge bus `TEAMFORM_EVENT_BUS`
//! (`events::publish_stream`). The client is built once at init.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event;
use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use teamform_functions::events::{EventBridge, publish_stream};
use teamform_functions::init_json_logs;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_json_logs();
    let bus = std::env::var("TEAMFORM_EVENT_BUS").map_err(|_| "TEAMFORM_EVENT_BUS is not set")?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let bridge = Arc::new(EventBridge::new(
        aws_sdk_eventbridge::Client::new(&config),
        bus,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| {
        let bridge = bridge.clone();
        async move {
            Ok::<_, lambda_runtime::Error>(publish_stream(event.payload, bridge.as_ref()).await)
        }
    }))
    .await
}
