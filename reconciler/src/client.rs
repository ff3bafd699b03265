//! Talking to the team service: over HTTP to a remote endpoint, or to the
//! same router in-process over the embedded SQLite store. Both paths speak
//! the same HTTP requests, so a plan is the same wherever it is computed.

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde_json::Value;
use teamform_core::{Catalog, Change, TeamId, TeamState};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::mail::OutboxDir;
use teamform_functions::service::{Applied, Service, ServiceError};
use teamform_functions::store::StoreError;
use teamform_functions::store::sqlite::SqliteStore;
use tower::ServiceExt;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service answered with a problem.
    #[error("{detail} [{code}, HTTP {status}]")]
    Api {
        status: u16,
        code: String,
        detail: String,
        body: Value,
    },
    #[error("cannot reach {endpoint}: {message}")]
    Transport { endpoint: String, message: String },
    #[error("unexpected answer from the service: {0}")]
    Protocol(String),
    #[error("cannot open the embedded store at {path}: {message}")]
    Store { path: String, message: String },
}

impl ClientError {
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn change_index(&self) -> Option<usize> {
        match self {
            ClientError::Api { body, .. } => body.get("change_index")?.as_u64().map(|i| i as usize),
            _ => None,
        }
    }
}

#[derive(Clone)]
enum Transport {
    /// The router, and its service for the one read that skips HTTP (the
    /// whole team, see `Client::state`).
    InProcess(Router, Arc<Service>),
    Remote {
        base: String,
        token: Option<String>,
        http: reqwest::Client,
    },
}

/// The header naming where a change comes from (`apply; NOTE`).
const SOURCE_HEADER: &str = "teamform-source";

/// The `Teamform-Source` value of `teamform apply --source NOTE`: the note on
/// one line (control characters as spaces), at most 200 characters.
pub fn source_header(note: Option<&str>) -> anyhow::Result<String> {
    let Some(note) = note else {
        return Ok("apply".into());
    };
    let note = teamform_functions::mail::single_line(note);
    let max = teamform_functions::service::audit::MAX_SOURCE_NOTE;
    if note.chars().count() > max {
        anyhow::bail!(
            "--source has {} characters; at most {max} are recorded",
            note.chars().count()
        );
    }
    Ok(if note.is_empty() {
        "apply".into()
    } else {
        format!("apply; {note}")
    })
}

/// Reads the live service: the catalog, a team, any GET. It has no method
/// that writes; writing takes an [`Applier`], made from a `Client` only by
/// `apply` once a plan was shown and approved. So `plan`, `validate`,
/// `export` and `audit` cannot change a team, by type.
#[derive(Clone)]
pub struct Client {
    transport: Transport,
    /// `Teamform-Source` sent with every request, when set.
    source: Option<String>,
    /// Where the endpoint is, for messages.
    pub describe: String,
}

/// Builds the router over an embedded SQLite store, as a local service would,
/// first delivering the emails a previous run committed but did not deliver
/// (it was killed between a commit and its delivery).
pub async fn local_service(
    state: &Path,
    catalog: Catalog,
    public_url: &str,
) -> Result<Arc<Service>, ClientError> {
    let store_error = |e: StoreError| ClientError::Store {
        path: state.display().to_string(),
        message: e.to_string(),
    };
    let store = SqliteStore::open(state).map_err(store_error)?;
    let outbox = OutboxDir::beside(state);
    outbox.deliver_left(&store).await.map_err(store_error)?;
    let service = Service::new(
        Arc::new(store),
        Arc::new(catalog),
        Arc::new(SystemClock),
        public_url.to_owned(),
    )
    .with_mail_sink(Arc::new(outbox));
    Ok(Arc::new(service))
}

impl Client {
    /// The router in-process over SQLite at `state`, acting as the local owner.
    pub async fn in_process(state: &Path, catalog: Catalog) -> Result<Client, ClientError> {
        let service = local_service(state, catalog, "http://localhost").await?;
        let router = app(AppState::new(Arc::clone(&service), Anonymous::LocalOwner));
        Ok(Client {
            source: None,
            transport: Transport::InProcess(router, service),
            describe: format!("embedded store {}", state.display()),
        })
    }

    pub fn remote(endpoint: &str, token: Option<String>) -> Client {
        let base = endpoint.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .user_agent(concat!("teamform/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Client {
            source: None,
            describe: base.clone(),
            transport: Transport::Remote { base, token, http },
        }
    }

    /// Whether requests carry a team API key (`tfk_...`) rather than a
    /// person's credential or none.
    pub fn uses_api_key(&self) -> bool {
        matches!(&self.transport, Transport::Remote { token: Some(t), .. } if t.trim().starts_with("tfk_"))
    }

    /// One request; returns status, ETag version and JSON body. Problem
    /// responses become `ClientError::Api`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<u64>,
    ) -> Result<(StatusCode, Option<u64>, Value), ClientError> {
        let (status, version, bytes) = self.call_raw(method, path, body, if_match).await?;
        let value = self.json(status, &bytes)?;
        Ok((status, version, value))
    }

    /// A successful body read as `T` straight from its bytes (a team's whole
    /// state is large: no `Value` tree in between).
    async fn call_as<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
    ) -> Result<T, ClientError> {
        let (status, _, bytes) = self.call_raw(method, path, None, None).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ClientError::Protocol(format!("HTTP {status} from {}: {e}", self.describe))
        })
    }

    fn json(&self, status: StatusCode, bytes: &[u8]) -> Result<Value, ClientError> {
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(bytes).map_err(|_| {
            ClientError::Protocol(format!(
                "HTTP {status} with a body that is not JSON from {}",
                self.describe
            ))
        })
    }

    /// One request; returns status, ETag version and the body's bytes of a
    /// success. Problem responses become `ClientError::Api`.
    async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<u64>,
    ) -> Result<(StatusCode, Option<u64>, axum::body::Bytes), ClientError> {
        let (status, etag, bytes) = match &self.transport {
            Transport::InProcess(router, _) => {
                let mut req = Request::builder().method(method).uri(path);
                if let Some(s) = &self.source {
                    req = req.header(SOURCE_HEADER, s.as_str());
                }
                if let Some(v) = if_match {
                    req = req.header(header::IF_MATCH, format!("\"{v}\""));
                }
                let req = match body {
                    Some(b) => req
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from(b.to_string())),
                    None => req.body(Body::empty()),
                }
                .map_err(|e| ClientError::Protocol(e.to_string()))?;
                let res = router
                    .clone()
                    .oneshot(req)
                    .await
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                let status = res.status();
                let etag = res
                    .headers()
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let bytes = res
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| ClientError::Protocol(e.to_string()))?
                    .to_bytes();
                (status, etag, bytes)
            }
            Transport::Remote { base, token, http } => {
                let mut req = http.request(method, format!("{base}{path}"));
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                if let Some(s) = &self.source {
                    req = req.header(SOURCE_HEADER, s.as_str());
                }
                if let Some(v) = if_match {
                    req = req.header(header::IF_MATCH, format!("\"{v}\""));
                }
                if let Some(b) = body {
                    req = req.json(b);
                }
                let res = req.send().await.map_err(|e| ClientError::Transport {
                    endpoint: base.clone(),
                    message: e.to_string(),
                })?;
                let status = res.status();
                let etag = res
                    .headers()
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let bytes = res.bytes().await.map_err(|e| ClientError::Transport {
                    endpoint: base.clone(),
                    message: e.to_string(),
                })?;
                (status, etag, bytes)
            }
        };
        let version = etag.and_then(|e| e.trim_start_matches("W/").trim_matches('"').parse().ok());
        if !status.is_success() {
            let value = self.json(status, &bytes)?;
            let text = |k: &str| {
                value
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            return Err(ClientError::Api {
                status: status.as_u16(),
                code: if text("code").is_empty() {
                    "http_error".into()
                } else {
                    text("code")
                },
                detail: if text("detail").is_empty() {
                    format!("HTTP {status}")
                } else {
                    text("detail")
                },
                body: value,
            });
        }
        Ok((status, version, bytes))
    }

    fn parse<T: DeserializeOwned>(value: Value) -> Result<T, ClientError> {
        serde_json::from_value(value).map_err(|e| ClientError::Protocol(e.to_string()))
    }

    pub async fn catalog(&self) -> Result<Catalog, ClientError> {
        let (_, _, v) = self.call(Method::GET, "/catalog", None, None).await?;
        Self::parse(v)
    }

    /// The live team, or `None` when it does not exist (or is not visible).
    ///
    /// In-process, the team is read from the service as the router's
    /// handler reads it, for the local owner the router would see, but not
    /// written to JSON and read back: a large team would be held three times
    /// over (the state, its text, the state again). Any error is asked again
    /// over the router, so it reads exactly as the HTTP answer.
    pub async fn state(&self, team: &TeamId) -> Result<Option<TeamState>, ClientError> {
        if let Transport::InProcess(_, service) = &self.transport {
            match service.whole_state(team, &Principal::LocalOwner).await {
                Ok(state) => return Ok(Some(state)),
                Err(ServiceError::NotFound) => return Ok(None),
                Err(_) => {}
            }
        }
        match self
            .call_as(Method::GET, &format!("/teams/{team}/state"))
            .await
        {
            Ok(state) => Ok(Some(state)),
            Err(e) if e.code() == Some("not_found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A raw GET, for commands that print what the service says.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        Ok(self.call(Method::GET, path, None, None).await?.2)
    }
}

/// Writes to the live service: what `apply` sends once a plan was approved.
pub struct Applier {
    client: Client,
}

impl Applier {
    /// Sends through `client`, naming `source` (`Teamform-Source`) on every
    /// request.
    pub fn new(client: Client, source: String) -> Applier {
        let mut client = client;
        client.source = Some(source);
        Applier { client }
    }

    /// Applies one batch atomically at the given version.
    pub async fn apply(
        &self,
        team: &TeamId,
        changes: &[Change],
        if_match: u64,
        allow_self_removal: bool,
    ) -> Result<Applied, ClientError> {
        let body = serde_json::json!({
            "changes": changes,
            "options": { "allow_self_removal": allow_self_removal },
        });
        let (_, _, v) = self
            .client
            .call(
                Method::POST,
                &format!("/teams/{team}/changes"),
                Some(&body),
                Some(if_match),
            )
            .await?;
        Client::parse(v)
    }
}
