//! The mailer port: sends one email. SES in AWS; one RFC 5322 `.eml` file per message locally.

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
