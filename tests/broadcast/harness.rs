//! One broadcast engine under test: a qchat (`TestApp`, on SQLite or on moto) with a signed-in account
//! holder and a connected page, whose messenger is the Graph client pointed at a fake Send API on
//! 127.0.0.1 ([`FakeSendApi`]: records every request, answers with scripted Meta errors and latency).
//! Leads are written the way the webhook writes them (sealed subject and token, status index), so a
//! case sets up exactly the leads it needs, thousands at once.
//!
//! The sender waits for its pace slots through a [`ClockSleeper`]: it moves the test's manual clock
//! instead of sleeping, so a case runs fast and every time the sender sees is the clock's.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qchat_shared::app::{App, account_key_owner};
use qchat_shared::broadcast::{
    Audience, BroadcastId, BroadcastView, Broadcasts, Draft, Sleeper, optin_ref_index,
};
use qchat_shared::clock::{ManualClock, Timestamp};
use qchat_shared::domain::{AccountId, LeadId, PageId, Psid};
use qchat_shared::inventory::LEAD;
use qchat_shared::jobs::{JobHandler, Jobs, RunReport};
use qchat_shared::leads::record::{status_partition, status_sort_key};
use qchat_shared::leads::{LeadStatus, Subject, lead_key, lookup};
use qchat_shared::messenger::graph::{self, GraphMessenger};
use qchat_shared::store::{Condition, Item, ItemStore, Value, WriteOp};
use serde_json::{Value as Json, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{Backend, TestApp};
use crate::io_clock::{HeldMessenger, HeldStore, InFlight};

/// The job lease of the test runners (seconds).
pub const LEASE: i64 = 120;

/// Virtual time for the sender's waits: a wait ends when the manual clock reaches its end, and the
/// earliest pending wait moves the clock to its end (after a real millisecond, so that the waits of a
/// batch, started together, are all registered first). So messages reach the fake at their pace slots'
/// times, in order, without the test sleeping through them.
#[derive(Debug)]
pub struct ClockSleeper {
    clock: Arc<ManualClock>,
    pending: Mutex<std::collections::BTreeMap<i64, usize>>,
    /// Calls that hold the clock while under way ([`crate::io_clock`]), if the case measures the pace.
    held_by: Option<Arc<InFlight>>,
}

impl ClockSleeper {
    pub fn new(clock: Arc<ManualClock>) -> Self {
        Self {
            clock,
            pending: Mutex::new(std::collections::BTreeMap::new()),
            held_by: None,
        }
    }

    /// A sleeper that moves the clock only while none of `calls` is under way.
    pub fn held_by(clock: Arc<ManualClock>, calls: Arc<InFlight>) -> Self {
        Self {
            held_by: Some(calls),
            ..Self::new(clock)
        }
    }

    /// `Some(calls started so far)` when no holding call is under way (always, without any).
    fn quiet(&self) -> Option<u64> {
        self.held_by.as_ref().map_or(Some(0), |calls| calls.quiet())
    }
}

/// A registered wait; unregistered when it ends or when its task is dropped (a killed runner).
struct Waiting<'a> {
    sleeper: &'a ClockSleeper,
    target: i64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut pending = self.sleeper.pending.lock().unwrap();
        if let Some(n) = pending.get_mut(&self.target) {
            *n -= 1;
            if *n == 0 {
                pending.remove(&self.target);
            }
        }
    }
}

#[async_trait::async_trait]
impl Sleeper for ClockSleeper {
    async fn sleep(&self, duration: Duration) {
        let now = qchat_shared::clock::Clock::now(self.clock.as_ref()).millis();
        let target = now + i64::try_from(duration.as_millis()).unwrap();
        *self.pending.lock().unwrap().entry(target).or_default() += 1;
        let _waiting = Waiting {
            sleeper: self,
            target,
        };
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            if self.reached(target) {
                return;
            }
            if !self.is_earliest(target) {
                continue;
            }
            let Some(calls_before) = self.quiet() else {
                continue;
            };
            // The earliest: once no earlier wait has appeared for a few real milliseconds (the
            // waits of tasks spawned together are all registered by then), and no holding call ran
            // meanwhile, its time has come.
            tokio::time::sleep(Duration::from_millis(3)).await;
            if self.is_earliest(target) && self.quiet() == Some(calls_before) {
                let _pending = self.pending.lock().unwrap();
                if !self.reached(target) {
                    self.clock.set(Timestamp::from_millis(target));
                }
                return;
            }
        }
    }
}

impl ClockSleeper {
    fn reached(&self, target: i64) -> bool {
        qchat_shared::clock::Clock::now(self.clock.as_ref()).millis() >= target
    }
    fn is_earliest(&self, target: i64) -> bool {
        self.pending.lock().unwrap().keys().next() == Some(&target)
    }
}

/// One request the fake Send API received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The PSID, or the marketing-messages token.
    pub recipient: String,
    /// `id` or `notification_messages_token`.
    pub recipient_kind: String,
    pub messaging_type: Option<String>,
    pub body: Json,
    /// The test clock when it arrived.
    pub at: Timestamp,
}

#[derive(Debug, Default)]
struct FakeState {
    received: Vec<Received>,
    /// Answers given, in order, to the next requests for a recipient.
    scripted: HashMap<String, VecDeque<(u16, Json)>>,
    /// The answer to every request for a recipient, once its script is used up.
    always: HashMap<String, (u16, Json)>,
    delay: Duration,
}

/// A Graph error body as Meta sends it.
pub fn graph_error(code: i64, subcode: Option<i64>) -> Json {
    let mut error = json!({
        "message": "(#x) something the sender must not log",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEf",
    });
    if let Some(s) = subcode {
        error["error_subcode"] = json!(s);
    }
    json!({ "error": error })
}

#[derive(Debug, Clone)]
struct Responder {
    state: Arc<Mutex<FakeState>>,
    clock: Arc<ManualClock>,
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Json = serde_json::from_slice(&request.body).unwrap_or(Json::Null);
        let (recipient_kind, recipient) = body["recipient"]
            .as_object()
            .and_then(|o| o.iter().next())
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        state.received.push(Received {
            recipient: recipient.clone(),
            recipient_kind,
            messaging_type: body["messaging_type"].as_str().map(str::to_owned),
            body: body.clone(),
            at: qchat_shared::clock::Clock::now(self.clock.as_ref()),
        });
        let n = state.received.len();
        let answer = state
            .scripted
            .get_mut(&recipient)
            .and_then(VecDeque::pop_front)
            .or_else(|| state.always.get(&recipient).cloned());
        let template = match answer {
            Some((status, body)) => ResponseTemplate::new(status).set_body_json(body),
            None => ResponseTemplate::new(200).set_body_json(
                json!({ "recipient_id": recipient, "message_id": format!("m_{n}") }),
            ),
        };
        template.set_delay(state.delay)
    }
}

/// A fake Send API on 127.0.0.1.
#[derive(Debug)]
pub struct FakeSendApi {
    server: MockServer,
    state: Arc<Mutex<FakeState>>,
}

impl FakeSendApi {
    pub async fn start(clock: Arc<ManualClock>) -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(FakeState::default()));
        Mock::given(method("POST"))
            .and(path_regex(r"^/v21\.0/[0-9]+/messages$"))
            .respond_with(Responder {
                state: state.clone(),
                clock,
            })
            .mount(&server)
            .await;
        Self { server, state }
    }
    pub fn uri(&self) -> String {
        self.server.uri()
    }
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
    /// How many requests reached the fake for each recipient.
    pub fn per_recipient(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for r in self.received() {
            *out.entry(r.recipient).or_default() += 1;
        }
        out
    }
    /// The next answers to `recipient`, in order (then the default success).
    pub fn script(&self, recipient: &str, answers: Vec<(u16, Json)>) {
        self.state
            .lock()
            .unwrap()
            .scripted
            .insert(recipient.to_owned(), answers.into());
    }
    /// The answer to every request for `recipient`.
    pub fn always(&self, recipient: &str, status: u16, body: Json) {
        self.state
            .lock()
            .unwrap()
            .always
            .insert(recipient.to_owned(), (status, body));
    }
    pub fn set_delay(&self, delay: Duration) {
        self.state.lock().unwrap().delay = delay;
    }
}

/// How a lead is set up.
#[derive(Debug, Clone)]
pub struct LeadSpec {
    pub status: LeadStatus,
    /// When the person last wrote, seconds before now.
    pub wrote_secs_ago: Option<i64>,
    /// A marketing token: `(status, seconds since a broadcast last used it)`.
    pub token: Option<(&'static str, Option<i64>)>,
    pub optin_ref: Option<&'static str>,
}

impl LeadSpec {
    /// Subscribed and inside the 24-hour window.
    pub fn in_window() -> Self {
        Self {
            status: LeadStatus::Subscribed,
            wrote_secs_ago: Some(3600),
            token: None,
            optin_ref: None,
        }
    }
    pub fn status(mut self, status: LeadStatus) -> Self {
        self.status = status;
        self
    }
    pub fn wrote(mut self, secs_ago: Option<i64>) -> Self {
        self.wrote_secs_ago = secs_ago;
        self
    }
    pub fn token(mut self, status: &'static str, used_secs_ago: Option<i64>) -> Self {
        self.token = Some((status, used_secs_ago));
        self
    }
    pub fn optin_ref(mut self, r: &'static str) -> Self {
        self.optin_ref = Some(r);
        self
    }
}

/// A seeded lead.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub id: LeadId,
    pub psid: String,
    pub token: Option<String>,
}

/// An account holder's connected page, a broadcast engine for it, and the fake Send API.
#[derive(Debug)]
pub struct Engine {
    pub t: TestApp,
    /// The app the engine uses: the test app with the Graph client to the fake.
    pub app: App,
    pub fake: FakeSendApi,
    pub broadcasts: Broadcasts,
    pub jobs: Jobs,
    pub account: AccountId,
    pub page: PageId,
    pub session: String,
    next_lead: std::sync::atomic::AtomicU64,
}

/// A fresh page id (15 digits).
pub fn random_page_id() -> String {
    let b = qchat_shared::crypto::random_bytes::<6>();
    let n = u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]]) % 900_000_000_000_000;
    format!("{}", 100_000_000_000_000 + n)
}

impl Engine {
    pub async fn spawn(backend: Backend) -> Self {
        let t = TestApp::spawn(backend).await;
        let (holder, session) = t.signed_in_holder("broadcaster").await;
        let page = random_page_id();
        let r = t
            .post_json(
                "/api/pages",
                &json!({
                    "page_id": page,
                    "page_access_token": format!("sample-page-token-{page}"),
                    "name": "Corner Bakery",
                    "consent_mode": "implicit",
                }),
                Some(&session),
            )
            .await;
        r.assert_status(201);
        let fake = FakeSendApi::start(t.clock.clone()).await;
        let mut app = t.app.clone();
        app.messenger = Arc::new(
            GraphMessenger::new(
                graph::http_client().unwrap(),
                fake.uri(),
                "v21.0".to_owned(),
                None,
            )
            .unwrap()
            .with_timeout(Duration::from_secs(5)),
        );
        let broadcasts =
            Broadcasts::new(&app).with_sleeper(Arc::new(ClockSleeper::new(t.clock.clone())));
        let jobs = Jobs::new(app.store.clone(), app.clock.clone(), app.ids.clone(), LEASE);
        Self {
            app,
            fake,
            broadcasts,
            jobs,
            account: AccountId::parse(&holder.id).unwrap(),
            page: PageId::parse(&page).unwrap(),
            session,
            t,
            next_lead: std::sync::atomic::AtomicU64::new(1),
        }
    }

    pub fn now(&self) -> Timestamp {
        qchat_shared::clock::Clock::now(self.t.clock.as_ref())
    }

    /// The same engine over another store (a counting or failing decorator of this one).
    pub fn with_store(&self, store: Arc<dyn ItemStore>) -> (App, Broadcasts) {
        let mut app = self.app.clone();
        app.store = store;
        let broadcasts =
            Broadcasts::new(&app).with_sleeper(Arc::new(ClockSleeper::new(self.t.clock.clone())));
        (app, broadcasts)
    }

    /// The same engine, with store, key store and Send API calls that take no time on the test's
    /// clock ([`crate::io_clock`]): for a case that measures the pace messages arrive at.
    pub fn with_calls_holding_the_clock(&self) -> Broadcasts {
        let calls = Arc::new(InFlight::default());
        let mut app = self.app.clone();
        app.store = Arc::new(HeldStore {
            inner: app.store.clone(),
            calls: calls.clone(),
        });
        app.key_store = Arc::new(HeldStore {
            inner: app.key_store.clone(),
            calls: calls.clone(),
        });
        app.messenger = Arc::new(HeldMessenger {
            inner: app.messenger.clone(),
            calls: calls.clone(),
        });
        Broadcasts::new(&app)
            .with_sleeper(Arc::new(ClockSleeper::held_by(self.t.clock.clone(), calls)))
    }

    /// The lead item of `spec`, as the webhook writes it.
    async fn lead_item(&self, spec: &LeadSpec) -> (Item, Seeded) {
        let n = self
            .next_lead
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let psid = format!("{}", 7_000_000_000_000_000u64 + n);
        let indexer = self.app.keys.blind_indexer().await.unwrap();
        let subject = Subject::Psid(Psid::parse(&psid).unwrap());
        let id = lookup::lead_for(
            self.app.key_store.as_ref(),
            &indexer,
            self.app.ids.as_ref(),
            &self.page,
            &subject,
            self.now(),
        )
        .await
        .unwrap();
        let key = lead_key(&self.page, &id);
        let cipher = self
            .app
            .keys
            .cipher(&account_key_owner(&self.account))
            .await
            .unwrap();
        let now = self.now();
        // Distinct creation times, in seeding order: the sender's order.
        let created = now.plus_days(-100).plus_millis(i64::try_from(n).unwrap());
        let mut item = Item::new(&LEAD, key.clone())
            .sealed(
                "subject",
                cipher.seal(&key, "subject", psid.as_bytes()).unwrap(),
            )
            .unwrap()
            .plain("subject_kind", Value::S("psid".into()))
            .unwrap()
            .plain("status", Value::S(spec.status.name().into()))
            .unwrap()
            .plain("created", Value::N(created.millis()))
            .unwrap()
            .plain("consent_seq", Value::N(1))
            .unwrap()
            .plain("consent_head", Value::S("seeded".into()))
            .unwrap()
            .with_version(1)
            .with_gsi1(
                status_partition(&self.page, spec.status),
                status_sort_key(created, &id),
            );
        if let Some(ago) = spec.wrote_secs_ago {
            item = item
                .plain("last_message_at", Value::N(now.plus_secs(-ago).millis()))
                .unwrap();
        }
        let mut token = None;
        if let Some((status, used)) = spec.token {
            let t = format!("nmt-{psid}");
            item = item
                .sealed(
                    "marketing_token",
                    cipher.seal(&key, "marketing_token", t.as_bytes()).unwrap(),
                )
                .unwrap()
                .plain("marketing_status", Value::S(status.into()))
                .unwrap();
            if let Some(ago) = used {
                item = item
                    .plain(
                        "marketing_last_sent_at",
                        Value::N(now.plus_secs(-ago).millis()),
                    )
                    .unwrap();
            }
            token = Some(t);
        }
        if let Some(r) = spec.optin_ref {
            item = item
                .blind_index("optin_ref", &optin_ref_index(&indexer, &self.page, r))
                .unwrap();
        }
        (item, Seeded { id, psid, token })
    }

    pub async fn add_lead(&self, spec: LeadSpec) -> Seeded {
        self.add_leads(spec, 1).await.remove(0)
    }

    /// `n` leads of one spec, written 25 to a transaction.
    pub async fn add_leads(&self, spec: LeadSpec, n: usize) -> Vec<Seeded> {
        let mut seeded = Vec::with_capacity(n);
        let mut groups = Vec::new();
        let mut ops = Vec::new();
        for _ in 0..n {
            let (item, s) = self.lead_item(&spec).await;
            seeded.push(s);
            ops.push(WriteOp::Put {
                item,
                condition: Condition::NotExists,
            });
            if ops.len() == 25 {
                groups.push(std::mem::take(&mut ops));
            }
        }
        if !ops.is_empty() {
            groups.push(ops);
        }
        for chunk in groups.chunks(40) {
            self.app.store.transact_each(chunk.to_vec()).await.unwrap();
        }
        seeded
    }

    /// A draft of `text` to every lead, to be sent now.
    pub fn draft(&self, text: &str) -> Draft {
        Draft {
            text: text.to_owned(),
            buttons: Vec::new(),
            send_at: self.now(),
            audience: Audience::default(),
        }
    }

    pub async fn create(&self, draft: Draft) -> BroadcastView {
        self.broadcasts
            .create(&self.account, &self.page, draft)
            .await
            .unwrap()
    }

    pub async fn view(&self, id: &BroadcastId) -> BroadcastView {
        self.broadcasts
            .get(&self.account, &self.page, id)
            .await
            .unwrap()
            .expect("the broadcast exists")
    }

    /// One runner tick: runs due broadcast jobs until `secs` of the clock pass (less the jobs' margin).
    pub async fn tick(&self, runner: &str, secs: i64) -> RunReport {
        let handler = self.broadcasts.job_handler();
        self.run_with(runner, secs, &handler).await
    }

    pub async fn run_with(&self, runner: &str, secs: i64, handler: &dyn JobHandler) -> RunReport {
        self.jobs
            .run_due(runner, self.now().plus_secs(secs), &[handler])
            .await
            .unwrap()
    }

    /// Ticks (a minute apart, as the schedule does) until the broadcast has finished; panics after
    /// `max_ticks`. Returns how many ticks it took.
    pub async fn run_to_end(
        &self,
        id: &BroadcastId,
        secs_per_tick: i64,
        max_ticks: usize,
    ) -> usize {
        for n in 1..=max_ticks {
            self.tick("runner", secs_per_tick).await;
            if self.view(id).await.state.is_finished() {
                return n;
            }
            self.t.clock.advance_secs(60);
        }
        panic!("the broadcast did not finish in {max_ticks} ticks");
    }

    /// The page's outbox notices of the account.
    pub async fn notices(&self) -> Vec<String> {
        self.t.queued_notices(self.account.as_str()).await
    }

    /// A lead as stored.
    pub async fn lead(&self, id: &LeadId) -> qchat_shared::leads::Lead {
        qchat_shared::leads::ops::load(self.app.store.as_ref(), &self.page, id)
            .await
            .unwrap()
            .expect("the lead exists")
    }

    /// Sets the page's rate.
    pub async fn set_rate(&self, rate: u32) {
        qchat_shared::broadcast::set_page_rate(&self.app, &self.account, &self.page, rate)
            .await
            .unwrap()
            .expect("the page is the account's");
    }
}

/// A store that fails one chosen `put` (counted from when it is armed) with a retryable backend error:
/// a storage failure in the middle of a batch.
#[derive(Debug)]
pub struct FailingStore {
    inner: Arc<dyn ItemStore>,
    puts: std::sync::atomic::AtomicUsize,
    fail_at: std::sync::atomic::AtomicUsize,
}

impl FailingStore {
    pub fn new(inner: Arc<dyn ItemStore>) -> Self {
        Self {
            inner,
            puts: std::sync::atomic::AtomicUsize::new(0),
            fail_at: std::sync::atomic::AtomicUsize::new(0),
        }
    }
    /// Fails the `n`th put from now (1 = the next one), once.
    pub fn fail_nth_put(&self, n: usize) {
        let done = self.puts.load(std::sync::atomic::Ordering::SeqCst);
        self.fail_at
            .store(done + n, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl ItemStore for FailingStore {
    async fn ensure_schema(&self) -> Result<(), qchat_shared::store::StoreError> {
        self.inner.ensure_schema().await
    }
    async fn get(
        &self,
        key: &qchat_shared::store::ItemKey,
    ) -> Result<Option<Item>, qchat_shared::store::StoreError> {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        item: Item,
        condition: Condition,
    ) -> Result<(), qchat_shared::store::StoreError> {
        let n = self.puts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if self.fail_at.load(std::sync::atomic::Ordering::SeqCst) == n {
            return Err(qchat_shared::store::StoreError::Backend {
                operation: "put",
                retryable: true,
                source: "injected failure".into(),
            });
        }
        self.inner.put(item, condition).await
    }
    async fn delete(
        &self,
        key: &qchat_shared::store::ItemKey,
        condition: Condition,
    ) -> Result<(), qchat_shared::store::StoreError> {
        self.inner.delete(key, condition).await
    }
    async fn query(
        &self,
        query: &qchat_shared::store::Query,
    ) -> Result<qchat_shared::store::Page, qchat_shared::store::StoreError> {
        self.inner.query(query).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), qchat_shared::store::StoreError> {
        self.inner.transact(ops).await
    }
    async fn delete_many(
        &self,
        keys: &[qchat_shared::store::ItemKey],
    ) -> Result<(), qchat_shared::store::StoreError> {
        self.inner.delete_many(keys).await
    }
    async fn remove_expired(
        &self,
        from: Option<&qchat_shared::store::Cursor>,
        limit: usize,
    ) -> Result<qchat_shared::store::Removed, qchat_shared::store::StoreError> {
        self.inner.remove_expired(from, limit).await
    }
}

/// A store that holds back the delivery claims of chosen leads (the sender's conditional put of a
/// new delivery record) until the test lets them through: the moment between reading a batch of
/// leads and claiming one of them.
#[derive(Debug)]
pub struct PausingStore {
    inner: Arc<dyn ItemStore>,
    /// The delivery-record sort keys (`LEAD#{id}`) whose claims wait.
    held: Vec<String>,
    reached: tokio::sync::mpsc::UnboundedSender<String>,
    release: tokio::sync::watch::Receiver<bool>,
}

/// The test's side of a [`PausingStore`].
#[derive(Debug)]
pub struct Pause {
    /// Receives the sort key of each held claim as it arrives.
    pub reached: tokio::sync::mpsc::UnboundedReceiver<String>,
    release: tokio::sync::watch::Sender<bool>,
}

impl Pause {
    /// Lets the held claims (and any later one) through.
    pub fn release(&self) {
        self.release.send_replace(true);
    }
}

impl PausingStore {
    pub fn new(inner: Arc<dyn ItemStore>, leads: &[&LeadId]) -> (Self, Pause) {
        let (reached_tx, reached) = tokio::sync::mpsc::unbounded_channel();
        let (release, release_rx) = tokio::sync::watch::channel(false);
        let store = Self {
            inner,
            held: leads.iter().map(|l| format!("LEAD#{l}")).collect(),
            reached: reached_tx,
            release: release_rx,
        };
        (store, Pause { reached, release })
    }
}

#[async_trait::async_trait]
impl ItemStore for PausingStore {
    async fn ensure_schema(&self) -> Result<(), qchat_shared::store::StoreError> {
        self.inner.ensure_schema().await
    }
    async fn get(
        &self,
        key: &qchat_shared::store::ItemKey,
    ) -> Result<Option<Item>, qchat_shared::store::StoreError> {
        self.inner.get(key).await
    }
    async fn put(
        &self,
        item: Item,
        condition: Condition,
    ) -> Result<(), qchat_shared::store::StoreError> {
        let key = item.key();
        if key.pk.starts_with("BDELIV#")
            && matches!(condition, Condition::NotExists)
            && self.held.contains(&key.sk)
        {
            let _ = self.reached.send(key.sk.clone());
            let mut release = self.release.clone();
            let _ = release.wait_for(|go| *go).await;
        }
        self.inner.put(item, condition).await
    }
    async fn delete(
        &self,
        key: &qchat_shared::store::ItemKey,
        condition: Condition,
    ) -> Result<(), qchat_shared::store::StoreError> {
        self.inner.delete(key, condition).await
    }
    async fn query(
        &self,
        query: &qchat_shared::store::Query,
    ) -> Result<qchat_shared::store::Page, qchat_shared::store::StoreError> {
        self.inner.query(query).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), qchat_shared::store::StoreError> {
        self.inner.transact(ops).await
    }
    async fn delete_many(
        &self,
        keys: &[qchat_shared::store::ItemKey],
    ) -> Result<(), qchat_shared::store::StoreError> {
        self.inner.delete_many(keys).await
    }
    async fn remove_expired(
        &self,
        from: Option<&qchat_shared::store::Cursor>,
        limit: usize,
    ) -> Result<qchat_shared::store::Removed, qchat_shared::store::StoreError> {
        self.inner.remove_expired(from, limit).await
    }
}
