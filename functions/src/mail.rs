//! Emails as messages: the one place where an outbox `Mail` becomes RFC 5322
//! bytes, and the one local outbox (a directory of `.eml` files) that
//! `teamform serve` and the in-process CLI deliver to.
//!
//! User text (a team's display name in a subject, a recipient) reaches
//! headers here only through a MIME builder that parses addresses and
//! encodes header text, after control characters were folded to spaces: no
//! header is ever built by concatenating strings. This module must never log
//! a message's body, which carries link secrets; it logs where a message went.

use std::path::{Path, PathBuf};

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType, MIME_VERSION_1_0};
use lettre::message::{Body, Mailbox};
use teamform_core::TeamId;

use crate::service::{Mail, MailSink};

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

/// A directory of `.eml` files, one per email: the local outbox.
#[derive(Debug, Clone)]
pub struct OutboxDir {
    dir: PathBuf,
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

    /// Writes one email and returns its file. `seq` tells apart emails
    /// written within the same microsecond.
    pub fn write(&self, team: &TeamId, seq: usize, mail: &Mail) -> Result<PathBuf, MailError> {
        let bytes = rfc5322(mail, LOCAL_FROM)?;
        std::fs::create_dir_all(&self.dir).map_err(|source| MailError::Write {
            path: self.dir.clone(),
            source,
        })?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f");
        let path = self
            .dir
            .join(format!("{stamp}-{seq}-{team}-{}.eml", file_safe(&mail.to)));
        std::fs::write(&path, bytes).map_err(|source| MailError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

/// An address as a file-name part: letters, digits, `.` and `@` kept, the
/// rest `_`.
fn file_safe(address: &str) -> String {
    address
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '@' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl MailSink for OutboxDir {
    fn deliver(&self, team: &TeamId, mails: &[Mail]) {
        for (seq, mail) in mails.iter().enumerate() {
            match self.write(team, seq, mail) {
                Ok(path) => tracing::info!(
                    path = %path.display(),
                    to = ?mail.to,
                    team = %team,
                    "email written to the local outbox"
                ),
                Err(error) => tracing::error!(
                    %error,
                    to = ?mail.to,
                    team = %team,
                    "could not write an email to the local outbox"
                ),
            }
        }
    }
}
