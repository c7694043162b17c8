//! Finding a person's lead: lead ids are random, and the blind index of page and person maps to them
//! through a [`LEAD_LOOKUP`] item in the key store ([`crate::app::App::key_store`]), which backups do not
//! copy. So a restored copy of the main store holds no value computable from a PSID or `user_ref`.
//!
//! Each lead also has a [`LEAD_KEYS`] entry in its page's partition of the key store, naming its lookups:
//! erasure finds them there (the subject of a merged checkbox lead is no longer held, so it could not be
//! recomputed) and removes them after the lead's items in the main store.
//!
//! A lead is created by [`claim`]: its lookup (`NotExists`) and entry in one key-store transaction,
//! before the lead's own transaction in the main store. Two first events of
//! one new person at once (webhook, optin) both propose an id; one lookup wins, the other caller gets the
//! winner's id and plans again on it, so they end with ONE lead. A lookup whose lead was never written
//! (the writer crashed between the claim and its transaction) still names the id: the person's next
//! event creates the lead under it.

use crate::crypto::{BlindIndex, BlindIndexer, CryptoError, LeadSecret};
use crate::domain::{LeadId, PageId};
use crate::ids::IdGenerator;
use crate::inventory::{LEAD_KEYS, LEAD_LOOKUP};
use crate::store::{
    Condition, Cursor, Item, ItemKey, ItemStore, Query, StoreError, Value, WriteOp,
};

use super::record::Subject;

/// Blind-index purpose of lead lookups (the same input as the former deterministic lead ids).
const LEAD_PURPOSE: &str = "lead";

/// The blind index of a person (`subject`) on `page`: the key of their lookup.
pub fn subject_index(indexer: &BlindIndexer, page: &PageId, subject: &Subject) -> BlindIndex {
    let input = format!(
        "{}\u{0}{}\u{0}{}",
        page.as_str(),
        subject.kind(),
        subject.expose()
    );
    indexer.index(LEAD_PURPOSE, input.as_bytes())
}

pub fn lookup_key(index: &BlindIndex) -> ItemKey {
    ItemKey::new(format!("LEADLOOKUP#{}", index.as_str()), "LOOKUP")
}

/// A page's partition of lead entries in the key store.
pub fn keys_partition(page: &PageId) -> String {
    format!("LEADKEYS#{page}")
}

pub fn keys_key(page: &PageId, lead: &LeadId) -> ItemKey {
    ItemKey::new(keys_partition(page), format!("LEAD#{lead}"))
}

/// The lead the lookup `index` names, if any (one key-store read).
///
/// # Errors
/// The key store's failure.
pub async fn find(
    key_store: &dyn ItemStore,
    index: &BlindIndex,
) -> Result<Option<LeadId>, StoreError> {
    Ok(key_store
        .get(&lookup_key(index))
        .await?
        .and_then(|item| LeadId::parse(item.get_str("lead_id")?).ok()))
}

/// The secret of one lead on `page` (one key-store read of its entry); `None` if it has none (erased,
/// or created before lead secrets existed).
///
/// # Errors
/// The key store's failure.
pub async fn secret(
    key_store: &dyn ItemStore,
    page: &PageId,
    lead: &LeadId,
) -> Result<Option<LeadSecret>, StoreError> {
    Ok(key_store
        .get(&keys_key(page, lead))
        .await?
        .and_then(|entry| LeadSecret::from_stored(entry.get_bytes("secret")?)))
}

/// The secrets of `leads` on `page` (the salts of their keys, [`crate::crypto::FieldCipher::for_lead`]),
/// in one [`ItemStore::get_many`] per 100 leads: what a reader of a batch of leads (the broadcast
/// engine) needs to open their values, with no KMS call. A lead without one (erased, or created before
/// lead secrets existed) is left out.
///
/// # Errors
/// The key store's failure.
pub async fn secrets(
    key_store: &dyn ItemStore,
    page: &PageId,
    leads: &[LeadId],
) -> Result<std::collections::HashMap<LeadId, LeadSecret>, StoreError> {
    let keys: Vec<ItemKey> = leads.iter().map(|l| keys_key(page, l)).collect();
    let found = key_store.get_many(&keys).await?;
    Ok(found
        .iter()
        .filter_map(|entry| {
            let lead = LeadId::parse(entry.key().sk.strip_prefix("LEAD#")?).ok()?;
            let secret = LeadSecret::from_stored(entry.get_bytes("secret")?)?;
            Some((lead, secret))
        })
        .collect())
}

/// Why [`find_lead`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The lead of `subject` on `page`, if the person has one (for Meta's deletion callback and every other
/// caller that starts from a PSID or `user_ref`). Nothing is created.
///
/// # Errors
/// The blind-index key's or the key store's failure.
pub async fn find_lead(
    app: &crate::app::App,
    page: &PageId,
    subject: &Subject,
) -> Result<Option<LeadId>, LookupError> {
    let indexer = app.keys.blind_indexer().await?;
    Ok(find(
        app.key_store.as_ref(),
        &subject_index(&indexer, page, subject),
    )
    .await?)
}

/// A fresh random lead id, for a lead about to be [`claim`]ed.
pub fn propose(ids: &dyn IdGenerator) -> LeadId {
    LeadId::generate(ids)
}

/// The key-store writes of a new lead's claim: its lookup (`NotExists`, op 0) and its entry, for one
/// transaction ([`claim`]; and for tools that seed leads in bulk as the webhook writes them).
///
/// # Errors
/// An attribute the inventory refuses (a programming error).
pub fn claim_ops(
    page: &PageId,
    index: &BlindIndex,
    lead: &LeadId,
    now: crate::clock::Timestamp,
) -> Result<Vec<WriteOp>, StoreError> {
    let secret = LeadSecret::generate()
        .map_err(|_| StoreError::InvalidRequest("the random number generator failed"))?;
    let entry = Item::new(&LEAD_KEYS, keys_key(page, lead))
        .blind_index("lookup", index)?
        .plain("secret", Value::B(secret.expose().to_vec()))?
        .plain("created", Value::N(now.millis()))?;
    let lookup = Item::new(&LEAD_LOOKUP, lookup_key(index))
        .plain("lead_id", Value::S(lead.as_str().to_owned()))?
        .plain("created", Value::N(now.millis()))?;
    Ok(vec![
        WriteOp::Put {
            item: lookup,
            condition: Condition::NotExists,
        },
        WriteOp::Put {
            item: entry,
            condition: Condition::NotExists,
        },
    ])
}

/// Makes `proposed` the lead of the person whose lookup is `index` on `page`, unless they have one
/// already; returns the lead that holds the lookup (`proposed` or the one that was there first).
///
/// # Errors
/// The key store's failure.
pub async fn claim(
    key_store: &dyn ItemStore,
    page: &PageId,
    index: &BlindIndex,
    proposed: &LeadId,
    now: crate::clock::Timestamp,
) -> Result<LeadId, StoreError> {
    // One transaction: a lookup is never written without the entry that lets erasure find it, and a
    // lost race writes neither.
    let ops = claim_ops(page, index, proposed, now)?;
    match key_store.transact(ops).await {
        Ok(()) => Ok(proposed.clone()),
        Err(StoreError::TransactionConditionFailed { index: 0 }) => {
            match find(key_store, index).await? {
                Some(winner) => Ok(winner),
                // Erased in between: the caller plans again, and claims again.
                None => Err(StoreError::TransactionConflict),
            }
        }
        Err(e) => Err(e),
    }
}

/// Removes the key-store items of `lead` on `page` (its lookups, then its entry). Idempotent: what is
/// gone stays gone. A lookup that names another lead (the person's new lead) is kept.
///
/// # Errors
/// The key store's failure.
pub async fn erase_keys(
    key_store: &dyn ItemStore,
    page: &PageId,
    lead: &LeadId,
) -> Result<bool, StoreError> {
    let entry = keys_key(page, lead);
    let Some(item) = key_store.get(&entry).await? else {
        return Ok(false);
    };
    erase_entry(key_store, lead, &item).await?;
    Ok(true)
}

async fn erase_entry(
    key_store: &dyn ItemStore,
    lead: &LeadId,
    entry: &Item,
) -> Result<(), StoreError> {
    if let Some(index) = entry.get_str("lookup") {
        let key = lookup_key(&BlindIndex::from_stored(index));
        if let Some(found) = key_store.get(&key).await?
            && found.get_str("lead_id") == Some(lead.as_str())
        {
            key_store.delete(&key, Condition::Always).await?;
        }
    }
    key_store.delete(entry.key(), Condition::Always).await
}

/// One page (up to `limit`) of `page`'s lead entries from `after`: removes each that `erase` accepts,
/// with its lookup (page erasure, after its leads). Returns how many were removed and where the next
/// page starts (`None`: none left).
///
/// # Errors
/// The key store's failure.
pub async fn erase_page_keys(
    key_store: &dyn ItemStore,
    page: &PageId,
    after: Option<Cursor>,
    limit: usize,
    erase: impl Fn(&Item) -> bool + Send,
) -> Result<(u64, Option<Cursor>), StoreError> {
    let mut query = Query::partition(keys_partition(page), limit);
    query.cursor = after;
    let found = key_store.query(&query).await?;
    let mut removed = 0;
    for item in &found.items {
        if !erase(item) {
            continue;
        }
        match item
            .key()
            .sk
            .strip_prefix("LEAD#")
            .and_then(|l| LeadId::parse(l).ok())
        {
            Some(lead) => erase_entry(key_store, &lead, item).await?,
            None => key_store.delete(item.key(), Condition::Always).await?,
        }
        removed += 1;
    }
    Ok((removed, found.next))
}

/// The lead of `subject` on `page`, created in the key store if the person has none yet: [`claim`] of a
/// fresh id. For writers of a lead that know it is new (and for tests that seed leads as the webhook
/// writes them).
///
/// # Errors
/// The key store's failure.
pub async fn lead_for(
    key_store: &dyn ItemStore,
    indexer: &BlindIndexer,
    ids: &dyn IdGenerator,
    page: &PageId,
    subject: &Subject,
    now: crate::clock::Timestamp,
) -> Result<LeadId, StoreError> {
    let index = subject_index(indexer, page, subject);
    match find(key_store, &index).await? {
        Some(found) => Ok(found),
        None => claim(key_store, page, &index, &propose(ids), now).await,
    }
}
