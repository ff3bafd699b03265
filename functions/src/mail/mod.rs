//! Emails as messages: the one place where an outbox `Mail` becomes RFC 5322
//! bytes, and the one local outbox (a directory of `.eml` files) that
//! `teamform serve` and the in-process CLI deliver to.
//!
//! Local delivery works from the committed outbox items, never from a copy
//! in memory, as the mailer does in AWS: after a change that wrote emails,
//! and when a local host starts, each outbox item is written to a file named
//! by the item's key, then the item is deleted under the condition that it
//! still exists. A crash between the two leaves the item, and the next
//! delivery writes the same file again: at least once, and never a second
//! file for one email. A failure is logged and leaves the item for the next
//! delivery; it never fails the request whose change already committed.
//!
//! The items a previous run left are found with `Store::scan`, a read of the
//! whole store, once per start of a local host (a SQLite file, or the table
//! of a development `serve --store dynamodb:`); the Lambda never calls it.
//! An index of teams with pending mail would spare that read but would add a
//! write to every mailing transaction, in AWS too, and its own clean-up
//! racing new mail.
//!
//! User text (a team's display name in a subject, a recipient) reaches
//! headers here only through a MIME builder that parses addresses and
//! encodes header text, after control characters were folded to spaces: no
//! header is ever built by concatenating strings. This module must never log
//! a message's body, which carries link secrets; it logs where a message went.

#[cfg(feature = "aws")]
pub mod mailer;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, MIME_VERSION_1_0};
use lettre::message::{Body, Mailbox};
use teamform_core::TeamId;

use crate::service::{Mail, MailSink};
use crate::store::codec;
use crate::store::{Condition, Item, Store, StoreError, Write};

/// The sender of local mail files. Nothing is sent from it: it only fills the
/// `From:` header that a message must have.
pub const LOCAL_FROM: &str = "teamform@localhost";

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `{0:?}` so that a hostile address shows escaped in any log line.
    #[error("not a mailbox: {0:?}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An item under an outbox key that is not an outbox item this service
    /// writes: its key or its email cannot be read.
    #[error("unreadable outbox item {pk} / {sk}: {reason}")]
    Item {
        pk: String,
        sk: String,
        reason: String,
    },
    #[error("cannot delete the delivered outbox item: {0}")]
    Store(#[from] StoreError),
    #[error("the task writing the email failed: {0}")]
    Task(String),
}

/// `text` as one header-safe line: every control character (CR, LF, tab,
/// NUL, ...) becomes a space, and runs of spaces collapse. Subjects pass
/// through this before any sender sees them.
pub fn single_line(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A mailbox parsed from an address, refused when it is anything else (a
/// second address, a header, a line break).
fn mailbox(address: &str) -> Result<Mailbox, MailError> {
    address
        .parse::<Mailbox>()
        .map_err(|_| MailError::Address(address.to_owned()))
}

/// The message as RFC 5322 bytes (CRLF line ends): `From: from`, `To:` the
/// recipient, the subject on one encoded line, and the body as UTF-8 text.
pub fn rfc5322(mail: &Mail, from: &str) -> Result<Vec<u8>, MailError> {
    let to = mailbox(&mail.to)?;
    let from = mailbox(from)?;
    let body = match eight_bit(&mail.body) {
        Some(bytes) => Body::dangerous_pre_encoded(bytes, ContentTransferEncoding::EightBit),
        None => Body::new(mail.body.clone()),
    };
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(single_line(&mail.subject))
        .header(MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| MailError::Build(e.to_string()))?;
    Ok(message.formatted())
}

/// The body as 8bit text with CRLF line ends, when RFC 5322 allows it as is
/// (no NUL, no lone CR, lines of at most 998 octets). The builder's own
/// choice would be quoted-printable for any line over 76 characters, which
/// breaks a link across lines and turns its `=` into `=3D` in the file a
/// person opens to follow it.
fn eight_bit(body: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 32);
    for line in body.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() > 998 || line.contains(['\r', '\0']) {
            return None;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // `split` yields a last, empty piece after a final line end.
    if body.ends_with('\n') {
        out.truncate(out.len().saturating_sub(2));
    }
    Some(out)
}

/// Tells apart the temporary files of one process's writers.
static PART_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A directory of `.eml` files, one per email: the local outbox.
#[derive(Debug, Clone)]
pub struct OutboxDir {
    dir: PathBuf,
}

/// What one delivery did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Emails written whose outbox items this delivery deleted.
    pub sent: usize,
    /// Emails written whose items another deliverer had deleted already.
    pub raced: usize,
    /// Items that failed (logged) and stay for the next delivery.
    pub left: usize,
}

impl OutboxDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The outbox of an embedded store: `outbox/` beside its SQLite file, so
    /// that mail follows the store wherever it is.
    pub fn beside(store_file: &Path) -> Self {
        let dir = store_file.parent().unwrap_or(Path::new("."));
        Self::new(dir.join("outbox"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Delivers the committed outbox items of one team. Never fails: a
    /// failure is logged and leaves its item for the next delivery.
    pub async fn deliver_team(&self, store: &dyn Store, team: &TeamId) -> Delivered {
        match store.query_all(&codec::team_pk(team), codec::OUTBOX).await {
            Ok(items) => self.deliver_items(store, items).await,
            Err(error) => {
                tracing::error!(%error, team = %team, "cannot read the outbox; its emails wait for the next delivery");
                Delivered::default()
            }
        }
    }

    /// Delivers every outbox item left in the store, of every team: what a
    /// local host does when it starts. Fails only when the store cannot be
    /// read; failures of single items are logged and leave those items.
    pub async fn deliver_left(&self, store: &dyn Store) -> Result<Delivered, StoreError> {
        let items = store.scan(codec::OUTBOX).await?;
        Ok(self.deliver_items(store, items).await)
    }

    /// Writes the emails of `items`, then deletes the items that still
    /// exist, up to a transaction's worth at a time (one commit per hundred
    /// emails, not one per email).
    async fn deliver_items(&self, store: &dyn Store, items: Vec<Item>) -> Delivered {
        let mut done = Delivered::default();
        let items: Vec<Item> = items
            .into_iter()
            .filter(|i| i.str("type") == Some("outbox"))
            .collect();
        if items.is_empty() {
            return done;
        }
        // File writes stay off the async workers.
        let outbox = self.clone();
        let written = tokio::task::spawn_blocking(move || {
            items
                .into_iter()
                .map(|item| {
                    let result = outbox.write_item(&item);
                    (item, result)
                })
                .collect::<Vec<_>>()
        })
        .await;
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "the outbox writer failed; its emails wait for the next delivery");
                return done;
            }
        };
        let mut ready = Vec::new();
        for (item, result) in written {
            match result {
                Ok((path, mail)) => ready.push((item, path, mail)),
                Err(error) => {
                    tracing::error!(
                        %error,
                        pk = %item.pk,
                        sk = %item.sk,
                        "could not deliver an email to the local outbox; it waits for the next delivery"
                    );
                    done.left += 1;
                }
            }
        }
        for chunk in ready.chunks(crate::store::MAX_TRANSACT_WRITES) {
            let writes = chunk.iter().map(|(item, ..)| delete_once(item)).collect();
            match store.transact(writes).await {
                Ok(()) => {
                    for (item, path, mail) in chunk {
                        log_written(item, path, mail);
                        done.sent += 1;
                    }
                }
                // Another deliverer took some: settle them one by one.
                Err(StoreError::ConditionFailed { .. }) => {
                    for (item, path, mail) in chunk {
                        match store.transact(vec![delete_once(item)]).await {
                            Ok(()) => {
                                log_written(item, path, mail);
                                done.sent += 1;
                            }
                            Err(StoreError::ConditionFailed { .. }) => {
                                tracing::debug!(path = %path.display(), "outbox item delivered by another host");
                                done.raced += 1;
                            }
                            Err(error) => {
                                tracing::error!(%error, sk = %item.sk, "could not clear a delivered outbox item; it will be written again");
                                done.left += 1;
                            }
                        }
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "could not clear delivered outbox items; they will be written again");
                    done.left += chunk.len();
                }
            }
        }
        done
    }

    /// Writes the email of one outbox item and returns its file and email.
    /// The file is named by the item's key (team, version, position, then
    /// the recipient for people reading the directory), so writing the same
    /// item again replaces it; it appears whole, through a rename.
    pub fn write_item(&self, item: &Item) -> Result<(PathBuf, Mail), MailError> {
        let unreadable = |reason: String| MailError::Item {
            pk: item.pk.clone(),
            sk: item.sk.clone(),
            reason,
        };
        let stem = key_stem(&item.pk, &item.sk)
            .ok_or_else(|| unreadable("not an outbox key of a team".into()))?;
        let mail: Mail =
            codec::decode(item, &["expires_at"]).map_err(|e| unreadable(e.to_string()))?;
        let bytes = rfc5322(&mail, LOCAL_FROM)?;
        // The recipient is there for reading only; bounded so that the name
        // stays within file-system limits whatever the address.
        let to: String = file_safe(&mail.to).chars().take(100).collect();
        let name = format!("{stem}.{to}.eml");
        let path = self.dir.join(&name);
        // A temporary name of this writer's own: two hosts delivering the
        // same item at once must not write into one file.
        let writer = PART_SEQ.fetch_add(1, Ordering::Relaxed);
        let part = self
            .dir
            .join(format!(".{name}.{}-{writer}.part", std::process::id()));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| MailError::Write { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let mut file = std::fs::File::create(&part).map_err(io(&part))?;
        file.write_all(&bytes).map_err(io(&part))?;
        // Written (and renamed whole) before the item goes: a host killed at
        // any point loses no email, since what it wrote is in the system's
        // page cache. No fsync per email: the local store (SQLite in WAL
        // mode) does not promise more against a power cut either, and one
        // fsync per email made a 100,000-person apply several times slower.
        drop(file);
        std::fs::rename(&part, &path).map_err(io(&path))?;
        Ok((path, mail))
    }
}

/// Deletes a delivered outbox item, if no other deliverer did first.
fn delete_once(item: &Item) -> Write {
    Write::Delete {
        pk: item.pk.clone(),
        sk: item.sk.clone(),
        condition: Condition::Exists,
    }
}

fn log_written(item: &Item, path: &Path, mail: &Mail) {
    tracing::info!(
        path = %path.display(),
        to = ?mail.to,
        team = %item.pk.trim_start_matches("TEAM#"),
        "email written to the local outbox"
    );
}

/// `{team}.{version}.{position}` from `TEAM#<team>` / `OUTBOX#<version>#<position>`,
/// or `None` for any other key. Team ids hold no `.`, and version and
/// position are digits, so distinct keys give distinct stems.
fn key_stem(pk: &str, sk: &str) -> Option<String> {
    let team = TeamId::parse(pk.strip_prefix("TEAM#")?).ok()?;
    let (version, position) = sk.strip_prefix(codec::OUTBOX)?.split_once('#')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(version) && digits(position)).then(|| format!("{team}.{version}.{position}"))
}

/// An address as a file-name part: letters, digits, `.`, `-` and `@` kept,
/// the rest `_`.
fn file_safe(address: &str) -> String {
    address
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '@') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[async_trait::async_trait]
impl MailSink for OutboxDir {
    async fn deliver(&self, store: &dyn Store, team: &TeamId) {
        self.deliver_team(store, team).await;
    }
}
