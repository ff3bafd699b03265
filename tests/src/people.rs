//! People on `teamform serve`: a real OpenID Connect provider and `serve`
//! signing people in with it, the API as a person, the emailed links, and
//! the browser flows of tests/browser/flows.mjs in headless Chromium.

use std::path::Path;
use std::process::Command;

use reqwest::StatusCode;
use serde_json::Value;

use crate::cli::{Served, serve};
use crate::oidc::Provider;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A provider and `serve` signing people in with it.
pub fn start(dir: &Path) -> (Provider, Served) {
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/auth/callback");
    let provider = Provider::start(&["trusted"], &[&callback], 0);
    let addr = format!("127.0.0.1:{port}");
    let served = serve(
        dir,
        &[
            "--addr",
            &addr,
            "--owner",
            "olivia@acme.com",
            "--oidc-issuer",
            &provider.issuer,
            "--oidc-audience",
            "teamform,teamform-cli",
        ],
    );
    (provider, served)
}

pub fn link_in(outbox: &Path, to: &str, path: &str) -> String {
    for entry in std::fs::read_dir(outbox).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if text.contains(&format!("To: {to}")) && text.contains(path) {
            let at = text.find("http://").unwrap();
            let link: String = text[at..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            assert!(link.contains(path), "{link}");
            return link;
        }
    }
    panic!("no email to {to} with {path}");
}

pub async fn api(
    served: &Served,
    bearer: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method.parse().unwrap(), format!("{}{path}", served.url))
        .bearer_auth(bearer);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Runs one command of tests/browser/flows.mjs in headless Chromium and
/// returns the JSON it printed; panics with its output if it failed.
pub fn flows(command: &str, args: &Value) -> Value {
    let script = crate::cli::root().join("tests/browser/flows.mjs");
    let out = Command::new("node")
        .arg(&script)
        .arg(command)
        .arg(args.to_string())
        .output()
        .expect("node runs tests/browser/flows.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "flows.mjs {command} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("flows.mjs {command} printed {stdout:?}: {e}"))
}
