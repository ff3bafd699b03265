//! The mailer: sends the emails that changes wrote to the outbox. In AWS it
//! is a Lambda function on the table's stream, sending through SES v2; an
//! outbox item exists only if its change committed, so no email goes out for
//! a change that did not happen.
//!
//! Delivery is at least once: an item is deleted after its email was sent,
//! and a failure stops the batch at that record so that Lambda retries it and
//! everything after it (`ReportBatchItemFailures`), in order.

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_json::{Map, Value};

use crate::service::Mail;
use crate::store::{Condition, Store, Write};

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

/// Where emails go: SES v2 in AWS; tests may use their own.
#[async_trait]
pub trait Sender: Send + Sync {
    async fn send(&self, mail: &Mail) -> Result<(), SendError>;
}

/// Sends through SES v2 from one verified address.
pub struct Ses {
    client: aws_sdk_sesv2::Client,
    from: String,
}

impl Ses {
    pub fn new(client: aws_sdk_sesv2::Client, from: impl Into<String>) -> Self {
        Self {
            client,
            from: from.into(),
        }
    }
}

#[async_trait]
impl Sender for Ses {
    async fn send(&self, mail: &Mail) -> Result<(), SendError> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        let text = |s: &str| Content::builder().data(s).charset("UTF-8").build();
        let (subject, body) = match (text(&mail.subject), text(&mail.body)) {
            (Ok(s), Ok(b)) => (s, b),
            (Err(e), _) | (_, Err(e)) => return Err(SendError(e.to_string())),
        };
        let message = Message::builder()
            .subject(subject)
            .body(Body::builder().text(body).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&mail.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| SendError(aws_sdk_sesv2::error::DisplayErrorContext(e).to_string()))
    }
}

/// A DynamoDB-JSON attribute (`{"S": "x"}`, `{"N": "1"}`, ...) as plain JSON.
fn plain(attr: &Value) -> Option<Value> {
    let (kind, v) = attr.as_object()?.iter().next()?;
    Some(match kind.as_str() {
        "S" => v.clone(),
        "N" => v.as_str()?.parse::<i64>().ok()?.into(),
        "BOOL" => v.clone(),
        "NULL" => Value::Null,
        "L" => Value::Array(v.as_array()?.iter().filter_map(plain).collect()),
        "M" => Value::Object(
            v.as_object()?
                .iter()
                .filter_map(|(k, a)| Some((k.clone(), plain(a)?)))
                .collect(),
        ),
        _ => return None,
    })
}

/// An outbox item from a stream record's new image, with its key.
fn outbox_item(
    image: &aws_lambda_events::event::dynamodb::EventRecord,
) -> Option<(String, String, Mail)> {
    let json = serde_json::to_value(&image.change.new_image).ok()?;
    let attrs: Map<String, Value> = json
        .as_object()?
        .iter()
        .filter_map(|(k, a)| Some((k.clone(), plain(a)?)))
        .collect();
    if attrs.get("type")?.as_str()? != "outbox" {
        return None;
    }
    let text = |k: &str| attrs.get(k).and_then(Value::as_str).map(str::to_owned);
    Some((
        text("pk")?,
        text("sk")?,
        Mail {
            to: text("to")?,
            subject: text("subject")?,
            body: text("body")?,
        },
    ))
}

/// Sends the emails of newly written outbox items and deletes each item once
/// its email is out. Stops at the first failure and reports it.
pub async fn deliver(
    event: Event,
    sender: &dyn Sender,
    store: &dyn Store,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in &event.records {
        if record.event_name != "INSERT" {
            continue;
        }
        let Some((pk, sk, mail)) = outbox_item(record) else {
            continue;
        };
        let sent = match sender.send(&mail).await {
            Ok(()) => store
                .transact(vec![Write::Delete {
                    pk,
                    sk,
                    condition: Condition::None,
                }])
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = sent {
            tracing::error!(%error, to = %mail.to, "could not deliver an email; it will be retried");
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = record.change.sequence_number.clone();
            response.batch_item_failures.push(failure);
            break;
        }
        tracing::info!(to = %mail.to, subject = %mail.subject, "email sent");
    }
    response
}
