//! The account's security log: sign-ins, failed sign-ins and credential changes, each with the caller's
//! network sealed. Entries expire after 30 days. The log also decides whether a sign-in comes from a
//! network not seen in the last 30 days (lockout is the sign-in limits' job: `sessions.rs`).

use std::net::IpAddr;

use qchat_shared::app::{App, account_key_owner};
use qchat_shared::clock::Timestamp;
use qchat_shared::crypto::{BlindIndexer, FieldCipher};
use qchat_shared::domain::AccountId;
use qchat_shared::http::ApiError;
use qchat_shared::inventory::SECURITY_EVENT;
use qchat_shared::store::{
    Condition, Cursor, Item, ItemKey, KeyRange, Order, Query, StoreError, Value, WriteOp,
};

use crate::network;

pub const RETENTION_DAYS: i64 = 30;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Registered,
    SignIn,
    SignInFailed,
    PasswordChanged,
    PasswordReset,
    EmailChanged,
    SignedOutEverywhere,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Self::Registered => "registered",
            Self::SignIn => "sign_in",
            Self::SignInFailed => "sign_in_failed",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::EmailChanged => "email_changed",
            Self::SignedOutEverywhere => "signed_out_everywhere",
        }
    }
}

fn partition(account: &AccountId) -> String {
    format!("ACCOUNT#{account}")
}

/// The write of one log entry.
pub fn entry_op(
    app: &App,
    account: &AccountId,
    cipher: &FieldCipher,
    indexer: &BlindIndexer,
    event: Event,
    addr: Option<IpAddr>,
) -> Result<WriteOp, ApiError> {
    let now = app.clock.now();
    let key = ItemKey::new(
        partition(account),
        format!("SEC#{:013}#{}", now.millis(), app.ids.new_id()),
    );
    let mut item = Item::new(&SECURITY_EVENT, key.clone())
        .plain("event", Value::S(event.name().to_owned()))
        .and_then(|i| i.plain("at", Value::N(now.millis())))
        .map_err(|_| ApiError::internal())?
        .expires_at(now.plus_days(RETENTION_DAYS));
    if let Some(ip) = addr {
        let sealed = cipher.seal(&key, "network", ip.to_string().as_bytes())?;
        item = item
            .sealed("network", sealed)
            .and_then(|i| i.blind_index("network_index", &network::network_index(indexer, ip)))
            .map_err(|_| ApiError::internal())?;
    }
    Ok(WriteOp::Put {
        item,
        condition: Condition::NotExists,
    })
}

/// The newest entries (at most `limit`), newest first. Expired entries are absent.
pub async fn recent(app: &App, account: &AccountId, limit: usize) -> Result<Vec<Item>, ApiError> {
    let page = app
        .store
        .query(&Query {
            index: qchat_shared::store::Index::Table,
            partition: partition(account),
            range: KeyRange::Prefix("SEC#".to_owned()),
            order: Order::Descending,
            limit,
            cursor: None,
        })
        .await?;
    Ok(page.items)
}

/// One page of the log for its holder, newest first: at most `limit` entries after `cursor` (a
/// `next_cursor` of an earlier page), and the cursor of the next page if there is one.
pub async fn page(
    app: &App,
    account: &AccountId,
    limit: usize,
    cursor: Option<Cursor>,
) -> Result<(Vec<Item>, Option<Cursor>), ApiError> {
    let found = app
        .store
        .query(&Query {
            index: qchat_shared::store::Index::Table,
            partition: partition(account),
            range: KeyRange::Prefix("SEC#".to_owned()),
            order: Order::Descending,
            limit,
            cursor,
        })
        .await
        .map_err(|e| match e {
            // A cursor made for another list (another account's log, say) is refused, never followed.
            StoreError::InvalidCursor => invalid_cursor(),
            other => other.into(),
        })?;
    Ok((found.items, found.next))
}

pub fn invalid_cursor() -> ApiError {
    ApiError::bad_request(
        "invalid_cursor",
        "cursor must be a next_cursor from an earlier answer of this list",
    )
}

/// Whether a successful sign-in or registration from this network is among the entries (30 days).
pub fn network_seen(entries: &[Item], indexer: &BlindIndexer, ip: IpAddr) -> bool {
    let index = network::network_index(indexer, ip);
    entries.iter().any(|e| {
        matches!(e.get_str("event"), Some("sign_in" | "registered"))
            && e.get_str("network_index") == Some(index.as_str())
    })
}

/// Any successful sign-in or registration at all (a first sign-in is not "from a new network").
pub fn has_history(entries: &[Item]) -> bool {
    entries.iter().any(|e| {
        matches!(e.get_str("event"), Some("sign_in" | "registered"))
            && e.get("network_index").is_some()
    })
}

/// The log as the holder sees it: time, event and network address (their own data, decrypted).
pub async fn render(
    app: &App,
    account: &AccountId,
    entries: &[Item],
) -> Result<Vec<serde_json::Value>, ApiError> {
    let owner = account_key_owner(account);
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let network = match e.get_sealed("network") {
            Some(sealed) => {
                let plain = app.keys.open(&owner, e.key(), "network", &sealed).await?;
                Some(String::from_utf8_lossy(&plain).into_owned())
            }
            None => None,
        };
        out.push(serde_json::json!({
            "at": Timestamp::from_millis(e.get_i64("at").unwrap_or(0)).to_rfc3339(),
            "event": e.get_str("event").unwrap_or("unknown"),
            "network": network,
        }));
    }
    Ok(out)
}
