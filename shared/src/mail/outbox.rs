//! The local mailer: one RFC 5322 `.eml` file per message in an outbox folder, for development and tests.
//!
//! Invariants: a file is named `<UTC time>-<reference>.eml` and holds exactly one message (CRLF line
//! endings, RFC 2047 subject when non-ASCII, MIME text/plain UTF-8 body); it appears whole or not at all
//! (written under a temporary dot-name in the same folder, then renamed); sending the same `reference`
//! again replaces that message's file instead of adding one, mirroring the idempotent outbox it serves.
//! The files hold personal data (the recipient), like a real mailbox: the folder is for local use only.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use tracing::instrument;

use super::{Email, MailError, Mailer, SentEmail};
use crate::clock::{Clock, Timestamp};

/// Writes each email as an `.eml` file into `dir` (created on first send).
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
    sender: String,
    clock: Arc<dyn Clock>,
}

impl OutboxMailer {
    /// `sender` is the From identity, `noreply@example.com` or `Name <noreply@example.com>`.
    pub fn new(dir: PathBuf, sender: String, clock: Arc<dyn Clock>) -> Self {
        Self { dir, sender, clock }
    }

    /// The folder the `.eml` files are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

const EXTENSION: &str = ".eml";

/// The reference becomes part of a file name and of the Message-ID, so only a safe alphabet is accepted
/// (outbox ids are minted by qchat and always fit it): no path separators, no leading dot.
fn check_reference(reference: &str) -> Result<(), MailError> {
    let ok = !reference.is_empty()
        && reference.len() <= 128
        && !reference.starts_with('.')
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(MailError::Permanent {
            reason: "the reference is not usable as a file name",
            source: None,
        })
    }
}

/// `20261129T202358.123Z`: sortable, readable, and free of `-` so the first `-` of a file name ends it.
fn file_time(t: Timestamp) -> String {
    t.to_rfc3339().replace(['-', ':'], "")
}

/// The reference a file name `<time>-<reference>.eml` was written for, if it is one of ours.
fn reference_of(file_name: &str) -> Option<&str> {
    let stem = file_name.strip_suffix(EXTENSION)?;
    let (time, reference) = stem.split_once('-')?;
    (!time.is_empty() && !time.starts_with('.')).then_some(reference)
}

/// Splits `Name <addr>` into its display name and address; a bare address has no name.
fn split_mailbox(mailbox: &str) -> (Option<&str>, &str) {
    let mailbox = mailbox.trim();
    match (mailbox.rfind('<'), mailbox.strip_suffix('>')) {
        (Some(open), Some(inner)) => {
            let name = mailbox[..open].trim().trim_matches('"').trim();
            let address = inner[open + 1..].trim();
            ((!name.is_empty()).then_some(name), address)
        }
        _ => (None, mailbox),
    }
}

/// The domain for Message-IDs: the sender's, so ids are unique to this deployment.
fn sender_domain(sender: &str) -> &str {
    let (_, address) = split_mailbox(sender);
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
        .unwrap_or("localhost")
}

/// Text in MIME canonical form: every line break is CRLF (RFC 2045 §2.10), whatever the writer used.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// Renders the whole message. `pub(crate)` so the unit tests and the conformance read-back agree on it.
pub(crate) fn render(sender: &str, email: &Email, now: Timestamp) -> Vec<u8> {
    let (name, address) = split_mailbox(sender);
    let from = Address::new_address(name, address);
    let message_id = format!("{}@{}", email.reference, sender_domain(sender));
    let mut out = Vec::new();
    MessageBuilder::new()
        .from(from)
        .to(email.to.expose())
        .subject(email.subject.as_str())
        .date(Date::new(now.secs()))
        .message_id(message_id)
        .text_body(crlf(&email.text_body))
        .serialize(&mut out);
    out
}

fn transient(reason: &'static str, e: std::io::Error) -> MailError {
    MailError::Transient {
        reason,
        source: Some(Box::new(e)),
    }
}

/// Writes `bytes` as the file of `reference`, replacing an earlier file of the same reference. Blocking.
fn write_atomically(
    dir: &Path,
    reference: &str,
    fresh_name: String,
    bytes: &[u8],
) -> Result<String, MailError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| transient("the outbox folder could not be created", e))?;
    let mut earlier: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| transient("the outbox folder could not be read", e))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| reference_of(name) == Some(reference))
        .collect();
    earlier.sort();
    // Keep the first file's name (the time of the first send); concurrent first sends may have made more.
    let mut earlier = earlier.into_iter();
    let name = earlier.next().unwrap_or(fresh_name);

    let temp = dir.join(format!(
        ".tmp-{}-{reference}.part",
        crate::ids::base32_lower(&crate::crypto::random_bytes::<8>())
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            // Durable before it becomes visible: a crash never leaves a named but empty file.
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, dir.join(&name)));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(transient("the outbox file could not be written", e));
    }
    for extra in earlier {
        let _ = std::fs::remove_file(dir.join(extra));
    }
    Ok(name)
}

#[async_trait::async_trait]
impl Mailer for OutboxMailer {
    /// An unwritable folder is [`MailError::Transient`]: the message is fine, and once the folder is fixed
    /// the same send succeeds, as with a mail server that is down.
    #[instrument(name = "mail.outbox.send", skip_all, fields(reference = %email.reference))]
    async fn send(&self, email: &Email) -> Result<SentEmail, MailError> {
        super::check(email)?;
        check_reference(&email.reference)?;
        let now = self.clock.now();
        let bytes = render(&self.sender, email, now);
        let fresh_name = format!("{}-{}{EXTENSION}", file_time(now), email.reference);
        let dir = self.dir.clone();
        let reference = email.reference.clone();
        let name = tokio::task::spawn_blocking(move || {
            write_atomically(&dir, &reference, fresh_name, &bytes)
        })
        .await
        .map_err(|e| MailError::Transient {
            reason: "the outbox write was interrupted",
            source: Some(Box::new(e)),
        })??;
        tracing::debug!(outcome = "written", "email written to the outbox folder");
        Ok(SentEmail { provider_id: name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::EmailAddress;

    fn email(subject: &str, body: &str, reference: &str) -> Email {
        Email {
            to: EmailAddress::parse("ana@example.com")
                .unwrap_or_else(|e| panic!("test address: {e}")),
            subject: subject.to_owned(),
            text_body: body.to_owned(),
            reference: reference.to_owned(),
        }
    }

    fn rendered(subject: &str, body: &str) -> String {
        let bytes = render(
            "Qchat <noreply@qchat.example>",
            &email(subject, body, "ob_1"),
            Timestamp::from_millis(1_796_000_000_123),
        );
        String::from_utf8(bytes).unwrap_or_else(|e| panic!("rendered mail is ASCII: {e}"))
    }

    fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
        let head = mail.split("\r\n\r\n").next()?;
        head.split("\r\n")
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
    }

    #[test]
    fn writes_the_rfc_5322_headers_with_crlf_line_endings() {
        let mail = rendered("Your sign-in", "Hello\nSecond line\n");
        assert_eq!(header(&mail, "To"), Some("<ana@example.com>"));
        assert_eq!(
            header(&mail, "From"),
            Some("\"Qchat\" <noreply@qchat.example>")
        );
        assert_eq!(header(&mail, "Subject"), Some("Your sign-in"));
        assert_eq!(
            header(&mail, "Date"),
            Some("Mon, 30 Nov 2026 00:53:20 +0000")
        );
        assert_eq!(header(&mail, "Message-ID"), Some("<ob_1@qchat.example>"));
        assert_eq!(header(&mail, "MIME-Version"), Some("1.0"));
        assert_eq!(
            header(&mail, "Content-Type"),
            Some("text/plain; charset=\"utf-8\"")
        );
        assert!(header(&mail, "Content-Transfer-Encoding").is_some());
        assert!(mail.is_ascii(), "8-bit-free on the wire");
        assert!(
            !mail.replace("\r\n", "").contains('\n'),
            "every line ends in CRLF"
        );
        assert!(mail.ends_with("Hello\r\nSecond line\r\n"));
    }

    #[test]
    fn encodes_a_non_ascii_subject_as_encoded_words_and_the_body_for_transport() {
        let mail = rendered(
            "Bestätigung Ihrer Anmeldung für den Newsletter der Bäckerei Müller",
            "Grüße\n",
        );
        let subject = mail
            .split("\r\n")
            .skip_while(|l| !l.starts_with("Subject: "))
            .take_while(|l| l.starts_with("Subject: ") || l.starts_with(' '))
            .collect::<Vec<_>>();
        assert!(subject.len() > 1, "a long subject is folded");
        for line in &subject {
            assert!(line.contains("=?utf-8?"), "encoded word in {line:?}");
            assert!(line.len() <= 78, "folded to the recommended width");
        }
        let encoding = header(&mail, "Content-Transfer-Encoding");
        assert!(matches!(encoding, Some("base64" | "quoted-printable")));
        assert!(mail.is_ascii());
    }

    #[test]
    fn file_names_carry_time_and_reference() {
        let t = Timestamp::from_millis(1_796_000_000_123);
        assert_eq!(file_time(t), "20261130T005320.123Z");
        assert_eq!(reference_of("20261130T005320.123Z-ob_1.eml"), Some("ob_1"));
        assert_eq!(reference_of("20261130T005320.123Z-a-b.eml"), Some("a-b"));
        assert_eq!(reference_of(".tmp-x-ob_1.part"), None);
        assert_eq!(reference_of("notes.txt"), None);
    }

    #[test]
    fn parses_mailboxes_with_and_without_names() {
        assert_eq!(
            split_mailbox("\"Qchat\" <a@b.example>"),
            (Some("Qchat"), "a@b.example")
        );
        assert_eq!(split_mailbox("a@b.example"), (None, "a@b.example"));
        assert_eq!(sender_domain("Q <a@b.example>"), "b.example");
        assert_eq!(sender_domain("nobody"), "localhost");
    }

    #[test]
    fn refuses_references_that_could_escape_the_folder() {
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(check_reference(bad).is_err(), "{bad:?}");
        }
        assert!(check_reference("ob_01-x.y").is_ok());
    }

    #[tokio::test]
    async fn a_second_send_of_a_reference_replaces_its_file_even_at_a_later_time() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let clock = Arc::new(ManualClock::at(Timestamp::from_secs(1_796_000_000)));
        let mailer = OutboxMailer::new(
            dir.path().to_path_buf(),
            "noreply@qchat.example".to_owned(),
            clock.clone(),
        );
        let first = mailer.send(&email("First", "one", "ob_1")).await;
        clock.advance_secs(60);
        let second = mailer.send(&email("Second", "two", "ob_1")).await;
        let other = mailer.send(&email("Other", "three", "ob_2")).await;
        let (Ok(first), Ok(second), Ok(other)) = (first, second, other) else {
            panic!("sends must succeed");
        };
        assert_eq!(first.provider_id, second.provider_id);
        assert_ne!(first.provider_id, other.provider_id);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(names.len(), 2, "no temporary files stay behind: {names:?}");
        let content =
            std::fs::read_to_string(dir.path().join(&first.provider_id)).unwrap_or_default();
        assert!(content.contains("Subject: Second"));
    }
}
