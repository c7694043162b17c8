//! The store conformance suite, instantiated for every backend.
//!
//! Each case of `qchat_shared::store::conformance` runs once per backend, on a fresh store (a new SQLite
//! file, a new moto table), so test names read `store::<backend>::<case>`. The SQLite backend also gets
//! the checks only a file can have: several processes sharing it, and surviving a reopen.

/// Instantiates every conformance case for one backend; the cases are listed once, here.
macro_rules! store_suite {
    ($backend:ident, $make:path $(, { $($extra:item)* })?) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            use qchat_shared::store::conformance;

            store_suite!(@cases $make;
                put_then_get_round_trips_every_value_kind_version_ttl_and_index_keys,
                get_of_a_missing_key_is_none,
                put_if_not_exists_on_an_existing_key_fails_and_leaves_the_old_item_unchanged,
                put_if_not_exists_succeeds_over_an_expired_item,
                put_if_exists_fails_on_a_missing_or_expired_item_and_succeeds_on_a_live_one,
                put_if_version_is_succeeds_only_on_the_live_items_version,
                an_unconditional_put_replaces_the_whole_item,
                delete_without_a_condition_removes_the_item_and_a_missing_key_is_fine,
                delete_with_a_condition_deletes_only_when_it_holds,
                an_expired_item_is_absent_to_get_query_and_index_query,
                an_item_exactly_at_its_ttl_second_is_expired,
                query_selects_by_prefix_between_at_least_and_at_most_in_both_directions,
                sort_keys_are_ordered_by_their_utf8_bytes,
                pagination_collects_every_item_exactly_once_in_order_and_the_last_page_has_no_cursor,
                a_page_exactly_full_has_no_cursor_when_nothing_follows,
                expired_items_interleaved_do_not_shorten_pages_or_leak,
                a_tampered_or_foreign_cursor_is_rejected,
                a_table_cursor_used_for_an_index_query_is_rejected,
                the_sparse_index_returns_only_items_that_set_both_index_keys_ordered_by_gsi1sk,
                index_pagination_returns_items_sharing_an_index_sort_key_exactly_once,
                a_transaction_applies_all_of_its_operations,
                a_transaction_whose_put_if_not_exists_meets_an_existing_item_writes_nothing_and_names_it,
                a_transaction_whose_check_fails_writes_nothing_and_names_it,
                a_transaction_whose_delete_version_does_not_match_writes_nothing_and_names_it,
                a_transaction_names_its_first_failing_operation_and_keeps_none_of_its_puts,
                a_transaction_treats_an_expired_item_as_absent,
                a_transaction_of_26_operations_is_rejected,
                a_transaction_naming_one_key_twice_is_rejected,
                transact_each_applies_the_groups_in_order_each_judged_after_the_ones_before,
                transact_each_stops_at_the_first_failing_group_and_keeps_the_ones_before,
                transact_each_with_one_invalid_group_applies_nothing,
                delete_many_removes_60_keys_including_missing_ones,
                get_many_reads_150_keys_and_leaves_out_missing_expired_and_repeated_ones,
                an_expiring_item_type_written_without_ttl_is_refused,
                ensure_schema_twice_is_fine,
                items_of_different_partitions_never_mix,
                a_page_limit_of_zero_or_above_the_maximum_is_rejected,
                remove_expired_deletes_every_expired_item_in_bounded_calls_and_keeps_the_others,
                remove_expired_keeps_an_item_that_a_write_made_live_again,
                remove_expired_alongside_concurrent_writes_loses_no_live_item,
                remove_expired_refuses_a_limit_out_of_range_and_an_index_cursor,
            );

            $($($extra)*)?
        }
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let fixture = $make().await;
                conformance::$case(&*fixture.store, &fixture.clock).await;
            }
        )*
    };
}

store_suite!(sqlite, conformance::fixture_sqlite, {
    use std::sync::Arc;

    use qchat_shared::clock::{ManualClock, SystemClock};
    use qchat_shared::store::sqlite::SqliteStore;
    use qchat_shared::store::{Condition, Item, ItemKey, ItemStore, StoreError, Value};
    use qchat_shared::test_support::PROBE;

    fn item(key: &ItemKey, label: &str) -> Item {
        Item::new(&PROBE, key.clone())
            .plain("label", Value::S(label.to_owned()))
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_processes_sharing_one_file_race_put_if_not_exists_and_exactly_one_wins() {
        let dir = conformance::temp_dir();
        let path = dir.path().join("shared.db");
        // Two stores, each with its own connection, stand for two processes on one file.
        let first = Arc::new(SqliteStore::open(&path, Arc::new(SystemClock)).unwrap());
        let second = Arc::new(SqliteStore::open(&path, Arc::new(SystemClock)).unwrap());
        for round in 0..50 {
            let key = ItemKey::new("race", format!("{round:03}"));
            let mut writers = Vec::new();
            for (n, store) in [&first, &second, &first, &second].into_iter().enumerate() {
                let (store, key) = (Arc::clone(store), key.clone());
                writers.push(tokio::spawn(async move {
                    store
                        .put(item(&key, &format!("writer {n}")), Condition::NotExists)
                        .await
                }));
            }
            let mut wins = 0;
            for writer in writers {
                match writer.await.unwrap() {
                    Ok(()) => wins += 1,
                    Err(StoreError::ConditionFailed) => {}
                    Err(other) => panic!("unexpected error: {other:?}"),
                }
            }
            assert_eq!(wins, 1, "round {round}");
            let seen_by_first = first.get(&key).await.unwrap();
            let seen_by_second = second.get(&key).await.unwrap();
            assert!(seen_by_first.is_some());
            assert_eq!(seen_by_first, seen_by_second);
        }
    }

    #[tokio::test]
    async fn data_survives_closing_and_reopening_the_file() {
        let dir = conformance::temp_dir();
        let path = dir.path().join("durable.db");
        let clock = Arc::new(ManualClock::at(conformance::START));
        let key = ItemKey::new("durable", "item");
        let written = item(&key, "kept").with_version(3);
        {
            let store = SqliteStore::open(&path, clock.clone()).unwrap();
            store
                .put(written.clone(), Condition::NotExists)
                .await
                .unwrap();
        }
        let reopened = SqliteStore::open(&path, clock.clone()).unwrap();
        reopened.ensure_schema().await.unwrap();
        assert_eq!(reopened.get(&key).await.unwrap(), Some(written));
        assert!(matches!(
            reopened
                .put(item(&key, "again"), Condition::NotExists)
                .await,
            Err(StoreError::ConditionFailed)
        ));
    }

    /// Another connection holding the write lock stands for a restarting checkpoint (or another
    /// process): a write then waits for it, but on the writer thread, so on a one-thread runtime the
    /// waiting write holds no thread, reads answer at once (with the last commit), and the write lands
    /// once the lock is released.
    #[tokio::test]
    async fn a_write_waiting_for_the_write_lock_stalls_neither_readers_nor_the_runtime() {
        use std::time::{Duration, Instant};

        use qchat_shared::store::Query;

        let dir = conformance::temp_dir();
        let path = dir.path().join("stall.db");
        let store = Arc::new(SqliteStore::open(&path, Arc::new(SystemClock)).unwrap());
        let before = ItemKey::new("stall", "before");
        store
            .put(item(&before, "kept"), Condition::NotExists)
            .await
            .unwrap();
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();

        let during = ItemKey::new("stall", "during");
        let write = tokio::spawn({
            let (store, during) = (store.clone(), during.clone());
            async move {
                store
                    .put(item(&during, "queued"), Condition::NotExists)
                    .await
            }
        });
        // The only thread of this runtime: a write waiting inline for the lock would keep this sleep
        // from ending until the store's busy timeout (10 s), and the write would then have failed.
        let slept = Instant::now();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(slept.elapsed() < Duration::from_secs(2));
        assert!(!write.is_finished(), "the write waits for the lock");

        let reading = Instant::now();
        assert!(store.get(&before).await.unwrap().is_some());
        assert!(store.get(&during).await.unwrap().is_none());
        let page = store.query(&Query::partition("stall", 10)).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(reading.elapsed() < Duration::from_secs(1));
        assert!(!write.is_finished());

        holder.execute_batch("COMMIT").unwrap();
        write.await.unwrap().unwrap();
        assert!(store.get(&during).await.unwrap().is_some());
    }

    /// Writes queued together share one commit, yet each is judged after the ones queued before it and
    /// fails alone: of 150 concurrent puts-if-absent over 100 keys, exactly one per key wins and every
    /// key holds its winner.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writes_sharing_a_commit_are_each_judged_and_fail_alone() {
        let dir = conformance::temp_dir();
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("group.db"), Arc::new(SystemClock)).unwrap(),
        );
        let mut writers = Vec::new();
        for n in 0..150usize {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let key = ItemKey::new("group", format!("{:03}", n % 100));
                let outcome = store
                    .put(item(&key, &format!("writer {n}")), Condition::NotExists)
                    .await;
                (n, outcome)
            }));
        }
        let mut winners = std::collections::BTreeMap::new();
        for writer in writers {
            match writer.await.unwrap() {
                (n, Ok(())) => assert!(winners.insert(n % 100, n).is_none(), "two winners"),
                (_, Err(StoreError::ConditionFailed)) => {}
                (_, Err(other)) => panic!("unexpected error: {other:?}"),
            }
        }
        assert_eq!(winners.len(), 100);
        for (key, n) in winners {
            let stored = store
                .get(&ItemKey::new("group", format!("{key:03}")))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                stored.get_str("label"),
                Some(format!("writer {n}").as_str())
            );
        }
    }

    /// A file written by the first schema (items clustered on their key) opens as the current one with
    /// every item, its key's uniqueness and the index intact.
    #[tokio::test]
    async fn a_schema_1_file_is_migrated_keeping_every_item_and_the_index() {
        use qchat_shared::store::{Index, KeyRange, Order, Query};

        let dir = conformance::temp_dir();
        let path = dir.path().join("v1.db");
        let clock = Arc::new(ManualClock::at(conformance::START));
        let key = ItemKey::new("old", "item");
        let indexed = ItemKey::new("old", "indexed");
        let written = item(&key, "kept").with_version(3);
        let in_index = item(&indexed, "listed").with_gsi1("old#g", "0001");
        {
            let store = SqliteStore::open(&path, clock.clone()).unwrap();
            store
                .put(written.clone(), Condition::NotExists)
                .await
                .unwrap();
            store
                .put(in_index.clone(), Condition::NotExists)
                .await
                .unwrap();
        }
        // Back to schema 1, exactly as it shipped: a table clustered on (pk, sk).
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "BEGIN;
                 CREATE TABLE v1 (pk TEXT NOT NULL, sk TEXT NOT NULL, t TEXT NOT NULL, v INTEGER,
                     ttl INTEGER, gsi1pk TEXT, gsi1sk TEXT, attrs BLOB NOT NULL,
                     PRIMARY KEY (pk, sk)) WITHOUT ROWID;
                 INSERT INTO v1 SELECT pk, sk, t, v, ttl, gsi1pk, gsi1sk, attrs FROM items;
                 DROP TABLE items;
                 ALTER TABLE v1 RENAME TO items;
                 CREATE INDEX items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
                 PRAGMA user_version = 1;
                 COMMIT;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path, clock.clone()).unwrap();
        assert_eq!(store.get(&key).await.unwrap(), Some(written));
        assert!(matches!(
            store.put(item(&key, "again"), Condition::NotExists).await,
            Err(StoreError::ConditionFailed)
        ));
        let listed = store
            .query(&Query {
                index: Index::Gsi1,
                partition: "old#g".to_owned(),
                range: KeyRange::All,
                order: Order::Ascending,
                limit: 10,
                cursor: None,
            })
            .await
            .unwrap();
        assert_eq!(listed.items, vec![in_index]);
        let version: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(
            version, 3,
            "schema 3 adds the index the retention sweep reads"
        );
    }
});

store_suite!(dynamodb_moto, conformance::fixture_dynamodb_moto);
