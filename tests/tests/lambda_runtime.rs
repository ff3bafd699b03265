//! The `api` bootstrap run as Lambda runs it: a process talking to a runtime
//! API (here a small fake on loopback), fed API Gateway v2 events. Checks the
//! answers, that every log line is JSON carrying the invocation's request id,
//! and that a 5xx says nothing internal while the log says what failed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::collections::VecDeque;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::Value;
use teamform_tests::cli::{lambda_bin, root};
use tokio::sync::mpsc;

#[derive(Clone)]
struct Runtime {
    events: Arc<Mutex<VecDeque<(String, String)>>>,
    answers: mpsc::UnboundedSender<(String, Value)>,
}

async fn next(State(rt): State<Runtime>) -> impl IntoResponse {
    let event = rt.events.lock().ok().and_then(|mut q| q.pop_front());
    let Some((id, body)) = event else {
        // No more work: hold the request, as the real runtime API does.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return (StatusCode::NO_CONTENT, HeaderMap::new(), String::new());
    };
    let mut h = HeaderMap::new();
    let set = |h: &mut HeaderMap, k: &'static str, v: &str| {
        h.insert(k, v.parse().expect("header"));
    };
    set(&mut h, "lambda-runtime-aws-request-id", &id);
    set(&mut h, "lambda-runtime-deadline-ms", "4102444800000");
    set(
        &mut h,
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:api",
    );
    set(
        &mut h,
        "lambda-runtime-trace-id",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
    );
    (StatusCode::OK, h, body)
}

async fn respond(State(rt): State<Runtime>, Path(id): Path<String>, body: String) -> StatusCode {
    let _ = rt.answers.send((
        id,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    ));
    StatusCode::ACCEPTED
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(root().join("functions/tests/fixtures/apigw-v2").join(name))
        .expect("fixture")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bootstrap_answers_api_gateway_events_and_logs_json_with_request_ids() {
    let bin = lambda_bin();
    let (tx, mut answers) = mpsc::unbounded_channel();
    let events = VecDeque::from([
        (
            "req-health".to_owned(),
            fixture("healthz-no-authorizer.json"),
        ),
        (
            "req-anonymous".to_owned(),
            fixture("state-no-credentials.json"),
        ),
        // A verified person, but the table does not exist: the service fails.
        ("req-broken".to_owned(), fixture("state-jwt-owner.json")),
    ]);
    let rt = Runtime {
        events: Arc::new(Mutex::new(events)),
        answers: tx,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(respond),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(respond))
        .with_state(rt);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    let started = Instant::now();
    let mut child = Command::new(bin)
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "api")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/api")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("TEAMFORM_TABLE", "no-such-table-for-lambda-test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        // Nothing listens here: the store fails fast, as an outage would.
        .env("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bootstrap starts");

    let mut got = Vec::new();
    while got.len() < 3 {
        let answer = tokio::time::timeout(Duration::from_secs(60), answers.recv())
            .await
            .expect("an answer in time");
        got.push(answer.expect("runtime open"));
    }
    let cold_and_three = started.elapsed();
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");

    let by_id = |id: &str| {
        got.iter()
            .find(|(i, _)| i == id)
            .map(|(_, v)| v.clone())
            .expect("answered")
    };
    let health = by_id("req-health");
    assert_eq!(health["statusCode"], 200, "{health:#}");
    let anonymous = by_id("req-anonymous");
    assert_eq!(anonymous["statusCode"], 401);
    assert_eq!(
        anonymous["headers"]["content-type"],
        "application/problem+json"
    );
    let broken = by_id("req-broken");
    assert_eq!(broken["statusCode"], 500, "{broken:#}");
    let body: Value =
        serde_json::from_str(broken["body"].as_str().unwrap_or("{}")).expect("problem body");
    assert_eq!(body["code"], "internal");
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "nothing internal leaks: {body}"
    );

    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|_| panic!("a log line that is not JSON: {l}"))
        })
        .collect();
    for id in ["req-health", "req-anonymous", "req-broken"] {
        assert!(
            lines
                .iter()
                .any(|l| l["span"]["request_id"] == id && l["fields"]["message"] == "handled"),
            "a `handled` line for {id}:\n{stdout}"
        );
    }
    for line in lines.iter().filter(|l| l["span"].is_object()) {
        assert!(
            line["span"]["request_id"].is_string(),
            "request id on every request line: {line}"
        );
    }
    let failure = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .unwrap_or_else(|| panic!("the failure is logged:\n{stdout}"));
    assert_eq!(failure["span"]["request_id"], "req-broken", "{failure}");
    eprintln!("cold start and three invocations (debug build): {cold_and_three:?}");
}
