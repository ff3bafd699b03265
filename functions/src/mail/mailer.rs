//! The mailer: sends the emails that changes wrote to the outbox. In AWS it
//! is a Lambda function on the table's stream, sending through SES v2; an
//! outbox item exists only if its change committed, so no email goes out for
//! a change that did not happen.
//!
//! Delivery is at least once: an item is deleted after its email was sent,
//! and a failure stops the batch at that record so that Lambda retries it and
//! everything after it (`ReportBatchItemFailures`), in order. An outbox item
//! that cannot be read is such a failure too, never a silent skip: dropping
//! it would lose the email. The mailer must never log a body (it carries
//! link secrets), and hands SES only a one-line subject and a parsed address.

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde_json::{Map, Value};

use crate::mail::single_line;
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
        let to = mail
            .to
            .parse::<lettre::message::Mailbox>()
            .map_err(|_| SendError(format!("not a mailbox: {:?}", mail.to)))?;
        let text = |s: &str| Content::builder().data(s).charset("UTF-8").build();
        let subject = single_line(&mail.subject);
        let (subject, body) = match (text(&subject), text(&mail.body)) {
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
            .destination(
                Destination::builder()
                    .to_addresses(to.email.to_string())
                    .build(),
            )
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

/// What a stream record's new image holds.
enum Record {
    /// Not an outbox item at all (a member, an audit record, ...).
    Other,
    /// An outbox item, with its key.
    Outbox { pk: String, sk: String, mail: Mail },
    /// Typed `outbox` but unreadable: its email would be lost if skipped.
    Unreadable(String),
}

/// A stream record's new image as plain JSON attributes.
pub(crate) fn plain_image(
    record: &aws_lambda_events::event::dynamodb::EventRecord,
) -> Option<Map<String, Value>> {
    serde_json::to_value(&record.change.new_image)
        .ok()
        .and_then(|json| {
            Some(
                json.as_object()?
                    .iter()
                    .filter_map(|(k, a)| Some((k.clone(), plain(a)?)))
                    .collect(),
            )
        })
}

/// Reads a stream record's new image.
fn read_record(record: &aws_lambda_events::event::dynamodb::EventRecord) -> Record {
    let Some(attrs) = plain_image(record) else {
        return Record::Other;
    };
    if attrs.get("type").and_then(Value::as_str) != Some("outbox") {
        return Record::Other;
    }
    let text = |k: &str| attrs.get(k).and_then(Value::as_str).map(str::to_owned);
    let missing: Vec<&str> = ["pk", "sk", "to", "subject", "body"]
        .into_iter()
        .filter(|k| text(k).is_none())
        .collect();
    match (
        text("pk"),
        text("sk"),
        text("to"),
        text("subject"),
        text("body"),
    ) {
        (Some(pk), Some(sk), Some(to), Some(subject), Some(body)) => Record::Outbox {
            pk,
            sk,
            mail: Mail { to, subject, body },
        },
        _ => Record::Unreadable(format!(
            "outbox item without text attribute(s) {}",
            missing.join(", ")
        )),
    }
}

/// Sends the emails of newly written outbox items and deletes each item once
/// its email is out. Stops at the first failure (a send, a delete, or an
/// outbox item that cannot be read) and reports it.
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
        let (pk, sk, mail) = match read_record(record) {
            Record::Other => continue,
            Record::Outbox { pk, sk, mail } => (pk, sk, mail),
            Record::Unreadable(error) => {
                tracing::error!(
                    %error,
                    sequence_number = ?record.change.sequence_number,
                    "an outbox item cannot be read; its email is kept for retry"
                );
                response.batch_item_failures.push(failure(record));
                break;
            }
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
            tracing::error!(%error, to = ?mail.to, "could not deliver an email; it will be retried");
            response.batch_item_failures.push(failure(record));
            break;
        }
        tracing::info!(to = ?mail.to, subject = %single_line(&mail.subject), "email sent");
    }
    response
}

/// The batch item failure that makes Lambda retry from this record on.
pub(crate) fn failure(
    record: &aws_lambda_events::event::dynamodb::EventRecord,
) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = record.change.sequence_number.clone();
    failure
}
