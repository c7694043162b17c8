//! The JSON shapes of leads and consent records. Built field by field from the readable attributes only,
//! so a sealed value (the PSID, a marketing token) can never slip into an answer.

use qchat_shared::leads::consent::ChainBreak;
use qchat_shared::leads::{ConsentRecord, Lead};
use serde_json::{Value, json};

/// A lead as every route shows it.
pub fn lead(lead: &Lead) -> Value {
    json!({
        "id": lead.id.as_str(),
        "status": lead.status.name(),
        "created_at": lead.created.to_rfc3339(),
        "last_message_at": lead.last_message_at.map(|t| t.to_rfc3339()),
        "marketing_status": lead.marketing_status,
    })
}

/// One consent record, every field of the proof.
pub fn record(r: &ConsentRecord) -> Value {
    let e = &r.event;
    json!({
        "seq": r.seq,
        "action": e.action,
        "source": e.source,
        "meta_ref": e.meta_ref,
        "meta_timestamp": e.meta_timestamp,
        "received_at": e.received_at.to_rfc3339(),
        "policy_version": e.policy_version,
        "consent_mode": e.consent_mode,
        "wording": e.wording,
        "hash": r.hash,
        "prev_hash": r.prev_hash,
    })
}

/// The outcome of the chain check.
pub fn chain(result: &Result<(), ChainBreak>) -> Value {
    match result {
        Ok(()) => json!({ "intact": true }),
        Err(b) => json!({ "intact": false, "broken_at": b.at_seq, "reason": b.reason }),
    }
}
