//! The mailer port: sends one email. SES in AWS; one RFC 5322 `.eml` file per message locally.
//!
//! Every backend refuses the same malformed emails before sending ([`check`]), and maps its own failures
//! to [`MailError::Transient`] (try again later) or [`MailError::Permanent`] (this message will never go).

#[cfg(feature = "test-support")]
pub mod conformance;
#[cfg(feature = "local")]
pub mod outbox;
#[cfg(feature = "ses")]
pub mod ses;
pub mod suppression;

#[cfg(feature = "local")]
pub use outbox::OutboxMailer;
#[cfg(feature = "ses")]
pub use ses::SesMailer;

use crate::domain::EmailAddress;

/// A message to one recipient. Subject and bodies are notices about the account, written by qchat.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: EmailAddress,
    pub subject: String,
    pub text_body: String,
    /// The outbox id this email is sent for: the idempotency and trace reference (not personal).
    pub reference: String,
}

/// The provider's id for a sent message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub provider_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Sending may succeed later (throttling, network, provider outage).
    #[error("mail could not be sent now: {reason}")]
    Transient {
        reason: &'static str,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Sending this message will never succeed (rejected, unverified sender, suppressed recipient).
    #[error("mail was refused: {reason}")]
    Permanent {
        reason: &'static str,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl MailError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent { .. })
    }
}

/// Sends email.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    async fn send(&self, email: &Email) -> Result<SentEmail, MailError>;
}

/// The mailer of a function built without one (feature `ses`): refuses every message, so a mistake in
/// the choice of features fails loudly instead of dropping mail. The outbox item stays for a sender.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotBuilt;

#[async_trait::async_trait]
impl Mailer for NotBuilt {
    async fn send(&self, _email: &Email) -> Result<SentEmail, MailError> {
        Err(MailError::Transient {
            reason: "this function was built without a mailer",
            source: None,
        })
    }
}

/// Refuses what no backend may send, before anything leaves the process. A control character in the
/// subject (above all CR or LF) would become extra header lines wherever MIME is written, so it is a
/// permanent fault of the message rather than something a backend quietly rewrites.
#[cfg_attr(not(any(feature = "local", feature = "ses")), allow(dead_code))]
pub(crate) fn check(email: &Email) -> Result<(), MailError> {
    let refuse = |reason| {
        Err(MailError::Permanent {
            reason,
            source: None,
        })
    };
    if email.subject.trim().is_empty() {
        return refuse("the subject is empty");
    }
    if email.subject.chars().any(char::is_control) {
        return refuse("the subject contains a line break or control character");
    }
    if email.text_body.trim().is_empty() {
        return refuse("the body is empty");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(subject: &str, body: &str) -> Option<Email> {
        Some(Email {
            to: EmailAddress::parse("someone@example.com").ok()?,
            subject: subject.to_owned(),
            text_body: body.to_owned(),
            reference: "ref1".to_owned(),
        })
    }

    #[test]
    fn check_refuses_header_injection_and_empty_parts() {
        for (subject, body) in [
            ("Hi\r\nBcc: x@example.com", "body"),
            ("Hi\nthere", "body"),
            ("Tab\there", "body"),
            ("  ", "body"),
            ("Subject", " \n "),
        ] {
            let e = email(subject, body).map(|e| check(&e).map_err(|e| e.is_permanent()));
            assert_eq!(e, Some(Err(true)), "{subject:?} / {body:?} must be refused");
        }
        let ok = email("Grüße – ok", "Zeile 1\nZeile 2").map(|e| check(&e).is_ok());
        assert_eq!(ok, Some(true));
    }
}
