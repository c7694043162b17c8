//! What an account holder composes: a broadcast's message, its send time and its audience, already checked
//! against Meta's limits and qchat's rules (the parsing lives with the broadcast function's routes; the
//! sender only ever sees a valid [`Draft`]).

use crate::clock::Timestamp;

/// A URL button under the message (Meta: at most 3 buttons, title at most 20 characters, an `https` URL).
#[derive(Clone, PartialEq, Eq)]
pub struct UrlButton {
    pub title: String,
    pub url: String,
}

// The account's content: kept out of logs like every other value of the account.
impl std::fmt::Debug for UrlButton {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlButton(<redacted>)")
    }
}

/// Which of the page's leads a broadcast is for, before the per-lead rules of the sender apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audience {
    /// Only leads whose opt-in `ref` is one of these (empty: every lead).
    pub refs: Vec<String>,
    /// Only leads subscribed at or after this time.
    pub subscribed_since: Option<Timestamp>,
}

/// A broadcast as composed: valid text (room left for the unsubscribe footer), buttons, when, to whom.
#[derive(Clone, PartialEq, Eq)]
pub struct Draft {
    pub text: String,
    pub buttons: Vec<UrlButton>,
    pub send_at: Timestamp,
    pub audience: Audience,
}

impl std::fmt::Debug for Draft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Draft")
            .field("text", &"<redacted>")
            .field("buttons", &self.buttons.len())
            .field("send_at", &self.send_at)
            .field("audience", &self.audience)
            .finish()
    }
}
