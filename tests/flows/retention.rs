//! The retention sweep (`qchat_shared::retention::sweep`, what the local ticker and the scheduled erase
//! function call): items past their TTL leave the store itself (the raw store is read after it), leads
//! past the retention the inventory declares are erased with everything of theirs, a sweep cut short
//! by its deadline resumes and finishes, and writes made while it runs are kept.

use std::collections::BTreeSet;
use std::sync::Arc;

use qchat_shared::app::App;
use qchat_shared::clock::{Clock as _, ManualClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::domain::{PageId, Psid};
use qchat_shared::http::ClientAddr;
use qchat_shared::inventory::LEAD_INACTIVE_SECS;
use qchat_shared::leads::erase_lead::{self, LEAD_ERASURE_JOB};
use qchat_shared::leads::{Subject, find_lead};
use qchat_shared::retention::{PASS_INTERVAL_HOURS, SweepReport, sweep};
use qchat_shared::store::{
    Condition, Cursor, GroupFailed, Item, ItemKey, ItemStore, Page, Query, Removed, StoreError,
    WriteOp,
};
use qchat_shared::test_support::PROBE_EXPIRING;
use serde_json::{Value, json};

use crate::helpers::{Backend, RawItem, RawStore, TestApp};

const APP_SECRET: &str = "flows-app-secret-for-retention";
const DAY: i64 = 86_400;

/// The test app and the same app with a Meta app secret, so `POST /webhook` accepts signed events.
struct Site {
    t: TestApp,
    webhook: App,
}

impl Site {
    async fn spawn(backend: Backend) -> Self {
        let t = TestApp::spawn(backend).await;
        let secret = Config::from_lookup(|name| {
            (name == "QCHAT_FB_APP_SECRET").then(|| APP_SECRET.to_owned())
        })
        .expect("a configuration with the app secret");
        let mut config = (*t.app.config).clone();
        config.graph.app_secret = secret.graph.app_secret;
        let source = qchat_shared::meta_secrets::FixedSource::from_config(&config.graph);
        let mut webhook = t.app.clone().with_meta_secret_source(Arc::new(source));
        webhook.config = Arc::new(config);
        Self { t, webhook }
    }

    fn clock(&self) -> &Arc<ManualClock> {
        &self.t.clock
    }

    /// Posts one message from `psid` to `page` at the clock's time, signed like Meta signs them.
    async fn message(&self, page: &str, psid: &str, text: &str) {
        let at = self.clock().now();
        let event = json!({
            "sender": { "id": psid },
            "recipient": { "id": page },
            "timestamp": at.millis(),
            "message": { "mid": format!("m_{}", hex::encode(qchat_shared::crypto::random_bytes::<12>())), "text": text },
        });
        let body = serde_json::to_vec(
            &json!({ "object": "page", "entry": [ { "id": page, "time": 1, "messaging": [event] } ] }),
        )
        .expect("JSON encodes");
        let mut req = http::Request::builder()
            .method("POST")
            .uri("/webhook")
            .header("content-type", "application/json")
            .header(
                "x-hub-signature-256",
                qchat_webhook::signature::sign(APP_SECRET.as_bytes(), &body),
            )
            .body(bytes::Bytes::from(body))
            .expect("a request");
        req.extensions_mut().insert(ClientAddr(self.t.network()));
        let response = qchat_local::dispatch(&self.webhook, req).await;
        assert_eq!(response.status().as_u16(), 200, "webhook");
    }

    /// A connected page (implicit mode: a first message subscribes) of a new account, and a session.
    async fn page(&self) -> (String, String) {
        let (_, token) = self.t.signed_in_holder("retention").await;
        let b = qchat_shared::crypto::random_bytes::<8>();
        let page = format!("1{:015}", u64::from_be_bytes(b) % 1_000_000_000_000_000);
        let access = format!("sample-page-token-{page}-{}", hex::encode(b));
        self.t
            .post_json(
                "/api/pages",
                &json!({ "page_id": page, "page_access_token": access, "consent_mode": "implicit" }),
                Some(&token),
            )
            .await
            .assert_status(201);
        (page, token)
    }

    /// Sweeps as the ticker does, with a generous deadline; the report.
    async fn sweep(&self) -> SweepReport {
        sweep(&self.t.app, self.clock().now().plus_secs(600))
            .await
            .expect("the sweep runs")
    }

    /// Runs the erasure jobs the sweep queued, as the erase function's runner does; the receipts of the
    /// lead erasures it finished (counts).
    async fn run_erasures(&self) -> Vec<erase_lead::Counts> {
        let run = qchat_erase::run_due(
            &self.t.app,
            "flows-runner",
            self.clock().now().plus_secs(600),
        )
        .await
        .expect("the runner runs");
        assert_eq!(run.paused, 0, "{run:?}");
        let raw = self.t.raw_store().await;
        raw.of_type("job")
            .filter(|j| j.text("kind").as_deref() == Some(LEAD_ERASURE_JOB))
            .filter(|j| j.text("state").as_deref() == Some("done"))
            .filter_map(|j| erase_lead::Receipt::parse(&j.text("cursor")?))
            .map(|r| r.erased)
            .collect()
    }
}

/// The lead the key store's lookup names for `psid` on `page`, if any.
async fn looked_up(t: &TestApp, page: &str, psid: &str) -> Option<String> {
    let page = PageId::parse(page).expect("a page id");
    let subject = Subject::Psid(Psid::parse(psid).expect("a PSID"));
    find_lead(&t.app, &page, &subject)
        .await
        .expect("the lookup answers")
        .map(|l| l.as_str().to_owned())
}

fn psid() -> String {
    let b = qchat_shared::crypto::random_bytes::<8>();
    format!("27{:014}", u64::from_be_bytes(b) % 100_000_000_000_000)
}

fn key_of(item: &RawItem) -> (String, String) {
    (
        item.text("pk").expect("a partition key"),
        item.text("sk").expect("a sort key"),
    )
}

fn ttl_of(item: &RawItem) -> Option<i64> {
    item.text("ttl").map(|t| t.parse().expect("a numeric ttl"))
}

/// Stored keys: partition and sort key.
type Keys = BTreeSet<(String, String)>;

/// The keys of the stored items expired at `now`, and of the others.
fn split(raw: &RawStore, now: Timestamp) -> (Keys, Keys) {
    let (expired, live): (Vec<&RawItem>, Vec<&RawItem>) = raw
        .items
        .iter()
        .partition(|i| ttl_of(i).is_some_and(|t| t <= now.secs()));
    (
        expired.into_iter().map(key_of).collect(),
        live.into_iter().map(key_of).collect(),
    )
}

pub async fn a_sweep_removes_every_expired_item_from_the_store_and_keeps_every_live_one(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let (page, _) = site.page().await;
    // Sessions (12 h), webhook de-duplication keys (48 h), replies (7 days), a security log (30 days).
    for _ in 0..3 {
        site.message(&page, &psid(), "Hello").await;
    }
    site.clock().advance_secs(8 * DAY);
    let now = site.clock().now();
    let before = site.t.raw_store().await;
    let (expired, live) = split(&before, now);
    assert!(
        expired.len() >= 6,
        "sessions, event keys and replies expired: {expired:?}"
    );

    // People keep writing while the sweep runs: their leads, links and records are all kept.
    let newcomers: Vec<String> = (0..5).map(|_| psid()).collect();
    let writes = async {
        for p in &newcomers {
            site.message(&page, p, "Hi").await;
        }
    };
    let ((), report) = tokio::join!(writes, site.sweep());
    assert_eq!(report.passes_finished, 1);
    assert!(!report.paused);
    assert_eq!(report.expired_items, expired.len() as u64);

    let after = site.t.raw_store().await;
    let (still_expired, kept) = split(&after, now);
    assert!(
        still_expired.is_empty(),
        "expired items left in the store: {still_expired:?}"
    );
    assert!(
        live.is_subset(&kept),
        "live items lost: {:?}",
        live.difference(&kept).collect::<Vec<_>>()
    );
    assert_eq!(
        after.of_type("lead").count(),
        3 + newcomers.len(),
        "every lead, the newcomers' too"
    );
    site.t.assert_every_stored_attribute_is_declared().await;
}

/// The values of `item` only its lead holds: the lead's long attributes (its sealed page-scoped id,
/// its link's hash, its chain head) and a consent record's own hash (`prev_hash` of a first record is
/// the genesis hash every chain starts from).
fn distinctive_values(item: &RawItem) -> Vec<Vec<u8>> {
    const STRUCTURAL: [&str; 7] = ["pk", "sk", "t", "v", "ttl", "gsi1pk", "gsi1sk"];
    item.attributes
        .iter()
        .filter(|(name, v)| match item.item_type.as_str() {
            "lead" => !STRUCTURAL.contains(&name.as_str()) && v.len() >= 24,
            "consent_record" => name == "hash",
            _ => false,
        })
        .map(|(_, v)| v.clone())
        .collect()
}

fn holds_bytes(raw: &RawStore, needle: &[u8]) -> bool {
    raw.items.iter().any(|i| {
        i.attributes
            .iter()
            .any(|(_, v)| v.windows(needle.len()).any(|w| w == needle))
    })
}

/// Every raw item naming `lead` in a key or an attribute.
fn items_of<'a>(raw: &'a RawStore, lead: &str) -> Vec<&'a RawItem> {
    raw.items
        .iter()
        .filter(|i| {
            i.attributes
                .iter()
                .any(|(_, v)| String::from_utf8_lossy(v).contains(lead))
        })
        .collect()
}

fn lead_ids(list: &Value, status: &str) -> Vec<String> {
    list["leads"]
        .as_array()
        .expect("leads")
        .iter()
        .filter(|l| l["status"] == status)
        .map(|l| l["id"].as_str().expect("an id").to_owned())
        .collect()
}

pub async fn a_lead_past_its_retention_is_erased_completely_and_subscribed_or_recent_ones_stay(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let (page, token) = site.page().await;
    let (gone, stays, later) = (psid(), psid(), psid());
    for p in [&gone, &stays, &later] {
        site.message(&page, p, "Hello").await;
    }
    site.clock().advance_secs(1);
    site.message(&page, &gone, "STOP").await;
    let gone_at = site.clock().now();
    let list = site
        .t
        .get(&format!("/api/pages/{page}/leads"), Some(&token))
        .await;
    list.assert_status(200);
    let [gone_id] = lead_ids(&list.json(), "unsubscribed")
        .try_into()
        .expect("one unsubscribed lead");
    let raw = site.t.raw_store().await;
    let of_gone = items_of(&raw, &gone_id);
    let kinds: BTreeSet<&str> = of_gone.iter().map(|i| i.item_type.as_str()).collect();
    for kind in ["lead", "consent_record", "unsubscribe_link"] {
        assert!(kinds.contains(kind), "{kind} of the lead before: {kinds:?}");
    }
    let values: Vec<Vec<u8>> = of_gone.iter().flat_map(|i| distinctive_values(i)).collect();
    assert!(
        values.len() >= 4,
        "the lead's values and its records' hashes"
    );
    // The lead's lookup and entry in the key store.
    assert_eq!(
        looked_up(&site.t, &page, &gone).await.as_deref(),
        Some(gone_id.as_str())
    );
    assert!(!site.t.raw_key_store().await.find(&[&gone_id]).is_empty());

    // 200 days on, the third person leaves too; then a year after the first one left.
    site.clock().advance_secs(200 * DAY);
    site.message(&page, &later, "STOP").await;
    let later_at = site.clock().now();
    site.clock().set(gone_at.plus_secs(LEAD_INACTIVE_SECS + 1));
    let report = site.sweep().await;
    assert_eq!(report.leads, 1, "{report:?}");
    // Queued to the single-lead erasure: frozen and out of the status index, then erased by its runner.
    let queued = site.t.raw_store().await;
    let frozen: Vec<&RawItem> = items_of(&queued, &gone_id)
        .into_iter()
        .filter(|i| i.item_type == "lead")
        .collect();
    assert_eq!(frozen.len(), 1);
    assert!(frozen[0].text("erasure_job").is_some());
    assert!(frozen[0].text("gsi1pk").is_none(), "out of every list");
    let receipts = site.run_erasures().await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0].leads, 1);
    assert_eq!(receipts[0].consent_records, 2, "the opt-in and the opt-out");
    assert_eq!(receipts[0].unsubscribe_links, 1);
    assert_eq!(receipts[0].lead_keys, 1, "its entry, with its lookup");

    let after = site.t.raw_store().await;
    let left: Vec<String> = items_of(&after, &gone_id)
        .iter()
        .map(|i| i.item_type.clone())
        .collect();
    assert!(left.is_empty(), "items of the erased lead: {left:?}");
    for value in &values {
        assert!(
            !holds_bytes(&after, value),
            "a value of the erased lead is stored"
        );
    }
    assert!(after.find(&[&gone]).is_empty());
    // Its key-store items went last; the others' stay.
    assert_eq!(looked_up(&site.t, &page, &gone).await, None);
    // (Places in the SQLite files themselves are not items: see backups.rs.)
    let in_keys: Vec<(usize, String)> = site
        .t
        .raw_key_store()
        .await
        .find(&[&gone_id])
        .into_iter()
        .filter(|(_, place)| !place.starts_with("file "))
        .collect();
    assert_eq!(in_keys, vec![]);
    for p in [&stays, &later] {
        assert!(looked_up(&site.t, &page, p).await.is_some());
    }
    assert_eq!(
        after.of_type("lead").count(),
        2,
        "the subscribed and the recent lead stay"
    );

    // A year after the third one left (the next pass is due PASS_INTERVAL_HOURS after the last one
    // began), it goes too; the subscribed one stays, whatever its age.
    let next = later_at.plus_secs(LEAD_INACTIVE_SECS + 1);
    assert!(next >= site.clock().now().plus_hours(PASS_INTERVAL_HOURS));
    site.clock().set(next);
    let report = site.sweep().await;
    assert_eq!(report.leads, 1, "{report:?}");
    assert_eq!(site.run_erasures().await.len(), 2, "a receipt each");
    let after = site.t.raw_store().await;
    assert_eq!(after.of_type("lead").count(), 1);
    site.t.assert_every_stored_attribute_is_declared().await;
}

/// The store, with the clock moving a second on every sweep call: time passes as the sweep works.
#[derive(Debug)]
struct Ticking {
    inner: Arc<dyn ItemStore>,
    clock: Arc<ManualClock>,
}

#[async_trait::async_trait]
impl ItemStore for Ticking {
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
    async fn transact_each(&self, groups: Vec<Vec<WriteOp>>) -> Result<(), GroupFailed> {
        self.inner.transact_each(groups).await
    }
    async fn delete_many(&self, keys: &[ItemKey]) -> Result<(), StoreError> {
        self.inner.delete_many(keys).await
    }
    async fn remove_expired(
        &self,
        from: Option<&Cursor>,
        limit: usize,
    ) -> Result<Removed, StoreError> {
        let removed = self.inner.remove_expired(from, limit).await;
        self.clock.advance_secs(1);
        removed
    }
}

pub async fn a_sweep_cut_short_by_its_deadline_resumes_where_it_stopped_and_finishes(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let start = site.clock().now();
    let n: u32 = 1_200;
    for i in 0..n {
        let item = Item::new(&PROBE_EXPIRING, ItemKey::new(format!("SWEEP#{i:05}"), "P"))
            .expires_at(start.plus_secs(10 + i64::from(i % 7)));
        site.t
            .app
            .store
            .put(item, Condition::Always)
            .await
            .expect("seeded");
    }
    site.clock().advance_secs(60);
    let mut app = site.t.app.clone();
    app.store = Arc::new(Ticking {
        inner: site.t.app.store.clone(),
        clock: site.clock().clone(),
    });
    let mut calls = 0;
    let mut removed = 0;
    loop {
        calls += 1;
        assert!(calls < 50, "the sweep never finished");
        // Each call may work 2 s (the runner keeps 3 s of its deadline in hand): two sweep steps.
        let report = sweep(&app, site.clock().now().plus_secs(5))
            .await
            .expect("the sweep runs");
        removed += report.expired_items;
        if report.passes_finished == 1 {
            break;
        }
        assert!(report.paused, "an unfinished call says so");
        site.clock().advance_secs(60);
    }
    assert!(calls >= 2, "the deadline cut the first call short");
    assert_eq!(removed, u64::from(n), "every expired item, each once");
    let after = site.t.raw_store().await;
    let (still_expired, _) = split(&after, site.clock().now());
    assert!(
        still_expired.is_empty(),
        "{} expired items left",
        still_expired.len()
    );
    assert_eq!(after.of_type("test_probe_expiring").count(), 0);
}
