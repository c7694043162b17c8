//! Request checks shared by every backend, run before any backend is called.
//!
//! DynamoDB refuses some requests (empty or oversized keys, items over 400 KB, one key twice in a
//! transaction, a bad page size …) and SQLite would happily accept them. Checking them here, identically
//! for both, keeps the backends' behaviour the same and gives callers `InvalidRequest` instead of a
//! backend-specific failure. Nothing here looks at attribute values beyond their sizes.

use std::collections::HashSet;

use super::cursor::CursorPosition;
use super::{
    Index, Item, ItemKey, KeyRange, MAX_PAGE_LIMIT, MAX_TRANSACTION_OPS, Query, StoreError, Value,
    WriteOp,
};

/// DynamoDB's limits on key attribute sizes (UTF-8 bytes), for the table and for the index.
const MAX_PARTITION_KEY_BYTES: usize = 2048;
const MAX_SORT_KEY_BYTES: usize = 1024;
/// DynamoDB's item size limit.
const MAX_ITEM_BYTES: usize = 400 * 1024;
/// An upper bound of the size DynamoDB counts for a number (it counts about one byte per two digits).
const NUMBER_BYTES_UPPER_BOUND: usize = 21;

fn check_key_parts(pk: &str, sk: &str) -> Result<(), StoreError> {
    if pk.is_empty() || sk.is_empty() {
        return Err(StoreError::InvalidRequest(
            "key attributes must not be empty",
        ));
    }
    if pk.len() > MAX_PARTITION_KEY_BYTES || sk.len() > MAX_SORT_KEY_BYTES {
        return Err(StoreError::InvalidRequest("key attribute too long"));
    }
    Ok(())
}

/// A key the store can address.
pub(crate) fn key(key: &ItemKey) -> Result<(), StoreError> {
    check_key_parts(&key.pk, &key.sk)
}

/// An upper bound of the size DynamoDB counts for `item` (names plus values).
fn approximate_size(item: &Item) -> usize {
    let key = item.key();
    let mut size = 2 + key.pk.len() + 2 + key.sk.len() + 1 + item.item_type().name.len();
    if item.version().is_some() {
        size += 1 + NUMBER_BYTES_UPPER_BOUND;
    }
    if item.expires().is_some() {
        size += 3 + NUMBER_BYTES_UPPER_BOUND;
    }
    if let Some((gpk, gsk)) = item.gsi1() {
        size += 6 + gpk.len() + 6 + gsk.len();
    }
    for (name, value) in item.attributes() {
        size += name.len()
            + match value {
                Value::S(s) => s.len(),
                Value::B(b) => b.len(),
                Value::N(_) => NUMBER_BYTES_UPPER_BOUND,
                Value::Bool(_) => 1,
            };
    }
    size
}

/// An item about to be written: allowed by the inventory (an expiring type carries a TTL), addressable,
/// and small enough for DynamoDB.
pub(crate) fn item(item: &Item) -> Result<(), StoreError> {
    item.validate_for_write()?;
    key(item.key())?;
    if let Some((gpk, gsk)) = item.gsi1() {
        check_key_parts(gpk, gsk)?;
    }
    // SQLite stores integers as i64; a larger version would not survive the round trip.
    if item.version().is_some_and(|v| i64::try_from(v).is_err()) {
        return Err(StoreError::InvalidRequest("version out of range"));
    }
    if approximate_size(item) > MAX_ITEM_BYTES {
        return Err(StoreError::InvalidRequest("item larger than 400 KB"));
    }
    Ok(())
}

/// A transaction: at most [`MAX_TRANSACTION_OPS`] operations on distinct keys, each valid.
pub(crate) fn transaction(ops: &[WriteOp]) -> Result<(), StoreError> {
    if ops.len() > MAX_TRANSACTION_OPS {
        return Err(StoreError::InvalidRequest(
            "too many operations in one transaction",
        ));
    }
    let mut seen = HashSet::with_capacity(ops.len());
    for op in ops {
        match op {
            WriteOp::Put { item: it, .. } => item(it)?,
            WriteOp::Delete { key: k, .. } | WriteOp::Check { key: k, .. } => key(k)?,
        }
        if !seen.insert(op.key()) {
            return Err(StoreError::InvalidRequest(
                "one key appears twice in a transaction",
            ));
        }
    }
    Ok(())
}

/// A query: a page size in range, a partition, and a cursor issued for this index and this partition.
/// Returns the decoded cursor position.
/// Every group of a [`super::ItemStore::transact_each`] call, as [`transaction`] checks one.
pub(crate) fn groups(groups: &[Vec<WriteOp>]) -> Result<(), StoreError> {
    groups.iter().try_for_each(|ops| transaction(ops))
}

pub(crate) fn query(query: &Query) -> Result<Option<CursorPosition>, StoreError> {
    if query.limit == 0 || query.limit > MAX_PAGE_LIMIT {
        return Err(StoreError::InvalidRequest("page limit out of range"));
    }
    if query.partition.is_empty() {
        return Err(StoreError::InvalidRequest("partition must not be empty"));
    }
    // DynamoDB refuses empty key values in a key condition and a BETWEEN whose bounds are reversed.
    match &query.range {
        KeyRange::All | KeyRange::Prefix(_) => {}
        KeyRange::Between(low, high) => {
            if low.is_empty() || high.is_empty() {
                return Err(StoreError::InvalidRequest("empty sort key bound"));
            }
            if low > high {
                return Err(StoreError::InvalidRequest("range bounds reversed"));
            }
        }
        KeyRange::AtLeast(bound) | KeyRange::AtMost(bound) => {
            if bound.is_empty() {
                return Err(StoreError::InvalidRequest("empty sort key bound"));
            }
        }
    }
    let Some(cursor) = &query.cursor else {
        return Ok(None);
    };
    let position = cursor.position(query.index)?;
    let (partition_of_cursor, sort_of_cursor) = match (&query.index, &position.gsi1) {
        (Index::Table, _) => (position.pk.as_str(), position.sk.as_str()),
        (Index::Gsi1, Some((gpk, gsk))) => (gpk.as_str(), gsk.as_str()),
        (Index::Gsi1, None) => return Err(StoreError::InvalidCursor),
    };
    // A cursor from another partition or range (it always names an item the same query returned) would
    // make DynamoDB fail with a validation error and SQLite silently return a wrong page; both answer
    // InvalidCursor instead.
    if partition_of_cursor != query.partition || !in_range(&query.range, sort_of_cursor) {
        return Err(StoreError::InvalidCursor);
    }
    Ok(Some(position))
}

/// A retention sweep's bounds: a limit within a page's and a table cursor (as `remove_expired` issues).
pub(crate) fn sweep(
    from: Option<&super::Cursor>,
    limit: usize,
) -> Result<Option<CursorPosition>, StoreError> {
    if limit == 0 || limit > MAX_PAGE_LIMIT {
        return Err(StoreError::InvalidRequest("sweep limit out of range"));
    }
    from.map(|cursor| cursor.position(Index::Table)).transpose()
}

fn in_range(range: &KeyRange, sort_key: &str) -> bool {
    match range {
        KeyRange::All => true,
        KeyRange::Prefix(prefix) => sort_key.starts_with(prefix.as_str()),
        KeyRange::Between(low, high) => low.as_str() <= sort_key && sort_key <= high.as_str(),
        KeyRange::AtLeast(low) => low.as_str() <= sort_key,
        KeyRange::AtMost(high) => sort_key <= high.as_str(),
    }
}

/// Distinct keys, first occurrence kept (DynamoDB refuses a batch naming a key twice).
pub(crate) fn distinct_keys(keys: &[ItemKey]) -> Result<Vec<&ItemKey>, StoreError> {
    let mut seen = HashSet::with_capacity(keys.len());
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        key(k)?;
        if seen.insert(k) {
            out.push(k);
        }
    }
    Ok(out)
}

/// The smallest string greater than every string that starts with `prefix`, if there is one, so a prefix
/// query becomes a range `prefix <= s < successor` over the sort key. Code-point order is the UTF-8 byte
/// order both DynamoDB and SQLite's BINARY collation use.
#[cfg_attr(not(feature = "local"), allow(dead_code))] // the SQLite store's
pub(crate) fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            char::MAX => None,
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_successor_bounds_exactly_the_strings_with_the_prefix() {
        assert_eq!(prefix_successor("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
        assert_eq!(prefix_successor(""), None);
        let succ = prefix_successor("ab").unwrap_or_default();
        for inside in ["ab", "ab\u{10FFFF}\u{10FFFF}", "abzzz"] {
            assert!(inside < succ.as_str());
        }
    }

    #[test]
    fn transactions_refuse_too_many_operations_and_repeated_keys() {
        let check = |n: usize| WriteOp::Check {
            key: ItemKey::new("p", format!("s{n}")),
            condition: super::super::Condition::Exists,
        };
        let ops: Vec<_> = (0..26).map(check).collect();
        assert!(matches!(
            transaction(&ops),
            Err(StoreError::InvalidRequest(_))
        ));
        assert!(transaction(&ops[..25]).is_ok());
        assert!(matches!(
            transaction(&[check(1), check(1)]),
            Err(StoreError::InvalidRequest(_))
        ));
    }
}
