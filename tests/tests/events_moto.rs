//! Team events on moto: audit items written by committed changes, delivered
//! as a DynamoDB stream event, are put on an EventBridge bus; a rule
//! matching `source: teamform` sends them to an SQS queue, read back: one
//! event per change, in version order, ids unique. A bus that refuses an
//! event stops the batch there and reports that record for retry.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::dynamodb::Event;
use serde_json::{Value, json};
use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::events::{Bus, CloudEvent, EventBridge, publish_stream};
use teamform_functions::service::{BatchOptions, Service};
use teamform_functions::store::sqlite::SqliteStore;
use teamform_functions::store::{Item, Store};
use teamform_tests::stream::record;
use teamform_tests::{moto_store, unique_table_name};

fn invite(email: &str) -> Change {
    Change::Invite {
        email: Email::parse(email).expect("email"),
        name: None,
        roles: [RoleName::parse("viewer").expect("role")].into(),
    }
}

/// A team with changes in three commits; returns its audit items.
async fn changes(store: Arc<dyn Store>, team: &TeamId) -> Vec<Item> {
    let svc = Service::new(
        store.clone(),
        Arc::new(Catalog::standard()),
        Arc::new(SystemClock),
        "https://app".into(),
    );
    let opts = BatchOptions::default();
    let create = Change::CreateTeam {
        display_name: "Events Co".into(),
        owner: Email::parse("boss@events.example").expect("email"),
    };
    let who = Principal::LocalOwner;
    svc.execute(
        team,
        &who,
        &[create, invite("a@events.example")],
        Some(0),
        &opts,
    )
    .await
    .expect("applied");
    svc.execute(team, &who, &[invite("b@events.example")], None, &opts)
        .await
        .expect("applied");
    svc.revoke_invitation(team, &who, &Email::parse("a@events.example").unwrap(), None)
        .await
        .expect("revoked");
    store
        .query_all(&format!("TEAM#{team}"), "AUDIT#")
        .await
        .expect("audit")
}

#[tokio::test]
async fn audit_items_on_the_stream_reach_a_queue_through_the_bus_once_each_in_order() {
    let store = moto_store("events").await;
    let team = TeamId::parse("eventsco").expect("id");
    let audit = changes(store.clone(), &team).await;
    assert_eq!(audit.len(), 4);
    let member = store
        .query_all("TEAM#eventsco", "MEMBER#")
        .await
        .expect("members");

    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let bridge = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let name = unique_table_name("events");
    let bus = bridge
        .create_event_bus()
        .name(&name)
        .send()
        .await
        .expect("bus");
    assert!(bus.event_bus_arn().is_some());
    let queue = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("queue");
    let queue_url = queue.queue_url().expect("queue url").to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    let queue_arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn")
        .to_owned();
    bridge
        .put_rule()
        .name("teamform-events")
        .event_bus_name(&name)
        .event_pattern(r#"{"source": ["teamform"]}"#)
        .send()
        .await
        .expect("rule");
    bridge
        .put_targets()
        .rule("teamform-events")
        .event_bus_name(&name)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&queue_arn)
                .build()
                .expect("target"),
        )
        .send()
        .await
        .expect("targets");

    // A member item and a removal on the stream are not changes.
    let mut records = vec![record(&member[0], 1, "INSERT")];
    for (i, item) in audit.iter().enumerate() {
        records.push(record(item, i + 2, "INSERT"));
    }
    records.push(record(&audit[0], 9, "REMOVE"));
    let event: Event = serde_json::from_value(json!({ "Records": records })).expect("event");
    let response = publish_stream(event, &EventBridge::new(bridge.clone(), &name)).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let mut received: Vec<Value> = Vec::new();
    for _ in 0..20 {
        let out = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        let batch = out.messages();
        if batch.is_empty() && received.len() >= audit.len() {
            break;
        }
        for m in batch {
            received.push(serde_json::from_str(m.body().expect("body")).expect("json"));
            sqs.delete_message()
                .queue_url(&queue_url)
                .receipt_handle(m.receipt_handle().expect("handle"))
                .send()
                .await
                .expect("delete");
        }
    }
    assert_eq!(
        received.len(),
        audit.len(),
        "one event per change: {received:?}"
    );
    let events: Vec<CloudEvent> = received
        .iter()
        .map(|envelope| {
            assert_eq!(envelope["source"], "teamform", "{envelope}");
            let e: CloudEvent =
                serde_json::from_value(envelope["detail"].clone()).expect("a CloudEvent");
            assert_eq!(envelope["detail-type"], e.kind.as_str());
            e
        })
        .collect();
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "eventsco/000000000001/0000",
            "eventsco/000000000001/0001",
            "eventsco/000000000002/0000",
            "eventsco/000000000003/0000",
        ],
        "in version order, ids unique"
    );
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "team.created",
            "team.member.invited",
            "team.member.invited",
            "team.invitation.revoked"
        ]
    );
    assert_eq!(events[2].subject.as_deref(), Some("b@events.example"));
    assert_eq!(events[3].data["actor_kind"], "local_owner");
}

/// A bus that records what it was given and refuses one event id.
struct Refusing {
    refuse: String,
    put: Mutex<Vec<String>>,
}

type PutFuture<'a> = Pin<Box<dyn Future<Output = Result<(), (usize, String)>> + Send + 'a>>;

// Written out by hand (the shape `#[async_trait]` expands to) because this
// crate does not depend on async-trait.
impl Bus for Refusing {
    fn put<'s, 'e, 'f>(&'s self, events: &'e [CloudEvent]) -> PutFuture<'f>
    where
        's: 'f,
        'e: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let mut put = self.put.lock().unwrap();
            for (i, e) in events.iter().enumerate() {
                if e.id == self.refuse {
                    return Err((i, "refused".into()));
                }
                put.push(e.id.clone());
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_refused_event_stops_the_batch_and_is_reported_for_retry() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let team = TeamId::parse("eventsco").expect("id");
    let audit = changes(store, &team).await;
    let records: Vec<Value> = audit
        .iter()
        .enumerate()
        .map(|(i, item)| record(item, i + 1, "INSERT"))
        .collect();
    let event: Event = serde_json::from_value(json!({ "Records": records })).expect("event");
    let bus = Refusing {
        refuse: "eventsco/000000000002/0000".into(),
        put: Mutex::default(),
    };
    let response = publish_stream(event, &bus).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, [format!("{:021}", 3)], "the refused event's record");
    assert_eq!(
        *bus.put.lock().unwrap(),
        ["eventsco/000000000001/0000", "eventsco/000000000001/0001"],
        "nothing after the refused one"
    );

    // An audit item that cannot be read is a failure too, never skipped.
    let mut broken = audit[1].clone();
    broken.attrs.remove("action");
    let event: Event = serde_json::from_value(json!({ "Records": [
        record(&audit[0], 1, "INSERT"),
        record(&broken, 2, "INSERT"),
        record(&audit[2], 3, "INSERT"),
    ] }))
    .expect("event");
    let bus = Refusing {
        refuse: String::new(),
        put: Mutex::default(),
    };
    let response = publish_stream(event, &bus).await;
    let failed: Vec<_> = response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(failed, [format!("{:021}", 2)]);
    assert_eq!(*bus.put.lock().unwrap(), ["eventsco/000000000001/0000"]);
}
