//! Finding a person's lead: lead ids are random, and the blind index of page and person maps to them
//! through a [`LEAD_LOOKUP`] item in the key store ([`crate::app::App::key_store`]), which backups do not
//! copy. So a restored copy of the main store holds no value computable from a PSID or `user_ref`.
//!
//! Each lead also has a [`LEAD_KEYS`] entry in its page's partition of the key store, naming its lookups:
//! erasure finds them there (the subject of a merged checkbox lead is no longer held, so it could not be
//! recomputed) and removes them after the lead's items in the main store.
//!
//! Both the lookup and the entry hold the lead's random secret ([`LeadSecret`]), from which its values'
//! key is derived ([`crate::crypto::FieldCipher::for_lead`]): the lookup so that a writer that found the
//! lead (the webhook's one read) seals under it with no other call, the entry so that readers that start
//! from the lead id (notify, the exports, the broadcast engine) find it. A lookup written before lookups
//! held it has none: that lead's values stay sealed under the account's key.
//!
//! A lead is created by [`claim`]: its lookup (`NotExists`) and entry in one key-store transaction,
//! before the lead's own transaction in the main store (the webhook stages a batch's claims and commits
//! them in one key-store call before the batch's main-store transactions). Two first events of
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

/// A lead as its lookup names it: its id and, unless the lookup was written before lookups held it, its
/// secret.
#[derive(Debug, Clone)]
pub struct Found {
    pub id: LeadId,
    pub secret: Option<LeadSecret>,
}

/// The lead the lookup `index` names, if any, with its secret (one key-store read).
///
/// # Errors
/// The key store's failure.
pub async fn find(
    key_store: &dyn ItemStore,
    index: &BlindIndex,
) -> Result<Option<Found>, StoreError> {
    Ok(key_store.get(&lookup_key(index)).await?.and_then(|item| {
        let id = LeadId::parse(item.get_str("lead_id")?).ok()?;
        let secret = item.get_bytes("secret").and_then(LeadSecret::from_stored);
        Some(Found { id, secret })
    }))
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
    .await?
    .map(|found| found.id))
}

/// A fresh lead id with a fresh secret, for a lead about to be [`claim`]ed: a writer seals the new
/// lead's values under its key before the claim. The id is random after the millisecond `now`
/// ([`crate::ids::time_ordered`]), so the items of leads made together share index pages.
///
/// # Errors
/// [`CryptoError::Primitive`] if the random number generator fails.
pub fn propose(ids: &dyn IdGenerator, now: crate::clock::Timestamp) -> Result<Found, CryptoError> {
    let id = LeadId::parse(&crate::ids::time_ordered(ids, now.millis()))
        .unwrap_or_else(|_| LeadId::generate(ids));
    Ok(Found {
        id,
        secret: Some(LeadSecret::generate()?),
    })
}

/// The key-store writes of a new lead's claim: its lookup (`NotExists`, op 0) and its entry, both holding
/// `secret`, for one transaction ([`claim`]; and for tools that seed leads in bulk as the webhook writes
/// them).
///
/// # Errors
/// An attribute the inventory refuses (a programming error).
pub fn claim_ops(
    page: &PageId,
    index: &BlindIndex,
    lead: &LeadId,
    secret: &LeadSecret,
    now: crate::clock::Timestamp,
) -> Result<Vec<WriteOp>, StoreError> {
    let entry = Item::new(&LEAD_KEYS, keys_key(page, lead))
        .blind_index("lookup", index)?
        .plain("secret", Value::B(secret.expose().to_vec()))?
        .plain("created", Value::N(now.millis()))?;
    let lookup = Item::new(&LEAD_LOOKUP, lookup_key(index))
        .plain("lead_id", Value::S(lead.as_str().to_owned()))?
        .plain("secret", Value::B(secret.expose().to_vec()))?
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

/// Makes `proposed` (from [`propose`]) the lead of the person whose lookup is `index` on `page`, unless
/// they have one already; returns the lead that holds the lookup (`proposed` or the one that was there
/// first, with its secret).
///
/// # Errors
/// The key store's failure.
pub async fn claim(
    key_store: &dyn ItemStore,
    page: &PageId,
    index: &BlindIndex,
    proposed: &Found,
    now: crate::clock::Timestamp,
) -> Result<Found, StoreError> {
    let Some(secret) = proposed.secret.as_ref() else {
        // Not a proposal: a lead a lookup without a secret names (written before lookups held one),
        // whose lead item is missing. That lookup holds the claim.
        return holder(key_store, index).await;
    };
    // One transaction: a lookup is never written without the entry that lets erasure find it, and a
    // lost race writes neither.
    let ops = claim_ops(page, index, &proposed.id, secret, now)?;
    match key_store.transact(ops).await {
        Ok(()) => Ok(proposed.clone()),
        Err(StoreError::TransactionConditionFailed { index: 0 }) => holder(key_store, index).await,
        Err(e) => Err(e),
    }
}

/// The lead that holds the lookup `index`, after a claim found it taken.
async fn holder(key_store: &dyn ItemStore, index: &BlindIndex) -> Result<Found, StoreError> {
    match find(key_store, index).await? {
        Some(winner) => Ok(winner),
        // Erased in between: the caller plans again, and claims again.
        None => Err(StoreError::TransactionConflict),
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
        Some(found) => Ok(found.id),
        None => {
            let proposed = propose(ids, now)
                .map_err(|_| StoreError::InvalidRequest("the random number generator failed"))?;
            Ok(claim(key_store, page, &index, &proposed, now).await?.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{ManualClock, Timestamp};
    use crate::ids::SequentialIds;
    use crate::store::sqlite::SqliteStore;

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    async fn store() -> (Arc<dyn ItemStore>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::at(NOW));
        let store: Arc<dyn ItemStore> =
            Arc::new(SqliteStore::open(&dir.path().join("keys.db"), clock).expect("store opens"));
        store.ensure_schema().await.expect("schema");
        (store, dir)
    }

    fn page() -> PageId {
        PageId::parse("1234567890").expect("page id")
    }

    #[tokio::test]
    async fn a_claim_writes_the_secret_in_the_lookup_and_the_entry_and_a_loser_gets_the_winners() {
        let (store, _dir) = store().await;
        let ids = SequentialIds::default();
        let index = BlindIndex::from_stored("index-of-a-person");
        let first = propose(&ids, NOW).expect("proposed");
        let second = propose(&ids, NOW).expect("proposed");
        let won = claim(store.as_ref(), &page(), &index, &first, NOW)
            .await
            .expect("claimed");
        let lost = claim(store.as_ref(), &page(), &index, &second, NOW)
            .await
            .expect("answered");
        let found = find(store.as_ref(), &index)
            .await
            .expect("read")
            .expect("the lookup");
        let entry = secret(store.as_ref(), &page(), &first.id)
            .await
            .expect("read")
            .expect("the entry's secret");
        let expected = first.secret.as_ref().expect("a secret").expose();
        for got in [&won, &lost, &found] {
            assert_eq!(got.id, first.id);
            assert_eq!(got.secret.as_ref().map(LeadSecret::expose), Some(expected));
        }
        assert_eq!(entry.expose(), expected);
        assert!(
            secret(store.as_ref(), &page(), &second.id)
                .await
                .expect("read")
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_lookup_from_before_secrets_names_its_lead_without_one_and_holds_its_claim() {
        let (store, _dir) = store().await;
        let index = BlindIndex::from_stored("index-of-an-old-person");
        let lead = LeadId::parse("oldlead").expect("lead id");
        let old = Item::new(&LEAD_LOOKUP, lookup_key(&index))
            .plain("lead_id", Value::S(lead.as_str().to_owned()))
            .and_then(|i| i.plain("created", Value::N(NOW.millis())))
            .expect("a lookup");
        store.put(old, Condition::Always).await.expect("written");
        let found = find(store.as_ref(), &index)
            .await
            .expect("read")
            .expect("the lookup");
        assert_eq!(found.id, lead);
        assert!(found.secret.is_none());
        let held = claim(store.as_ref(), &page(), &index, &found, NOW)
            .await
            .expect("answered");
        assert_eq!(held.id, lead);
        assert!(held.secret.is_none());
        let left = store.get(&keys_key(&page(), &lead)).await.expect("read");
        assert!(left.is_none(), "nothing was written for it");
    }
}
