//! The messenger port: sends one message through Meta's Send API, or appends it to a local outbox file.
//!
//! Every Meta error is classified into a [`SendError`] variant the sender acts on (MESSENGER.md §3).
//! Both backends refuse the same messages before sending ([`validate()`]), with no network call.

#[cfg(feature = "test-support")]
pub mod conformance;
pub mod graph;
pub mod outbox;
mod validate;

pub use graph::GraphMessenger;
pub use outbox::OutboxMessenger;
pub use validate::{
    METADATA_MAX, PAYLOAD_MAX, QUICK_REPLIES_MAX, TEXT_MAX, TITLE_MAX, broken_rule, validate,
};

use std::time::Duration;

use crate::domain::{NotificationToken, PageAccessToken, PageId, Psid, UserRef};

/// Who receives the message.
#[derive(Debug, Clone)]
pub enum Recipient {
    Psid(Psid),
    UserRef(UserRef),
    /// A marketing-messages token (`recipient.notification_messages_token`).
    NotificationToken(NotificationToken),
}

/// The Send API `messaging_type`. Message tags are not offered: the deprecated tags are never used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagingType {
    /// A reply to the person's message, inside 24 h.
    Response,
    /// A proactive message inside 24 h of the person's last message.
    Update,
}

/// A quick-reply button: `title` ≤ 20 characters, `payload` ≤ 1000 characters, ≤ 13 per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuickReply {
    pub title: String,
    pub payload: String,
}

/// One outgoing text message.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub recipient: Recipient,
    /// Ignored for a notification-token recipient (the Send API takes none then).
    pub messaging_type: MessagingType,
    pub text: String,
    pub quick_replies: Vec<QuickReply>,
    /// Comes back in the echo (< 1000 characters); opaque ids only.
    pub metadata: Option<String>,
}

/// Meta's answer to a successful send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    pub message_id: String,
}

/// Why a send failed, classified for the sender (MESSENGER.md §3). Holds Meta's code and subcode, never
/// the message, the recipient or the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("rate limited by Meta (code {code})")]
    RateLimited {
        code: i64,
        retry_after: Option<Duration>,
    },
    #[error("the person cannot receive messages (code {code}/{subcode:?})")]
    Unreachable { code: i64, subcode: Option<i64> },
    #[error("outside the allowed messaging window (code {code}/{subcode:?})")]
    OutsideWindow { code: i64, subcode: Option<i64> },
    #[error("marketing-message frequency cap reached (code {code}/{subcode:?})")]
    FrequencyCapped { code: i64, subcode: Option<i64> },
    #[error("the page access token is invalid (code {code}/{subcode:?})")]
    TokenInvalid { code: i64, subcode: Option<i64> },
    #[error("the app lacks permission to send for this page (code {code}/{subcode:?})")]
    Permission { code: i64, subcode: Option<i64> },
    #[error("temporary Meta error (code {code})")]
    Temporary { code: i64 },
    #[error("Meta refused the request as invalid (code {code}/{subcode:?})")]
    InvalidRequest { code: i64, subcode: Option<i64> },
    /// No answer from Meta (network, timeout) or an answer that is not Graph JSON.
    #[error("could not reach the Send API: {reason}")]
    Transport { reason: &'static str },
}

impl SendError {
    /// Whether the same message may be sent again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Temporary { .. } | Self::Transport { .. }
        )
    }
    /// Whether the page must stop sending and its account be told (token or permission errors).
    pub fn stops_the_page(&self) -> bool {
        matches!(self, Self::TokenInvalid { .. } | Self::Permission { .. })
    }
}

/// Sends Messenger messages on behalf of a page. The page token is a parameter of each call, never state.
#[async_trait::async_trait]
pub trait Messenger: Send + Sync + std::fmt::Debug {
    async fn send(
        &self,
        page: &PageId,
        token: &PageAccessToken,
        message: &OutgoingMessage,
    ) -> Result<SentMessage, SendError>;
}
