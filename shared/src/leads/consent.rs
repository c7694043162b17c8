//! Consent records: append-only and hash-chained per lead. Each record holds the hash of the one before
//! it, so editing or removing any record breaks the chain, which [`verify_chain`] detects.
//!
//! The hash is SHA-256 over a canonical JSON encoding of every field of the record (fixed field order)
//! including `prev_hash`, the lead id and the sequence number; the first record's `prev_hash` is
//! [`GENESIS_HASH`].

use crate::clock::Timestamp;
use crate::domain::{LeadId, PageId};
use crate::inventory::CONSENT_RECORD;
use crate::store::{
    Condition, Item, ItemKey, ItemStore, KeyRange, MAX_PAGE_LIMIT, Query, StoreError, Value,
    WriteOp, query_all,
};

/// The `prev_hash` of the first record of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The person was asked to confirm (confirmed mode); the record holds the exact question.
    ConfirmationRequested,
    /// The person agreed to receive messages.
    OptIn,
    /// The person said no to the confirmation question.
    Declined,
    /// The person (or the account holder on their behalf) stopped messages.
    OptOut,
    /// The person opted in to marketing messages (`notification_messages`).
    MarketingOptIn,
    MarketingStop,
    MarketingResume,
    /// The lead (a checkbox-plugin `user_ref`) was merged into the lead of the same person's PSID; the
    /// record names that lead and the hash of its first record, where this chain's consent carries on.
    Merged,
}

/// The fields of one consent event, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsentEvent {
    pub action: Action,
    /// Where it came from: first_message, get_started, checkbox_plugin, checkbox_plugin_linked, referral,
    /// quick_reply, keyword, postback, unsubscribe_link, account_holder, marketing_messages.
    pub source: String,
    /// Meta's message id (`mid`) or the referral/opt-in `ref`, when there is one.
    pub meta_ref: Option<String>,
    /// Meta's event timestamp (ms), when the event came from Meta.
    pub meta_timestamp: Option<i64>,
    pub received_at: Timestamp,
    pub policy_version: String,
    /// confirmed or implicit.
    pub consent_mode: String,
    /// The exact wording the person saw or answered, so the proof says what they agreed to.
    pub wording: String,
}

/// A chained record as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsentRecord {
    pub seq: u64,
    #[serde(flatten)]
    pub event: ConsentEvent,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(serde::Serialize)]
struct Canonical<'a> {
    lead: &'a str,
    seq: u64,
    event: &'a ConsentEvent,
    prev_hash: &'a str,
}

/// The hash of a record with these contents.
pub fn record_hash(lead: &LeadId, seq: u64, event: &ConsentEvent, prev_hash: &str) -> String {
    let canonical = Canonical {
        lead: lead.as_str(),
        seq,
        event,
        prev_hash,
    };
    hex::encode(crate::crypto::sha256(
        &serde_json::to_vec(&canonical).unwrap_or_default(),
    ))
}

/// The partition of one lead's consent history.
pub fn history_partition(page: &PageId, lead: &LeadId) -> String {
    format!("CONSENT#{page}#{lead}")
}

/// Every readable record of a lead's chain, in sequence order. A record that no longer reads as one is
/// left out; a chain check then reports the gap where it was.
///
/// # Errors
/// The store's.
pub async fn history(
    store: &dyn ItemStore,
    page: &PageId,
    lead: &LeadId,
) -> Result<Vec<ConsentRecord>, StoreError> {
    let query = Query {
        range: KeyRange::Prefix("SEQ#".to_owned()),
        ..Query::partition(history_partition(page, lead), MAX_PAGE_LIMIT)
    };
    let items = query_all(store, query).await?;
    Ok(items.iter().filter_map(ConsentRecord::from_item).collect())
}

fn record_key(page: &PageId, lead: &LeadId, seq: u64) -> ItemKey {
    ItemKey::new(history_partition(page, lead), format!("SEQ#{seq:010}"))
}

impl ConsentRecord {
    /// Chains `event` after the record with sequence `prev_seq` and hash `prev_hash`.
    pub fn chain(lead: &LeadId, prev_seq: u64, prev_hash: &str, event: ConsentEvent) -> Self {
        let seq = prev_seq + 1;
        let hash = record_hash(lead, seq, &event, prev_hash);
        Self {
            seq,
            event,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }

    /// The write that appends this record; it never replaces one (`NotExists`), so a chain is append-only.
    pub fn append_op(&self, page: &PageId, lead: &LeadId) -> Result<WriteOp, StoreError> {
        let e = &self.event;
        let action = serde_json::to_value(e.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let mut item = Item::new(&CONSENT_RECORD, record_key(page, lead, self.seq))
            .plain("seq", Value::N(i64::try_from(self.seq).unwrap_or(i64::MAX)))?
            .plain("action", Value::S(action))?
            .plain("source", Value::S(e.source.clone()))?
            .plain("received_at", Value::N(e.received_at.millis()))?
            .plain("policy_version", Value::S(e.policy_version.clone()))?
            .plain("consent_mode", Value::S(e.consent_mode.clone()))?
            .plain("wording", Value::S(e.wording.clone()))?
            .plain("prev_hash", Value::S(self.prev_hash.clone()))?
            .plain("hash", Value::S(self.hash.clone()))?;
        if let Some(r) = &e.meta_ref {
            item = item.plain("meta_ref", Value::S(r.clone()))?;
        }
        if let Some(t) = e.meta_timestamp {
            item = item.plain("meta_timestamp", Value::N(t))?;
        }
        Ok(WriteOp::Put {
            item,
            condition: Condition::NotExists,
        })
    }

    /// Reads a stored record back (`None` if malformed: the chain check then reports it).
    pub fn from_item(item: &Item) -> Option<Self> {
        let action: Action = serde_json::from_value(serde_json::Value::String(
            item.get_str("action")?.to_owned(),
        ))
        .ok()?;
        Some(Self {
            seq: u64::try_from(item.get_i64("seq")?).ok()?,
            event: ConsentEvent {
                action,
                source: item.get_str("source")?.to_owned(),
                meta_ref: item.get_str("meta_ref").map(str::to_owned),
                meta_timestamp: item.get_i64("meta_timestamp"),
                received_at: Timestamp::from_millis(item.get_i64("received_at")?),
                policy_version: item.get_str("policy_version")?.to_owned(),
                consent_mode: item.get_str("consent_mode")?.to_owned(),
                wording: item.get_str("wording")?.to_owned(),
            },
            prev_hash: item.get_str("prev_hash")?.to_owned(),
            hash: item.get_str("hash")?.to_owned(),
        })
    }
}

/// Why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainBreak {
    /// The sequence number where the chain breaks (the first bad or missing record).
    pub at_seq: u64,
    pub reason: &'static str,
}

/// Checks a lead's records (in sequence order) against each other and against the lead's head.
pub fn verify_chain(
    lead: &LeadId,
    records: &[ConsentRecord],
    head_seq: u64,
    head_hash: &str,
) -> Result<(), ChainBreak> {
    let mut prev_hash = GENESIS_HASH.to_owned();
    for (i, r) in records.iter().enumerate() {
        let expected_seq = i as u64 + 1;
        if r.seq != expected_seq {
            return Err(ChainBreak {
                at_seq: expected_seq,
                reason: "a record is missing",
            });
        }
        if r.prev_hash != prev_hash {
            return Err(ChainBreak {
                at_seq: r.seq,
                reason: "the record does not follow the one before it",
            });
        }
        if record_hash(lead, r.seq, &r.event, &r.prev_hash) != r.hash {
            return Err(ChainBreak {
                at_seq: r.seq,
                reason: "the record was changed after it was written",
            });
        }
        prev_hash = r.hash.clone();
    }
    let last = records.len() as u64;
    if last != head_seq || prev_hash != head_hash {
        return Err(ChainBreak {
            at_seq: last + 1,
            reason: "records at the end of the chain are missing",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(action: Action, at: i64) -> ConsentEvent {
        ConsentEvent {
            action,
            source: "first_message".into(),
            meta_ref: Some("m_1".into()),
            meta_timestamp: Some(at),
            received_at: Timestamp::from_millis(at + 5),
            policy_version: "1".into(),
            consent_mode: "implicit".into(),
            wording: "".into(),
        }
    }

    fn chain() -> (LeadId, Vec<ConsentRecord>) {
        let lead = LeadId::parse("lead1").expect("id");
        let a = ConsentRecord::chain(&lead, 0, GENESIS_HASH, event(Action::OptIn, 1));
        let b = ConsentRecord::chain(&lead, a.seq, &a.hash, event(Action::OptOut, 2));
        let c = ConsentRecord::chain(&lead, b.seq, &b.hash, event(Action::OptIn, 3));
        (lead, vec![a, b, c])
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (lead, records) = chain();
        let head = records.last().map(|r| r.hash.clone()).unwrap_or_default();
        assert_eq!(verify_chain(&lead, &records, 3, &head), Ok(()));
    }

    #[test]
    fn an_edited_removed_or_truncated_record_is_detected() {
        let (lead, records) = chain();
        let head = records[2].hash.clone();
        let mut edited = records.clone();
        edited[1].event.action = Action::OptIn;
        assert_eq!(
            verify_chain(&lead, &edited, 3, &head).map_err(|b| b.at_seq),
            Err(2)
        );
        let mut removed = records.clone();
        removed.remove(1);
        assert!(verify_chain(&lead, &removed, 3, &head).is_err());
        let truncated = records[..2].to_vec();
        assert_eq!(
            verify_chain(&lead, &truncated, 3, &head).map_err(|b| b.at_seq),
            Err(3)
        );
    }
}
