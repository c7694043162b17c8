//! The transactional outbox of account notices: the write side.
//!
//! A change and the notice that reports it are written in one store transaction ([`notice_op`] gives the
//! notice's write). The notify function consumes the outbox: in AWS from the table's stream (filtered to
//! outbox inserts) with a scheduled sweep as the safety net, locally from a poller. Items stay in the
//! sparse index partition [`DUE_PARTITION`] while unsent, sorted by their next attempt time.
//!
//! The recipient is not copied into the outbox: notify reads the account's address when it sends, so an
//! erased account gets nothing and no address lingers here. The exceptions are notices that must reach an
//! address that is not the account's current one — the former address (an email change tells it), a new
//! address to confirm, a registration's address (no account exists yet) — which carry it sealed in
//! `recipient`. A mail with a single-use link carries the link's token sealed in `secret`, which notify
//! removes once the mail is sent; the store keeps only the token's SHA-256 elsewhere.

use crate::clock::Timestamp;
use crate::domain::AccountId;
use crate::inventory::OUTBOX;
use crate::store::{Condition, Item, ItemKey, StoreError, Value, WriteOp};

/// The index partition of unsent notices.
pub const DUE_PARTITION: &str = "OUTBOX#DUE";
/// How long a notice item is kept after it is written, sent or not.
pub const RETENTION_DAYS: i64 = 30;

/// The job kind that tells every account of a new policy version; params `{"kind", "version"}`.
/// The account function queues it, notify runs it: the name lives here, where both can see it.
pub const POLICY_FANOUT_JOB: &str = "policy_fanout";
/// The job kind that sends a breach notice to its scope; params `{"notice_id"}`.
pub const BREACH_FANOUT_JOB: &str = "breach_fanout";

/// Every notice qchat sends, with its non-personal parameters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    AccountCreated,
    PasswordChanged {
        at: Timestamp,
    },
    /// Sent to the previous address (sealed in the item) when the email changes.
    EmailChanged {
        at: Timestamp,
    },
    NewNetworkSignIn {
        at: Timestamp,
    },
    PageSendingStopped {
        page_id: String,
        reason: String,
    },
    PolicyUpdated {
        kind: String,
        version: String,
        url: String,
        summary: String,
    },
    BreachNotice {
        notice_id: String,
    },
    /// To a registration's address (no account yet): the link that creates the account.
    ConfirmRegistration,
    /// To an account's address when someone tried to register it again.
    RegistrationAddressTaken,
    /// To the new address of an account: the link that makes the change.
    ConfirmEmailChange,
    /// To the account's address: the password reset link.
    PasswordReset,
    /// To the address of an account being erased: the receipt's confirmation code (the erasure job's id).
    /// Queued without an account, its address sealed under the registrations key, so it still goes out
    /// once the account and its key are gone.
    AccountErased {
        code: String,
    },
}

impl Notice {
    /// The notice's stable name (stored in `notice`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::AccountCreated => "account_created",
            Self::PasswordChanged { .. } => "password_changed",
            Self::EmailChanged { .. } => "email_changed",
            Self::NewNetworkSignIn { .. } => "new_network_sign_in",
            Self::PageSendingStopped { .. } => "page_sending_stopped",
            Self::PolicyUpdated { .. } => "policy_updated",
            Self::BreachNotice { .. } => "breach_notice",
            Self::ConfirmRegistration => "confirm_registration",
            Self::RegistrationAddressTaken => "registration_address_taken",
            Self::ConfirmEmailChange => "confirm_email_change",
            Self::PasswordReset => "password_reset",
            Self::AccountErased { .. } => "account_erased",
        }
    }
}

/// The index partition of an account's notices once sent or failed (export and erasure find them there;
/// notify moves a notice from [`DUE_PARTITION`] to it when the outcome is final).
pub fn account_notices_partition(account: &AccountId) -> String {
    format!("ACCOUNT#{account}#NOTICES")
}

pub fn outbox_key(id: &str) -> ItemKey {
    ItemKey::new(format!("OUTBOX#{id}"), "OUTBOX")
}

/// The sort key of an unsent notice in [`DUE_PARTITION`].
pub fn due_sort_key(at: Timestamp, id: &str) -> String {
    format!("{}#{id}", at.sort_key())
}

/// The write that queues `notice` for `account`, due now. `id` is the outbox id: pass a deterministic one
/// (e.g. `<job id>.<account id>`) where the write may be repeated, so a repeat is a no-op
/// (`Condition::NotExists`). `recipient` is a sealed address, only for notices to a former address.
pub fn notice_op(
    id: &str,
    account: &AccountId,
    notice: &Notice,
    now: Timestamp,
    recipient: Option<crate::crypto::Sealed>,
) -> Result<WriteOp, StoreError> {
    outbox_op(id, Some(account), notice, now, recipient, None)
}

/// The write that queues any notice. `account` is `None` only for a registration's confirmation mail,
/// whose `recipient` is then sealed under [`crate::accounts::REGISTRATIONS_KEY_OWNER`]; `secret` is a
/// link token sealed under the same key as the recipient (the account's, or the registrations key).
pub fn outbox_op(
    id: &str,
    account: Option<&AccountId>,
    notice: &Notice,
    now: Timestamp,
    recipient: Option<crate::crypto::Sealed>,
    secret: Option<crate::crypto::Sealed>,
) -> Result<WriteOp, StoreError> {
    let params = serde_json::to_string(notice)
        .map_err(|_| StoreError::InvalidRequest("notice not encodable"))?;
    let mut item = Item::new(&OUTBOX, outbox_key(id))
        .plain("notice", Value::S(notice.name().to_owned()))?
        .plain("params", Value::S(params))?
        .plain("state", Value::S("pending".to_owned()))?
        .plain("attempts", Value::N(0))?
        .plain("next_attempt_at", Value::N(now.millis()))?
        .plain("lease_until", Value::N(0))?
        .plain("created", Value::N(now.millis()))?
        .with_version(1)
        .expires_at(now.plus_days(RETENTION_DAYS))
        .with_gsi1(DUE_PARTITION, due_sort_key(now, id));
    if let Some(account) = account {
        item = item.plain("account_id", Value::S(account.as_str().to_owned()))?;
    }
    if let Some(sealed) = recipient {
        item = item.sealed("recipient", sealed)?;
    }
    if let Some(sealed) = secret {
        item = item.sealed("secret", sealed)?;
    }
    Ok(WriteOp::Put {
        item,
        condition: Condition::NotExists,
    })
}
