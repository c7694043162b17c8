//! The erasure of a disconnected page's leads, run by [`crate::tick`] like the fan-outs.
//!
//! The handler lives in `qchat_shared::leads::erase` (the account function queues the job in the
//! transaction that removes the page; the flows tests drive it too); it is re-exported here. The tick runs
//! erasures before anything else, so a reply that an erasure removes is never picked up by the drain that
//! follows in the same run.

pub use qchat_shared::leads::erase::{
    Counts, PAGE_LEADS_ERASURE_JOB, PageLeadsErasure, Receipt, SETTLE_SECS,
};

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use qchat_shared::app::App;
    use qchat_shared::clock::{Clock as _, ManualClock, Timestamp};
    use qchat_shared::config::Config;
    use qchat_shared::crypto::{LocalKeyring, OneWayHash, Sealed};
    use qchat_shared::domain::{AccountId, LeadId, PageId};
    use qchat_shared::ids::{IdGenerator, RandomIds};
    use qchat_shared::inventory::{LEAD, UNSUBSCRIBE_LINK};
    use qchat_shared::jobs::Jobs;
    use qchat_shared::leads::consent::{ConsentEvent, history_partition};
    use qchat_shared::leads::erase::enqueue_op;
    use qchat_shared::leads::record::page_leads_partition;
    use qchat_shared::leads::{Action, ConsentRecord, GENESIS_HASH, lead_key, unsubscribe_key};
    use qchat_shared::mail::OutboxMailer;
    use qchat_shared::messenger::outbox::OutboxMessenger;
    use qchat_shared::replies::{DUE_PARTITION, NewReply, reply_op};
    use qchat_shared::store::sqlite::SqliteStore;
    use qchat_shared::store::{
        Condition, Index, Item, ItemKey, ItemStore, KeyRange, Order, Page, Query, StoreError,
        Value, WriteOp,
    };

    use super::*;
    use crate::{JOB_LEASE_SECS, tick};

    const START: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    /// A store whose `delete_many` takes clock time, so a tick's deadline can cut an erasure.
    #[derive(Debug)]
    struct SlowDeletes {
        inner: Arc<dyn ItemStore>,
        clock: Arc<ManualClock>,
        secs: i64,
    }

    #[async_trait::async_trait]
    impl ItemStore for SlowDeletes {
        async fn ensure_schema(&self) -> Result<(), StoreError> {
            self.inner.ensure_schema().await
        }
        async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
            self.inner.get(key).await
        }
        async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
            self.inner.put(item, condition).await
        }
        async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
            self.inner.delete(key, condition).await
        }
        async fn query(&self, query: &Query) -> Result<Page, StoreError> {
            self.inner.query(query).await
        }
        async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
            self.inner.transact(ops).await
        }
        async fn delete_many(&self, keys: &[ItemKey]) -> Result<(), StoreError> {
            self.clock.advance_secs(self.secs);
            self.inner.delete_many(keys).await
        }
    }

    struct Fixture {
        app: App,
        clock: Arc<ManualClock>,
        _dir: tempfile::TempDir,
    }

    /// The embedded backends in a fresh folder; `delete_many` takes `delete_secs` of clock time.
    async fn fixture(delete_secs: i64) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::at(START));
        let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
        let sqlite = SqliteStore::open(&dir.path().join("qchat.sqlite3"), clock.clone())
            .expect("the SQLite store opens");
        sqlite.ensure_schema().await.expect("schema");
        let store = Arc::new(SlowDeletes {
            inner: Arc::new(sqlite),
            clock: clock.clone(),
            secs: delete_secs,
        });
        let data_dir = dir.path().to_string_lossy().into_owned();
        let config =
            Config::from_lookup(|name| (name == "QCHAT_DATA_DIR").then(|| data_dir.clone()))
                .expect("configuration");
        let mailer = OutboxMailer::new(
            dir.path().join("mail"),
            "qchat <noreply@qchat.example.test>".to_owned(),
            clock.clone(),
        );
        let messenger = OutboxMessenger::new(
            dir.path().join("messenger.jsonl"),
            clock.clone(),
            ids.clone(),
        );
        let app = App::from_parts(
            config,
            store,
            Arc::new(LocalKeyring::open(&dir.path().join("master.key")).expect("keyring")),
            Arc::new(mailer),
            Arc::new(messenger),
            clock.clone(),
            ids,
        );
        Fixture {
            app,
            clock,
            _dir: dir,
        }
    }

    fn jobs(f: &Fixture) -> Jobs {
        Jobs::new(
            f.app.store.clone(),
            f.app.clock.clone(),
            f.app.ids.clone(),
            JOB_LEASE_SECS,
        )
    }

    /// A lead as the webhook leaves it: the lead, one consent record, its unsubscribe link and a reply
    /// waiting to be sent.
    async fn seed_lead(f: &Fixture, page: &PageId, name: &str) {
        let lead = LeadId::parse(name).expect("lead id");
        let now = f.clock.now();
        let hash = OneWayHash::sha256_of(format!("{page}-{name}").as_bytes());
        let record = ConsentRecord::chain(
            &lead,
            0,
            GENESIS_HASH,
            ConsentEvent {
                action: Action::OptIn,
                source: "first_message".into(),
                meta_ref: Some(format!("m_{name}")),
                meta_timestamp: Some(now.millis()),
                received_at: now,
                policy_version: "1".into(),
                consent_mode: "implicit".into(),
                wording: "Sent a first message.".into(),
            },
        );
        let item = Item::new(&LEAD, lead_key(page, &lead))
            .sealed("subject", Sealed::from_bytes(vec![7; 40]))
            .and_then(|i| i.plain("subject_kind", Value::S("psid".into())))
            .and_then(|i| i.plain("status", Value::S("subscribed".into())))
            .and_then(|i| i.plain("created", Value::N(now.millis())))
            .and_then(|i| i.hashed("unsubscribe_hash", &hash))
            .expect("lead item")
            .with_version(1);
        let link = Item::new(&UNSUBSCRIBE_LINK, unsubscribe_key(&hash))
            .plain("page_id", Value::S(page.as_str().into()))
            .and_then(|i| i.plain("lead_id", Value::S(lead.as_str().into())))
            .expect("link item");
        let reply = reply_op(
            NewReply {
                id: &format!("r-{page}-{name}"),
                page,
                account: &AccountId::parse("acc1").expect("account"),
                lead: Some(&lead),
                recipient_kind: "psid",
                recipient: Sealed::from_bytes(vec![8; 40]),
                text: Sealed::from_bytes(vec![9; 60]),
                quick_replies: &[],
            },
            now,
        )
        .expect("reply op");
        f.app
            .store
            .transact(vec![
                record.append_op(page, &lead).expect("record op"),
                WriteOp::Put {
                    item,
                    condition: Condition::NotExists,
                },
                WriteOp::Put {
                    item: link,
                    condition: Condition::NotExists,
                },
                reply,
            ])
            .await
            .expect("seeded");
    }

    async fn count(f: &Fixture, index: Index, partition: String) -> usize {
        f.app
            .store
            .query(&Query {
                index,
                partition,
                range: KeyRange::All,
                order: Order::Ascending,
                limit: 1000,
                cursor: None,
            })
            .await
            .expect("query")
            .items
            .len()
    }

    async fn queue_erasure(f: &Fixture, page: &PageId) -> String {
        let (id, op) = enqueue_op(&jobs(f), page, None, f.clock.now()).expect("op");
        f.app.store.transact(vec![op]).await.expect("queued");
        id
    }

    #[tokio::test]
    async fn the_tick_erases_a_disconnected_pages_leads_before_draining_their_replies() {
        let f = fixture(0).await;
        let (gone, kept) = (
            PageId::parse("1001").expect("page"),
            PageId::parse("2002").expect("page"),
        );
        for name in ["ada", "bob", "cy"] {
            seed_lead(&f, &gone, name).await;
        }
        seed_lead(&f, &kept, "dee").await;
        let job = queue_erasure(&f, &gone).await;

        let report = tick(&f.app, "runner", f.clock.now().plus_secs(60))
            .await
            .expect("tick");
        assert_eq!((report.jobs.claimed, report.jobs.paused), (1, 1));
        assert_eq!(
            count(&f, Index::Table, page_leads_partition(&gone)).await,
            0
        );
        for name in ["ada", "bob", "cy"] {
            let lead = LeadId::parse(name).expect("lead id");
            assert_eq!(
                count(&f, Index::Table, history_partition(&gone, &lead)).await,
                0
            );
        }
        // Only the other page's reply was left for the drain (it fails there: no page item in this test).
        assert_eq!(report.replies.sent, 0);
        assert_eq!(
            report.replies.failed + report.replies.retrying + report.replies.skipped,
            1
        );
        assert_eq!(
            count(&f, Index::Table, page_leads_partition(&kept)).await,
            1
        );

        // The second pass, after the settle time, finishes with the receipt.
        f.clock.advance_secs(SETTLE_SECS);
        let report = tick(&f.app, "runner", f.clock.now().plus_secs(60))
            .await
            .expect("tick");
        assert_eq!(report.jobs.finished, 1);
        let receipt = jobs(&f)
            .receipt(&job)
            .await
            .expect("read")
            .and_then(|r| Receipt::parse(&r))
            .expect("a receipt");
        assert_eq!(
            receipt.erased,
            Counts {
                leads: 3,
                consent_records: 3,
                unsubscribe_links: 3,
                pending_replies: 3,
            }
        );
        assert_eq!(receipt.finished_at, f.clock.now().millis());
    }

    #[tokio::test]
    async fn an_erasure_cut_by_the_ticks_deadline_resumes_at_the_next_tick() {
        // Every batch delete takes 2 s; a tick may work 9 s (it stops 3 s early).
        let f = fixture(2).await;
        let gone = PageId::parse("1001").expect("page");
        for i in 0..60 {
            seed_lead(&f, &gone, &format!("lead{i:02}")).await;
        }
        let job = queue_erasure(&f, &gone).await;
        let first = tick(&f.app, "runner", f.clock.now().plus_secs(9))
            .await
            .expect("tick");
        assert_eq!(first.jobs.paused, 1);
        let left = count(&f, Index::Table, page_leads_partition(&gone)).await;
        assert!(
            0 < left && left < 60,
            "the deadline cut the erasure: {left} left"
        );
        assert!(jobs(&f).is_pending(&job).await.expect("read"));

        for _ in 0..10 {
            if !jobs(&f).is_pending(&job).await.expect("read") {
                break;
            }
            f.clock.advance_secs(60);
            tick(&f.app, "runner", f.clock.now().plus_secs(9))
                .await
                .expect("tick");
        }
        assert!(!jobs(&f).is_pending(&job).await.expect("read"));
        assert_eq!(
            count(&f, Index::Table, page_leads_partition(&gone)).await,
            0
        );
        assert_eq!(count(&f, Index::Gsi1, DUE_PARTITION.to_owned()).await, 0);
        let receipt = jobs(&f)
            .receipt(&job)
            .await
            .expect("read")
            .and_then(|r| Receipt::parse(&r))
            .expect("a receipt");
        assert_eq!(
            receipt.erased,
            Counts {
                leads: 60,
                consent_records: 60,
                unsubscribe_links: 60,
                pending_replies: 60,
            }
        );
    }
}
