//! Local mail files: whatever text reaches a header, the written `.eml` has
//! exactly the headers the builder put there and none smuggled in; and they
//! are delivered from the committed outbox items, write then delete, so an
//! email committed but not yet written is written by the next host.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::path::{Path, PathBuf};
use std::sync::Arc;

use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::mail::{Delivered, LOCAL_FROM, OutboxDir, rfc5322, single_line};
use teamform_functions::service::{BatchOptions, Mail, Service};
use teamform_functions::store::codec;
use teamform_functions::store::sqlite::SqliteStore;
use teamform_functions::store::{Condition, Item, Store, Write};

/// The header fields of an RFC 5322 message as (lower-case name, unfolded
/// value), read the way a mail reader does: up to the first empty line,
/// continuation lines (starting with a space or tab) joined to the field
/// before. A bare LF ends a line too, as lenient readers treat it.
fn headers(message: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in message
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
    {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push_str(line);
            }
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        fields.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    fields
}

fn names(message: &str) -> Vec<String> {
    let mut names: Vec<String> = headers(message).into_iter().map(|(n, _)| n).collect();
    names.sort();
    names
}

const EXPECTED: [&str; 7] = [
    "content-transfer-encoding",
    "content-type",
    "date",
    "from",
    "mime-version",
    "subject",
    "to",
];

fn mail(to: &str, subject: &str) -> Mail {
    Mail {
        to: to.into(),
        subject: subject.into(),
        body: "Hello,\r\nBcc: body@evil.io\n\nAccept: https://app/join?token=tfi_secret\n".into(),
    }
}

#[test]
fn a_subject_with_line_breaks_and_bcc_yields_no_injected_header() {
    for subject in [
        "You are invited to join X\r\nBcc: evil@evil.io",
        "You are invited to join X\nBcc: evil@evil.io",
        "You are invited to join X\rBcc: evil@evil.io",
        "X\r\n\r\nBcc: evil@evil.io",
        "Ünïcode X\r\nBcc: evil@evil.io\r\nX-Evil: 1",
    ] {
        let bytes = rfc5322(&mail("bob@acme.com", subject), LOCAL_FROM).expect("a message");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert_eq!(names(&text), EXPECTED, "{subject:?} gave:\n{text}");
        let to: Vec<_> = headers(&text)
            .into_iter()
            .filter(|(n, _)| n == "to")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(to, ["bob@acme.com"]);
    }
}

/// An outbox item as the service writes it, at version `version`, position 0.
fn outbox_item(team: &str, version: u64, mail: &Mail) -> Item {
    codec::encode(
        format!("TEAM#{team}"),
        codec::event_sk(codec::OUTBOX, version, 0),
        "outbox",
        mail,
    )
    .expect("encoded")
    .with("expires_at", 1_900_000_000)
}

async fn put_items(store: &dyn Store, items: Vec<Item>) {
    let writes = items
        .into_iter()
        .map(|item| Write::Put {
            item,
            condition: Condition::None,
        })
        .collect();
    store.transact(writes).await.expect("written");
}

/// The `.eml` files of a directory, sorted, with their text.
fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(PathBuf, String)> = entries
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("eml");
            (p, text)
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn a_recipient_carrying_a_header_is_refused_and_no_file_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = OutboxDir::new(dir.path().join("outbox"));
    for to in [
        "bob@acme.com\r\nBcc: evil@evil.io",
        "bob@acme.com\nBcc: evil@evil.io",
        "bob@acme.com, evil@evil.io",
    ] {
        assert!(
            outbox
                .write_item(&outbox_item("acme", 1, &mail(to, "Hi")))
                .is_err(),
            "{to:?} is not one mailbox"
        );
    }
    let store = SqliteStore::in_memory().expect("store");
    let refused = outbox_item("acme", 1, &mail("bob@acme.com\r\nBcc: evil@evil.io", "Hi"));
    let (refused_pk, refused_sk) = (refused.pk.clone(), refused.sk.clone());
    put_items(
        &store,
        vec![
            refused,
            outbox_item(
                "acme",
                2,
                &mail("carol@acme.com", "Hi\r\nBcc: evil@evil.io"),
            ),
        ],
    )
    .await;
    let team = TeamId::parse("acme").expect("id");
    let done = outbox.deliver_team(&store, &team).await;
    assert_eq!((done.sent, done.left), (1, 1), "{done:?}");
    let files = files(outbox.dir());
    assert_eq!(files.len(), 1, "only the well-formed recipient: {files:?}");
    let text = &files[0].1;
    assert_eq!(names(text), EXPECTED, "{text}");
    let to: Vec<_> = headers(text)
        .into_iter()
        .filter(|(n, _)| n == "to" || n == "bcc" || n == "cc")
        .collect();
    assert_eq!(to, [("to".to_owned(), "carol@acme.com".to_owned())]);
    assert!(
        text.contains("token=tfi_secret"),
        "the link stays readable in the file: {text}"
    );
    let left = store
        .query_all("TEAM#acme", codec::OUTBOX)
        .await
        .expect("read");
    assert_eq!(
        left.iter()
            .map(|i| (i.pk.as_str(), i.sk.as_str()))
            .collect::<Vec<_>>(),
        [(refused_pk.as_str(), refused_sk.as_str())],
        "the refused email stays for the next delivery, the sent one is gone"
    );
}

/// A service over `file` that commits emails and delivers none, as a host
/// killed right after its commit would have left them.
fn undelivering(file: &Path) -> (Service, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(file).expect("store"));
    let svc = Service::new(
        store.clone(),
        Arc::new(Catalog::standard()),
        Arc::new(SystemClock),
        "https://app".into(),
    );
    (svc, store)
}

fn invite(to: &str) -> Change {
    Change::Invite {
        email: Email::parse(to).expect("email"),
        name: None,
        roles: [RoleName::parse("viewer").expect("role")].into(),
    }
}

#[tokio::test]
async fn emails_committed_but_never_delivered_are_delivered_by_the_next_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("state.db");
    let (svc, store) = undelivering(&file);
    let team = TeamId::parse("acme").expect("id");
    let changes = [
        Change::CreateTeam {
            display_name: "Acme".into(),
            owner: Email::parse("alice@acme.com").expect("email"),
        },
        invite("bob@acme.com"),
        invite("carol@acme.com"),
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
    let committed = svc.outbox(&team).await.expect("outbox");
    assert_eq!(committed.len(), 2);
    let outbox = OutboxDir::beside(&file);
    assert!(files(outbox.dir()).is_empty(), "nothing delivered yet");
    drop(svc);

    // A host starting over the same file.
    let restarted: Arc<dyn Store> = Arc::new(SqliteStore::open(&file).expect("store"));
    let done = outbox
        .deliver_left(restarted.as_ref())
        .await
        .expect("scanned");
    assert_eq!((done.sent, done.left), (2, 0), "{done:?}");
    let files = files(outbox.dir());
    assert_eq!(files.len(), 2, "{files:?}");
    for mail in &committed {
        let with_link: Vec<_> = files
            .iter()
            .filter(|(_, text)| text.contains(&format!("To: {}", mail.to)))
            .collect();
        assert_eq!(with_link.len(), 1, "one file to {}: {files:?}", mail.to);
        assert!(with_link[0].1.contains("https://app/join?token=tfi_"));
    }
    assert!(
        store
            .query_all("TEAM#acme", codec::OUTBOX)
            .await
            .expect("read")
            .is_empty(),
        "every delivered outbox item is deleted"
    );
    let again = outbox
        .deliver_left(restarted.as_ref())
        .await
        .expect("scanned");
    assert_eq!(again, Delivered::default(), "nothing is delivered twice");
}

#[tokio::test]
async fn a_change_delivers_from_its_committed_items_and_a_redelivery_replaces_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("state.db");
    let outbox = OutboxDir::beside(&file);
    let (svc, store) = undelivering(&file);
    let svc = svc.with_mail_sink(Arc::new(outbox.clone()));
    let team = TeamId::parse("acme").expect("id");
    let changes = [
        Change::CreateTeam {
            display_name: "Acme".into(),
            owner: Email::parse("alice@acme.com").expect("email"),
        },
        invite("bob@acme.com"),
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
    let written = files(outbox.dir());
    assert_eq!(written.len(), 1, "{written:?}");
    let name = written[0]
        .0
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert_eq!(
        name, "acme.000000000001.0000.bob@acme.com.eml",
        "named by its key"
    );
    assert!(
        svc.outbox(&team).await.expect("outbox").is_empty(),
        "the item is gone"
    );

    // A host killed after writing the file but before deleting the item:
    // the item is there again, and delivering it replaces the same file.
    let mail = Mail {
        to: "bob@acme.com".into(),
        subject: "Again".into(),
        body: "the same email\n".into(),
    };
    put_items(store.as_ref(), vec![outbox_item("acme", 1, &mail)]).await;
    let done = outbox.deliver_team(store.as_ref(), &team).await;
    assert_eq!((done.sent, done.left), (1, 0), "{done:?}");
    let rewritten = files(outbox.dir());
    assert_eq!(
        rewritten.len(),
        1,
        "no second file for one email: {rewritten:?}"
    );
    assert_eq!(rewritten[0].0, written[0].0);
    assert!(rewritten[0].1.contains("the same email"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hosts_delivering_at_once_write_each_email_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("state.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&file).expect("store"));
    let other: Arc<dyn Store> = Arc::new(SqliteStore::open(&file).expect("store"));
    let items: Vec<Item> = (1..=40)
        .map(|v| outbox_item("acme", v, &mail(&format!("p{v}@acme.com"), "Hi")))
        .collect();
    put_items(store.as_ref(), items).await;
    let outbox = OutboxDir::beside(&file);
    let (a, b) = tokio::join!(
        outbox.deliver_left(store.as_ref()),
        outbox.deliver_left(other.as_ref())
    );
    let (a, b) = (a.expect("scanned"), b.expect("scanned"));
    assert_eq!((a.left, b.left), (0, 0));
    assert_eq!(a.sent + b.sent, 40, "each item deleted once: {a:?} {b:?}");
    assert_eq!(files(outbox.dir()).len(), 40);
    let all = std::fs::read_dir(outbox.dir()).expect("outbox").count();
    assert_eq!(all, 40, "no temporary file left behind");
    assert!(store.scan(codec::OUTBOX).await.expect("scan").is_empty());
}

#[test]
fn a_long_link_stays_whole_on_one_line_of_the_file() {
    let link = format!("https://teamform.example/join?token=tfi_{}", "x".repeat(60));
    let message = Mail {
        to: "bob@acme.com".into(),
        subject: "Hi".into(),
        body: format!("Hello,\n\nAccept: {link}\n"),
    };
    let text = String::from_utf8(rfc5322(&message, LOCAL_FROM).expect("a message")).expect("utf-8");
    assert!(text.contains(&format!("\r\nAccept: {link}\r\n")), "{text}");
    assert!(text.contains("Content-Transfer-Encoding: 8bit"), "{text}");
}

#[test]
fn single_line_folds_control_characters_to_spaces() {
    assert_eq!(single_line("a\r\nBcc: b\tc\0d"), "a Bcc: b c d");
    assert_eq!(single_line("  Acme  Inc "), "Acme Inc");
    assert_eq!(single_line("Ünïcode"), "Ünïcode");
}
