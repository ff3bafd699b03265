//! Local mail files: whatever text reaches a header, the written `.eml` has
//! exactly the headers the builder put there and none smuggled in.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use teamform_core::TeamId;
use teamform_functions::mail::{LOCAL_FROM, OutboxDir, rfc5322, single_line};
use teamform_functions::service::{Mail, MailSink};

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
        body: "Hello,\r\nBcc: body@evil.io\n\nAccept: https://app/invitations/accept?token=tfi_secret\n"
            .into(),
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

#[test]
fn a_recipient_carrying_a_header_is_refused_and_no_file_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = OutboxDir::new(dir.path().join("outbox"));
    let team = TeamId::parse("acme").expect("id");
    for to in [
        "bob@acme.com\r\nBcc: evil@evil.io",
        "bob@acme.com\nBcc: evil@evil.io",
        "bob@acme.com, evil@evil.io",
    ] {
        assert!(
            outbox.write(&team, 0, &mail(to, "Hi")).is_err(),
            "{to:?} is not one mailbox"
        );
    }
    outbox.deliver(
        &team,
        &[
            mail("bob@acme.com\r\nBcc: evil@evil.io", "Hi"),
            mail("carol@acme.com", "Hi\r\nBcc: evil@evil.io"),
        ],
    );
    let files: Vec<_> = std::fs::read_dir(outbox.dir())
        .expect("the outbox exists")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "only the well-formed recipient: {files:?}");
    let text = std::fs::read_to_string(&files[0]).expect("eml");
    assert_eq!(names(&text), EXPECTED, "{text}");
    let to: Vec<_> = headers(&text)
        .into_iter()
        .filter(|(n, _)| n == "to" || n == "bcc" || n == "cc")
        .collect();
    assert_eq!(to, [("to".to_owned(), "carol@acme.com".to_owned())]);
    assert!(
        text.contains("token=tfi_secret"),
        "the link stays readable in the file: {text}"
    );
}

#[test]
fn a_long_link_stays_whole_on_one_line_of_the_file() {
    let link = format!(
        "https://teamform.example/invitations/accept?token=tfi_{}",
        "x".repeat(60)
    );
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
