//! The messenger port: sends one message through Meta's Send API, or appends it to a local outbox file;
//! and tells which page a page access token belongs to ([`Messenger::page_of_token`]), so a page is
//! connected only with a token of that page.
//!
//! Every Meta error is classified into a [`SendError`] variant the sender acts on (MESSENGER.md §3), and
//! a token check's errors the same way ([`PageCheckError`]). Both backends refuse the same messages
//! before sending ([`validate()`]), with no network call. The local backend has no Meta to ask: it
//! vouches only for its documented sample tokens ([`outbox::SAMPLE_TOKEN_PREFIX`]).
//!
//! Meta's data-deletion callback names a person by their app-scoped id; [`Messenger::ids_for_pages`]
//! maps it to their page-scoped id on one page (Graph `ids_for_pages`; locally a mapping file,
//! [`outbox::IDS_FOR_PAGES_FILE`]). Its errors are classified like a token check's.

#[cfg(feature = "test-support")]
pub mod conformance;
#[cfg(feature = "graph")]
pub mod graph;
#[cfg(feature = "local")]
pub mod outbox;
mod validate;

#[cfg(feature = "graph")]
pub use graph::GraphMessenger;
#[cfg(feature = "local")]
pub use outbox::OutboxMessenger;
pub use validate::{
    BUTTON_TEXT_MAX, BUTTONS_MAX, METADATA_MAX, PAYLOAD_MAX, QUICK_REPLIES_MAX, TEXT_MAX,
    TITLE_MAX, URL_MAX, broken_rule, validate,
};

use std::time::Duration;

use crate::domain::{AppScopedUserId, NotificationToken, PageAccessToken, PageId, Psid, UserRef};

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

/// A `web_url` button of the Send API's button template: `title` ≤ 20 characters, an http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlButton {
    pub title: String,
    pub url: String,
}

/// One outgoing text message; with buttons, sent as the button template (its text < 640 characters).
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub recipient: Recipient,
    /// Ignored for a notification-token recipient (the Send API takes none then).
    pub messaging_type: MessagingType,
    pub text: String,
    /// At most 3; none: a plain text message.
    pub buttons: Vec<UrlButton>,
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

/// The page a page access token acts for, as Meta reports it.
#[derive(Clone, PartialEq, Eq)]
pub struct PageProfile {
    pub id: PageId,
    /// The page's public name, when Meta gave one that qchat can show (at most 100 characters, no
    /// control characters).
    pub name: Option<String>,
}

// The name stays out of `Debug`: a token that is not a page token (a user's) makes Meta report a
// person's name here, which must not reach a log before the id comparison refuses it.
impl std::fmt::Debug for PageProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageProfile")
            .field("id", &self.id)
            .field("name", &self.name.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a page access token could not be checked, classified like a send's [`SendError`]. Holds Meta's
/// code and subcode, never Meta's message or the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageCheckError {
    /// Meta refuses the token: invalid, expired, revoked, password changed (190).
    #[error("Meta refused the page access token (code {code}/{subcode:?})")]
    TokenInvalid { code: i64, subcode: Option<i64> },
    /// The token may not read the page (10, 200–299).
    #[error("the page access token lacks a permission (code {code}/{subcode:?})")]
    Permission { code: i64, subcode: Option<i64> },
    /// Meta refused the request for another reason; asking again will not help.
    #[error("Meta refused the token check (code {code}/{subcode:?})")]
    Refused { code: i64, subcode: Option<i64> },
    /// No usable answer now (network, timeout, Meta's temporary errors and rate limits, an answer that
    /// is not the expected Graph JSON): asking again later may work.
    #[error("could not check the page access token now: {reason}")]
    Unavailable { reason: &'static str },
    /// This backend has no Meta to ask and the token is not one of its sample tokens.
    #[error("this backend cannot verify a page access token that is not a local sample token")]
    NotVerifiable,
}

impl PageCheckError {
    /// Whether asking again later may give an answer.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

impl From<SendError> for PageCheckError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::TokenInvalid { code, subcode } => Self::TokenInvalid { code, subcode },
            SendError::Permission { code, subcode } => Self::Permission { code, subcode },
            SendError::RateLimited { .. } => Self::Unavailable {
                reason: "Meta is rate limiting the app",
            },
            SendError::Temporary { .. } => Self::Unavailable {
                reason: "Meta answered with a temporary error",
            },
            SendError::Transport { reason } => Self::Unavailable { reason },
            SendError::Unreachable { code, subcode }
            | SendError::OutsideWindow { code, subcode }
            | SendError::FrequencyCapped { code, subcode }
            | SendError::InvalidRequest { code, subcode } => Self::Refused { code, subcode },
        }
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

    /// The page `token` belongs to (Graph: `GET /me?fields=id,name` with the token). Callers compare the
    /// id with the page they were asked to act for; a token of another page is not an error here.
    async fn page_of_token(&self, token: &PageAccessToken) -> Result<PageProfile, PageCheckError>;

    /// The page-scoped ids of the person `user` (an app-scoped id) on `page`, asked with that page's
    /// `token` (Graph: `GET /{user}/ids_for_pages?page={page}`, MESSENGER.md §4). Empty when the person
    /// has none there. A refused token is an error here, for the caller to skip that page.
    async fn ids_for_pages(
        &self,
        user: &AppScopedUserId,
        page: &PageId,
        token: &PageAccessToken,
    ) -> Result<Vec<Psid>, PageCheckError>;
}

/// The messenger of a function built without the Graph API client (feature `graph`): every call fails as
/// Meta being unreachable would, so a reply stays queued for a function that can send it.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotBuilt;

#[async_trait::async_trait]
impl Messenger for NotBuilt {
    async fn send(
        &self,
        _page: &PageId,
        _token: &PageAccessToken,
        _message: &OutgoingMessage,
    ) -> Result<SentMessage, SendError> {
        Err(SendError::Transport {
            reason: "this function was built without the Graph API client",
        })
    }

    async fn page_of_token(&self, _token: &PageAccessToken) -> Result<PageProfile, PageCheckError> {
        Err(PageCheckError::Unavailable {
            reason: "this function was built without the Graph API client",
        })
    }

    async fn ids_for_pages(
        &self,
        _user: &AppScopedUserId,
        _page: &PageId,
        _token: &PageAccessToken,
    ) -> Result<Vec<Psid>, PageCheckError> {
        Err(PageCheckError::Unavailable {
            reason: "this function was built without the Graph API client",
        })
    }
}

/// A page name qchat can show and store, or `None`: trimmed, 1 to 100 characters, none of them control,
/// format or invisible ([`crate::text::display_name`]).
pub fn page_name(raw: &str) -> Option<String> {
    crate::text::display_name(raw, 100).ok()
}
