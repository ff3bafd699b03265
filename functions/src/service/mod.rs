//! The team service: executes changes for a principal. Each batch is
//! authorized change by change, applied to a snapshot with the core's
//! invariant checks, and committed atomically under the team version (a
//! batch larger than one transaction through an intent, `crate::service::intent`), with
//! one audit item per change and an outbox item per email, in the same
//! transaction. A version that moved since the read is `version_conflict`,
//! never a silent overwrite.
//!
//! The service owns no clock and no client of its own: both are injected.

pub mod audit;
pub mod close;
pub mod expiry;
pub mod intent;
pub mod lifecycle;
pub mod resources;
pub mod scoped;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use teamform_core::change::Requirement;
use teamform_core::model::{Invitation, Member, Roles};
use teamform_core::{Catalog, Change, ChangeError, Email, TeamId, TeamState, Timestamp};

use crate::auth::secret;
use crate::auth::{Principal, Standing};
use crate::clock::Clock;
use crate::service::scoped::{Entry, Scoped, bookkeeping};
use crate::store::codec;
use crate::store::codec::Counts;
use crate::store::{Condition, Item, MAX_TRANSACT_WRITES, PageRequest, Store, StoreError, Write};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("not found")]
    NotFound,
    #[error("missing or invalid credentials")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("the team is at version {actual}, not {expected}")]
    VersionConflict { expected: u64, actual: u64 },
    #[error("change {index} ({action}): {error}")]
    Change {
        index: usize,
        action: &'static str,
        error: ChangeError,
    },
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("{0}")]
    Conflict(String),
    /// The team requires a second factor and the caller's sign-in had none.
    #[error("{0}")]
    TwoFactorRequired(String),
    /// A link that was used, replaced, revoked or has expired.
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// A grant of permissions the actor does not hold itself.
    #[error("{0}")]
    Escalation(String),
    /// The caller may not use this team now (403 with its own `code`, e.g.
    /// `team_closed` for a member of a closed team).
    #[error("{message}")]
    Denied { code: &'static str, message: String },
    /// The team's state refuses the request (409 with its own `code`, e.g.
    /// `team_closed`), with facts for the client in `extra`.
    #[error("{message}")]
    Refused {
        code: &'static str,
        message: String,
        extra: Option<Value>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError {
    /// Names the change of a batch an error is about.
    fn at(self, index: usize, action: &str) -> Self {
        match self {
            ServiceError::Escalation(m) => {
                ServiceError::Escalation(format!("change {index} ({action}): {m}"))
            }
            other => other,
        }
    }

    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            code,
            message: message.into(),
        }
    }
}

/// Options of one batch.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BatchOptions {
    /// Let a person remove their own membership in this batch.
    #[serde(default)]
    pub allow_self_removal: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Applied {
    pub team: TeamId,
    pub version: u64,
    pub applied: usize,
    /// The links the change emailed, `(to, url)`, for the page that shows a
    /// new link once (to copy and send another way); never serialized.
    #[serde(skip)]
    pub links: Vec<(String, String)>,
}

/// An email written to the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Mail {
    /// The secret of the link this email carries (`...?token=SECRET`), if
    /// any: what the person it is addressed to opens.
    pub fn link_secret(&self) -> Option<&str> {
        let (_, rest) = self.body.split_once("token=")?;
        rest.split_whitespace().next()
    }

    /// The whole link the email carries.
    pub fn link_url(&self) -> Option<&str> {
        self.body.split_whitespace().find(|w| w.contains("?token="))
    }
}

/// One change applied in memory, with everything it writes.
pub(crate) struct Step {
    /// Data writes (members, invitations, roles, look-ups).
    writes: Vec<Write>,
    /// The audit record of the change.
    audit: Value,
    mails: Vec<Mail>,
    /// Team-level fields as they stand after this step.
    after: codec::Meta,
    keys: HashSet<(String, String)>,
}

impl Step {
    /// Fixes the team-level fields and counters the step leaves, and the
    /// keys it writes (a part never writes one item twice).
    fn seal(&mut self, state: &TeamState, counts: Counts) {
        self.after = codec::Meta::of(state, counts);
        self.keys = self
            .writes
            .iter()
            .map(|w| (w.key().0.to_owned(), w.key().1.to_owned()))
            .collect();
    }
}

/// Where a host delivers a team's committed outbox items after a change
/// that wrote some (locally: `mail::OutboxDir`, from the store, not from
/// memory; in AWS the mailer reads the table's stream and no sink is set).
#[async_trait::async_trait]
pub trait MailSink: Send + Sync + 'static {
    async fn deliver(&self, store: &dyn Store, team: &TeamId);
}

/// Told, after each commit, which team moved (locally: `events::LocalEvents`
/// publishes the team's new audit records from the store; in AWS the events
/// function reads the table's stream and no listener is set).
pub trait CommitListener: Send + Sync + 'static {
    fn committed(&self, team: &TeamId);
}

pub struct Service {
    mail_sink: Option<Arc<dyn MailSink>>,
    commit_listener: Option<Arc<dyn CommitListener>>,
    /// Whether a personal token minted for the local owner (no email) is
    /// honoured. Only `teamform serve` over its own SQLite file sets this:
    /// Lambda and a `serve` over DynamoDB never do, so such a token left in a
    /// shared table opens nothing.
    local_owner_tokens: bool,
    /// Writes to one team from this process take turns (a team hashes to
    /// one of these), so they never race each other into a version
    /// conflict; writers in other processes still can, and are retried.
    write_turns: Arc<[tokio::sync::Mutex<()>; WRITE_TURNS]>,
    /// Batches this process is applying part by part right now: another
    /// access to their team waits for them rather than racing them.
    pub(crate) in_flight: Arc<crate::service::intent::InFlight>,
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    /// Base of links in emails (`{public_url}/join?token=...`): given at
    /// start, or learnt from the first request (`learn_public_url`).
    public_url: std::sync::OnceLock<String>,
    /// How closing a team works here (`crate::service::close`).
    pub(crate) close: crate::service::close::CloseSettings,
    /// Where closed teams' audit trails go; `None`: into the store itself.
    pub(crate) archive: Option<Arc<dyn crate::service::close::Archive>>,
}

/// What `GET /teams/{team}/members` filters on.
#[derive(Debug, Clone, Default)]
pub struct MemberFilter<'a> {
    pub role: Option<&'a str>,
    /// `joined` or `pending`.
    pub status: Option<&'a str>,
}

fn member_view(m: &Member, show_signin: bool) -> MemberView {
    MemberView {
        email: m.email.to_string(),
        name: m.name.clone(),
        roles: m.roles.clone(),
        status: "joined".into(),
        invited_at: None,
        expires_at: None,
        expired: None,
        signin_method: show_signin
            .then(|| if m.two_factor { "email+2fa" } else { "email" }.to_owned()),
    }
}

fn invitation_view(i: &Invitation, now: Timestamp) -> MemberView {
    MemberView {
        email: i.email.to_string(),
        name: i.name.clone(),
        roles: i.roles.clone(),
        status: "pending".into(),
        invited_at: Some(i.created_at),
        expires_at: Some(i.expires_at),
        expired: Some(i.is_expired(now)),
        signin_method: None,
    }
}

/// Per-member API view, used by `GET /teams/{team}/members`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberView {
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub roles: Roles,
    /// `joined` or `pending`.
    pub status: String,
    /// Pending invitations: when the current link was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expired: Option<bool>,
    /// Only for principals holding `team.members.signin_method.read`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signin_method: Option<String>,
}

impl Service {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
        public_url: String,
    ) -> Self {
        Self {
            mail_sink: None,
            commit_listener: None,
            local_owner_tokens: false,
            write_turns: Arc::new(std::array::from_fn(|_| tokio::sync::Mutex::new(()))),
            in_flight: Arc::default(),
            store,
            catalog,
            clock,
            public_url: {
                let known = std::sync::OnceLock::new();
                if !public_url.is_empty() {
                    let _ = known.set(public_url);
                }
                known
            },
            close: crate::service::close::CloseSettings::default(),
            archive: None,
        }
    }

    pub fn with_mail_sink(mut self, sink: Arc<dyn MailSink>) -> Self {
        self.mail_sink = Some(sink);
        self
    }

    pub fn with_commit_listener(mut self, listener: Arc<dyn CommitListener>) -> Self {
        self.commit_listener = Some(listener);
        self
    }

    /// Tells the listener, if any, that `team` committed a version.
    pub(crate) fn committed(&self, team: &TeamId) {
        if let Some(listener) = &self.commit_listener {
            listener.committed(team);
        }
    }

    /// Waits for this process's turn to write to `team`.
    pub(crate) async fn write_turn(&self, team: &TeamId) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        team.hash(&mut h);
        // The remainder is below WRITE_TURNS, the array's length.
        let slot = (h.finish() % WRITE_TURNS as u64) as usize;
        self.write_turns[slot].lock().await
    }

    /// Honours personal tokens of the local owner (see `local_owner_tokens`).
    pub fn with_local_owner_tokens(mut self) -> Self {
        self.local_owner_tokens = true;
        self
    }

    pub fn local_owner_tokens(&self) -> bool {
        self.local_owner_tokens
    }

    /// Sets the base of links when none was given at start; the first
    /// value stays. Lambda behind API Gateway learns it from the first
    /// request's domain, as the gateway names it.
    pub fn learn_public_url(&self, url: String) {
        let _ = self.public_url.set(url);
    }

    pub fn public_url(&self) -> &str {
        self.public_url
            .get()
            .map(String::as_str)
            .unwrap_or_default()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Reads a team snapshot; `None` when the team does not exist. Every read
    /// pages to the end or fails.
    pub async fn load(&self, team: &TeamId) -> Result<Option<TeamState>, ServiceError> {
        let pk = codec::team_pk(team);
        let s = &self.store;
        for _ in 0..crate::service::intent::READ_ROUNDS {
            let Some(meta) = self.settled_meta(team).await? else {
                return Ok(None);
            };
            let version = meta.version();
            let roles = s.query_all(&pk, codec::ROLE).await?;
            let transfer = s.get(&pk, codec::TRANSFER).await?;
            let meta = codec::decode(&meta, &[])?;
            let mut state = codec::state_from_meta(meta, &[], &[], &roles, transfer.as_ref())?;
            // Members and invitations are decoded page by page, each page's
            // items dropped before the next is read: a large team is never
            // held twice (as items and as the state).
            for prefix in [codec::MEMBER, codec::INVITE] {
                let mut after = None;
                loop {
                    // As text: read straight into members and invitations.
                    let page = s
                        .query_text(&pk, prefix, PageRequest { limit: None, after })
                        .await?;
                    for item in &page.items {
                        if prefix == codec::MEMBER {
                            let m: Member = codec::decode_text(item)?;
                            state.members.insert(m.email.clone(), m);
                        } else {
                            let i: Invitation = codec::decode_text(item)?;
                            state.invitations.insert(i.email.clone(), i);
                        }
                    }
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
            }
            // A team that began a batch while it was read is read again.
            if self.still_at(team, version).await? {
                return Ok(Some(state));
            }
        }
        Err(crate::service::intent::busy(team))
    }

    /// Reads a team the principal may see, scoped to the caller and
    /// `emails`, else `NotFound` (never revealing that a team exists to an
    /// outsider).
    pub async fn visible_scoped<'a>(
        &self,
        team: &TeamId,
        who: &Principal,
        emails: impl IntoIterator<Item = &'a Email>,
    ) -> Result<Scoped, ServiceError> {
        let scoped = self
            .load_scoped(team, who, emails)
            .await?
            .ok_or(ServiceError::NotFound)?;
        admit(who, &scoped.state)?;
        Ok(scoped)
    }

    /// The team as far as the caller's standing goes (a scoped snapshot:
    /// never the whole member list).
    pub async fn visible(&self, team: &TeamId, who: &Principal) -> Result<TeamState, ServiceError> {
        Ok(self.visible_scoped(team, who, []).await?.state)
    }

    /// `visible_scoped`, and the caller holds `permission`.
    pub async fn authorized_scoped(
        &self,
        team: &TeamId,
        who: &Principal,
        permission: &'static str,
    ) -> Result<Scoped, ServiceError> {
        let scoped = self.visible_scoped(team, who, []).await?;
        if !who.may(
            &scoped.state,
            &self.catalog,
            Requirement::Permission(permission),
        ) {
            return Err(ServiceError::Forbidden(format!(
                "this needs the permission `{permission}`"
            )));
        }
        Ok(scoped)
    }

    /// A scoped snapshot, after checking one permission.
    pub async fn authorized(
        &self,
        team: &TeamId,
        who: &Principal,
        permission: &'static str,
    ) -> Result<TeamState, ServiceError> {
        Ok(self.authorized_scoped(team, who, permission).await?.state)
    }

    /// The whole team, for a caller holding `team.members.read`: the
    /// reconciler's read, every page of it.
    pub async fn whole_state(
        &self,
        team: &TeamId,
        who: &Principal,
    ) -> Result<TeamState, ServiceError> {
        // Authorized on the scoped read first: a stranger or a caller
        // without the permission must not make the service read a whole team.
        self.authorized_scoped(team, who, teamform_core::catalog::perm::MEMBERS_READ)
            .await?;
        self.load(team).await?.ok_or(ServiceError::NotFound)
    }

    /// One page of members and pending invitations, filtered, in email
    /// order, read page by page from the store (never the whole team):
    /// `after` is the normalized email the previous page ended with. Returns
    /// the page and, when more may follow, the email to continue after.
    pub async fn members_page(
        &self,
        team: &TeamId,
        who: &Principal,
        filter: &MemberFilter<'_>,
        limit: usize,
        after: Option<String>,
    ) -> Result<(Vec<MemberView>, Option<String>), ServiceError> {
        for _ in 0..crate::service::intent::READ_ROUNDS {
            let scoped = self
                .authorized_scoped(team, who, teamform_core::catalog::perm::MEMBERS_READ)
                .await?;
            let page = self
                .members_page_of(&scoped, who, filter, limit, after.clone())
                .await?;
            // A page read while a batch began is read again.
            if self.still_at(team, scoped.state.version).await? {
                return Ok(page);
            }
        }
        Err(crate::service::intent::busy(team))
    }

    async fn members_page_of(
        &self,
        scoped: &Scoped,
        who: &Principal,
        filter: &MemberFilter<'_>,
        limit: usize,
        after: Option<String>,
    ) -> Result<(Vec<MemberView>, Option<String>), ServiceError> {
        let team = &scoped.state.team;
        let now = self.now();
        let show_signin = who.may(
            &scoped.state,
            &self.catalog,
            Requirement::Permission(teamform_core::catalog::perm::MEMBERS_SIGNIN_METHOD_READ),
        );
        let pk = codec::team_pk(team);
        let sources: Vec<(&str, &str)> = [(codec::MEMBER, "joined"), (codec::INVITE, "pending")]
            .into_iter()
            .filter(|(_, status)| filter.status.is_none_or(|s| s == *status))
            .collect();
        let mut out = Vec::new();
        let mut cursor = after;
        loop {
            // One page of each source after the cursor; the merge is complete
            // up to the smallest last key of a source that has more.
            let mut merged: Vec<(String, MemberView)> = Vec::new();
            let mut boundary: Option<String> = None;
            for (prefix, _) in &sources {
                let page = self
                    .store
                    .query(
                        &pk,
                        prefix,
                        PageRequest {
                            limit: Some(limit + 1),
                            after: cursor.as_ref().map(|c| format!("{prefix}{c}")),
                        },
                    )
                    .await?;
                let mut last = None;
                for item in &page.items {
                    let key = item.sk.trim_start_matches(prefix).to_owned();
                    let view = if *prefix == codec::MEMBER {
                        let m: Member = codec::decode(item, &[])?;
                        member_view(&m, show_signin)
                    } else {
                        let i: Invitation = codec::decode(item, &[])?;
                        invitation_view(&i, now)
                    };
                    last = Some(key.clone());
                    merged.push((key, view));
                }
                if page.next.is_some()
                    && let Some(last) = last
                {
                    boundary = Some(match boundary {
                        Some(b) if b < last => b,
                        _ => last,
                    });
                }
            }
            merged.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, view) in merged {
                if boundary.as_ref().is_some_and(|b| &key > b) {
                    break;
                }
                let wanted = filter
                    .role
                    .is_none_or(|r| view.roles.iter().any(|x| x.as_str() == r));
                if wanted {
                    // One more than the page tells whether a next page exists.
                    out.push((key, view));
                    if out.len() > limit {
                        out.truncate(limit);
                        let next = out.last().map(|(k, _)| k.clone());
                        return Ok((out.into_iter().map(|(_, v)| v).collect(), next));
                    }
                }
            }
            if boundary.is_none() {
                return Ok((out.into_iter().map(|(_, v)| v).collect(), None));
            }
            cursor = boundary;
        }
    }

    /// Executes a batch of changes. With `expected`, the team must be at that
    /// version (0: must not exist yet). Reads only what the changes touch
    /// (O(M) items for M changes); validates the whole batch before writing
    /// anything; commits in one transaction, or, beyond 100 writes, as an
    /// intent applied part by part that everyone else sees whole or not at
    /// all (`crate::service::intent`).
    pub async fn execute(
        &self,
        team: &TeamId,
        who: &Principal,
        changes: &[Change],
        expected: Option<u64>,
        options: &BatchOptions,
    ) -> Result<Applied, ServiceError> {
        let people: BTreeSet<Email> = changes.iter().flat_map(people_of).cloned().collect();
        let _turn = self.write_turn(team).await;
        let loaded = self.load_scoped(team, who, &people).await?;
        self.execute_on(team, who, loaded, people, changes, expected, options)
            .await
    }

    /// `execute`, with `extra` writes committed in the transaction of the
    /// changes (a record the caller keeps about them, such as a SCIM
    /// user's). The batch must fit one transaction and hold a change.
    pub(crate) async fn execute_writing(
        &self,
        team: &TeamId,
        who: &Principal,
        loaded: Scoped,
        changes: &[Change],
        extra: Vec<Write>,
    ) -> Result<Applied, ServiceError> {
        let people: BTreeSet<Email> = changes.iter().flat_map(people_of).cloned().collect();
        self.execute_inner(
            team,
            who,
            Some(loaded),
            people,
            changes,
            None,
            &BatchOptions::default(),
            extra,
        )
        .await
    }

    /// `execute` on a scoped snapshot already read, which must hold the
    /// standing of everyone the changes name.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn execute_on(
        &self,
        team: &TeamId,
        who: &Principal,
        loaded: Option<Scoped>,
        people: BTreeSet<Email>,
        changes: &[Change],
        expected: Option<u64>,
        options: &BatchOptions,
    ) -> Result<Applied, ServiceError> {
        self.execute_inner(
            team,
            who,
            loaded,
            people,
            changes,
            expected,
            options,
            Vec::new(),
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn execute_inner(
        &self,
        team: &TeamId,
        who: &Principal,
        loaded: Option<Scoped>,
        people: BTreeSet<Email>,
        changes: &[Change],
        expected: Option<u64>,
        options: &BatchOptions,
        extra: Vec<Write>,
    ) -> Result<Applied, ServiceError> {
        let now = self.now();
        let creating = matches!(changes.first(), Some(Change::CreateTeam { .. }));
        let Scoped {
            mut state,
            mut counts,
            people,
            closing: _,
        } = match loaded {
            Some(scoped) => {
                admit(who, &scoped.state)?;
                crate::service::close::refuse_if_closing(&scoped)?;
                scoped
            }
            None if creating => Scoped {
                state: TeamState::new(
                    team.clone(),
                    String::new(),
                    placeholder_owner(changes)?,
                    now,
                ),
                counts: Counts::default(),
                people,
                closing: None,
            },
            None => return Err(ServiceError::NotFound),
        };
        if creating && state.version != 0 {
            return Err(ServiceError::Change {
                index: 0,
                action: "create_team",
                error: ChangeError::TeamExists(team.to_string()),
            });
        }
        if let Some(expected) = expected
            && expected != state.version
        {
            return Err(ServiceError::VersionConflict {
                expected,
                actual: state.version,
            });
        }
        let mut steps = Vec::with_capacity(changes.len());
        for (index, change) in changes.iter().enumerate() {
            let action = change.action();
            let at = |error| ServiceError::Change {
                index,
                action,
                error,
            };
            self.authorize_change(who, &state, change, index, options)?;
            if let Change::DeleteRole { name, .. } = change
                && let Some(holder) = self.role_held_outside(team, name, &people).await?
            {
                return Err(at(ChangeError::RoleInUse(
                    name.to_string(),
                    holder.to_string(),
                )));
            }
            let touched: Vec<(Email, Entry, Option<Timestamp>)> = people_of(change)
                .map(|e| {
                    let expires = state.invitations.get(e).map(|i| i.expires_at);
                    (e.clone(), Entry::of(&state, e), expires)
                })
                .collect();
            let roles_before = state.roles.clone();
            state.apply(change, &self.catalog, now).map_err(at)?;
            name_new_link(&mut state, change);
            let mut step = self.step(&state, change, who, now)?;
            if creating && index == 0 {
                counts = Counts {
                    members: 1,
                    invitations: 0,
                };
            } else {
                for (email, before, expires_before) in &touched {
                    let after = Entry::of(&state, email);
                    step.writes.extend(bookkeeping(
                        team,
                        email,
                        (before, &roles_before),
                        (&after, &state.roles),
                        &mut counts,
                    ));
                    step.writes.extend(crate::service::expiry::due_writes(
                        team,
                        email,
                        *expires_before,
                        state.invitations.get(email).map(|i| i.expires_at),
                    ));
                }
            }
            step.seal(&state, counts);
            steps.push(step);
        }
        // Seats are counted once the whole batch is applied: a plan that swaps
        // one person for another at the limit invites before it removes.
        let last_invite = changes.iter().rposition(|c| {
            matches!(
                c,
                Change::Invite { .. } | Change::Reinvite { .. } | Change::AddMember { .. }
            )
        });
        if let (Some(index), Some(limit)) = (last_invite, state.settings.seat_limit)
            && counts.seats() > u64::from(limit)
        {
            return Err(ServiceError::Change {
                index,
                action: changes.get(index).map_or("invite", Change::action),
                error: ChangeError::SeatLimit(limit),
            });
        }
        let links = steps
            .iter()
            .flat_map(|s| s.mails.iter())
            .filter_map(|m| m.link_url().map(|url| (m.to.clone(), url.to_owned())))
            .collect();
        if !extra.is_empty() {
            match steps.last_mut() {
                Some(last) => {
                    last.keys.extend(
                        extra
                            .iter()
                            .map(|w| (w.key().0.to_owned(), w.key().1.to_owned())),
                    );
                    last.writes.extend(extra);
                }
                None => return Err(ServiceError::invalid("empty_batch", "nothing to change")),
            }
        }
        // `apply` never touches the version: it is still the one read.
        let version = self.commit(team, state.version, steps, now).await?;
        Ok(Applied {
            team: team.clone(),
            version,
            applied: changes.len(),
            links,
        })
    }

    /// Whether `who` may make `change` to `live`, the team as it stands
    /// just before the change. Everything is judged from live state: the
    /// change's before-image must match it (else `stale_change`), what the
    /// change needs comes from live state and the change's target, and what
    /// it grants must be held by the actor (nobody grants what they lack).
    fn authorize_change(
        &self,
        who: &Principal,
        live: &TeamState,
        change: &Change,
        index: usize,
        options: &BatchOptions,
    ) -> Result<(), ServiceError> {
        let action = change.action();
        if let Change::CreateTeam { owner, .. } = change {
            return match who {
                Principal::LocalOwner => Ok(()),
                Principal::Person { email, .. } if email == owner => Ok(()),
                _ => Err(ServiceError::Forbidden(
                    "a team is created by its owner".into(),
                )),
            };
        }
        change
            .check_before_image(live)
            .map_err(|error| ServiceError::Change {
                index,
                action,
                error,
            })?;
        for req in change.requirements(live) {
            if !who.may(live, &self.catalog, req) {
                let need = match req {
                    Requirement::Owner => "only the owner may do this".to_owned(),
                    Requirement::Permission(p) => format!("this needs the permission `{p}`"),
                    Requirement::Provisioner => {
                        "only the team's identity provider (a SCIM token) adds members without an invitation; invite the person instead".to_owned()
                    }
                };
                return Err(ServiceError::Forbidden(format!(
                    "change {index} ({action}): {need}"
                )));
            }
        }
        check_grant(
            who,
            live,
            &self.catalog,
            &change.grants(live, &self.catalog),
        )
        .map_err(|e| e.at(index, action))?;
        if let (
            Principal::Person {
                two_factor: false, ..
            },
            Change::UpdateSettings { to, .. },
        ) = (who, change)
            && to.require_2fa
            && !live.settings.require_2fa
        {
            return Err(ServiceError::TwoFactorRequired(format!(
                "change {index}: sign in with a second factor before requiring one, or you lock yourself out"
            )));
        }
        if let (Principal::Person { email, .. }, Change::RemoveMember { email: target, .. }) =
            (who, change)
            && email == target
            && !options.allow_self_removal
        {
            return Err(ServiceError::invalid(
                "self_removal",
                format!(
                    "change {index} removes your own access; set allow_self_removal to mean it"
                ),
            ));
        }
        Ok(())
    }

    /// The writes, audit record and emails of one change already applied to `state`.
    fn step(
        &self,
        state: &TeamState,
        change: &Change,
        who: &Principal,
        now: Timestamp,
    ) -> Result<Step, ServiceError> {
        let team = &state.team;
        let pk = codec::team_pk(team);
        let mut writes = Vec::new();
        let mut mails = Vec::new();
        let put = |item: Item| Write::Put {
            item,
            condition: Condition::None,
        };
        let delete = |pk: String, sk: String| Write::Delete {
            pk,
            sk,
            condition: Condition::None,
        };
        match change {
            Change::CreateTeam { owner, .. } => {
                if let Some(m) = state.members.get(owner) {
                    writes.push(put(codec::member_item(team, m)?));
                }
                writes.push(put(user_team_item(owner, team, now)));
            }
            Change::RenameTeam { .. } | Change::UpdateSettings { .. } => {}
            Change::CreateRole { name, .. } | Change::UpdateRole { name, .. } => {
                if let Some(role) = state.roles.get(name) {
                    writes.push(put(codec::role_item(team, name, role)?));
                }
            }
            Change::DeleteRole { name, .. } => {
                writes.push(delete(pk.clone(), codec::role_sk(name)))
            }
            Change::Invite { email, .. } | Change::Reinvite { email, .. } => {
                let Some(inv) = state.invitations.get(email) else {
                    return Err(ServiceError::Store(StoreError::Malformed(
                        "invitation vanished".into(),
                    )));
                };
                let link = secret::generate("tfi_");
                writes.push(put(codec::invite_item(team, inv)?));
                writes.extend(
                    link_items(
                        &link.hash,
                        "invitation",
                        team,
                        email,
                        &inv.link,
                        inv.expires_at,
                    )
                    .map(put),
                );
                mails.push(Mail {
                    to: email.to_string(),
                    subject: format!("You are invited to join {}", state.display_name),
                    body: format!(
                        "Hello{},\n\n{} invites you to join the team {} as {}.\n\nAccept: {}/join?token={}\n\nThis link works once and expires on {}.\n",
                        inv.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default(),
                        who.actor(),
                        state.display_name,
                        roles_text(&inv.roles),
                        self.public_url(),
                        link.secret,
                        inv.expires_at.format("%Y-%m-%d %H:%M UTC"),
                    ),
                });
            }
            // Joined at once, as an accepted invitation writes it; no mail.
            Change::AddMember { email, .. } => {
                if let Some(m) = state.members.get(email) {
                    writes.push(put(codec::member_item(team, m)?));
                }
                writes.push(put(user_team_item(email, team, now)));
            }
            Change::ChangeInvitationRoles { email, .. } => {
                if let Some(inv) = state.invitations.get(email) {
                    writes.push(put(codec::invite_item(team, inv)?));
                }
            }
            Change::ChangeRoles { email, .. } => {
                if let Some(m) = state.members.get(email) {
                    writes.push(put(codec::member_item(team, m)?));
                }
            }
            Change::RevokeInvitation { email, .. } => {
                writes.push(delete(pk.clone(), codec::invite_sk(email)))
            }
            Change::RemoveMember { email, .. } => {
                writes.push(delete(pk.clone(), codec::member_sk(email)));
                writes.push(delete(codec::user_pk(email), pk.clone()));
            }
            Change::TransferOwnership { from, to } => {
                if let Some(t) = &state.transfer {
                    let link = secret::generate("tft_");
                    writes.push(put(codec::transfer_item(team, t)?));
                    writes.extend(
                        link_items(&link.hash, "transfer", team, from, &t.link, t.expires_at)
                            .map(put),
                    );
                    mails.push(Mail {
                        to: from.to_string(),
                        subject: format!("Confirm the transfer of {} to {to}", state.display_name),
                        body: format!(
                            "Ownership of {} is to pass from you to {to}. Confirm: {}/ownership/confirm?token={}\n\nAfter you confirm, {to} is asked to accept. The request expires on {}.\n",
                            state.display_name,
                            self.public_url(),
                            link.secret,
                            t.expires_at.format("%Y-%m-%d %H:%M UTC"),
                        ),
                    });
                }
            }
        }
        let keys = writes
            .iter()
            .map(|w| (w.key().0.to_owned(), w.key().1.to_owned()))
            .collect();
        let audit = crate::service::audit::record(
            who.actor(),
            change.action(),
            serde_json::to_value(change).unwrap_or(Value::Null),
            now,
        );
        Ok(Step {
            writes,
            audit,
            mails,
            after: codec::Meta::of(state, Counts::default()),
            keys,
        })
    }
}

/// How many write turns teams share in one process.
const WRITE_TURNS: usize = 64;

/// How long outbox items stay in the table after they are written.
const OUTBOX_TTL_DAYS: i64 = 7;

/// The writes of one part of a commit (at most one transaction's worth),
/// without its `META` write, and the team-level fields it leaves.
pub(crate) struct Prepared {
    pub(crate) writes: Vec<Write>,
    pub(crate) mails: bool,
    pub(crate) meta: codec::Meta,
}

/// Splits applied steps into parts of at most 100 writes (counting each
/// part's `META` write), none writing one item twice.
fn into_parts(steps: Vec<Step>) -> Vec<Vec<Step>> {
    let mut parts = Vec::new();
    let mut chunk: Vec<Step> = Vec::new();
    let mut count = 1; // the META write
    let mut keys: HashSet<(String, String)> = HashSet::new();
    for step in steps {
        let needed = step.writes.len() + 1 + step.mails.len();
        let clash = step.keys.iter().any(|k| keys.contains(k));
        if !chunk.is_empty() && (count + needed > MAX_TRANSACT_WRITES || clash) {
            parts.push(std::mem::take(&mut chunk));
            count = 1;
            keys.clear();
        }
        count += needed;
        keys.extend(step.keys.iter().cloned());
        chunk.push(step);
    }
    if !chunk.is_empty() {
        parts.push(chunk);
    }
    parts
}

impl Service {
    /// Commits applied steps: in one transaction when they fit, else as an
    /// intent applied part by part (`crate::service::intent`), which everyone else
    /// sees whole or not at all. Returns the version after the last part.
    async fn commit(
        &self,
        team: &TeamId,
        base: u64,
        steps: Vec<Step>,
        now: Timestamp,
    ) -> Result<u64, ServiceError> {
        let applied = steps.len();
        let mut parts = into_parts(steps);
        if parts.len() <= 1 {
            return match parts.pop() {
                Some(chunk) => self.flush(team, base, chunk, now).await,
                None => Ok(base),
            };
        }
        let prepared = parts
            .into_iter()
            .enumerate()
            .filter_map(|(i, chunk)| {
                self.prepare(team, base + i as u64 + 1, chunk, now)
                    .transpose()
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.commit_intent(team, base, prepared, applied).await
    }

    /// The writes of one part committed at `version`: the steps' own
    /// writes, an audit item per step and an outbox item per email. `None`
    /// for no steps.
    fn prepare(
        &self,
        team: &TeamId,
        version: u64,
        chunk: Vec<Step>,
        now: Timestamp,
    ) -> Result<Option<Prepared>, ServiceError> {
        let pk = codec::team_pk(team);
        let mut writes = Vec::new();
        let mut meta = None;
        let mut mail_seq = 0;
        for (seq, step) in chunk.into_iter().enumerate() {
            writes.extend(step.writes);
            let mut audit = match step.audit {
                Value::Object(map) => map,
                _ => serde_json::Map::new(),
            };
            audit.insert("type".into(), "audit".into());
            audit.insert("version".into(), version.into());
            writes.push(Write::Put {
                item: Item {
                    pk: pk.clone(),
                    sk: codec::event_sk(codec::AUDIT, version, seq),
                    attrs: audit,
                },
                condition: Condition::NotExists,
            });
            for mail in step.mails {
                let item = codec::encode(
                    pk.clone(),
                    codec::event_sk(codec::OUTBOX, version, mail_seq),
                    "outbox",
                    &mail,
                )?
                .with(
                    "expires_at",
                    (now + Duration::days(OUTBOX_TTL_DAYS)).timestamp(),
                );
                mail_seq += 1;
                writes.push(Write::Put {
                    item,
                    condition: Condition::NotExists,
                });
            }
            meta = Some(step.after);
        }
        Ok(meta.map(|mut meta| {
            meta.version = version;
            Prepared {
                writes,
                mails: mail_seq > 0,
                meta,
            }
        }))
    }

    /// Commits one part as the whole of a change, conditioned on `prev`.
    async fn flush(
        &self,
        team: &TeamId,
        prev: u64,
        chunk: Vec<Step>,
        now: Timestamp,
    ) -> Result<u64, ServiceError> {
        let version = prev + 1;
        let Some(Prepared {
            mut writes,
            mails,
            meta,
        }) = self.prepare(team, version, chunk, now)?
        else {
            return Ok(prev);
        };
        let condition = if prev == 0 {
            Condition::NotExists
        } else {
            Condition::VersionEquals(prev)
        };
        let meta_index = writes.len();
        writes.push(Write::Put {
            item: meta.item()?,
            condition,
        });
        match self.store.transact(writes).await {
            Ok(()) => {
                self.committed(team);
                if mails {
                    self.deliver_mail(team).await;
                }
                Ok(version)
            }
            Err(StoreError::ConditionFailed { index, .. }) if index == meta_index && prev == 0 => {
                Err(team_exists(team))
            }
            Err(e @ (StoreError::ConditionFailed { .. } | StoreError::Conflict)) => {
                tracing::debug!(error = %e, team = %team, "a write lost a race");
                Err(self.conflict(team, prev).await)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Hands the team's committed outbox items to the local mail sink, if any.
    pub(crate) async fn deliver_mail(&self, team: &TeamId) {
        if let Some(sink) = &self.mail_sink {
            sink.deliver(self.store.as_ref(), team).await;
        }
    }

    /// The error of a commit conditioned on `expected` that lost a race.
    pub(crate) async fn conflict(&self, team: &TeamId, expected: u64) -> ServiceError {
        let actual = match self.store.get(&codec::team_pk(team), codec::META).await {
            Ok(Some(item)) => match codec::decode::<codec::Meta>(&item, &[]) {
                Ok(meta) => meta.version,
                Err(e) => return e.into(),
            },
            Ok(None) => 0,
            Err(e) => return e.into(),
        };
        ServiceError::VersionConflict { expected, actual }
    }

    /// Writes the audit record of a team-level operation that is not a
    /// `Change` (API keys), bumping the version like any mutation.
    pub(crate) async fn commit_operation(
        &self,
        team: &Scoped,
        who: &Principal,
        action: &str,
        detail: Value,
        writes: Vec<Write>,
    ) -> Result<u64, ServiceError> {
        self.commit_operation_mailing(team, who, action, detail, writes, Vec::new())
            .await
    }

    /// Like `commit_operation`, with emails written to the outbox in the same
    /// transaction. `team` is the (scoped) team after the operation, with its
    /// counters; its version is still the one read.
    pub(crate) async fn commit_operation_mailing(
        &self,
        team: &Scoped,
        who: &Principal,
        action: &str,
        detail: Value,
        writes: Vec<Write>,
        mails: Vec<Mail>,
    ) -> Result<u64, ServiceError> {
        crate::service::close::refuse_if_closing(team)?;
        self.commit_team(team, who, action, detail, writes, mails, None)
            .await
    }

    /// Commits an operation like `commit_operation_mailing`, leaving the
    /// team's `META` with `closing` (closing and reopening a team set it;
    /// every other commit leaves none).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn commit_team(
        &self,
        team: &Scoped,
        who: &Principal,
        action: &str,
        detail: Value,
        writes: Vec<Write>,
        mails: Vec<Mail>,
        closing: Option<codec::Closing>,
    ) -> Result<u64, ServiceError> {
        let now = self.now();
        let keys = writes
            .iter()
            .map(|w| (w.key().0.to_owned(), w.key().1.to_owned()))
            .collect();
        let audit = crate::service::audit::record(who.actor(), action, detail, now);
        let state = &team.state;
        let mut after = codec::Meta::of(state, team.counts);
        after.closing = closing;
        let step = Step {
            writes,
            audit,
            mails,
            after,
            keys,
        };
        self.commit(&state.team, state.version, vec![step], now)
            .await
    }

    /// Outbox items (emails) of a team, oldest first.
    pub async fn outbox(&self, team: &TeamId) -> Result<Vec<Mail>, ServiceError> {
        self.settled_meta(team).await?;
        let items = self
            .store
            .query_all(&codec::team_pk(team), codec::OUTBOX)
            .await?;
        items
            .iter()
            .map(|i| codec::decode(i, &["expires_at"]).map_err(ServiceError::from))
            .collect()
    }
}

pub(crate) fn team_exists(team: &TeamId) -> ServiceError {
    ServiceError::Change {
        index: 0,
        action: "create_team",
        error: ChangeError::TeamExists(team.to_string()),
    }
}

/// Lets a principal into a team: outsiders see nothing (404), and a team
/// that requires 2FA refuses people who signed in without it.
pub(crate) fn admit(who: &Principal, state: &TeamState) -> Result<(), ServiceError> {
    if who.standing(state) == Standing::Outsider {
        return Err(ServiceError::NotFound);
    }
    if who.lacks_required_2fa(state) {
        return Err(ServiceError::TwoFactorRequired(format!(
            "team {} requires a second factor: sign in with one",
            state.team
        )));
    }
    Ok(())
}

/// The people whose standing a change reads or writes.
fn people_of(change: &Change) -> impl Iterator<Item = &Email> {
    let from = match change {
        Change::TransferOwnership { from, .. } => Some(from),
        _ => None,
    };
    change.subject().into_iter().chain(from)
}

/// The owner named by a batch that creates its team.
fn placeholder_owner(changes: &[Change]) -> Result<Email, ServiceError> {
    match changes.first() {
        Some(Change::CreateTeam { owner, .. }) => Ok(owner.clone()),
        _ => Err(ServiceError::NotFound),
    }
}

fn roles_text(roles: &Roles) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Gives an invitation or transfer that is about to get a new link a fresh
/// link id, so that every older link to it is dead, even one made in the
/// same instant.
fn name_new_link(state: &mut TeamState, change: &Change) {
    match change {
        Change::Invite { email, .. } | Change::Reinvite { email, .. } => {
            if let Some(inv) = state.invitations.get_mut(email) {
                inv.link = secret::id();
            }
        }
        Change::TransferOwnership { .. } => {
            if let Some(t) = state.transfer.as_mut() {
                t.link = secret::id();
            }
        }
        _ => {}
    }
}

/// A link look-up, `TOKEN#<sha256 of the secret>`, naming the invitation or
/// transfer link (`link`) it opens (used links are deleted), and its
/// reference in the team's partition, by which deleting a closed team finds
/// the look-up: written together, always.
pub(crate) fn link_items(
    hash: &str,
    kind: &str,
    team: &TeamId,
    email: &Email,
    link: &str,
    expires: Timestamp,
) -> [Item; 2] {
    let token = Item::new(format!("TOKEN#{hash}"), "TOKEN")
        .with("type", "link")
        .with("kind", kind)
        .with("team", team.as_str())
        .with("email", email.as_str())
        .with("link", link)
        .with("valid_until", expires.to_rfc3339())
        .with("expires_at", expires.timestamp());
    [token, codec::link_ref_item(team, hash, expires.timestamp())]
}

fn user_team_item(email: &Email, team: &TeamId, now: Timestamp) -> Item {
    Item::new(codec::user_pk(email), codec::team_pk(team))
        .with("type", "user_team")
        .with("team", team.as_str())
        .with("joined_at", now.to_rfc3339())
}

/// The escalation rule: a principal grants, by any path (an invitation, a
/// role change, a custom-role edit, an API key), only permissions it holds
/// itself; the owner holds them all.
pub(crate) fn check_grant(
    who: &Principal,
    live: &TeamState,
    catalog: &Catalog,
    granted: &BTreeSet<&teamform_core::catalog::Permission>,
) -> Result<(), ServiceError> {
    let held = who.held(live, catalog).ok_or(ServiceError::NotFound)?;
    let beyond = held.lacking(granted);
    if beyond.is_empty() {
        return Ok(());
    }
    Err(ServiceError::Escalation(format!(
        "you cannot grant permissions you do not hold: {}",
        beyond
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}
