//! A qchat app over either backend with a manual clock and a store whose batch deletes take clock time,
//! so a test can let a runner's deadline arrive part-way through an erasure; and leads seeded as the
//! webhook leaves them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use qchat_shared::app::App;
use qchat_shared::clock::{Clock as _, ManualClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::crypto::local::LocalKeyring;
use qchat_shared::crypto::{Keyring, OneWayHash, Sealed};
use qchat_shared::domain::{AccountId, LeadId, PageId};
use qchat_shared::ids::{IdGenerator, RandomIds};
use qchat_shared::inventory::{LEAD, UNSUBSCRIBE_LINK};
use qchat_shared::jobs::Jobs;
use qchat_shared::leads::consent::{Action, ConsentEvent, ConsentRecord, GENESIS_HASH};
use qchat_shared::leads::record::{lead_key, status_sort_key};
use qchat_shared::leads::unsubscribe_key;
use qchat_shared::mail::outbox::OutboxMailer;
use qchat_shared::messenger::outbox::OutboxMessenger;
use qchat_shared::replies::{NewReply, reply_key, reply_op};
use qchat_shared::store::{
    Condition, Item, ItemKey, ItemStore, Page, Query, StoreError, Value, WriteOp,
};

pub const START: Timestamp = Timestamp::from_millis(1_800_000_000_000);

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Moto,
}

/// A store whose batch deletes take a set amount of clock time each.
#[derive(Debug)]
pub struct ClockedStore {
    inner: Arc<dyn ItemStore>,
    clock: Arc<ManualClock>,
    delete_many_cost_ms: AtomicI64,
}

impl ClockedStore {
    pub fn set_delete_many_cost_secs(&self, secs: i64) {
        self.delete_many_cost_ms
            .store(secs * 1000, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl ItemStore for ClockedStore {
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
        let cost = self.delete_many_cost_ms.load(Ordering::SeqCst);
        self.clock.set(self.clock.now().plus_millis(cost));
        self.inner.delete_many(keys).await
    }
    async fn remove_expired(
        &self,
        from: Option<&qchat_shared::store::Cursor>,
        limit: usize,
    ) -> Result<qchat_shared::store::Removed, StoreError> {
        self.inner.remove_expired(from, limit).await
    }
}

#[derive(Debug)]
pub struct TestApp {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub store: Arc<ClockedStore>,
    pub account: AccountId,
    _dir: tempfile::TempDir,
}

/// What one seeded lead left in the store.
#[derive(Debug)]
pub struct Seeded {
    pub lead: LeadId,
    pub link: ItemKey,
    pub reply: ItemKey,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::at(START));
        let (stores, keyring): (qchat_shared::app::Stores, Arc<dyn Keyring>) = match backend {
            Backend::Sqlite => (
                qchat_shared::test_support::sqlite_stores(dir.path(), clock.clone()),
                Arc::new(LocalKeyring::open(&dir.path().join("master.key")).expect("keyring")),
            ),
            Backend::Moto => {
                use qchat_shared::crypto::conformance::kms_moto_keyring;
                use qchat_shared::test_support::moto;
                let sdk = moto::sdk_config().await;
                let (stores, _, _) = qchat_shared::test_support::moto_stores(
                    &aws_sdk_dynamodb::Client::new(&sdk),
                    "erase",
                    clock.clone(),
                )
                .await;
                (stores, kms_moto_keyring().await.expect("KMS key").keyring())
            }
        };
        let store = stores.main;
        store.ensure_schema().await.expect("schema");
        let store = Arc::new(ClockedStore {
            inner: store,
            clock: clock.clone(),
            delete_many_cost_ms: AtomicI64::new(0),
        });
        let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
        let data = dir.path().to_string_lossy().into_owned();
        let config = Config::from_lookup(|name| match name {
            "QCHAT_DATA_DIR" => Some(data.clone()),
            "QCHAT_PUBLIC_URL" => Some("https://qchat.erase.test".to_owned()),
            _ => None,
        })
        .expect("test configuration");
        let app = App::from_parts(
            config,
            qchat_shared::app::Stores {
                main: store.clone(),
                keys: stores.keys,
            },
            keyring,
            Arc::new(OutboxMailer::new(
                dir.path().join("mail"),
                "qchat <noreply@qchat.example.test>".to_owned(),
                clock.clone(),
            )),
            Arc::new(OutboxMessenger::new(
                dir.path().join("messenger.jsonl"),
                clock.clone(),
                ids.clone(),
            )),
            clock.clone(),
            ids,
        );
        Self {
            app,
            clock,
            store,
            account: AccountId::parse(&qchat_shared::test_support::unique_name("acc"))
                .expect("account id"),
            _dir: dir,
        }
    }

    pub fn jobs(&self) -> Jobs {
        Jobs::new(
            self.app.store.clone(),
            self.app.clock.clone(),
            self.app.ids.clone(),
            900,
        )
    }

    /// A lead as the webhook writes it: the lead, `records` chained consent records, its unsubscribe
    /// link and a reply waiting to be sent.
    pub async fn seed_lead(&self, page: &PageId, name: &str, records: u64) -> Seeded {
        let lead = LeadId::parse(name).expect("lead id");
        let now = self.clock.now();
        let hash = OneWayHash::sha256_of(format!("token-{page}-{name}").as_bytes());
        let mut ops = Vec::new();
        let (mut seq, mut head) = (0, GENESIS_HASH.to_owned());
        for i in 0..records {
            let record = ConsentRecord::chain(
                &lead,
                seq,
                &head,
                ConsentEvent {
                    action: Action::OptIn,
                    source: "first_message".into(),
                    meta_ref: Some(format!("m_{name}_{i}")),
                    meta_timestamp: Some(now.millis()),
                    received_at: now,
                    policy_version: "1".into(),
                    consent_mode: "implicit".into(),
                    wording: "Sent a first message.".into(),
                },
            );
            ops.push(record.append_op(page, &lead).expect("record op"));
            seq = record.seq;
            head = record.hash;
        }
        let item = Item::new(&LEAD, lead_key(page, &lead))
            .sealed("subject", Sealed::from_bytes(vec![7; 40]))
            .and_then(|i| i.plain("subject_kind", Value::S("psid".into())))
            .and_then(|i| i.plain("status", Value::S("subscribed".into())))
            .and_then(|i| i.plain("created", Value::N(now.millis())))
            .and_then(|i| i.plain("consent_seq", Value::N(i64::try_from(seq).unwrap_or(0))))
            .and_then(|i| i.plain("consent_head", Value::S(head)))
            .and_then(|i| i.hashed("unsubscribe_hash", &hash))
            .expect("lead item")
            .with_version(1)
            .with_gsi1(
                format!("LEADS#{page}#subscribed"),
                status_sort_key(now, &lead),
            );
        ops.push(WriteOp::Put {
            item,
            condition: Condition::NotExists,
        });
        let link = unsubscribe_key(&hash);
        let link_item = Item::new(&UNSUBSCRIBE_LINK, link.clone())
            .plain("page_id", Value::S(page.as_str().into()))
            .and_then(|i| i.plain("lead_id", Value::S(lead.as_str().into())))
            .and_then(|i| i.plain("created", Value::N(now.millis())))
            .expect("link item");
        ops.push(WriteOp::Put {
            item: link_item,
            condition: Condition::NotExists,
        });
        let reply_id = format!("{}-{page}-{name}", now.sort_key());
        ops.push(
            reply_op(
                NewReply {
                    id: &reply_id,
                    page,
                    account: &self.account,
                    lead: Some(&lead),
                    recipient_kind: "psid",
                    recipient: Sealed::from_bytes(vec![8; 40]),
                    text: Sealed::from_bytes(vec![9; 60]),
                    quick_replies: &[],
                },
                now,
            )
            .expect("reply op"),
        );
        for chunk in ops.chunks(qchat_shared::store::MAX_TRANSACTION_OPS) {
            self.app
                .store
                .transact(chunk.to_vec())
                .await
                .expect("seeded");
        }
        Seeded {
            lead,
            link,
            reply: reply_key(&reply_id),
        }
    }

    pub async fn exists(&self, key: &ItemKey) -> bool {
        self.app.store.get(key).await.expect("get").is_some()
    }

    pub async fn count(&self, partition: String) -> usize {
        self.app
            .store
            .query(&Query::partition(partition, 1000))
            .await
            .expect("query")
            .items
            .len()
    }

    /// Whether anything of `s` on `page` is left: (lead, records, link, reply).
    pub async fn held(&self, page: &PageId, s: &Seeded) -> (bool, usize, bool, bool) {
        (
            self.exists(&lead_key(page, &s.lead)).await,
            self.count(qchat_shared::leads::consent::history_partition(
                page, &s.lead,
            ))
            .await,
            self.exists(&s.link).await,
            self.exists(&s.reply).await,
        )
    }
}
