//! The mailer on moto: outbox items written by committed changes, delivered
//! as a DynamoDB stream event, are sent through SES v2 and then deleted; a
//! send that fails stops the batch and is reported for retry, its item kept,
//! and so does an outbox item that cannot be read.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::dynamodb::Event;
use serde_json::{Value, json};
use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::mail::mailer::{SendError, Sender, Ses, deliver};
use teamform_functions::service::{BatchOptions, Mail, Service};
use teamform_functions::store::Store;
use teamform_functions::store::sqlite::SqliteStore;
use teamform_tests::moto_store;
use teamform_tests::stream::record;

/// The messages moto's SES has accepted, from its own state dump.
async fn sent_messages() -> Vec<Value> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_SESV2")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL_DYNAMODB"))
        .expect("moto's endpoint: run scripts/test.sh");
    let data: Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .expect("moto state")
        .json()
        .await
        .expect("json");
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn invite(email: &str) -> Change {
    Change::Invite {
        email: Email::parse(email).expect("email"),
        name: None,
        roles: [RoleName::parse("viewer").expect("role")].into(),
    }
}

#[tokio::test]
async fn outbox_emails_go_through_ses_and_leave_the_outbox() {
    let store = moto_store("mailer").await;
    let svc = Service::new(
        store.clone(),
        Arc::new(Catalog::standard()),
        Arc::new(SystemClock),
        "https://app".into(),
    );
    let team = TeamId::parse("mailco").expect("id");
    let to = |n: usize| format!("mail{n}-{}@mailco.example", store.table());
    let changes = vec![
        Change::CreateTeam {
            display_name: "Mail Co".into(),
            owner: Email::parse("boss@mailco.example").expect("email"),
        },
        invite(&to(1)),
        invite(&to(2)),
    ];
    svc.execute(
        &team,
        &Principal::LocalOwner,
        &changes,
        Some(0),
        &BatchOptions::default(),
    )
    .await
    .expect("applied");
    let outbox = store
        .query_all("TEAM#mailco", "OUTBOX#")
        .await
        .expect("outbox");
    assert_eq!(outbox.len(), 2);
    let member = store
        .query_all("TEAM#mailco", "MEMBER#")
        .await
        .expect("members");

    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let ses_client = aws_sdk_sesv2::Client::new(&config);
    ses_client
        .create_email_identity()
        .email_identity("teamform.example")
        .send()
        .await
        .expect("identity");

    // A member item and a removal on the stream are not emails.
    let records = vec![
        record(&member[0], 1, "INSERT"),
        record(&outbox[0], 2, "INSERT"),
        record(&outbox[1], 3, "INSERT"),
        record(&outbox[0], 4, "REMOVE"),
    ];
    let event: Event =
        serde_json::from_value(json!({ "Records": records })).expect("a stream event");
    let before = sent_messages().await.len();
    let ses = Ses::new(ses_client.clone(), "noreply@teamform.example");
    let response = deliver(event, &ses, store.as_ref()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let sent = sent_messages().await;
    assert_eq!(
        sent.len() - before,
        2,
        "one email per outbox item, none for the others"
    );
    for n in [1, 2] {
        let mail = sent
            .iter()
            .find(|m| m["destinations"]["ToAddresses"][0] == to(n).as_str())
            .expect("sent to the invitee");
        assert_eq!(mail["source"], "noreply@teamform.example");
        assert!(
            mail["subject"]
                .as_str()
                .unwrap_or_default()
                .contains("invited"),
            "{mail}"
        );
        assert!(
            mail["body"]
                .as_str()
                .unwrap_or_default()
                .contains("/join?token=tfi_"),
            "{mail}"
        );
    }
    assert!(
        store
            .query_all("TEAM#mailco", "OUTBOX#")
            .await
            .expect("outbox")
            .is_empty(),
        "sent items leave the outbox"
    );

    // An unverified sender fails: the batch stops there and reports it.
    svc.execute(
        &team,
        &Principal::LocalOwner,
        &[invite(&to(3)), invite(&to(4))],
        None,
        &BatchOptions::default(),
    )
    .await
    .expect("applied");
    let outbox = store
        .query_all("TEAM#mailco", "OUTBOX#")
        .await
        .expect("outbox");
    let event: Event = serde_json::from_value(
        json!({ "Records": [record(&outbox[0], 5, "INSERT"), record(&outbox[1], 6, "INSERT")] }),
    )
    .expect("event");
    let unverified = Ses::new(ses_client, "noreply@unverified.example");
    let response = deliver(event, &unverified, store.as_ref()).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        [format!("{:021}", 5)],
        "stops at the first failure, reports it for retry"
    );
    assert_eq!(
        store
            .query_all("TEAM#mailco", "OUTBOX#")
            .await
            .expect("outbox")
            .len(),
        2,
        "nothing unsent is lost"
    );
}

/// A sender that only records what it was given.
#[derive(Default)]
struct Recorder(Mutex<Vec<Mail>>);

type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

// Written out by hand (the shape `#[async_trait]` expands to) because this
// crate does not depend on async-trait.
impl Sender for Recorder {
    fn send<'s, 'm, 'f>(&'s self, mail: &'m Mail) -> SendFuture<'f>
    where
        's: 'f,
        'm: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            if let Ok(mut sent) = self.0.lock() {
                sent.push(mail.clone());
            }
            Ok(())
        })
    }
}

/// Log lines written while the guard lives, for asserting what was logged.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = self.0.lock() {
            logs.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn an_unreadable_outbox_item_is_reported_for_retry_and_logged_never_dropped() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let store = Arc::new(SqliteStore::in_memory().expect("store"));
    let svc = Service::new(
        store.clone(),
        Arc::new(Catalog::standard()),
        Arc::new(SystemClock),
        "https://app".into(),
    );
    let team = TeamId::parse("mailco").expect("id");
    let changes = vec![
        Change::CreateTeam {
            display_name: "Mail Co".into(),
            owner: Email::parse("boss@mailco.example").expect("email"),
        },
        invite("one@mailco.example"),
        invite("two@mailco.example"),
    ];
    svc.execute(
        &team,
        &Principal::LocalOwner,
        &changes,
        Some(0),
        &BatchOptions::default(),
    )
    .await
    .expect("applied");
    let outbox = store
        .query_all("TEAM#mailco", "OUTBOX#")
        .await
        .expect("outbox");
    assert_eq!(outbox.len(), 2);
    let member = store
        .query_all("TEAM#mailco", "MEMBER#")
        .await
        .expect("members");
    // An outbox item whose recipient is not text: it cannot be sent as is.
    let mut unreadable = outbox[1].clone();
    unreadable.attrs.insert("to".into(), json!(42));

    let records = vec![
        record(&member[0], 1, "INSERT"),
        record(&outbox[0], 2, "INSERT"),
        record(&unreadable, 3, "INSERT"),
        record(&outbox[1], 4, "INSERT"),
    ];
    let event: Event =
        serde_json::from_value(json!({ "Records": records })).expect("a stream event");
    let sender = Recorder::default();
    let response = deliver(event, &sender, store.as_ref()).await;

    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failed,
        [format!("{:021}", 3)],
        "the unreadable item is reported, and the batch stops there"
    );
    let sent: Vec<String> = sender
        .0
        .lock()
        .map(|s| s.iter().map(|m| m.to.clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        sent,
        ["one@mailco.example"],
        "the member item is skipped quietly; nothing after the failure is sent"
    );
    let left = store
        .query_all("TEAM#mailco", "OUTBOX#")
        .await
        .expect("outbox");
    assert_eq!(left, outbox[1..], "the item kept for retry is still there");
    let logs = logs.text();
    let errors: Vec<&str> = logs.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{logs}");
    assert!(
        errors[0].contains("outbox item cannot be read") && errors[0].contains("to"),
        "{logs}"
    );
}
