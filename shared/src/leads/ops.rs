//! Consent changes of a lead, each one transaction: the new chained consent record (append-only) and the
//! lead's new status and chain head (conditional on the lead's version), plus whatever the caller adds
//! (a de-duplication key, a reply). A concurrent change makes the transaction fail as a whole; the caller
//! reads again and retries.

use crate::clock::Timestamp;
use crate::domain::{LeadId, PageId};
use crate::store::{Condition, Item, ItemStore, StoreError, Value, WriteOp};

use super::consent::{ConsentEvent, ConsentRecord};
use super::record::{
    Lead, LeadStatus, MARKETING_ACTIVE, MARKETING_STOPPED, lead_key, status_partition,
    status_sort_key,
};

/// The writes that append `event` to the lead's chain and set its status (and any extra attributes the
/// caller set on `updated`, a copy of the lead's item). Returns the record too.
///
/// A lead that becomes `unsubscribed` keeps no active marketing-messages token: an opt-out withdraws
/// everything, whichever path it came by (Messenger Platform Policy: honour every opt-out).
pub fn transition_ops(
    lead: &Lead,
    updated: Item,
    status: LeadStatus,
    event: ConsentEvent,
) -> Result<(Vec<WriteOp>, ConsentRecord), StoreError> {
    let record = ConsentRecord::chain(&lead.id, lead.consent_seq, &lead.consent_head, event);
    let version = lead.item.version().unwrap_or(0);
    let updated = if status == LeadStatus::Unsubscribed
        && updated.get_str("marketing_status") == Some(MARKETING_ACTIVE)
    {
        updated.plain("marketing_status", Value::S(MARKETING_STOPPED.to_owned()))?
    } else {
        updated
    };
    let item = updated
        .plain("status", Value::S(status.name().to_owned()))?
        .plain(
            "consent_seq",
            Value::N(i64::try_from(record.seq).unwrap_or(i64::MAX)),
        )?
        .plain("consent_head", Value::S(record.hash.clone()))?
        .with_version(version + 1)
        .with_gsi1(
            status_partition(&lead.page, status),
            status_sort_key(lead.created, &lead.id),
        );
    let ops = vec![
        record.append_op(&lead.page, &lead.id)?,
        WriteOp::Put {
            item,
            condition: Condition::VersionIs(version),
        },
    ];
    Ok((ops, record))
}

/// Reads a lead; `None` if there is none.
pub async fn load(
    store: &dyn ItemStore,
    page: &PageId,
    lead: &LeadId,
) -> Result<Option<Lead>, StoreError> {
    let item = store.get(&lead_key(page, lead)).await?;
    Ok(item.and_then(|i| Lead::from_item(page, i)))
}

/// What an opt-out did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptOut {
    Unsubscribed,
    /// The lead was already unsubscribed (and its marketing token, if any, stopped): nothing changed,
    /// nothing recorded.
    AlreadyUnsubscribed,
    NoSuchLead,
}

/// Unsubscribes a lead and stops its marketing token, honoured at once (Messenger Platform Policy),
/// idempotent. `extra` writes (a
/// de-duplication key, a confirmation reply) go into the same transaction when something changes.
///
/// A merged lead (a checkbox-plugin lead whose person later wrote from Messenger) is closed: its consent
/// lives on in the lead it was merged into, so the opt-out is recorded there — an old unsubscribe link
/// or the account holder naming the merged lead still stops the person's messages.
pub async fn opt_out(
    store: &dyn ItemStore,
    page: &PageId,
    lead_id: &LeadId,
    event: impl Fn(Timestamp) -> ConsentEvent,
    now: Timestamp,
    extra: Vec<WriteOp>,
) -> Result<OptOut, StoreError> {
    let mut lead_id = lead_id.clone();
    let mut followed = false;
    for _ in 0..5 {
        let Some(lead) = load(store, page, &lead_id).await? else {
            return Ok(OptOut::NoSuchLead);
        };
        if lead.status == LeadStatus::Merged {
            match lead.merged_into() {
                // One hop: a lead merged into is never merged itself.
                Some(target) if !followed && target != lead_id => {
                    lead_id = target;
                    followed = true;
                    continue;
                }
                _ => return Ok(OptOut::AlreadyUnsubscribed),
            }
        }
        // An unsubscribed lead with an active marketing token (one activated before opt-outs withdrew
        // it) still has something to withdraw: the opt-out is recorded and stops the token.
        if lead.status == LeadStatus::Unsubscribed && !lead.marketing_active() {
            return Ok(OptOut::AlreadyUnsubscribed);
        }
        let (mut ops, _) = transition_ops(
            &lead,
            lead.item.clone(),
            LeadStatus::Unsubscribed,
            event(now),
        )?;
        ops.extend(extra.iter().cloned());
        match store.transact(ops).await {
            Ok(()) => return Ok(OptOut::Unsubscribed),
            Err(
                StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict,
            ) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::TransactionConflict)
}
