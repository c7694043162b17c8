//! Domain newtypes for every personal or security-relevant value. Parse at the edge, then pass the type.
//!
//! Personal values have a redacted `Debug` and no `Display`; their parse errors name the rule that failed
//! and never echo the input. Opaque ids (account, lead, page) are not personal and may be displayed.

mod email;
mod ids;
mod messenger_ids;
mod secrets;

pub use email::EmailAddress;
pub use ids::{AccountId, LeadId};
pub use messenger_ids::{AppScopedUserId, NotificationToken, PageId, Psid, UserRef};
pub use secrets::{LinkToken, PageAccessToken, Password, SessionToken};

/// Why a value was refused at the edge. Holds the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct ParseError {
    pub field: &'static str,
    pub rule: &'static str,
}

impl ParseError {
    pub(crate) const fn new(field: &'static str, rule: &'static str) -> Self {
        Self { field, rule }
    }
}

/// Writes `Name(<redacted>)`: the `Debug` of every personal value.
macro_rules! redacted_debug {
    ($t:ty) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($t), "(<redacted>)"))
            }
        }
    };
}
pub(crate) use redacted_debug;
