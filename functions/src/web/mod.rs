//! The browser side of the service, served by the same router as the API:
//! sign-in with OpenID Connect (authorization code + PKCE against the
//! configured issuer), the pages the emailed links open, and the team page.
//!
//! Every action goes through the same `Service` calls as the API, with the
//! same permissions and audit. Pages are HTML built with maud (every value
//! escaped); there is no front-end build and no script but the copy button.
//!
//! Routes (none of them in the OpenAPI document, which describes the JSON
//! API):
//! - `GET /`: the teams of the signed-in person, or a sign-in button;
//! - `GET /signin?return_to=PATH`, `GET /auth/callback`, `POST /signout`;
//! - `GET /join?token=`, `GET /ownership/confirm?token=`,
//!   `GET /ownership/accept?token=`: the pages the emailed links open (what
//!   the link offers, then a form posting to `/ui/...` with the same token).
//!   The JSON API's `POST /invitations/accept` and `/ownership-transfer/*`
//!   stay as they are for API clients;
//! - `GET /ui/teams/{team}`, `POST /ui/teams/{team}/{action}`: the team page.

pub mod pages;
pub mod session;

use std::collections::BTreeSet;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Duration;
use maud::Markup;
use serde::Deserialize;
use teamform_core::catalog::RoleName;
use teamform_core::{Email, TeamId};

use crate::auth::Principal;
use crate::auth::oidc::form_encode;
use crate::http::{AppState, error::ApiError};
use crate::service::lifecycle::LinkKind;
use crate::service::{MemberFilter, ServiceError};
use pages::{Notice, TeamView};
use session::{SESSION_COOKIE, SESSION_HOURS, SIGNIN_COOKIE, SIGNIN_SECONDS, Session, SignIn};

/// The browser routes, merged into the API's router by `api::app`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin))
        .route("/auth/callback", get(callback))
        .route("/signout", post(signout))
        .route("/join", get(invitation_page))
        .route("/ownership/confirm", get(confirm_page))
        .route("/ownership/accept", get(accept_transfer_page))
        .route("/ui/invitations/accept", post(invitation_act))
        .route("/ui/ownership-transfer/confirm", post(confirm_act))
        .route("/ui/ownership-transfer/accept", post(accept_transfer_act))
        .route("/ui/teams/{team}", get(team_page))
        .route("/ui/teams/{team}/{action}", post(team_action))
}

/// An HTML answer with its status.
struct Page(StatusCode, Markup);

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut res = (self.0, self.1).into_response();
        let h = res.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            "no-store".parse().unwrap_or_else(|_| unreachable_header()),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
                .parse()
                .unwrap_or_else(|_| unreachable_header()),
        );
        h.insert(
            "x-frame-options",
            "DENY".parse().unwrap_or_else(|_| unreachable_header()),
        );
        res
    }
}

fn unreachable_header() -> axum::http::HeaderValue {
    axum::http::HeaderValue::from_static("")
}

/// A service error as a page: its status, and what the API would say.
fn error_page(session: Option<&Session>, e: ServiceError) -> Page {
    let api = ApiError::from(e);
    let title = match api.code {
        "invitation_expired" | "transfer_expired" => "This link has expired",
        "invitation_invalid" | "transfer_invalid" => "This link no longer works",
        "not_found" => "Not found",
        "unauthenticated" => "Please sign in",
        "two_factor_required" => "A second factor is required",
        _ if api.status == StatusCode::FORBIDDEN => "Not allowed",
        _ if api.status.is_server_error() => "Something went wrong",
        _ => "That did not work",
    };
    Page(
        api.status,
        pages::message(session, title, &api.detail, api.code),
    )
}

fn secure(state: &AppState) -> bool {
    state.service.public_url().starts_with("https://")
}

fn with_cookie(mut res: Response, value: axum::http::HeaderValue) -> Response {
    res.headers_mut().append(header::SET_COOKIE, value);
    res
}

/// The fields of a form body (`application/x-www-form-urlencoded`), in order.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &Bytes) -> Self {
        Form(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The session of a form post, with its CSRF token checked.
async fn posted(state: &AppState, headers: &HeaderMap, form: &Form) -> Result<Session, Page> {
    let Some(session) = session::session(&state.service, headers).await else {
        return Err(Page(
            StatusCode::UNAUTHORIZED,
            pages::message(
                None,
                "Please sign in",
                "your session has ended; sign in again",
                "unauthenticated",
            ),
        ));
    };
    if !session.csrf_ok(form.get("csrf").unwrap_or_default()) {
        return Err(Page(
            StatusCode::FORBIDDEN,
            pages::message(
                Some(&session),
                "Not allowed",
                "this form did not come from this site's page; reload the page and try again",
                "csrf",
            ),
        ));
    }
    Ok(session)
}

// ------------------------------------------------------------ sign-in

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = session::session(&state.service, &headers).await;
    let teams = match &session {
        Some(s) => state
            .service
            .my_teams(&s.principal)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let signin = state.oidc.is_some();
    Page(
        StatusCode::OK,
        pages::home(session.as_ref(), &teams, signin),
    )
    .into_response()
}

#[derive(Deserialize)]
struct SignInQuery {
    #[serde(default)]
    return_to: Option<String>,
}

async fn signin(State(state): State<AppState>, Query(q): Query<SignInQuery>) -> Response {
    let Some(oidc) = state.oidc.clone() else {
        return Page(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::message(
                None,
                "Sign-in is not configured",
                "this host has no OpenID Connect issuer (TEAMFORM_OIDC_ISSUER, or `teamform serve --oidc-issuer URL`)",
                "signin_unconfigured",
            ),
        )
        .into_response();
    };
    let endpoints = match oidc.endpoints().await {
        Ok(e) => e,
        Err(e) => return provider_down(&e.to_string()),
    };
    let Some(authorize) = endpoints.authorization_endpoint else {
        return provider_down("the provider names no authorization endpoint");
    };
    let flow = SignIn::new(q.return_to.as_deref().unwrap_or("/"));
    let redirect_uri = format!("{}/auth/callback", state.service.public_url());
    let sep = if authorize.contains('?') { '&' } else { '?' };
    let url = format!(
        "{authorize}{sep}response_type=code&client_id={}&redirect_uri={}&scope=openid%20email\
         &state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        form_encode(oidc.config().client_id()),
        form_encode(&redirect_uri),
        flow.state,
        flow.nonce,
        session::challenge(&flow.verifier),
    );
    let cookie = session::set_cookie(
        SIGNIN_COOKIE,
        &flow.encode(),
        SIGNIN_SECONDS,
        secure(&state),
    );
    with_cookie(Redirect::to(&url).into_response(), cookie)
}

fn provider_down(detail: &str) -> Response {
    tracing::warn!(detail, "the identity provider is unavailable");
    Page(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message(
            None,
            "Sign-in is unavailable",
            "the identity provider could not be reached; try again shortly",
            "identity_provider_unavailable",
        ),
    )
    .into_response()
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let refuse = |title: &str, detail: &str, code: &str| {
        let page = Page(
            StatusCode::BAD_REQUEST,
            pages::message(None, title, detail, code),
        );
        with_cookie(
            page.into_response(),
            session::set_cookie(SIGNIN_COOKIE, "", 0, secure(&state)),
        )
    };
    let Some(oidc) = state.oidc.clone() else {
        return refuse(
            "Sign-in is not configured",
            "this host has no OpenID Connect issuer",
            "signin_unconfigured",
        );
    };
    let Some(flow) = session::cookie(&headers, SIGNIN_COOKIE).and_then(SignIn::decode) else {
        return refuse(
            "Sign-in expired",
            "this sign-in was not started here or took too long; start again",
            "signin_state",
        );
    };
    if !flow.state_ok(q.state.as_deref().unwrap_or_default()) {
        return refuse(
            "Sign-in refused",
            "the sign-in's state does not match; start again",
            "signin_state",
        );
    }
    if let Some(error) = q.error {
        let error: String = error.chars().take(100).collect();
        return refuse(
            "Sign-in refused",
            &format!("the identity provider said: {error}"),
            "signin_refused",
        );
    }
    let Some(code) = q.code else {
        return refuse(
            "Sign-in refused",
            "the identity provider sent no code",
            "signin_refused",
        );
    };
    let redirect_uri = format!("{}/auth/callback", state.service.public_url());
    let identity = match oidc.exchange(&code, &flow.verifier, &redirect_uri).await {
        Ok(token) => oidc.verify_id_token(&token, &flow.nonce).await,
        Err(e) => Err(e),
    };
    let identity = match identity {
        Ok(identity) => identity,
        Err(e) => {
            tracing::info!(error = %e, "a sign-in was refused");
            return refuse("Sign-in refused", &e.to_string(), e.code());
        }
    };
    let person = Principal::Person {
        email: identity.email,
        two_factor: identity.two_factor,
    };
    let until = state.service.now() + Duration::hours(SESSION_HOURS);
    let created = match state
        .service
        .create_token(&person, "browser sign-in", Some(until))
        .await
    {
        Ok(created) => created,
        Err(e) => return error_page(None, e).into_response(),
    };
    let value = format!("{}.{}", created.view.id, created.secret);
    let mut res = Redirect::to(&flow.return_to).into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, &value, SESSION_HOURS * 3600, secure(&state)),
    );
    h.append(
        header::SET_COOKIE,
        session::set_cookie(SIGNIN_COOKIE, "", 0, secure(&state)),
    );
    res
}

async fn signout(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let session = match posted(&state, &headers, &form).await {
        Ok(s) => s,
        Err(page) => return page.into_response(),
    };
    if let Err(e) = state
        .service
        .delete_token(&session.principal, &session.id)
        .await
    {
        tracing::warn!(error = %e, "a session token could not be deleted");
    }
    with_cookie(
        Redirect::to("/").into_response(),
        session::set_cookie(SESSION_COOKIE, "", 0, secure(&state)),
    )
}

// ------------------------------------------------------------ links

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn invitation_page(
    state: State<AppState>,
    headers: HeaderMap,
    q: Query<TokenQuery>,
) -> Response {
    link_page(state, headers, q, LinkKind::Invitation).await
}

async fn confirm_page(
    state: State<AppState>,
    headers: HeaderMap,
    q: Query<TokenQuery>,
) -> Response {
    link_page(state, headers, q, LinkKind::TransferConfirm).await
}

async fn accept_transfer_page(
    state: State<AppState>,
    headers: HeaderMap,
    q: Query<TokenQuery>,
) -> Response {
    link_page(state, headers, q, LinkKind::TransferAccept).await
}

/// What a link offers; to the person it is for, the button that acts. A
/// wrong person is told so and the link stays as it was.
async fn link_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    kind: LinkKind,
) -> Response {
    let session = session::session(&state.service, &headers).await;
    let preview = match state.service.preview_link(&q.token, kind).await {
        Ok(p) => p,
        Err(e) => return error_page(session.as_ref(), e).into_response(),
    };
    let here = format!("{}?token={}", link_path(kind), form_encode(&q.token));
    let status = match &session {
        Some(s) if !matches!(&s.principal, Principal::Person { email, .. } if *email == preview.email) => {
            StatusCode::FORBIDDEN
        }
        _ => StatusCode::OK,
    };
    Page(
        status,
        pages::link(session.as_ref(), &preview, &q.token, &here),
    )
    .into_response()
}

fn link_path(kind: LinkKind) -> &'static str {
    match kind {
        LinkKind::Invitation => "/join",
        LinkKind::TransferConfirm => "/ownership/confirm",
        LinkKind::TransferAccept => "/ownership/accept",
    }
}

async fn invitation_act(state: State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    link_act(state, headers, body, LinkKind::Invitation).await
}

async fn confirm_act(state: State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    link_act(state, headers, body, LinkKind::TransferConfirm).await
}

async fn accept_transfer_act(state: State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    link_act(state, headers, body, LinkKind::TransferAccept).await
}

async fn link_act(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
    kind: LinkKind,
) -> Response {
    let form = Form::parse(&body);
    let session = match posted(&state, &headers, &form).await {
        Ok(s) => s,
        Err(page) => return page.into_response(),
    };
    let token = form.get("token").unwrap_or_default();
    // The preview says which team, and refuses a dead link before acting.
    let preview = match state.service.preview_link(token, kind).await {
        Ok(p) => p,
        Err(e) => return error_page(Some(&session), e).into_response(),
    };
    let who = &session.principal;
    let done = match kind {
        LinkKind::Invitation => state
            .service
            .accept_invitation(token, who)
            .await
            .map(|_| ()),
        LinkKind::TransferConfirm => state.service.confirm_transfer(token, who).await.map(|_| ()),
        LinkKind::TransferAccept => state.service.accept_transfer(token, who).await.map(|_| ()),
    };
    match done {
        Ok(()) => Redirect::to(&format!("/ui/teams/{}", preview.team)).into_response(),
        Err(e) => error_page(Some(&session), e).into_response(),
    }
}

// ------------------------------------------------------------ the team page

#[derive(Deserialize)]
struct TeamQuery {
    #[serde(default)]
    after: Option<String>,
}

async fn team_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(team): Path<String>,
    Query(q): Query<TeamQuery>,
) -> Response {
    let Some(session) = session::session(&state.service, &headers).await else {
        let back = format!("/ui/teams/{}", form_encode(&team));
        return Redirect::to(&format!("/signin?return_to={}", form_encode(&back))).into_response();
    };
    render_team(&state, &session, &team, q.after, Vec::new()).await
}

/// The team page as `session` may see it, with the notices of what it just did.
async fn render_team(
    state: &AppState,
    session: &Session,
    team: &str,
    after: Option<String>,
    notices: Vec<Notice>,
) -> Response {
    let Ok(team) = TeamId::parse(team) else {
        return error_page(Some(session), ServiceError::NotFound).into_response();
    };
    match team_view(state, session, &team, after).await {
        Ok(view) => {
            let status = notices
                .iter()
                .filter_map(|n| n.status)
                .max()
                .unwrap_or(StatusCode::OK);
            Page(status, pages::team(session, &view, &notices)).into_response()
        }
        Err(e) => error_page(Some(session), e).into_response(),
    }
}

/// Members shown per page of the team page.
const PAGE_SIZE: usize = 200;

async fn team_view(
    state: &AppState,
    session: &Session,
    team: &TeamId,
    after: Option<String>,
) -> Result<TeamView, ServiceError> {
    let service = &state.service;
    let who = &session.principal;
    let scoped = service.visible_scoped(team, who, []).await?;
    let catalog = service.catalog();
    let held: BTreeSet<String> = match who.held(&scoped.state, catalog) {
        Some(crate::auth::Held::All) => catalog
            .permissions
            .iter()
            .map(|p| p.id.to_string())
            .collect(),
        Some(crate::auth::Held::Some(set)) => set.iter().map(|p| p.to_string()).collect(),
        None => return Err(ServiceError::NotFound),
    };
    let is_owner = matches!(who, Principal::Person { email, .. } if *email == scoped.state.owner);
    let filter = MemberFilter {
        role: None,
        status: None,
    };
    let (members, next) = if held.contains("team.members.read") {
        service
            .members_page(team, who, &filter, PAGE_SIZE, after)
            .await?
    } else {
        (Vec::new(), None)
    };
    let (roles, _) = if held.contains("team.members.read") {
        service.roles(team, who).await?
    } else {
        (
            crate::service::resources::RolesView {
                system: catalog.roles.clone(),
                custom: Default::default(),
            },
            0,
        )
    };
    let keys = if held.contains("team.api_keys.manage") {
        Some(service.list_api_keys(team, who).await?)
    } else {
        None
    };
    Ok(TeamView {
        team: team.clone(),
        name: scoped.state.display_name.clone(),
        owner: scoped.state.owner.to_string(),
        transfer: scoped.state.transfer.clone(),
        is_owner,
        held,
        members,
        next,
        roles,
        permissions: catalog.permissions.clone(),
        keys,
        csrf: session.csrf(),
        now: service.now(),
    })
}

async fn team_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((team_raw, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let session = match posted(&state, &headers, &form).await {
        Ok(s) => s,
        Err(page) => return page.into_response(),
    };
    let Ok(team) = TeamId::parse(&team_raw) else {
        return error_page(Some(&session), ServiceError::NotFound).into_response();
    };
    let service = &state.service;
    let who = &session.principal;
    let email = || {
        Email::parse(form.get("email").unwrap_or_default()).map_err(|_| ServiceError::Invalid {
            code: "invalid_email",
            message: "not a valid email address".into(),
        })
    };
    let roles = || -> Result<teamform_core::model::Roles, ServiceError> {
        form.all("roles")
            .map(|r| {
                RoleName::parse(r).map_err(|_| ServiceError::Invalid {
                    code: "unknown_role",
                    message: format!("`{r}` is not a role name"),
                })
            })
            .collect()
    };
    let one = |r: Result<String, ServiceError>| match r {
        Ok(text) => Notice::ok(text),
        Err(e) => Notice::error(e),
    };
    let notices = match action.as_str() {
        "invite" => {
            let listed: Vec<&str> = form
                .get("emails")
                .unwrap_or_default()
                .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
                .filter(|s| !s.is_empty())
                .collect();
            if listed.is_empty() {
                vec![Notice::error(ServiceError::Invalid {
                    code: "invalid_email",
                    message: "name at least one email address".into(),
                })]
            } else {
                let mut out = Vec::new();
                match roles() {
                    Err(e) => out.push(Notice::error(e)),
                    Ok(roles) => {
                        for raw in listed {
                            let result = match Email::parse(raw) {
                                Err(_) => Err(ServiceError::Invalid {
                                    code: "invalid_email",
                                    message: format!("`{raw}` is not a valid email address"),
                                }),
                                Ok(address) => service
                                    .invite(&team, who, address.clone(), None, roles.clone(), None)
                                    .await
                                    .map(|_| format!("Invited {address}")),
                            };
                            out.push(match result {
                                Ok(text) => Notice::ok(text),
                                Err(e) => Notice::error_about(raw, e),
                            });
                        }
                    }
                }
                out
            }
        }
        "roles" => vec![one(async {
            let email = email()?;
            service.set_roles(&team, who, &email, roles()?, None).await?;
            Ok(format!("Changed the roles of {email}"))
        }
        .await)],
        "remove" => vec![one(async {
            let email = email()?;
            service.remove_member(&team, who, &email, None).await?;
            Ok(format!("Removed {email}"))
        }
        .await)],
        "resend" => {
            let sent = async {
                let email = email()?;
                let applied = service.resend_invitation(&team, who, &email, None).await?;
                Ok::<_, ServiceError>((email, applied.links.into_iter().next()))
            }
            .await;
            match sent {
                Ok((email, Some((_, link)))) => vec![Notice::secret(
                    format!(
                        "Sent {email} a new invitation link; the old one no longer works. \
                         To send it another way, copy it now: it is shown only this once"
                    ),
                    "Invitation link",
                    link,
                )],
                Ok((email, None)) => vec![Notice::ok(format!("Sent {email} a new invitation link"))],
                Err(e) => vec![Notice::error(e)],
            }
        }
        "revoke" => vec![one(async {
            let email = email()?;
            service.revoke_invitation(&team, who, &email, None).await?;
            Ok(format!("Cancelled the invitation of {email}"))
        }
        .await)],
        "transfer" => vec![one(async {
            let email = email()?;
            service.start_transfer(&team, who, &email).await?;
            Ok(format!(
                "Started passing ownership to {email}: confirm it through the link just emailed to you"
            ))
        }
        .await)],
        "leave" => match service.leave(&team, who).await {
            Ok(_) => return Redirect::to("/").into_response(),
            Err(e) => vec![Notice::error(e)],
        },
        "api-key" => {
            let name = form.get("name").unwrap_or_default().trim().to_owned();
            match roles() {
                Err(e) => vec![Notice::error(e)],
                Ok(roles) => match service.create_api_key(&team, who, &name, &roles, &[], None, None).await {
                    Ok(created) => vec![Notice::secret(
                        format!("Created the API key {name}: copy it now, it is shown only once"),
                        "API key",
                        created.secret,
                    )],
                    Err(e) => vec![Notice::error(e)],
                },
            }
        }
        "revoke-key" => vec![one(async {
            let id = form.get("id").unwrap_or_default();
            service.revoke_api_key(&team, who, id, None).await?;
            Ok("Revoked the API key".to_owned())
        }
        .await)],
        _ => return error_page(Some(&session), ServiceError::NotFound).into_response(),
    };
    render_team(&state, &session, team.as_str(), None, notices).await
}
