//! Addresses qchat no longer mails. SES publishes the bounces and complaints of the configuration set every
//! mail is sent with to an SNS topic that invokes notify; a hard bounce (`Permanent`) or a complaint
//! suppresses the address, and every later notice to it fails as [`SUPPRESSED`] without reaching SES.
//! SES pauses an account whose bounce rate passes 5 % or complaint rate 0.1 %, so an address that cannot
//! take mail, or whose owner called it spam, is not tried again.
//!
//! The address is kept only as its blind index (the same HMAC as the account's email index), with the
//! reason and time; the item expires a year after the last report. Soft bounces (`Transient`,
//! `Undetermined`) change nothing: the notice's own retries handle them. The local mailer never bounces,
//! so locally nothing is ever suppressed.

use serde_json::Value as Json;

use crate::accounts::purpose;
use crate::app::App;
use crate::crypto::{BlindIndex, CryptoError};
use crate::domain::EmailAddress;
use crate::inventory::{DAY_SECS, MAIL_SUPPRESSION};
use crate::store::{Condition, Item, ItemKey, StoreError, Value};

/// The `failure` recorded on a notice whose recipient is suppressed.
pub const SUPPRESSED: &str = "recipient_suppressed";
/// How long a suppression lasts after the last bounce or complaint that set it.
pub const SUPPRESSION_SECS: i64 = 365 * DAY_SECS;

/// Why an address is no longer mailed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// SES reported a permanent bounce: the mailbox does not exist or refuses mail for good.
    HardBounce,
    /// The recipient marked a mail as spam.
    Complaint,
}

impl Reason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "hard_bounce",
            Self::Complaint => "complaint",
        }
    }
}

/// What one SES notification asks for. Addresses that do not parse are counted, never kept.
#[derive(Debug, Default)]
pub struct Feedback {
    /// Addresses to suppress, with the reason.
    pub suppress: Vec<(EmailAddress, Reason)>,
    /// A bounce that is not permanent: nothing to do.
    pub soft_bounces: usize,
    /// Notifications of another kind (delivery, send, …) or unreadable ones, and unreadable addresses.
    pub ignored: usize,
}

/// Reads one SES notification (the SNS message text): event publishing's `eventType` and identity
/// notifications' `notificationType` alike.
pub fn parse(message: &str) -> Feedback {
    let mut out = Feedback::default();
    let Ok(json) = serde_json::from_str::<Json>(message) else {
        out.ignored += 1;
        return out;
    };
    let kind = json
        .get("eventType")
        .or_else(|| json.get("notificationType"))
        .and_then(Json::as_str);
    let (reason, recipients) = match kind {
        Some("Bounce") => {
            let bounce = json.get("bounce");
            let permanent = bounce
                .and_then(|b| b.get("bounceType"))
                .and_then(Json::as_str)
                == Some("Permanent");
            if !permanent {
                out.soft_bounces += 1;
                return out;
            }
            (
                Reason::HardBounce,
                bounce.and_then(|b| b.get("bouncedRecipients")),
            )
        }
        Some("Complaint") => (
            Reason::Complaint,
            json.get("complaint")
                .and_then(|c| c.get("complainedRecipients")),
        ),
        _ => {
            out.ignored += 1;
            return out;
        }
    };
    for recipient in recipients.and_then(Json::as_array).into_iter().flatten() {
        match recipient
            .get("emailAddress")
            .and_then(Json::as_str)
            .and_then(address)
        {
            Some(a) if !out.suppress.iter().any(|(b, _)| b == &a) => {
                out.suppress.push((a, reason));
            }
            Some(_) => {}
            None => out.ignored += 1,
        }
    }
    out
}

/// SES reports the address as sent, which may be `Name <address>`.
fn address(raw: &str) -> Option<EmailAddress> {
    let inner = match (raw.rfind('<'), raw.rfind('>')) {
        (Some(open), Some(close)) if open < close => &raw[open + 1..close],
        _ => raw,
    };
    EmailAddress::parse(inner).ok()
}

/// Why suppression could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SuppressionError {
    #[error("the blind-index key is unavailable")]
    Keys(#[from] CryptoError),
    #[error("the store failed")]
    Store(#[from] StoreError),
}

impl SuppressionError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Keys(_) => true,
        }
    }
}

fn key(index: &BlindIndex) -> ItemKey {
    ItemKey::new(format!("NOMAIL#{}", index.as_str()), "NOMAIL")
}

async fn index_of(app: &App, address: &EmailAddress) -> Result<BlindIndex, CryptoError> {
    let indexer = app.keys.blind_indexer().await?;
    Ok(indexer.index(purpose::EMAIL, address.expose().as_bytes()))
}

/// Stops mail to `address` for [`SUPPRESSION_SECS`] from now (a later report extends it).
///
/// # Errors
/// The blind-index key or the store failed; nothing was written.
pub async fn suppress(
    app: &App,
    address: &EmailAddress,
    reason: Reason,
) -> Result<(), SuppressionError> {
    let now = app.clock.now();
    let index = index_of(app, address).await?;
    let item = Item::new(&MAIL_SUPPRESSION, key(&index))
        .plain("reason", Value::S(reason.as_str().to_owned()))
        .and_then(|i| i.plain("at", Value::N(now.millis())))
        .map_err(StoreError::from)?
        .expires_at(now.plus_secs(SUPPRESSION_SECS));
    app.key_store.put(item, Condition::Always).await?;
    Ok(())
}

/// Whether mail to `address` is suppressed (one store read).
///
/// # Errors
/// The blind-index key or the store failed.
pub async fn is_suppressed(app: &App, address: &EmailAddress) -> Result<bool, SuppressionError> {
    let index = index_of(app, address).await?;
    Ok(app.key_store.get(&key(&index)).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(f: &Feedback) -> Vec<(&str, Reason)> {
        f.suppress.iter().map(|(a, r)| (a.expose(), *r)).collect()
    }

    #[test]
    fn a_permanent_bounce_names_its_recipients_as_published_by_a_configuration_set() {
        let f = parse(
            r#"{"eventType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",
               "bouncedRecipients":[{"emailAddress":"Gone@Example.com"},{"emailAddress":"\"Bo\" <bo@example.com>"},
               {"emailAddress":"not an address"}]},"mail":{"messageId":"m1"}}"#,
        );
        assert_eq!(
            addresses(&f),
            [
                ("gone@example.com", Reason::HardBounce),
                ("bo@example.com", Reason::HardBounce)
            ]
        );
        assert_eq!((f.soft_bounces, f.ignored), (0, 1));
    }

    #[test]
    fn a_complaint_is_read_from_identity_notifications_too() {
        let f = parse(
            r#"{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"ana@example.com"}]}}"#,
        );
        assert_eq!(addresses(&f), [("ana@example.com", Reason::Complaint)]);
    }

    #[test]
    fn soft_bounces_deliveries_and_garbage_suppress_nothing() {
        for (message, soft) in [
            (
                r#"{"eventType":"Bounce","bounce":{"bounceType":"Transient","bouncedRecipients":[{"emailAddress":"a@example.com"}]}}"#,
                1,
            ),
            (
                r#"{"eventType":"Bounce","bounce":{"bounceType":"Undetermined","bouncedRecipients":[{"emailAddress":"a@example.com"}]}}"#,
                1,
            ),
            (r#"{"eventType":"Delivery","delivery":{}}"#, 0),
            ("not json", 0),
            ("[]", 0),
        ] {
            let f = parse(message);
            assert!(f.suppress.is_empty(), "{message}");
            assert_eq!(f.soft_bounces, soft, "{message}");
        }
    }
}
