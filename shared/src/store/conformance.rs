//! The item store conformance suite (feature `test-support`): one plain `async fn` per case over
//! `&dyn ItemStore`, run against every backend by `tests/conformance/store.rs`.
//!
//! Every case asserts on the meaningful [`StoreError`] variants, and uses its own unique partition keys
//! (the moto emulator is shared by the whole test run). Time moves only through the [`ManualClock`] the
//! store was built with, so expiry is tested without sleeping; expired items stay stored (neither backend
//! deletes them itself), which is exactly the state every read must hide, until `remove_expired` is
//! called (its cases set the clock back afterwards: an item still stored would be live again).

// This module is a test suite: a failed expectation is a failed test, and the message says which step.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use super::dynamodb::DynamoStore;
use super::sqlite::SqliteStore;
use super::{
    Condition, Cursor, Index, Item, ItemKey, ItemStore, KeyRange, MAX_PAGE_LIMIT, Order, Query,
    StoreError, Value, WriteOp,
};
use crate::clock::{Clock, ManualClock, Timestamp};
use crate::crypto::{BlindIndex, OneWayHash, Sealed};
use crate::store::item::InventoryError;
use crate::test_support::{PROBE, PROBE_EXPIRING, unique_name};

/// Where every fixture's clock starts: a whole second plus 250 ms, so second rounding is exercised.
pub const START: Timestamp = Timestamp::from_millis(1_800_000_000_250);

/// A store under test, its clock, and whatever must live as long as the store (a temporary folder).
#[derive(Debug)]
pub struct Fixture {
    pub store: Arc<dyn ItemStore>,
    pub clock: Arc<ManualClock>,
    _guard: Option<tempfile::TempDir>,
}

/// A temporary folder, deleted when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder can be created")
}

/// A [`SqliteStore`] in a fresh file of its own folder, schema ensured.
pub async fn fixture_sqlite() -> Fixture {
    let dir = temp_dir();
    let clock = Arc::new(ManualClock::at(START));
    let store = SqliteStore::open(&dir.path().join("store.db"), clock.clone())
        .expect("the SQLite store opens");
    store.ensure_schema().await.expect("schema");
    Fixture {
        store: Arc::new(store),
        clock,
        _guard: Some(dir),
    }
}

/// A [`DynamoStore`] on a fresh table of the moto emulator, schema ensured.
pub async fn fixture_dynamodb_moto() -> Fixture {
    let config = crate::test_support::moto::sdk_config().await;
    let clock = Arc::new(ManualClock::at(START));
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        unique_name("store"),
        clock.clone(),
    );
    store.ensure_schema().await.expect("schema");
    Fixture {
        store: Arc::new(store),
        clock,
        _guard: None,
    }
}

/// Asserts that `result` is the error matching `pattern`, printing what came instead.
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            other => panic!("expected {}, got {other:?}", stringify!($pattern)),
        }
    };
}

fn probe(key: &ItemKey) -> Item {
    Item::new(&PROBE, key.clone())
}

/// A probe item with a label, to tell writes apart.
fn labelled(key: &ItemKey, label: &str) -> Item {
    probe(key)
        .plain("label", Value::S(label.to_owned()))
        .expect("label is declared plain")
}

/// A probe item carrying every kind of value, a version, a TTL and index keys.
fn full(key: &ItemKey, now: Timestamp) -> Item {
    probe(key)
        .plain("label", Value::S("ünïcødé ✓ \u{1F600}".into()))
        .and_then(|i| i.plain("count", Value::N(-42)))
        .and_then(|i| i.plain("flag", Value::Bool(true)))
        .and_then(|i| i.plain("blob", Value::B(vec![0, 1, 2, 254, 255])))
        .and_then(|i| i.sealed("secret", Sealed::from_bytes(vec![1, 0, 9, 8, 7, 6, 5, 4])))
        .and_then(|i| i.blind_index("lookup", &BlindIndex::from_test_str("bi-abc_DEF-123")))
        .and_then(|i| i.hashed("digest", &OneWayHash::sha256_of(b"a token")))
        .expect("every attribute is declared with this protection")
        .with_version(7)
        .expires_at(now.plus_hours(1))
        .with_gsi1(format!("{}#g", key.pk), "gsk-1")
}

fn key(pk: &str, sk: &str) -> ItemKey {
    ItemKey::new(pk, sk)
}

fn label(item: &Item) -> &str {
    item.get_str("label").unwrap_or("<none>")
}

fn sort_keys(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.key().sk.as_str()).collect()
}

async fn put(store: &dyn ItemStore, item: Item) {
    store
        .put(item, Condition::Always)
        .await
        .expect("unconditional put");
}

async fn get(store: &dyn ItemStore, k: &ItemKey) -> Option<Item> {
    store.get(k).await.expect("get")
}

fn query(index: Index, partition: &str, range: KeyRange, order: Order, limit: usize) -> Query {
    Query {
        index,
        partition: partition.to_owned(),
        range,
        order,
        limit,
        cursor: None,
    }
}

/// Every page of `query`, checking that only the last page lacks a cursor and no page exceeds the limit.
async fn all_pages(store: &dyn ItemStore, mut query: Query) -> (Vec<Item>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.query(&query).await.expect("query");
        pages += 1;
        assert!(page.items.len() <= query.limit, "a page exceeds its limit");
        items.extend(page.items.iter().cloned());
        match page.next {
            Some(cursor) => {
                assert_eq!(
                    page.items.len(),
                    query.limit,
                    "a page with a cursor must be full"
                );
                query.cursor = Some(cursor);
            }
            None => return (items, pages),
        }
        assert!(pages < 1000, "pagination does not end");
    }
}

async fn all_sort_keys(store: &dyn ItemStore, q: Query) -> Vec<String> {
    let (items, _) = all_pages(store, q).await;
    items.into_iter().map(|i| i.key().sk.clone()).collect()
}

pub async fn put_then_get_round_trips_every_value_kind_version_ttl_and_index_keys(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let now = clock.now();
    let item = full(&key(&pk, "full"), now);
    put(store, item.clone()).await;
    assert_eq!(get(store, item.key()).await.as_ref(), Some(&item));
    // The TTL keeps whole seconds, so what was written reads back equal.
    assert_eq!(
        item.expires(),
        Some(Timestamp::from_secs(now.plus_hours(1).secs()))
    );

    let extremes = probe(&key(&pk, "extremes"))
        .plain("label", Value::S(String::new()))
        .and_then(|i| i.plain("count", Value::N(i64::MIN)))
        .and_then(|i| i.plain("flag", Value::Bool(false)))
        .and_then(|i| i.plain("blob", Value::B(vec![0; 300])))
        .expect("declared")
        .with_version(0);
    put(store, extremes.clone()).await;
    assert_eq!(get(store, extremes.key()).await.as_ref(), Some(&extremes));

    let maximum = probe(&key(&pk, "max"))
        .plain("count", Value::N(i64::MAX))
        .expect("declared")
        .with_version(i64::MAX as u64);
    put(store, maximum.clone()).await;
    assert_eq!(get(store, maximum.key()).await.as_ref(), Some(&maximum));

    let bare = probe(&key(&pk, "bare"));
    put(store, bare.clone()).await;
    assert_eq!(get(store, bare.key()).await.as_ref(), Some(&bare));

    let page = store
        .query(&Query::partition(pk.clone(), 10))
        .await
        .expect("query");
    assert_eq!(page.items, vec![bare, extremes, item.clone(), maximum]);

    let index = query(
        Index::Gsi1,
        &format!("{pk}#g"),
        KeyRange::All,
        Order::Ascending,
        10,
    );
    let page = store.query(&index).await.expect("index query");
    assert_eq!(page.items, vec![item]);
    assert!(page.next.is_none());
}

pub async fn get_of_a_missing_key_is_none(store: &dyn ItemStore, _clock: &ManualClock) {
    let pk = unique_name("pk");
    assert!(get(store, &key(&pk, "nothing")).await.is_none());
    put(store, labelled(&key(&pk, "a"), "a")).await;
    assert!(get(store, &key(&pk, "b")).await.is_none());
    assert!(get(store, &key(&format!("{pk}x"), "a")).await.is_none());
}

pub async fn put_if_not_exists_on_an_existing_key_fails_and_leaves_the_old_item_unchanged(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let k = key(&unique_name("pk"), "item");
    let old = full(&k, clock.now());
    store
        .put(old.clone(), Condition::NotExists)
        .await
        .expect("first put if not exists");
    assert_err!(
        store.put(labelled(&k, "new"), Condition::NotExists).await,
        StoreError::ConditionFailed
    );
    assert_eq!(get(store, &k).await, Some(old));
}

pub async fn put_if_not_exists_succeeds_over_an_expired_item(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let k = key(&unique_name("pk"), "item");
    put(
        store,
        labelled(&k, "old").expires_at(clock.now().plus_secs(10)),
    )
    .await;
    clock.advance_secs(10);
    store
        .put(labelled(&k, "new"), Condition::NotExists)
        .await
        .expect("an expired item counts as absent");
    let got = get(store, &k).await.expect("the new item");
    assert_eq!(label(&got), "new");
    assert_eq!(got.expires(), None);
}

pub async fn put_if_exists_fails_on_a_missing_or_expired_item_and_succeeds_on_a_live_one(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let missing = key(&pk, "missing");
    assert_err!(
        store.put(labelled(&missing, "x"), Condition::Exists).await,
        StoreError::ConditionFailed
    );
    assert!(get(store, &missing).await.is_none());

    let expiring = key(&pk, "expiring");
    put(
        store,
        labelled(&expiring, "old").expires_at(clock.now().plus_secs(5)),
    )
    .await;
    let live = key(&pk, "live");
    put(store, labelled(&live, "old")).await;
    clock.advance_secs(6);
    assert_err!(
        store
            .put(labelled(&expiring, "new"), Condition::Exists)
            .await,
        StoreError::ConditionFailed
    );
    assert!(get(store, &expiring).await.is_none());

    store
        .put(labelled(&live, "new"), Condition::Exists)
        .await
        .expect("a live item exists");
    assert_eq!(get(store, &live).await.as_ref().map(label), Some("new"));
}

pub async fn put_if_version_is_succeeds_only_on_the_live_items_version(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let k = key(&pk, "versioned");
    assert_err!(
        store
            .put(labelled(&k, "v1").with_version(1), Condition::VersionIs(0))
            .await,
        StoreError::ConditionFailed
    );
    store
        .put(labelled(&k, "v1").with_version(1), Condition::NotExists)
        .await
        .expect("create");
    assert_err!(
        store
            .put(labelled(&k, "v2").with_version(2), Condition::VersionIs(2))
            .await,
        StoreError::ConditionFailed
    );
    assert_eq!(get(store, &k).await.as_ref().map(label), Some("v1"));
    store
        .put(labelled(&k, "v2").with_version(2), Condition::VersionIs(1))
        .await
        .expect("the version matches");
    let got = get(store, &k).await.expect("item");
    assert_eq!((label(&got), got.version()), ("v2", Some(2)));

    // An item without a version matches no version.
    let unversioned = key(&pk, "unversioned");
    put(store, labelled(&unversioned, "x")).await;
    assert_err!(
        store
            .put(labelled(&unversioned, "y"), Condition::VersionIs(0))
            .await,
        StoreError::ConditionFailed
    );

    // An expired item's version no longer counts.
    let expiring = key(&pk, "expiring");
    put(
        store,
        labelled(&expiring, "x")
            .with_version(3)
            .expires_at(clock.now().plus_secs(1)),
    )
    .await;
    clock.advance_secs(1);
    assert_err!(
        store
            .put(
                labelled(&expiring, "y").with_version(4),
                Condition::VersionIs(3)
            )
            .await,
        StoreError::ConditionFailed
    );
}

pub async fn an_unconditional_put_replaces_the_whole_item(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let k = key(&pk, "item");
    put(store, full(&k, clock.now())).await;
    let replacement = probe(&k)
        .plain("flag", Value::Bool(false))
        .expect("declared");
    put(store, replacement.clone()).await;
    // No attribute, version, TTL or index key of the old item survives.
    assert_eq!(get(store, &k).await, Some(replacement));
    let index = query(
        Index::Gsi1,
        &format!("{pk}#g"),
        KeyRange::All,
        Order::Ascending,
        10,
    );
    assert!(store.query(&index).await.expect("index").items.is_empty());
}

pub async fn delete_without_a_condition_removes_the_item_and_a_missing_key_is_fine(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let k = key(&pk, "item");
    let other = key(&pk, "other");
    put(store, labelled(&k, "x")).await;
    put(store, labelled(&other, "y")).await;
    store.delete(&k, Condition::Always).await.expect("delete");
    assert!(get(store, &k).await.is_none());
    assert!(
        get(store, &other).await.is_some(),
        "only the key is deleted"
    );
    store
        .delete(&k, Condition::Always)
        .await
        .expect("deleting a missing key is fine");
    store
        .delete(&key(&pk, "never"), Condition::NotExists)
        .await
        .expect("a missing key does not exist");
}

pub async fn delete_with_a_condition_deletes_only_when_it_holds(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    assert_err!(
        store.delete(&key(&pk, "missing"), Condition::Exists).await,
        StoreError::ConditionFailed
    );
    assert_err!(
        store
            .delete(&key(&pk, "missing"), Condition::VersionIs(1))
            .await,
        StoreError::ConditionFailed
    );

    let k = key(&pk, "versioned");
    put(store, labelled(&k, "x").with_version(5)).await;
    assert_err!(
        store.delete(&k, Condition::NotExists).await,
        StoreError::ConditionFailed
    );
    assert_err!(
        store.delete(&k, Condition::VersionIs(4)).await,
        StoreError::ConditionFailed
    );
    assert!(
        get(store, &k).await.is_some(),
        "a failed delete keeps the item"
    );
    store
        .delete(&k, Condition::VersionIs(5))
        .await
        .expect("the version matches");
    assert!(get(store, &k).await.is_none());

    let live = key(&pk, "live");
    put(store, labelled(&live, "x")).await;
    store
        .delete(&live, Condition::Exists)
        .await
        .expect("a live item exists");
    assert!(get(store, &live).await.is_none());

    let expiring = key(&pk, "expiring");
    put(
        store,
        labelled(&expiring, "x").expires_at(clock.now().plus_secs(2)),
    )
    .await;
    clock.advance_secs(3);
    assert_err!(
        store.delete(&expiring, Condition::Exists).await,
        StoreError::ConditionFailed
    );
    store
        .delete(&expiring, Condition::NotExists)
        .await
        .expect("an expired item counts as absent");
}

pub async fn an_expired_item_is_absent_to_get_query_and_index_query(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let gpk = format!("{pk}#g");
    let now = clock.now();
    put(
        store,
        labelled(&key(&pk, "a-live"), "live").with_gsi1(&gpk, "1"),
    )
    .await;
    put(
        store,
        labelled(&key(&pk, "b-expiring"), "expiring")
            .with_gsi1(&gpk, "2")
            .expires_at(now.plus_secs(30)),
    )
    .await;
    put(
        store,
        labelled(&key(&pk, "c-later"), "later")
            .with_gsi1(&gpk, "3")
            .expires_at(now.plus_days(1)),
    )
    .await;
    let table = Query::partition(pk.clone(), 10);
    let index = query(Index::Gsi1, &gpk, KeyRange::All, Order::Ascending, 10);
    assert_eq!(
        sort_keys(&store.query(&table).await.expect("query").items),
        ["a-live", "b-expiring", "c-later"]
    );

    clock.advance_secs(31);
    assert!(get(store, &key(&pk, "b-expiring")).await.is_none());
    assert!(get(store, &key(&pk, "c-later")).await.is_some());
    for q in [&table, &index] {
        let page = store.query(q).await.expect("query");
        assert_eq!(sort_keys(&page.items), ["a-live", "c-later"]);
        assert!(page.next.is_none());
    }
    let desc = Query {
        order: Order::Descending,
        ..table.clone()
    };
    assert_eq!(
        sort_keys(&store.query(&desc).await.expect("query").items),
        ["c-later", "a-live"]
    );
}

pub async fn an_item_exactly_at_its_ttl_second_is_expired(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let k = key(&pk, "item");
    let expiry = Timestamp::from_secs(clock.now().secs() + 5);
    put(store, labelled(&k, "x").expires_at(expiry)).await;

    clock.set(expiry.plus_millis(-1));
    assert!(get(store, &k).await.is_some(), "live until its second");
    assert_err!(
        store.put(labelled(&k, "y"), Condition::NotExists).await,
        StoreError::ConditionFailed
    );

    clock.set(expiry);
    assert!(get(store, &k).await.is_none(), "expired at its second");
    assert!(
        store
            .query(&Query::partition(pk.clone(), 5))
            .await
            .expect("query")
            .items
            .is_empty()
    );
    store
        .put(labelled(&k, "y"), Condition::NotExists)
        .await
        .expect("expired counts as absent");
}

pub async fn query_selects_by_prefix_between_at_least_and_at_most_in_both_directions(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let gpk = format!("{pk}#g");
    let sks = ["a", "a#1", "a#2", "ab", "b#1", "b#2", "c#1"];
    for sk in sks {
        put(store, labelled(&key(&pk, sk), sk).with_gsi1(&gpk, sk)).await;
    }
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let cases: Vec<(KeyRange, Vec<String>)> = vec![
        (KeyRange::All, s(&sks)),
        (KeyRange::Prefix(String::new()), s(&sks)),
        (KeyRange::Prefix("a#".into()), s(&["a#1", "a#2"])),
        (KeyRange::Prefix("a".into()), s(&["a", "a#1", "a#2", "ab"])),
        (KeyRange::Prefix("zz".into()), vec![]),
        (
            KeyRange::Between("a#2".into(), "b#2".into()),
            s(&["a#2", "ab", "b#1", "b#2"]),
        ),
        (KeyRange::Between("b".into(), "b".into()), vec![]),
        (KeyRange::Between("ab".into(), "ab".into()), s(&["ab"])),
        (KeyRange::AtLeast("b#2".into()), s(&["b#2", "c#1"])),
        (KeyRange::AtLeast("b".into()), s(&["b#1", "b#2", "c#1"])),
        (KeyRange::AtMost("a#2".into()), s(&["a", "a#1", "a#2"])),
        (KeyRange::AtMost("0".into()), vec![]),
    ];
    for (range, expected) in cases {
        for index in [Index::Table, Index::Gsi1] {
            let partition = if index == Index::Table { &pk } else { &gpk };
            for limit in [2, MAX_PAGE_LIMIT] {
                let up = query(index, partition, range.clone(), Order::Ascending, limit);
                assert_eq!(
                    all_sort_keys(store, up).await,
                    expected,
                    "{range:?} {index:?} ascending, limit {limit}"
                );
                let down = query(index, partition, range.clone(), Order::Descending, limit);
                let mut reversed = expected.clone();
                reversed.reverse();
                assert_eq!(
                    all_sort_keys(store, down).await,
                    reversed,
                    "{range:?} {index:?} descending, limit {limit}"
                );
            }
        }
    }
    assert_err!(
        store
            .query(&query(
                Index::Table,
                &pk,
                KeyRange::Between("b".into(), "a".into()),
                Order::Ascending,
                5
            ))
            .await,
        StoreError::InvalidRequest(_)
    );
}

pub async fn sort_keys_are_ordered_by_their_utf8_bytes(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    // Code-point (= UTF-8 byte) order; UTF-16 order would put the emoji before U+FF61.
    let ordered = [
        "A",
        "Z",
        "a",
        "z",
        "\u{e9}",
        "\u{20ac}",
        "\u{ff61}",
        "\u{1f600}",
    ];
    for sk in ordered.iter().rev() {
        put(store, labelled(&key(&pk, sk), sk)).await;
    }
    let got = all_sort_keys(store, Query::partition(pk.clone(), 3)).await;
    assert_eq!(got, ordered);
    let prefixed = query(
        Index::Table,
        &pk,
        KeyRange::Prefix("\u{ff61}".into()),
        Order::Ascending,
        5,
    );
    assert_eq!(all_sort_keys(store, prefixed).await, ["\u{ff61}"]);
}

pub async fn pagination_collects_every_item_exactly_once_in_order_and_the_last_page_has_no_cursor(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let expected: Vec<String> = (0..23).map(|n| format!("item#{n:03}")).collect();
    for sk in &expected {
        put(store, labelled(&key(&pk, sk), sk)).await;
    }
    let (items, pages) = all_pages(store, Query::partition(pk.clone(), 5)).await;
    assert_eq!(pages, 5);
    assert_eq!(sort_keys(&items), expected);

    let down = query(Index::Table, &pk, KeyRange::All, Order::Descending, 7);
    let (items, pages) = all_pages(store, down).await;
    assert_eq!(pages, 4);
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(sort_keys(&items), reversed);

    // A cursor can be passed through its string form, as an API client would.
    let first = store
        .query(&Query::partition(pk.clone(), 10))
        .await
        .expect("query");
    let cursor = Cursor::parse(first.next.expect("more pages").as_str()).expect("cursor");
    let second = store
        .query(&Query {
            cursor: Some(cursor),
            ..Query::partition(pk.clone(), 10)
        })
        .await
        .expect("query");
    assert_eq!(sort_keys(&second.items), expected[10..20]);
}

pub async fn a_page_exactly_full_has_no_cursor_when_nothing_follows(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    for n in 0..10 {
        put(store, labelled(&key(&pk, &format!("{n}")), "x")).await;
    }
    let page = store
        .query(&Query::partition(pk.clone(), 10))
        .await
        .expect("query");
    assert_eq!(page.items.len(), 10);
    assert!(page.next.is_none(), "nothing follows a full last page");

    let first = store
        .query(&Query::partition(pk.clone(), 5))
        .await
        .expect("query");
    assert_eq!(first.items.len(), 5);
    let second = store
        .query(&Query {
            cursor: first.next,
            ..Query::partition(pk.clone(), 5)
        })
        .await
        .expect("query");
    assert_eq!(sort_keys(&second.items), ["5", "6", "7", "8", "9"]);
    assert!(second.next.is_none());
}

pub async fn expired_items_interleaved_do_not_shorten_pages_or_leak(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let gpk = format!("{pk}#g");
    let soon = clock.now().plus_secs(60);
    let mut live = Vec::new();
    // Every other item expires, then a run of twelve expired items, then live ones again.
    for n in 0..40 {
        let sk = format!("item#{n:03}");
        let expires = if n < 20 { n % 2 == 1 } else { n < 32 };
        let mut item = labelled(&key(&pk, &sk), &sk).with_gsi1(&gpk, &sk);
        if expires {
            item = item.expires_at(soon);
        } else {
            live.push(sk);
        }
        put(store, item).await;
    }
    clock.advance_secs(61);
    for index in [Index::Table, Index::Gsi1] {
        let partition = if index == Index::Table { &pk } else { &gpk };
        for order in [Order::Ascending, Order::Descending] {
            let (items, pages) =
                all_pages(store, query(index, partition, KeyRange::All, order, 4)).await;
            let mut expected = live.clone();
            if order == Order::Descending {
                expected.reverse();
            }
            assert_eq!(sort_keys(&items), expected, "{index:?} {order:?}");
            assert_eq!(pages, live.len().div_ceil(4), "{index:?} {order:?}");
        }
    }
}

pub async fn a_tampered_or_foreign_cursor_is_rejected(store: &dyn ItemStore, _clock: &ManualClock) {
    let pk = unique_name("pk");
    for n in 0..3 {
        put(store, labelled(&key(&pk, &format!("{n}")), "x")).await;
    }
    let page = store
        .query(&Query::partition(pk.clone(), 1))
        .await
        .expect("query");
    let valid = page.next.expect("a cursor");

    assert_err!(Cursor::parse(""), StoreError::InvalidCursor);
    assert_err!(Cursor::parse("not a cursor!"), StoreError::InvalidCursor);
    assert_err!(Cursor::parse(&"A".repeat(5000)), StoreError::InvalidCursor);

    let mut tampered = valid.as_str().to_owned();
    // The first character encodes the JSON's opening brace; any other letter breaks it.
    let replacement = if tampered.starts_with('A') { "B" } else { "A" };
    tampered.replace_range(0..1, replacement);
    let truncated = valid.as_str()[..valid.as_str().len() / 2].to_owned();
    let not_json = "bm90LWpzb24".to_owned();
    for raw in [tampered, truncated, not_json] {
        let cursor = Cursor::parse(&raw).expect("well-formed characters");
        let q = Query {
            cursor: Some(cursor),
            ..Query::partition(pk.clone(), 1)
        };
        assert_err!(store.query(&q).await, StoreError::InvalidCursor);
    }

    // A cursor names an item of its own query's range; a range that excludes it refuses it.
    let ranged = query(
        Index::Table,
        &pk,
        KeyRange::AtMost("1".into()),
        Order::Ascending,
        1,
    );
    let first = store.query(&ranged).await.expect("query");
    assert_eq!(sort_keys(&first.items), ["0"]);
    let q = Query {
        range: KeyRange::AtLeast("1".into()),
        cursor: first.next,
        ..ranged
    };
    assert_err!(store.query(&q).await, StoreError::InvalidCursor);

    // A cursor of one partition does not open another.
    let other = unique_name("pk");
    put(store, labelled(&key(&other, "0"), "x")).await;
    let q = Query {
        cursor: Some(valid),
        ..Query::partition(other, 1)
    };
    assert_err!(store.query(&q).await, StoreError::InvalidCursor);
}

pub async fn a_table_cursor_used_for_an_index_query_is_rejected(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let gpk = format!("{pk}#g");
    for n in 0..3 {
        put(
            store,
            labelled(&key(&pk, &format!("{n}")), "x").with_gsi1(&gpk, format!("{n}")),
        )
        .await;
    }
    let table_cursor = store
        .query(&Query::partition(pk.clone(), 1))
        .await
        .expect("query")
        .next
        .expect("cursor");
    let index = query(Index::Gsi1, &gpk, KeyRange::All, Order::Ascending, 1);
    assert_err!(
        store
            .query(&Query {
                cursor: Some(table_cursor),
                ..index.clone()
            })
            .await,
        StoreError::InvalidCursor
    );
    let index_cursor = store
        .query(&index)
        .await
        .expect("index query")
        .next
        .expect("cursor");
    assert_err!(
        store
            .query(&Query {
                cursor: Some(index_cursor),
                ..Query::partition(pk.clone(), 1)
            })
            .await,
        StoreError::InvalidCursor
    );
}

pub async fn the_sparse_index_returns_only_items_that_set_both_index_keys_ordered_by_gsi1sk(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk1 = unique_name("pk");
    let pk2 = unique_name("pk");
    let gpk = unique_name("gpk");
    // Index sort keys in an order unrelated to the table keys, across two table partitions.
    let indexed = [
        (&pk1, "a", "2026-03"),
        (&pk2, "b", "2026-01"),
        (&pk1, "c", "2026-04"),
        (&pk2, "d", "2026-02"),
    ];
    for (pk, sk, gsk) in indexed {
        put(store, labelled(&key(pk, sk), sk).with_gsi1(&gpk, gsk)).await;
    }
    put(store, labelled(&key(&pk1, "not-indexed"), "x")).await;
    put(
        store,
        labelled(&key(&pk1, "other-index-partition"), "x").with_gsi1(format!("{gpk}x"), "2026-00"),
    )
    .await;

    let up = query(Index::Gsi1, &gpk, KeyRange::All, Order::Ascending, 10);
    let page = store.query(&up).await.expect("index query");
    assert_eq!(sort_keys(&page.items), ["b", "d", "a", "c"]);
    assert_eq!(
        page.items
            .iter()
            .map(|i| i.gsi1().map(|(_, s)| s))
            .collect::<Vec<_>>(),
        [
            Some("2026-01"),
            Some("2026-02"),
            Some("2026-03"),
            Some("2026-04")
        ]
    );
    assert!(page.next.is_none());

    let down = query(Index::Gsi1, &gpk, KeyRange::All, Order::Descending, 3);
    assert_eq!(all_sort_keys(store, down).await, ["c", "a", "d", "b"]);

    let ranged = query(
        Index::Gsi1,
        &gpk,
        KeyRange::Between("2026-02".into(), "2026-03".into()),
        Order::Ascending,
        1,
    );
    assert_eq!(all_sort_keys(store, ranged).await, ["d", "a"]);

    // The table still holds all of them.
    assert_eq!(
        all_sort_keys(store, Query::partition(pk1.clone(), 10)).await,
        ["a", "c", "not-indexed", "other-index-partition"]
    );
}

pub async fn index_pagination_returns_items_sharing_an_index_sort_key_exactly_once(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let gpk = unique_name("gpk");
    let mut expected = BTreeSet::new();
    for p in 0..3 {
        let pk = unique_name("pk");
        for s in 0..4 {
            let sk = format!("s{s}");
            // Only two distinct index sort keys among twelve items.
            put(
                store,
                labelled(&key(&pk, &sk), "x").with_gsi1(&gpk, format!("same-{}", (p + s) % 2)),
            )
            .await;
            expected.insert((pk.clone(), sk));
        }
    }
    for order in [Order::Ascending, Order::Descending] {
        for limit in [1, 5] {
            let (items, _) =
                all_pages(store, query(Index::Gsi1, &gpk, KeyRange::All, order, limit)).await;
            let got: Vec<_> = items
                .iter()
                .map(|i| (i.key().pk.clone(), i.key().sk.clone()))
                .collect();
            let distinct: BTreeSet<_> = got.iter().cloned().collect();
            assert_eq!(got.len(), distinct.len(), "an item came twice");
            assert_eq!(distinct, expected, "{order:?} limit {limit}");
            let gsks: Vec<_> = items
                .iter()
                .map(|i| i.gsi1().map(|(_, s)| s.to_owned()))
                .collect();
            let mut sorted = gsks.clone();
            sorted.sort();
            if order == Order::Descending {
                sorted.reverse();
            }
            assert_eq!(gsks, sorted, "ordered by the index sort key");
        }
    }
}

pub async fn a_transaction_applies_all_of_its_operations(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let (created, replaced, deleted, checked) = (
        key(&pk, "created"),
        key(&pk, "replaced"),
        key(&pk, "deleted"),
        key(&pk, "checked"),
    );
    put(store, labelled(&replaced, "old").with_version(1)).await;
    put(store, labelled(&deleted, "old")).await;
    put(store, labelled(&checked, "old").with_version(9)).await;
    store
        .transact(vec![
            WriteOp::Put {
                item: labelled(&created, "new"),
                condition: Condition::NotExists,
            },
            WriteOp::Put {
                item: labelled(&replaced, "new").with_version(2),
                condition: Condition::VersionIs(1),
            },
            WriteOp::Delete {
                key: deleted.clone(),
                condition: Condition::Exists,
            },
            WriteOp::Check {
                key: checked.clone(),
                condition: Condition::VersionIs(9),
            },
            WriteOp::Check {
                key: key(&pk, "unconditional"),
                condition: Condition::Always,
            },
        ])
        .await
        .expect("every condition holds");
    assert_eq!(get(store, &created).await.as_ref().map(label), Some("new"));
    let got = get(store, &replaced).await.expect("replaced");
    assert_eq!((label(&got), got.version()), ("new", Some(2)));
    assert!(get(store, &deleted).await.is_none());
    assert_eq!(get(store, &checked).await.as_ref().map(label), Some("old"));
    assert!(get(store, &key(&pk, "unconditional")).await.is_none());
    store
        .transact(Vec::new())
        .await
        .expect("an empty transaction does nothing");
}

/// The partition's items as (sort key, label), to show that a failed transaction changed nothing.
async fn snapshot(store: &dyn ItemStore, pk: &str) -> Vec<(String, String)> {
    let (items, _) = all_pages(store, Query::partition(pk, 100)).await;
    items
        .iter()
        .map(|i| (i.key().sk.clone(), label(i).to_owned()))
        .collect()
}

pub async fn a_transaction_whose_put_if_not_exists_meets_an_existing_item_writes_nothing_and_names_it(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    put(store, labelled(&key(&pk, "existing"), "old")).await;
    put(store, labelled(&key(&pk, "doomed"), "old")).await;
    let before = snapshot(store, &pk).await;
    let result = store
        .transact(vec![
            WriteOp::Put {
                item: labelled(&key(&pk, "new"), "new"),
                condition: Condition::NotExists,
            },
            WriteOp::Delete {
                key: key(&pk, "doomed"),
                condition: Condition::Exists,
            },
            WriteOp::Put {
                item: labelled(&key(&pk, "existing"), "new"),
                condition: Condition::NotExists,
            },
        ])
        .await;
    assert_err!(result, StoreError::TransactionConditionFailed { index: 2 });
    assert_eq!(snapshot(store, &pk).await, before);
}

pub async fn a_transaction_whose_check_fails_writes_nothing_and_names_it(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    put(store, labelled(&key(&pk, "a"), "old")).await;
    put(
        store,
        labelled(&key(&pk, "expired"), "old").expires_at(clock.now().plus_secs(1)),
    )
    .await;
    clock.advance_secs(1);
    let before = snapshot(store, &pk).await;
    for checked in ["missing", "expired"] {
        let result = store
            .transact(vec![
                WriteOp::Put {
                    item: labelled(&key(&pk, "a"), "new"),
                    condition: Condition::Always,
                },
                WriteOp::Check {
                    key: key(&pk, checked),
                    condition: Condition::Exists,
                },
                WriteOp::Put {
                    item: labelled(&key(&pk, "b"), "new"),
                    condition: Condition::NotExists,
                },
            ])
            .await;
        assert_err!(result, StoreError::TransactionConditionFailed { index: 1 });
        assert_eq!(snapshot(store, &pk).await, before, "checked {checked}");
    }
    // An unconditional check before the failing operation does not shift the index it is named by.
    let result = store
        .transact(vec![
            WriteOp::Check {
                key: key(&pk, "x"),
                condition: Condition::Always,
            },
            WriteOp::Put {
                item: labelled(&key(&pk, "y"), "new"),
                condition: Condition::Always,
            },
            WriteOp::Check {
                key: key(&pk, "a"),
                condition: Condition::NotExists,
            },
        ])
        .await;
    assert_err!(result, StoreError::TransactionConditionFailed { index: 2 });
    assert_eq!(snapshot(store, &pk).await, before);
}

pub async fn a_transaction_names_its_first_failing_operation_and_keeps_none_of_its_puts(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    put(store, labelled(&key(&pk, "live"), "old")).await;
    put(store, labelled(&key(&pk, "v"), "old").with_version(1)).await;
    put(
        store,
        labelled(&key(&pk, "stale"), "old").expires_at(clock.now().plus_secs(1)),
    )
    .await;
    clock.advance_secs(1);
    let before = snapshot(store, &pk).await;
    let put_if_absent = |sk: &str| WriteOp::Put {
        item: labelled(&key(&pk, sk), "new"),
        condition: Condition::NotExists,
    };
    let wrong_version = || WriteOp::Check {
        key: key(&pk, "v"),
        condition: Condition::VersionIs(2),
    };
    let put_at_version = |expected: u64| WriteOp::Put {
        item: labelled(&key(&pk, "v"), "new").with_version(expected + 1),
        condition: Condition::VersionIs(expected),
    };
    // On a key whose live item has no version.
    let wrong_version_put = || WriteOp::Put {
        item: labelled(&key(&pk, "live"), "new").with_version(2),
        condition: Condition::VersionIs(1),
    };
    let cases = [
        // Puts that would succeed (one over an expired item), then a failing check.
        (
            vec![
                put_if_absent("fresh"),
                put_if_absent("stale"),
                wrong_version(),
            ],
            2,
        ),
        (vec![wrong_version(), put_if_absent("live")], 0),
        (
            vec![
                put_if_absent("fresh"),
                put_if_absent("live"),
                wrong_version(),
            ],
            1,
        ),
        // A conditional put first: failing alone, failing with a later one, or holding while a later
        // one fails.
        (vec![put_if_absent("live"), put_if_absent("fresh")], 0),
        (vec![put_if_absent("live"), wrong_version()], 0),
        (vec![put_at_version(2), put_if_absent("fresh")], 0),
        (vec![put_at_version(1), put_if_absent("live")], 1),
        (vec![put_at_version(1), wrong_version_put()], 1),
    ];
    for (ops, failing) in cases {
        match store.transact(ops).await {
            Err(StoreError::TransactionConditionFailed { index }) => assert_eq!(index, failing),
            other => panic!("expected operation {failing} to fail, got {other:?}"),
        }
        assert_eq!(snapshot(store, &pk).await, before);
        assert!(get(store, &key(&pk, "stale")).await.is_none());
    }
}

pub async fn a_transaction_whose_delete_version_does_not_match_writes_nothing_and_names_it(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    put(
        store,
        labelled(&key(&pk, "versioned"), "old").with_version(3),
    )
    .await;
    put(store, labelled(&key(&pk, "other"), "old")).await;
    let before = snapshot(store, &pk).await;
    let result = store
        .transact(vec![
            WriteOp::Delete {
                key: key(&pk, "versioned"),
                condition: Condition::VersionIs(2),
            },
            WriteOp::Delete {
                key: key(&pk, "other"),
                condition: Condition::Always,
            },
            WriteOp::Put {
                item: labelled(&key(&pk, "new"), "new"),
                condition: Condition::Always,
            },
        ])
        .await;
    assert_err!(result, StoreError::TransactionConditionFailed { index: 0 });
    assert_eq!(snapshot(store, &pk).await, before);
}

pub async fn a_transaction_treats_an_expired_item_as_absent(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    for sk in ["a", "b", "c"] {
        put(
            store,
            labelled(&key(&pk, sk), "old")
                .with_version(1)
                .expires_at(clock.now().plus_secs(1)),
        )
        .await;
    }
    clock.advance_secs(2);
    store
        .transact(vec![
            WriteOp::Put {
                item: labelled(&key(&pk, "a"), "new"),
                condition: Condition::NotExists,
            },
            WriteOp::Check {
                key: key(&pk, "b"),
                condition: Condition::NotExists,
            },
            WriteOp::Delete {
                key: key(&pk, "c"),
                condition: Condition::NotExists,
            },
        ])
        .await
        .expect("expired items are absent");
    assert_eq!(
        get(store, &key(&pk, "a")).await.as_ref().map(label),
        Some("new")
    );
    let result = store
        .transact(vec![WriteOp::Check {
            key: key(&pk, "b"),
            condition: Condition::VersionIs(1),
        }])
        .await;
    assert_err!(result, StoreError::TransactionConditionFailed { index: 0 });
}

pub async fn a_transaction_of_26_operations_is_rejected(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let ops = |n: usize| -> Vec<WriteOp> {
        (0..n)
            .map(|i| WriteOp::Put {
                item: labelled(&key(&pk, &format!("{i:02}")), "x"),
                condition: Condition::NotExists,
            })
            .collect()
    };
    assert_err!(store.transact(ops(26)).await, StoreError::InvalidRequest(_));
    assert!(snapshot(store, &pk).await.is_empty());
    store
        .transact(ops(25))
        .await
        .expect("25 operations are fine");
    assert_eq!(snapshot(store, &pk).await.len(), 25);
}

pub async fn a_transaction_naming_one_key_twice_is_rejected(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let k = key(&pk, "item");
    let result = store
        .transact(vec![
            WriteOp::Put {
                item: labelled(&k, "x"),
                condition: Condition::Always,
            },
            WriteOp::Put {
                item: labelled(&key(&pk, "other"), "x"),
                condition: Condition::Always,
            },
            WriteOp::Check {
                key: k.clone(),
                condition: Condition::NotExists,
            },
        ])
        .await;
    assert_err!(result, StoreError::InvalidRequest(_));
    assert!(snapshot(store, &pk).await.is_empty());
}

pub async fn transact_each_applies_the_groups_in_order_each_judged_after_the_ones_before(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let (a, b) = (key(&pk, "a"), key(&pk, "b"));
    store
        .transact_each(vec![
            vec![WriteOp::Put {
                item: labelled(&a, "first").with_version(1),
                condition: Condition::NotExists,
            }],
            Vec::new(),
            vec![
                WriteOp::Put {
                    item: labelled(&a, "second").with_version(2),
                    condition: Condition::VersionIs(1),
                },
                WriteOp::Put {
                    item: labelled(&b, "made"),
                    condition: Condition::NotExists,
                },
            ],
            vec![
                WriteOp::Delete {
                    key: b.clone(),
                    condition: Condition::Exists,
                },
                WriteOp::Check {
                    key: a.clone(),
                    condition: Condition::VersionIs(2),
                },
            ],
        ])
        .await
        .expect("every group holds after the ones before it");
    assert_eq!(
        snapshot(store, &pk).await,
        vec![("a".to_owned(), "second".to_owned())]
    );
    store
        .transact_each(Vec::new())
        .await
        .expect("no groups is nothing to do");
}

pub async fn transact_each_stops_at_the_first_failing_group_and_keeps_the_ones_before(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    put(store, labelled(&key(&pk, "x"), "old")).await;
    let result = store
        .transact_each(vec![
            vec![WriteOp::Put {
                item: labelled(&key(&pk, "a"), "new"),
                condition: Condition::NotExists,
            }],
            vec![
                WriteOp::Put {
                    item: labelled(&key(&pk, "b"), "new"),
                    condition: Condition::NotExists,
                },
                WriteOp::Put {
                    item: labelled(&key(&pk, "x"), "new"),
                    condition: Condition::NotExists,
                },
            ],
            vec![WriteOp::Put {
                item: labelled(&key(&pk, "c"), "new"),
                condition: Condition::NotExists,
            }],
        ])
        .await;
    match result {
        Err(super::GroupFailed {
            applied: 1,
            error: StoreError::TransactionConditionFailed { index: 1 },
        }) => {}
        other => panic!("expected group 1 to fail on its operation 1, got {other:?}"),
    }
    assert_eq!(
        snapshot(store, &pk).await,
        vec![
            ("a".to_owned(), "new".to_owned()),
            ("x".to_owned(), "old".to_owned())
        ]
    );
}

pub async fn transact_each_with_one_invalid_group_applies_nothing(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let k = key(&pk, "twice");
    let result = store
        .transact_each(vec![
            vec![WriteOp::Put {
                item: labelled(&key(&pk, "a"), "new"),
                condition: Condition::NotExists,
            }],
            vec![
                WriteOp::Put {
                    item: labelled(&k, "x"),
                    condition: Condition::Always,
                },
                WriteOp::Delete {
                    key: k.clone(),
                    condition: Condition::Always,
                },
            ],
        ])
        .await;
    match result {
        Err(super::GroupFailed {
            applied: 0,
            error: StoreError::InvalidRequest(_),
        }) => {}
        other => panic!("expected an invalid request before any group, got {other:?}"),
    }
    assert!(snapshot(store, &pk).await.is_empty());
}

pub async fn delete_many_removes_60_keys_including_missing_ones(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let keep = unique_name("pk");
    let mut keys = Vec::new();
    for n in 0..60 {
        let k = key(&pk, &format!("{n:03}"));
        // Every sixth key is missing, and one item is already expired.
        if n % 6 != 5 {
            let mut item = labelled(&k, "x");
            if n == 7 {
                item = item.expires_at(clock.now());
            }
            put(store, item).await;
        }
        keys.push(k);
    }
    put(store, labelled(&key(&keep, "000"), "kept")).await;
    keys.push(keys[0].clone());
    store.delete_many(&keys).await.expect("delete many");
    store.delete_many(&[]).await.expect("nothing to delete");
    clock.advance_secs(-10);
    assert!(snapshot(store, &pk).await.is_empty(), "every key is gone");
    assert!(
        get(store, &key(&pk, "007")).await.is_none(),
        "the expired item was deleted too"
    );
    assert_eq!(snapshot(store, &keep).await.len(), 1);
}

pub async fn get_many_reads_150_keys_and_leaves_out_missing_expired_and_repeated_ones(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let other = unique_name("pk");
    let mut keys = Vec::new();
    let mut live = Vec::new();
    // More keys than one DynamoDB BatchGetItem takes (100).
    for n in 0..150 {
        let k = key(&pk, &format!("{n:03}"));
        // Every fifth key is missing, and one item is expired.
        if n % 5 != 4 {
            let mut item = labelled(&k, &format!("v{}", k.sk));
            if n == 7 {
                item = item.expires_at(clock.now());
            } else {
                live.push(k.sk.clone());
            }
            put(store, item).await;
        }
        keys.push(k);
    }
    put(store, labelled(&key(&other, "000"), "not asked")).await;
    keys.push(keys[0].clone());
    let found = store.get_many(&keys).await.expect("get many");
    let mut sks: Vec<String> = found.iter().map(|i| i.key().sk.clone()).collect();
    sks.sort();
    assert_eq!(sks, live, "each live item once, nothing else");
    for item in &found {
        assert_eq!(item.key().pk, pk);
        let label = format!("v{}", item.key().sk);
        assert_eq!(item.get_str("label"), Some(label.as_str()));
    }
    assert!(store.get_many(&[]).await.expect("nothing asked").is_empty());
}

pub async fn an_expiring_item_type_written_without_ttl_is_refused(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let k = key(&pk, "item");
    let without = Item::new(&PROBE_EXPIRING, k.clone());
    assert_err!(
        store.put(without.clone(), Condition::Always).await,
        StoreError::Inventory(InventoryError::MissingTtl(_))
    );
    let result = store
        .transact(vec![
            WriteOp::Put {
                item: labelled(&key(&pk, "fine"), "x"),
                condition: Condition::Always,
            },
            WriteOp::Put {
                item: without.clone(),
                condition: Condition::Always,
            },
        ])
        .await;
    assert_err!(result, StoreError::Inventory(InventoryError::MissingTtl(_)));
    assert!(snapshot(store, &pk).await.is_empty());

    let with = without.expires_at(clock.now().plus_days(1));
    put(store, with.clone()).await;
    assert_eq!(get(store, &k).await, Some(with));
}

pub async fn ensure_schema_twice_is_fine(store: &dyn ItemStore, _clock: &ManualClock) {
    store.ensure_schema().await.expect("again");
    store.ensure_schema().await.expect("and again");
    let k = key(&unique_name("pk"), "item");
    put(store, labelled(&k, "x")).await;
    assert!(get(store, &k).await.is_some());
}

pub async fn items_of_different_partitions_never_mix(store: &dyn ItemStore, _clock: &ManualClock) {
    let a = unique_name("pk");
    // Partitions whose names extend one another, and the same sort keys in each.
    let partitions = [
        a.clone(),
        format!("{a}#"),
        format!("{a}#x"),
        format!("{a}x"),
    ];
    for pk in &partitions {
        for sk in ["1", "2"] {
            put(
                store,
                labelled(&key(pk, sk), pk).with_gsi1(format!("g{pk}"), sk),
            )
            .await;
        }
    }
    for pk in &partitions {
        for index in [Index::Table, Index::Gsi1] {
            let partition = if index == Index::Table {
                pk.clone()
            } else {
                format!("g{pk}")
            };
            let q = query(index, &partition, KeyRange::All, Order::Ascending, 1);
            let (items, _) = all_pages(store, q).await;
            assert_eq!(sort_keys(&items), ["1", "2"]);
            assert!(items.iter().all(|i| label(i) == pk), "{index:?}");
            let prefixed = query(
                index,
                &partition,
                KeyRange::Prefix(String::new()),
                Order::Descending,
                10,
            );
            assert_eq!(all_sort_keys(store, prefixed).await, ["2", "1"]);
        }
    }
}

pub async fn a_page_limit_of_zero_or_above_the_maximum_is_rejected(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    let pk = unique_name("pk");
    put(store, labelled(&key(&pk, "a"), "x")).await;
    for limit in [0, MAX_PAGE_LIMIT + 1] {
        assert_err!(
            store.query(&Query::partition(pk.clone(), limit)).await,
            StoreError::InvalidRequest(_)
        );
    }
    let page = store
        .query(&Query::partition(pk.clone(), MAX_PAGE_LIMIT))
        .await
        .expect("the maximum is allowed");
    assert_eq!(page.items.len(), 1);
}

/// Sweeps the whole store in calls of `limit`, as the retention sweep does; the items removed.
async fn sweep_all(store: &dyn ItemStore, limit: usize) -> usize {
    let (mut removed, mut from) = (0, None);
    for _ in 0..10_000 {
        let done = store
            .remove_expired(from.as_ref(), limit)
            .await
            .expect("remove_expired");
        removed += done.removed;
        match done.next {
            Some(next) => from = Some(next),
            None => return removed,
        }
    }
    panic!("the sweep never reached the end of the store");
}

pub async fn remove_expired_deletes_every_expired_item_in_bounded_calls_and_keeps_the_others(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let start = clock.now();
    // 23 that expire (one exactly at the sweep's second), 9 that expire later, 9 that never do; some in
    // the index too.
    let mut expiring = Vec::new();
    let mut staying = Vec::new();
    for i in 0..41_usize {
        let k = key(&pk, &format!("{i:03}"));
        let item = labelled(&k, &format!("item {i}"));
        let item = match i % 5 {
            0..=2 => item.expires_at(start.plus_secs([1, 30, 60][i % 3])),
            3 if i < 20 => item.expires_at(start.plus_secs(60)),
            3 => item.expires_at(start.plus_days(2)),
            _ => item,
        };
        let item = if i % 2 == 0 {
            item.with_gsi1(format!("{pk}#g"), format!("{i:03}"))
        } else {
            item
        };
        if item.expires().is_some_and(|t| t <= start.plus_secs(60)) {
            expiring.push(k.clone());
        } else {
            staying.push(k.clone());
        }
        put(store, item).await;
    }
    assert_eq!((expiring.len(), staying.len()), (29, 12));
    clock.advance_secs(60);
    let removed = sweep_all(store, 7).await;
    assert_eq!(removed, expiring.len(), "every expired item, each once");
    assert_eq!(sweep_all(store, 7).await, 0, "a second sweep finds nothing");

    // Back before anything expired, an item still stored would be live again: the expired ones are
    // gone from the store itself, the others are all there.
    clock.set(start);
    for k in &expiring {
        assert_eq!(get(store, k).await, None, "{k:?} is still stored");
    }
    for k in &staying {
        assert!(get(store, k).await.is_some(), "{k:?} was deleted");
    }
    let indexed = store
        .query(&query(
            Index::Gsi1,
            &format!("{pk}#g"),
            KeyRange::All,
            Order::Ascending,
            100,
        ))
        .await
        .expect("index query");
    assert!(
        indexed
            .items
            .iter()
            .all(|i| staying.contains(i.key()) && !expiring.contains(i.key())),
        "the index holds only what stays"
    );
}

pub async fn remove_expired_keeps_an_item_that_a_write_made_live_again(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let start = clock.now();
    let (renewed, replaced, kept) = (key(&pk, "renewed"), key(&pk, "replaced"), key(&pk, "gone"));
    for k in [&renewed, &replaced, &kept] {
        put(store, labelled(k, "old").expires_at(start.plus_secs(5))).await;
    }
    clock.advance_secs(5);
    // After expiry and before the sweep: one gets a new TTL, one is replaced by an item without one.
    store
        .put(
            labelled(&renewed, "renewed").expires_at(start.plus_days(1)),
            Condition::NotExists,
        )
        .await
        .expect("an expired item counts as absent");
    store
        .put(labelled(&replaced, "replaced"), Condition::NotExists)
        .await
        .expect("an expired item counts as absent");
    assert_eq!(sweep_all(store, 1000).await, 1);
    assert_eq!(
        get(store, &renewed)
            .await
            .map(|i| label(&i).to_owned())
            .as_deref(),
        Some("renewed")
    );
    assert_eq!(
        get(store, &replaced)
            .await
            .map(|i| label(&i).to_owned())
            .as_deref(),
        Some("replaced")
    );
    clock.set(start);
    assert_eq!(get(store, &kept).await, None);
}

pub async fn remove_expired_alongside_concurrent_writes_loses_no_live_item(
    store: &dyn ItemStore,
    clock: &ManualClock,
) {
    let pk = unique_name("pk");
    let start = clock.now();
    let keys: Vec<ItemKey> = (0..60).map(|i| key(&pk, &format!("{i:03}"))).collect();
    for k in &keys {
        put(store, labelled(k, "old").expires_at(start.plus_secs(1))).await;
    }
    clock.advance_secs(1);
    // While sweeps run, every other expired key is written again: live, some without a TTL.
    let writes = async {
        for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            let item = labelled(k, "new");
            let item = if i % 4 == 0 {
                item
            } else {
                item.expires_at(start.plus_days(1))
            };
            store
                .put(item, Condition::NotExists)
                .await
                .expect("an expired or swept item counts as absent");
            tokio::task::yield_now().await;
        }
    };
    let sweeps = async {
        let mut removed = 0;
        for _ in 0..3 {
            removed += sweep_all(store, 5).await;
            tokio::task::yield_now().await;
        }
        removed
    };
    let ((), removed) = tokio::join!(writes, sweeps);
    let removed = removed + sweep_all(store, 1000).await;
    assert!(removed <= keys.len(), "no item removed twice");
    for (i, k) in keys.iter().enumerate() {
        let got = get(store, k).await;
        if i % 2 == 0 {
            assert_eq!(
                got.map(|g| label(&g).to_owned()).as_deref(),
                Some("new"),
                "{k:?}"
            );
        } else {
            assert_eq!(got, None, "{k:?}");
        }
    }
    clock.set(start);
    for (i, k) in keys.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
        assert_eq!(get(store, k).await, None, "expired {i} is still stored");
    }
    // Each rewritten key was either swept before its write or written before the sweep reached it.
    assert!(
        removed >= keys.len() / 2,
        "every expired item not written again was removed"
    );
}

pub async fn remove_expired_refuses_a_limit_out_of_range_and_an_index_cursor(
    store: &dyn ItemStore,
    _clock: &ManualClock,
) {
    for limit in [0, MAX_PAGE_LIMIT + 1] {
        assert_err!(
            store.remove_expired(None, limit).await,
            StoreError::InvalidRequest(_)
        );
    }
    let pk = unique_name("pk");
    let k = key(&pk, "item");
    put(store, labelled(&k, "x").with_gsi1(format!("{pk}#g"), "g")).await;
    let indexed = store
        .query(&query(
            Index::Gsi1,
            &format!("{pk}#g"),
            KeyRange::All,
            Order::Ascending,
            1,
        ))
        .await
        .expect("index query");
    let item = indexed.items.first().expect("the item");
    let index_cursor = Cursor::after(item, Index::Gsi1);
    assert_err!(
        store.remove_expired(Some(&index_cursor), 10).await,
        StoreError::InvalidCursor
    );
}
