//! The mailer conformance suite (feature `test-support`): plain `pub async fn` cases over `&dyn Mailer`,
//! run against every backend by `tests/conformance/mail.rs`.
//!
//! A case sends through the port and then asks a backend-specific [`ReadBack`] what actually went out:
//! moto's record of SES calls, or the `.eml` file parsed by an independent MIME parser (`mail-parser`).
//! Differences between backends are parameters (the read-back) or backend-only cases, never `if`s.

use std::path::PathBuf;

use super::{Email, MailError, Mailer, SentEmail};
use crate::domain::EmailAddress;
use crate::test_support::unique_name;

/// What a backend recorded as sent, in the terms of the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub to: Vec<String>,
    pub subject: String,
    /// Line breaks as `\n`: the MIME canonical CRLF is undone, as every mail reader does.
    pub body: String,
}

/// Reads back what a backend sent, by what `send` returned.
#[async_trait::async_trait]
pub trait ReadBack: Send + Sync + std::fmt::Debug {
    async fn read_back(&self, email: &Email, sent: &SentEmail) -> Option<Received>;
}

/// An email to a fresh address, so cases sharing an emulator never see each other's messages.
pub fn email(subject: &str, body: &str) -> Email {
    let to = EmailAddress::parse(&format!("{}@example.com", unique_name("to")))
        .unwrap_or_else(|e| panic!("generated address must parse: {e}"));
    Email {
        to,
        subject: subject.to_owned(),
        text_body: body.to_owned(),
        reference: unique_name("ob").replace('-', "_"),
    }
}

async fn send_and_read(mailer: &dyn Mailer, read: &dyn ReadBack, email: &Email) -> Received {
    let sent = match mailer.send(email).await {
        Ok(sent) => sent,
        Err(e) => panic!("send must succeed: {e}"),
    };
    assert!(!sent.provider_id.is_empty(), "a provider id is returned");
    match read.read_back(email, &sent).await {
        Some(received) => received,
        None => panic!("the sent message must be readable back"),
    }
}

fn assert_same(email: &Email, received: &Received) {
    assert_eq!(received.to, vec![email.to.expose().to_owned()], "recipient");
    assert_eq!(received.subject, email.subject, "subject");
    assert_eq!(received.body, email.text_body, "body");
}

/// A plain message reads back with the same recipient, subject and body.
pub async fn a_sent_message_reads_back_unchanged(mailer: &dyn Mailer, read: &dyn ReadBack) {
    let email = email(
        "Your qchat sign-in code",
        "Hello,\n\nyour code is 123456.\n\n-- qchat\n",
    );
    let received = send_and_read(mailer, read, &email).await;
    assert_same(&email, &received);
}

/// Non-ASCII subject and body (accents, symbols, CJK, emoji) survive encoding and decoding.
pub async fn a_non_ascii_subject_and_body_read_back_unchanged(
    mailer: &dyn Mailer,
    read: &dyn ReadBack,
) {
    let email = email(
        "Bestätigung: Ihre Anmeldung bei der Bäckerei Müller – schön, dass Sie da sind 🎉",
        "Grüße aus Köln!\nPreis: 12,50 €\n日本語のテキスト\nÇa va? 👍\n",
    );
    let received = send_and_read(mailer, read, &email).await;
    assert_same(&email, &received);
}

/// Lines longer than SMTP's 998-octet limit still arrive intact (the backend must encode them).
pub async fn a_body_with_very_long_lines_reads_back_unchanged(
    mailer: &dyn Mailer,
    read: &dyn ReadBack,
) {
    let long_line = "word ".repeat(400);
    let email = email(
        "Long lines",
        &format!("{long_line}\n{}\nend\n", "x".repeat(1500)),
    );
    let received = send_and_read(mailer, read, &email).await;
    assert_same(&email, &received);
}

/// Two sends are two records, each with its own content.
pub async fn two_messages_are_two_records(mailer: &dyn Mailer, read: &dyn ReadBack) {
    let first = email("First", "one\n");
    let second = email("Second", "two\n");
    let (Ok(a), Ok(b)) = (mailer.send(&first).await, mailer.send(&second).await) else {
        panic!("both sends must succeed");
    };
    assert_ne!(a.provider_id, b.provider_id, "distinct provider ids");
    let (Some(ra), Some(rb)) = (
        read.read_back(&first, &a).await,
        read.read_back(&second, &b).await,
    ) else {
        panic!("both messages must be readable back");
    };
    assert_same(&first, &ra);
    assert_same(&second, &rb);
}

/// A subject with a line break would smuggle headers in: refused as permanent, before anything is sent.
pub async fn a_subject_with_a_line_break_is_refused_permanently(mailer: &dyn Mailer) {
    let email = email("Hello\r\nBcc: someone@example.com", "body\n");
    match mailer.send(&email).await {
        // Refused by the port's own check: nothing was sent, so there is no provider error to keep.
        Err(MailError::Permanent { source: None, .. }) => {}
        other => panic!("expected a permanent refusal, got {other:?}"),
    }
}

/// Neither logs nor error messages carry the recipient's address (or the subject and body).
pub async fn the_recipient_appears_in_no_log_or_error(mailer: &dyn Mailer, read: &dyn ReadBack) {
    let logs = crate::test_support::logs::capture();
    let email = email("Private subject line", "Private body text\n");
    let _ = send_and_read(mailer, read, &email).await;
    let mut refused = email.clone();
    refused.subject = "Broken\nsubject".to_owned();
    if let Err(e) = mailer.send(&refused).await {
        let chain = error_chain(&e);
        assert!(
            !chain.contains(email.to.expose()),
            "error names the recipient"
        );
    }
    logs.assert_absent(&[
        email.to.expose(),
        "Private subject line",
        "Private body text",
    ]);
}

/// SES only: a sender SES has not verified is refused as permanent, with SES's error kept as source.
pub async fn an_unverified_sender_is_refused_permanently(unverified: &dyn Mailer) {
    let email = email("Hello", "body\n");
    match unverified.send(&email).await {
        Err(
            e @ MailError::Permanent {
                source: Some(_), ..
            },
        ) => {
            assert!(
                !error_chain(&e).contains(email.to.expose()),
                "no recipient in the error"
            );
        }
        other => panic!("expected a permanent refusal with a source, got {other:?}"),
    }
}

/// Outbox only: a folder that cannot be created is transient (the message is fine; fix the folder and
/// the same send succeeds), with the I/O error as source.
pub async fn an_unwritable_folder_is_a_transient_failure(broken: &dyn Mailer) {
    let email = email("Hello", "body\n");
    match broken.send(&email).await {
        Err(MailError::Transient {
            source: Some(_), ..
        }) => {}
        other => panic!("expected a transient failure with a source, got {other:?}"),
    }
}

/// Outbox only: sending the same reference twice leaves one file, holding the last content.
pub async fn the_same_reference_sent_twice_is_one_file(
    mailer: &dyn Mailer,
    read: &dyn ReadBack,
    dir: &std::path::Path,
) {
    let first = email("First version", "one\n");
    let mut again = email("Second version", "two\n");
    again.to = first.to.clone();
    again.reference = first.reference.clone();
    let (Ok(a), Ok(b)) = (mailer.send(&first).await, mailer.send(&again).await) else {
        panic!("both sends must succeed");
    };
    assert_eq!(a.provider_id, b.provider_id, "same file");
    let files = eml_files(dir)
        .into_iter()
        .filter(|n| n.ends_with(&format!("-{}.eml", first.reference)))
        .count();
    assert_eq!(files, 1, "one file per reference");
    let Some(received) = read.read_back(&again, &b).await else {
        panic!("the message must be readable back");
    };
    assert_same(&again, &received);
}

fn eml_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".eml"))
                .collect()
        })
        .unwrap_or_default()
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(" / ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

// ---- backends' read-backs and set-ups ----

/// SES on moto: moto keeps every `SendEmail` call (`GET /moto-api/data.json`, `["ses"]["Message"]`: a list
/// of `{id, source, subject, body, destinations: {ToAddresses, CcAddresses, BccAddresses}}`), matched here
/// by SES's message id.
#[derive(Debug, Clone, Copy, Default)]
pub struct MotoSesReadBack;

#[async_trait::async_trait]
impl ReadBack for MotoSesReadBack {
    async fn read_back(&self, _email: &Email, sent: &SentEmail) -> Option<Received> {
        let data = crate::test_support::moto::recorded_data().await;
        let messages = data.get("ses")?.get("Message")?.as_array()?;
        let m = messages
            .iter()
            .find(|m| m.get("id").and_then(|v| v.as_str()) == Some(sent.provider_id.as_str()))?;
        let to = m
            .get("destinations")?
            .get("ToAddresses")?
            .as_array()?
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        Some(Received {
            to,
            subject: m.get("subject")?.as_str()?.to_owned(),
            body: m.get("body")?.as_str()?.to_owned(),
        })
    }
}

/// The SES mailer on moto, its sender identity verified first (moto, like SES in the sandbox, refuses
/// unverified senders). Each call verifies a fresh address, so cases stay independent.
pub async fn ses_on_moto() -> super::SesMailer {
    let client = aws_sdk_ses::Client::new(&crate::test_support::moto::sdk_config().await);
    let sender = format!("noreply@{}.example", unique_name("qchat"));
    if let Err(e) = client
        .verify_email_identity()
        .email_address(&sender)
        .send()
        .await
    {
        panic!("could not verify the sender on moto: {e:?}");
    }
    super::SesMailer::new(client, sender)
}

/// The SES mailer on moto with a sender nobody verified (its domain is fresh too, and moto also accepts
/// a sender whose domain is verified).
pub async fn ses_on_moto_unverified() -> super::SesMailer {
    let client = aws_sdk_ses::Client::new(&crate::test_support::moto::sdk_config().await);
    let sender = format!("noreply@{}.example", unique_name("unverified"));
    super::SesMailer::new(client, sender)
}

/// The outbox mailer: the `.eml` file named by the provider id, parsed by `mail-parser`. Also checks the
/// file name and Message-ID carry the reference.
#[derive(Debug, Clone)]
pub struct OutboxReadBack {
    pub dir: PathBuf,
}

#[async_trait::async_trait]
impl ReadBack for OutboxReadBack {
    async fn read_back(&self, email: &Email, sent: &SentEmail) -> Option<Received> {
        assert!(
            sent.provider_id
                .ends_with(&format!("-{}.eml", email.reference)),
            "the file name is <time>-<reference>.eml"
        );
        let bytes = std::fs::read(self.dir.join(&sent.provider_id)).ok()?;
        let message = mail_parser::MessageParser::default().parse(&bytes)?;
        let message_id = message.message_id()?;
        assert!(
            message_id.starts_with(&format!("{}@", email.reference)),
            "the Message-ID is made from the reference"
        );
        assert!(message.date().is_some(), "a Date header");
        assert!(
            message.from().and_then(|a| a.first()).is_some(),
            "a From header"
        );
        let to = message
            .to()?
            .iter()
            .filter_map(|a| a.address().map(str::to_owned))
            .collect();
        Some(Received {
            to,
            subject: message.subject()?.to_owned(),
            body: message.body_text(0)?.replace("\r\n", "\n"),
        })
    }
}

/// A fresh outbox mailer in a temporary folder, with a fixed clock. Keep the `TempDir` alive.
pub fn outbox_in_temp_dir() -> (super::OutboxMailer, OutboxReadBack, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let clock = std::sync::Arc::new(crate::clock::ManualClock::at(
        crate::clock::Timestamp::from_secs(1_796_000_000),
    ));
    let mailer = super::OutboxMailer::new(
        dir.path().join("outbox"),
        "qchat <noreply@qchat.example>".to_owned(),
        clock,
    );
    let read = OutboxReadBack {
        dir: dir.path().join("outbox"),
    };
    (mailer, read, dir)
}

/// An outbox mailer whose folder can never be created: its parent is a regular file. (Permission bits
/// would not do: tests may run as root.)
pub fn outbox_in_unwritable_place() -> (super::OutboxMailer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let file = dir.path().join("not-a-folder");
    if let Err(e) = std::fs::write(&file, b"") {
        panic!("could not create the blocking file: {e}");
    }
    let mailer = super::OutboxMailer::new(
        file.join("outbox"),
        "noreply@qchat.example".to_owned(),
        std::sync::Arc::new(crate::clock::SystemClock),
    );
    (mailer, dir)
}
