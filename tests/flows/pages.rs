//! Connected pages: connect, list, disconnect, and that no account reaches another account's page;
//! a page is connected only with a token of that page (checked through the messenger port: the local
//! sample tokens, or a fake Graph API), and its owner alone can replace the token, which resumes a page
//! stopped by a token error but not one Meta blocked; disconnecting erases the page's leads (leads
//! seeded through the real webhook route, erased by the resumable job notify runs) and a page comes
//! back without them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::Method;
use qchat_shared::app::{App, account_key_owner};
use qchat_shared::clock::{Clock as _, ManualClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::domain::{AccountId, PageId};
use qchat_shared::http::ClientAddr;
use qchat_shared::jobs::{Job, JobError, JobHandler, Jobs, Step};
use qchat_shared::leads::erase::{
    Counts, PAGE_LEADS_ERASURE_JOB, PageLeadsErasure, Receipt, SETTLE_SECS, erasure_queued,
};
use qchat_shared::messenger::conformance::{FakeGraph, graph_error};
use qchat_shared::pages::page_key;
use serde_json::{Value, json};

use crate::helpers::{Backend, RawStore, START, TestApp, TestResponse};

/// A page id (digits) no other test uses.
pub(crate) fn page_id() -> String {
    let b = qchat_shared::crypto::random_bytes::<8>();
    format!("1{:015}", u64::from_be_bytes(b) % 1_000_000_000_000_000)
}

/// A token the local messenger backend verifies as `page` (its documented sample form), unique.
pub(crate) fn access_token(page: &str) -> String {
    let b = qchat_shared::crypto::random_bytes::<12>();
    format!("sample-page-token-{page}-{}", hex::encode(b))
}

/// A made-up token shaped like Meta's (long, printable, unique) that no backend vouches for.
fn invented_token() -> String {
    let b = qchat_shared::crypto::random_bytes::<24>();
    format!("EAAGflows{}ZD", hex::encode(b))
}

fn connect(page: &str, token: &str) -> Value {
    json!({ "page_id": page, "page_access_token": token })
}

fn listed_ids(list: &Value) -> Vec<String> {
    list["pages"]
        .as_array()
        .expect("pages")
        .iter()
        .map(|p| p["page_id"].as_str().expect("page_id").to_owned())
        .collect()
}

pub async fn a_connected_page_is_listed_for_its_own_account_only_and_never_shows_its_token(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (_, a) = app.signed_in_holder("pages-a").await;
    let (_, b) = app.signed_in_holder("pages-b").await;
    let (page_a, page_b) = (page_id(), page_id());
    let (token_a, token_b) = (access_token(&page_a), access_token(&page_b));

    let r = app
        .post_json(
            "/api/pages",
            &json!({ "page_id": page_a, "page_access_token": token_a, "name": " Corner Bakery " }),
            Some(&a),
        )
        .await;
    r.assert_status(201).assert_does_not_echo(&[&token_a]);
    assert_eq!(
        r.json(),
        json!({
            "page_id": page_a,
            "name": "Corner Bakery",
            "connected_at": START.to_rfc3339(),
            "consent_mode": "confirmed",
            "language": "en",
            "sending": "active",
            "stopped_reason": null,
        })
    );
    let r = app
        .post_json(
            "/api/pages",
            &json!({ "page_id": page_b, "page_access_token": token_b, "consent_mode": "implicit" }),
            Some(&b),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.json()["consent_mode"], "implicit");

    let list_a = app.get("/api/pages", Some(&a)).await;
    list_a
        .assert_status(200)
        .assert_does_not_echo(&[&token_a, &token_b]);
    assert_eq!(listed_ids(&list_a.json()), [page_a.as_str()]);
    let list_b = app.get("/api/pages", Some(&b)).await;
    list_b.assert_does_not_echo(&[&token_a, &token_b]);
    assert_eq!(listed_ids(&list_b.json()), [page_b]);
}

pub async fn a_page_connected_to_one_account_cannot_be_connected_by_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, a) = app.signed_in_holder("owner").await;
    let (_, b) = app.signed_in_holder("claimer").await;
    let page = page_id();
    // Another admin of the page holds a valid token of it too: verified, then told the page is taken.
    let theirs = access_token(&page);
    app.post_json(
        "/api/pages",
        &connect(&page, &access_token(&page)),
        Some(&a),
    )
    .await
    .assert_status(201);

    for token in [&b, &a] {
        app.post_json("/api/pages", &connect(&page, &theirs), Some(token))
            .await
            .assert_error(409, "page_already_connected")
            .assert_does_not_echo(&[&theirs]);
    }
    assert_eq!(
        listed_ids(&app.get("/api/pages", Some(&a)).await.json()),
        [page]
    );
    assert!(listed_ids(&app.get("/api/pages", Some(&b)).await.json()).is_empty());
}

pub async fn another_accounts_page_cannot_be_disconnected_and_ones_own_can(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, a) = app.signed_in_holder("keeper").await;
    let (_, b) = app.signed_in_holder("intruder").await;
    let page = page_id();
    app.post_json(
        "/api/pages",
        &connect(&page, &access_token(&page)),
        Some(&a),
    )
    .await
    .assert_status(201);

    let foreign = app.delete(&format!("/api/pages/{page}"), Some(&b)).await;
    foreign.assert_error(404, "not_found");
    let absent = app
        .delete(&format!("/api/pages/{}", page_id()), Some(&b))
        .await;
    absent.assert_error(404, "not_found");
    assert_eq!(
        foreign.body, absent.body,
        "another account's page looks exactly like no page"
    );
    app.delete("/api/pages/not-digits", Some(&a))
        .await
        .assert_error(404, "not_found");
    // Not the canonical form of the page's id: no page, not a second name for it.
    let zero = app.delete(&format!("/api/pages/0{page}"), Some(&a)).await;
    zero.assert_error(404, "not_found");
    assert_eq!(zero.body, absent.body);
    assert_eq!(
        listed_ids(&app.get("/api/pages", Some(&a)).await.json()),
        [page.as_str()]
    );

    let own = app.delete(&format!("/api/pages/{page}"), Some(&a)).await;
    own.assert_status(202);
    assert!(listed_ids(&app.get("/api/pages", Some(&a)).await.json()).is_empty());
    app.delete(&format!("/api/pages/{page}"), Some(&a))
        .await
        .assert_error(404, "not_found");
    // Disconnected, the page is free for another account.
    app.post_json(
        "/api/pages",
        &connect(&page, &access_token(&page)),
        Some(&b),
    )
    .await
    .assert_status(201);
}

pub async fn a_malformed_page_id_or_token_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, a) = app.signed_in_holder("malformed").await;
    let token = invented_token();

    let too_long = "1".repeat(33);
    let leading_zero = format!("0{}", page_id());
    for bad in [
        "12ab",
        "",
        " 123",
        "-5",
        "+123",
        "0123",
        "0",
        "1e3",
        leading_zero.as_str(),
        too_long.as_str(),
    ] {
        app.post_json("/api/pages", &connect(bad, &token), Some(&a))
            .await
            .assert_error(400, "invalid_page_id")
            .assert_does_not_echo(&[&token]);
    }
    for bad in [
        "short",
        "has spaces in the middle of it",
        "tab\tseparated-token-value",
    ] {
        app.post_json("/api/pages", &connect(&page_id(), bad), Some(&a))
            .await
            .assert_error(400, "invalid_page_access_token")
            .assert_does_not_echo(&[bad]);
    }
    app.post_json("/api/pages", &json!({ "page_id": page_id() }), Some(&a))
        .await
        .assert_error(400, "missing_field");
    app.post_json(
        "/api/pages",
        &json!({ "page_id": page_id(), "page_access_token": token, "consent_mode": "whatever" }),
        Some(&a),
    )
    .await
    .assert_error(400, "invalid_field");
    assert!(listed_ids(&app.get("/api/pages", Some(&a)).await.json()).is_empty());
}

// ---- Erasure of a disconnected page's leads -------------------------------------------------------

/// The Meta app secret the webhook checks signatures with in these cases.
const APP_SECRET: &str = "flows-app-secret-for-page-erasure";

/// The test app, plus the same app configured with a Meta app secret so `POST /webhook` accepts events.
pub(crate) struct Site {
    pub(crate) t: TestApp,
    webhook: App,
}

impl Site {
    pub(crate) async fn spawn(backend: Backend) -> Self {
        Self::around(TestApp::spawn(backend).await)
    }

    /// A site whose messenger (for the account routes and notify alike) is the fake Graph API.
    async fn spawn_with_graph(backend: Backend, fake: &FakeGraph) -> Self {
        Self::around(with_graph(backend, fake).await)
    }

    fn around(t: TestApp) -> Self {
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

    /// Posts `messaging` events of `page` to `POST /webhook`, signed like Meta signs them.
    pub(crate) async fn events(&self, page: &str, messaging: Vec<Value>) {
        let body = serde_json::to_vec(
            &json!({ "object": "page", "entry": [ { "id": page, "time": 1, "messaging": messaging } ] }),
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
        assert_eq!(
            response.status().as_u16(),
            200,
            "webhook: {}",
            String::from_utf8_lossy(response.body())
        );
    }

    fn clock(&self) -> &Arc<ManualClock> {
        &self.t.clock
    }

    fn jobs(&self) -> Jobs {
        Jobs::new(
            self.t.app.store.clone(),
            self.t.app.clock.clone(),
            self.t.app.ids.clone(),
            900,
        )
    }

    fn handler(&self) -> PageLeadsErasure {
        PageLeadsErasure::new(
            self.t.app.store.clone(),
            self.t.app.key_store.clone(),
            self.t.app.clock.clone(),
        )
    }

    async fn erasure_queued(&self, page: &str) -> bool {
        let page = PageId::parse(page).expect("a page id");
        erasure_queued(self.t.app.store.as_ref(), &page)
            .await
            .expect("the queue is readable")
    }

    /// Runs the job queue like notify's ticks, a minute apart, until no erasure of `page` is queued;
    /// `budget_secs` is each run's deadline. Returns how many runs it took.
    async fn erase(&self, page: &str, handler: &dyn JobHandler, budget_secs: i64) -> usize {
        let jobs = self.jobs();
        for run in 1..=30 {
            jobs.run_due(
                "flows-runner",
                self.clock().now().plus_secs(budget_secs),
                &[handler],
            )
            .await
            .expect("the runner runs");
            if !self.erasure_queued(page).await {
                return run;
            }
            self.clock().advance_secs(60);
        }
        panic!("the erasure of page {page} did not finish");
    }
}

/// A message event from `psid` to `page`.
pub(crate) fn message(page: &str, psid: &str, mid: &str, text: &str, at: Timestamp) -> Value {
    json!({
        "sender": { "id": psid },
        "recipient": { "id": page },
        "timestamp": at.millis(),
        "message": { "mid": mid, "text": text },
    })
}

/// A message id as Meta makes them (opaque; nothing of the person in it).
pub(crate) fn mid() -> String {
    format!(
        "m_{}",
        hex::encode(qchat_shared::crypto::random_bytes::<12>())
    )
}

/// A PSID (16 digits) no other test uses.
pub(crate) fn psid() -> String {
    let b = qchat_shared::crypto::random_bytes::<8>();
    format!("27{:014}", u64::from_be_bytes(b) % 100_000_000_000_000)
}

/// How many items of each kind the raw stores hold for `page`: leads, consent records, unsubscribe links,
/// replies (pending or not), broadcasts, deliveries, and the leads' entries in the key store.
pub(crate) fn held(raw: &RawStore, page: &str) -> Counts {
    let of = |t: &'static str| raw.of_type(t);
    let page_pk = format!("PAGE#{page}");
    let chain_prefix = format!("CONSENT#{page}#");
    let named = |i: &&crate::helpers::RawItem| i.text("page_id").as_deref() == Some(page);
    Counts {
        leads: of("lead")
            .filter(|i| i.text("pk").as_deref() == Some(page_pk.as_str()))
            .count() as u64,
        consent_records: of("consent_record")
            .filter(|i| i.text("pk").is_some_and(|pk| pk.starts_with(&chain_prefix)))
            .count() as u64,
        unsubscribe_links: of("unsubscribe_link").filter(named).count() as u64,
        pending_replies: of("reply").filter(named).count() as u64,
        broadcasts: of("broadcast")
            .filter(|i| i.text("pk").as_deref() == Some(format!("BCASTS#{page}").as_str()))
            .count() as u64,
        deliveries: of("delivery")
            .filter(|i| {
                i.text("pk")
                    .is_some_and(|pk| pk.starts_with(&format!("BDELIV#{page}#")))
            })
            .count() as u64,
        lead_keys: of("lead_keys")
            .filter(|i| i.text("pk").as_deref() == Some(format!("LEADKEYS#{page}").as_str()))
            .count() as u64,
    }
}

/// The erasure receipts of `page` in the raw store: (params, receipt) of each finished erasure job.
fn receipts(raw: &RawStore, page: &str) -> Vec<(Value, Receipt)> {
    raw.of_type("job")
        .filter(|j| j.text("kind").as_deref() == Some(PAGE_LEADS_ERASURE_JOB))
        .filter(|j| j.text("state").as_deref() == Some("done"))
        .map(|j| {
            let params: Value =
                serde_json::from_str(&j.text("params").expect("params")).expect("JSON params");
            let receipt = Receipt::parse(&j.text("cursor").expect("a receipt")).expect("a receipt");
            (params, receipt)
        })
        .filter(|(params, _)| params["page_id"] == page)
        .collect()
}

fn listed_leads(list: &Value) -> usize {
    list["leads"].as_array().expect("leads").len()
}

pub async fn disconnecting_a_page_erases_every_item_of_its_leads_and_no_other_pages(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let app = &site.t;
    let (a, token_a) = app.signed_in_holder("erasing").await;
    let (_, token_b) = app.signed_in_holder("bystander").await;
    let (page, other) = (page_id(), page_id());
    app.post_json(
        "/api/pages",
        &json!({ "page_id": page, "page_access_token": access_token(&page), "consent_mode": "implicit" }),
        Some(&token_a),
    )
    .await
    .assert_status(201);
    app.post_json(
        "/api/pages",
        &connect(&other, &access_token(&other)),
        Some(&token_b),
    )
    .await
    .assert_status(201);

    // Four people write to the page (implicit mode: each is subscribed, with a consent record, an
    // unsubscribe link and a confirmation reply); one then says STOP, one asks what is held. Two write to
    // the other page (confirmed mode: asked first).
    let people: Vec<String> = (0..4).map(|_| psid()).collect();
    let strangers: Vec<String> = (0..2).map(|_| psid()).collect();
    let now = app.clock.now();
    let mut events: Vec<Value> = people
        .iter()
        .enumerate()
        .map(|(i, p)| message(&page, p, &mid(), "Hello there", now.plus_millis(i as i64)))
        .collect();
    events.push(message(&page, &people[0], &mid(), "STOP", now.plus_secs(1)));
    events.push(message(
        &page,
        &people[1],
        &mid(),
        "MY DATA",
        now.plus_secs(2),
    ));
    site.events(&page, events).await;
    let others: Vec<Value> = strangers
        .iter()
        .map(|p| message(&other, p, &mid(), "Hi", now))
        .collect();
    site.events(&other, others).await;

    let before = app.raw_store().await;
    let on_page = held(&before, &page);
    let on_other = held(&before, &other);
    assert_eq!(on_page.leads, 4);
    assert_eq!(on_page.consent_records, 5, "four opt-ins and one opt-out");
    assert_eq!(on_page.unsubscribe_links, 4);
    assert_eq!(
        on_page.pending_replies, 6,
        "four confirmations, the STOP and the MY DATA answers"
    );
    assert_eq!(
        (
            on_other.leads,
            on_other.consent_records,
            on_other.pending_replies
        ),
        (2, 2, 2)
    );
    let list = app
        .get(&format!("/api/pages/{page}/leads"), Some(&token_a))
        .await;
    list.assert_status(200);
    assert_eq!(listed_leads(&list.json()), 4);

    // Disconnecting answers at once, with the erasure's confirmation code and status page; the erasure
    // is queued with it.
    let r = app
        .delete(&format!("/api/pages/{page}"), Some(&token_a))
        .await;
    r.assert_status(202);
    let erasure = r.json()["erasure"].clone();
    let code = erasure["confirmation_code"]
        .as_str()
        .expect("a confirmation code")
        .to_owned();
    assert_eq!(
        erasure["status_url"],
        format!("{}/deletion/{code}", app.app.config.public_url)
    );
    assert!(site.erasure_queued(&page).await);
    let status = app.get_json_accepting(&format!("/deletion/{code}")).await;
    status.assert_status(200);
    assert_eq!(status.json()["status"], "in_progress");
    assert_eq!(status.json()["erased"], json!({}));
    // An event for the page now changes nothing.
    app.clock.advance_secs(1);
    site.events(
        &page,
        vec![message(
            &page,
            &psid(),
            &mid(),
            "Anyone there?",
            app.clock.now(),
        )],
    )
    .await;
    assert_eq!(held(&app.raw_store().await, &page), on_page);

    // A first run erases at once, then waits out the settle time for the second pass.
    let handler = site.handler();
    let runs = site.erase(&page, &handler, 60).await;
    assert_eq!(
        runs, 2,
        "one run at once, one after the settle time ({SETTLE_SECS} s)"
    );

    let after = app.raw_store().await;
    assert_eq!(
        held(&after, &page),
        Counts::default(),
        "nothing of the page's leads is left"
    );
    assert_eq!(
        held(&after, &other),
        on_other,
        "the other page's leads are untouched"
    );
    let personal: Vec<&str> = people.iter().map(String::as_str).collect();
    let found = after.find(&personal);
    assert!(
        found.is_empty(),
        "erased PSIDs found in the store: {found:?}"
    );
    let found = receipts(&after, &page);
    assert_eq!(found.len(), 1, "one receipt");
    let (params, receipt) = &found[0];
    assert_eq!(params["account_id"], a.id.as_str());
    assert_eq!(receipt.erased, on_page);
    assert_eq!(receipt.finished_at, app.clock.now().millis());
    app.assert_every_stored_attribute_is_declared().await;

    // The status page shows the receipt: the counts and the finish time, and the page as it is now (gone,
    // so unnamed); nothing of the account.
    let status = app.get_json_accepting(&format!("/deletion/{code}")).await;
    status.assert_status(200);
    assert_eq!(
        status.json(),
        json!({
            "confirmation_code": code,
            "status": "completed",
            "finished_at": app.clock.now().to_rfc3339(),
            "erased": serde_json::to_value(on_page).expect("counts encode"),
            "pages": [{ "name": null, "connected": false }],
            "more_pages": 0,
        })
    );
    let page_html = app.get(&format!("/deletion/{code}"), None).await;
    page_html.assert_status(200);
    let text = String::from_utf8_lossy(&page_html.body).into_owned();
    assert!(text.contains("complete"), "{text}");
    assert!(
        text.contains(&format!("people: {}", on_page.leads)),
        "{text}"
    );
    for private in [page.as_str(), a.id.as_str()] {
        assert!(!text.contains(private) && !status.text().contains(private));
    }

    // Connected again, the page starts with no old leads; a returning person starts a new chain.
    app.post_json(
        "/api/pages",
        &connect(&page, &access_token(&page)),
        Some(&token_a),
    )
    .await
    .assert_status(201);
    let list = app
        .get(&format!("/api/pages/{page}/leads"), Some(&token_a))
        .await;
    assert_eq!(listed_leads(&list.json()), 0);
    app.clock.advance_secs(5);
    site.events(
        &page,
        vec![message(
            &page,
            &people[2],
            &mid(),
            "Hello again",
            app.clock.now(),
        )],
    )
    .await;
    let list = app
        .get(&format!("/api/pages/{page}/leads"), Some(&token_a))
        .await
        .json();
    assert_eq!(listed_leads(&list), 1);
    let id = list["leads"][0]["id"]
        .as_str()
        .expect("a lead id")
        .to_owned();
    let detail = app
        .get(&format!("/api/pages/{page}/leads/{id}"), Some(&token_a))
        .await
        .json();
    let history = detail["consent_history"].as_array().expect("a history");
    assert_eq!(history.len(), 1, "a fresh chain: {detail}");
    assert_eq!(history[0]["seq"], 1);
    assert_eq!(detail["chain"]["intact"], true);
    assert_eq!(held(&app.raw_store().await, &page).consent_records, 1);
}

/// Delegates to the real erasure and takes two seconds of clock time per step (a slow table), so a
/// runner's deadline falls part-way through the job. (`JobHandler` is an `async_trait` trait: this is
/// the signature that macro writes.)
struct Slow {
    inner: PageLeadsErasure,
    clock: Arc<ManualClock>,
    steps: AtomicUsize,
}

impl JobHandler for Slow {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn step<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        job: &'life1 Job,
        cursor: Option<&'life2 str>,
    ) -> Pin<Box<dyn Future<Output = Result<Step, JobError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            self.steps.fetch_add(1, Ordering::SeqCst);
            self.clock.advance_secs(2);
            self.inner.step(job, cursor).await
        })
    }
}

pub async fn a_page_erasure_cut_by_its_deadline_resumes_where_it_stopped_and_finishes(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let app = &site.t;
    let (_, token) = app.signed_in_holder("resuming").await;
    let page = page_id();
    app.post_json(
        "/api/pages",
        &json!({ "page_id": page, "page_access_token": access_token(&page), "consent_mode": "implicit" }),
        Some(&token),
    )
    .await
    .assert_status(201);
    let now = app.clock.now();
    let people: Vec<String> = (0..40).map(|_| psid()).collect();
    let events = people
        .iter()
        .enumerate()
        .map(|(i, p)| message(&page, p, &mid(), "Hello", now.plus_millis(i as i64)))
        .collect();
    site.events(&page, events).await;
    let on_page = held(&app.raw_store().await, &page);
    assert_eq!(on_page.leads, 40);

    app.delete(&format!("/api/pages/{page}"), Some(&token))
        .await
        .assert_status(202);
    // While old leads remain, the page cannot be connected again (by anyone).
    app.post_json(
        "/api/pages",
        &connect(&page, &access_token(&page)),
        Some(&token),
    )
    .await
    .assert_error(409, "page_erasure_pending");

    // Two seconds a step, a run may work 7 s (it stops 3 s early): the deadline cuts the first run after
    // the replies and the first 25 leads.
    let slow = Slow {
        inner: site.handler(),
        clock: site.clock().clone(),
        steps: AtomicUsize::new(0),
    };
    let report = site
        .jobs()
        .run_due("flows-runner", app.clock.now().plus_secs(7), &[&slow])
        .await
        .expect("the runner runs");
    assert_eq!((report.steps, report.paused, report.finished), (2, 1, 0));
    let cut = held(&app.raw_store().await, &page);
    assert_eq!(cut.pending_replies, 0);
    assert_eq!(cut.leads, 15, "the first 25 leads are gone, the rest wait");
    assert_eq!(cut.consent_records, 15);
    assert_eq!(cut.unsubscribe_links, 15);
    assert!(site.erasure_queued(&page).await);
    app.post_json(
        "/api/pages",
        &connect(&page, &access_token(&page)),
        Some(&token),
    )
    .await
    .assert_error(409, "page_erasure_pending");

    // The next runs resume from the checkpoint: the remaining leads, then the second pass.
    site.erase(&page, &slow, 7).await;
    assert_eq!(
        slow.steps.load(Ordering::SeqCst),
        10,
        "replies, two pages of leads, broadcasts, two pages of the leads' key-store items, then replies, \
         leads, broadcasts and key-store items again: no step repeated"
    );
    let raw = app.raw_store().await;
    assert_eq!(held(&raw, &page), Counts::default());
    let found = receipts(&raw, &page);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1.erased, on_page, "every item counted once");

    app.post_json(
        "/api/pages",
        &connect(&page, &access_token(&page)),
        Some(&token),
    )
    .await
    .assert_status(201);
    let list = app
        .get(&format!("/api/pages/{page}/leads"), Some(&token))
        .await;
    assert_eq!(listed_leads(&list.json()), 0);
}

// ---- Ownership of a page, and replacing its token -------------------------------------------------

/// A test app whose messenger is `fake`, a Graph API on 127.0.0.1: tokens are checked as Meta checks them.
async fn with_graph(backend: Backend, fake: &FakeGraph) -> TestApp {
    let mut t = TestApp::spawn(backend).await;
    t.app.messenger = Arc::new(fake.messenger());
    t
}

/// A token the fake Graph API answers as `page`, named `name` by Meta.
fn meta_token(fake: &FakeGraph, page: &str, name: Option<&str>) -> String {
    let page = PageId::parse(page).expect("a page id");
    fake.issue_token(&page, name).expose().to_owned()
}

/// How many token checks (`GET /me`) the fake Graph API has answered.
async fn token_checks(fake: &FakeGraph) -> usize {
    fake.requests()
        .await
        .iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path().ends_with("/me"))
        .count()
}

/// `PUT /api/pages/{page}/access-token`.
async fn put_token(app: &TestApp, page: &str, token: &str, session: &str) -> TestResponse {
    let body = serde_json::to_vec(&json!({ "page_access_token": token })).expect("JSON encodes");
    let auth = format!("Bearer {session}");
    app.request(
        Method::PUT,
        &format!("/api/pages/{page}/access-token"),
        Some(body),
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
    )
    .await
}

/// The page's token as stored, opened under its account's key (the store holds it only sealed).
async fn stored_token(app: &TestApp, account: &str, page: &str) -> String {
    let key = page_key(&PageId::parse(page).expect("a page id"));
    let item = app
        .app
        .store
        .get(&key)
        .await
        .expect("readable")
        .expect("a page item");
    let sealed = item.get_sealed("access_token").expect("a sealed token");
    let owner = account_key_owner(&AccountId::parse(account).expect("an account id"));
    let plain = app
        .app
        .keys
        .open(&owner, &key, "access_token", &sealed)
        .await
        .expect("the token opens under the account's key");
    plain.as_str().expect("UTF-8").to_owned()
}

/// The caller's page `page` as `GET /api/pages` lists it.
async fn listed(app: &TestApp, session: &str, page: &str) -> Value {
    let list = app.get("/api/pages", Some(session)).await.json();
    list["pages"]
        .as_array()
        .expect("pages")
        .iter()
        .find(|p| p["page_id"] == page)
        .cloned()
        .unwrap_or_else(|| panic!("page {page} is not listed: {list}"))
}

pub async fn another_account_cannot_connect_a_page_without_a_token_of_that_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (owner, a) = app.signed_in_holder("rightful").await;
    let (_, b) = app.signed_in_holder("hijacker").await;
    let (page, other, free) = (page_id(), page_id(), page_id());
    let token_a = access_token(&page);
    app.post_json("/api/pages", &connect(&page, &token_a), Some(&a))
        .await
        .assert_status(201);
    let pages_before = app.raw_store().await.of_type("page").count();

    // B holds a token of another page, an invented token, a sample token written with a leading zero.
    let of_other = access_token(&other);
    let invented = invented_token();
    let zero_form = format!("sample-page-token-0{page}");
    for attempt in [&of_other, &invented, &zero_form] {
        let on_taken = app
            .post_json("/api/pages", &connect(&page, attempt), Some(&b))
            .await;
        on_taken
            .assert_error(422, "page_not_verified")
            .assert_does_not_echo(&[attempt, &token_a]);
        let on_free = app
            .post_json("/api/pages", &connect(&free, attempt), Some(&b))
            .await;
        on_free.assert_error(422, "page_not_verified");
        assert_eq!(
            on_taken.body, on_free.body,
            "a refusal says nothing about whether the page is connected"
        );
    }
    // Locally, a real token cannot be checked: the answer says how to check one.
    let r = app
        .post_json("/api/pages", &connect(&free, &invented), Some(&b))
        .await;
    let message = r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("QCHAT_GRAPH_URL") && message.contains("sample-page-token-"),
        "{message}"
    );

    // Nothing was stored; A's page is as it was.
    let raw = app.raw_store().await;
    assert_eq!(raw.of_type("page").count(), pages_before);
    assert!(listed_ids(&app.get("/api/pages", Some(&b)).await.json()).is_empty());
    assert_eq!(
        listed_ids(&app.get("/api/pages", Some(&a)).await.json()),
        [page.as_str()]
    );
    assert_eq!(listed(&app, &a, &page).await["sending"], "active");
    assert_eq!(stored_token(&app, &owner.id, &page).await, token_a);
    let found = raw.find(&[&token_a, &of_other, &invented, &zero_form]);
    assert!(found.is_empty(), "a token in the raw store: {found:?}");
}

pub async fn with_meta_a_token_is_verified_before_anything_is_said_about_the_page(
    backend: Backend,
) {
    let fake = FakeGraph::start().await;
    let app = with_graph(backend, &fake).await;
    let (_, a) = app.signed_in_holder("meta-owner").await;
    let (_, b) = app.signed_in_holder("meta-stranger").await;
    let (page, named, other, free) = (page_id(), page_id(), page_id(), page_id());

    // Without a name in the request, the page gets the name Meta reports; a given name wins.
    let token_a = meta_token(&fake, &page, Some("Corner Bakery"));
    let r = app
        .post_json("/api/pages", &connect(&page, &token_a), Some(&a))
        .await;
    r.assert_status(201).assert_does_not_echo(&[&token_a]);
    assert_eq!(r.json()["name"], "Corner Bakery");
    let r = app
        .post_json(
            "/api/pages",
            &json!({ "page_id": named, "page_access_token": meta_token(&fake, &named, Some("Meta's Name")), "name": "Our Name" }),
            Some(&a),
        )
        .await;
    r.assert_status(201);
    assert_eq!(r.json()["name"], "Our Name");
    let pages_before = app.raw_store().await.of_type("page").count();

    // B without a token of A's page is refused before the page's state is looked at (no 409), and the
    // answer is the one a page nobody connected gets. Meta is asked every time.
    let invented = invented_token();
    let of_other = meta_token(&fake, &other, Some("Harbour Books"));
    let lacking = meta_token(&fake, &page, None);
    let checks = token_checks(&fake).await;
    let mut asked = 0;
    for (token, status, code, permission_error) in [
        (&invented, 422, "invalid_page_access_token", false),
        (&of_other, 422, "page_not_verified", false),
        (&lacking, 422, "page_not_verified", true),
    ] {
        let mut answers = Vec::new();
        for target in [&page, &free] {
            if permission_error {
                fake.answer_next_check_json(403, graph_error(200, None))
                    .await;
            }
            let r = app
                .post_json("/api/pages", &connect(target, token), Some(&b))
                .await;
            r.assert_error(status, code).assert_does_not_echo(&[token]);
            asked += 1;
            answers.push(r.body);
        }
        assert_eq!(
            answers[0], answers[1],
            "{code}: the same for a taken and a free page"
        );
    }
    assert_eq!(token_checks(&fake).await, checks + asked);

    // Meta unavailable: 503, nothing stored; the same request works once Meta answers again.
    let token_free = meta_token(&fake, &free, Some("Free Page"));
    fake.answer_next_check_json(503, graph_error(2, None)).await;
    app.post_json("/api/pages", &connect(&free, &token_free), Some(&b))
        .await
        .assert_error(503, "meta_unavailable")
        .assert_does_not_echo(&[&token_free]);
    assert_eq!(app.raw_store().await.of_type("page").count(), pages_before);
    assert!(listed_ids(&app.get("/api/pages", Some(&b)).await.json()).is_empty());

    // Another admin of A's page (a valid token of it) is told it is taken, after the check.
    let co_admin = meta_token(&fake, &page, Some("Corner Bakery"));
    app.post_json("/api/pages", &connect(&page, &co_admin), Some(&b))
        .await
        .assert_error(409, "page_already_connected");
    app.post_json("/api/pages", &connect(&free, &token_free), Some(&b))
        .await
        .assert_status(201);
    assert_eq!(
        listed_ids(&app.get("/api/pages", Some(&b)).await.json()),
        [free.as_str()]
    );

    let raw = app.raw_store().await;
    let found = raw.find(&[
        &token_a,
        &invented,
        &of_other,
        &lacking,
        &co_admin,
        &token_free,
    ]);
    assert!(found.is_empty(), "a token in the raw store: {found:?}");
}

pub async fn a_page_id_is_only_ever_its_canonical_form(backend: Backend) {
    let site = Site::spawn(backend).await;
    let app = &site.t;
    let (_, a) = app.signed_in_holder("canonical").await;
    let (_, b) = app.signed_in_holder("alias").await;
    let page = page_id();
    app.post_json(
        "/api/pages",
        &json!({ "page_id": page, "page_access_token": access_token(&page), "consent_mode": "implicit" }),
        Some(&a),
    )
    .await
    .assert_status(201);

    // `0<page>` is not a second page, whoever asks and whatever token comes with it.
    let alias = format!("0{page}");
    for (session, token) in [
        (&b, access_token(&page)),
        (&a, format!("sample-page-token-{alias}")),
    ] {
        app.post_json("/api/pages", &connect(&alias, &token), Some(session))
            .await
            .assert_error(400, "invalid_page_id");
    }
    // On every route with a page in its path, `0<page>` is an unknown page, even to its owner.
    let unknown = page_id();
    for path in ["/api/pages/{}/leads", "/api/pages/{}/leads/l1"] {
        let aliased = app.get(&path.replace("{}", &alias), Some(&a)).await;
        let missing = app.get(&path.replace("{}", &unknown), Some(&a)).await;
        aliased.assert_error(404, "not_found");
        assert_eq!(aliased.body, missing.body, "{path}");
    }
    let aliased = put_token(app, &alias, &access_token(&page), &a).await;
    aliased.assert_error(404, "not_found");
    let missing = put_token(app, &unknown, &access_token(&unknown), &a).await;
    assert_eq!(aliased.body, missing.body);
    app.delete(&format!("/api/pages/{alias}"), Some(&a))
        .await
        .assert_error(404, "not_found");

    // Meta's events for `0<page>` are an unknown page's: ignored, nothing stored for the page.
    let now = app.clock.now();
    site.events(&alias, vec![message(&alias, &psid(), &mid(), "Hello", now)])
        .await;
    assert_eq!(held(&app.raw_store().await, &page), Counts::default());
    assert_eq!(
        listed_ids(&app.get("/api/pages", Some(&a)).await.json()),
        [page.as_str()]
    );
    assert!(listed_ids(&app.get("/api/pages", Some(&b)).await.json()).is_empty());
}

pub async fn the_owner_alone_replaces_a_dead_token_and_sending_resumes(backend: Backend) {
    let fake = FakeGraph::start().await;
    let site = Site::spawn_with_graph(backend, &fake).await;
    let app = &site.t;
    let (owner, a) = app.signed_in_holder("renewing").await;
    let (_, b) = app.signed_in_holder("meddler").await;
    let (page, other) = (page_id(), page_id());
    let first = meta_token(&fake, &page, Some("Corner Bakery"));
    app.post_json(
        "/api/pages",
        &json!({ "page_id": page, "page_access_token": first, "consent_mode": "implicit" }),
        Some(&a),
    )
    .await
    .assert_status(201);

    let mut current = first.clone();
    let mut used = vec![first.clone()];
    // Meta refuses a send: the token expired (190), then a permission was taken away (200).
    for (code, subcode, reason) in [(190, Some(463), "token_invalid"), (200, None, "permission")] {
        // Someone writes; the reply's send meets the error; notify stops the page.
        app.clock.advance_secs(10);
        site.events(
            &page,
            vec![message(&page, &psid(), &mid(), "Hello", app.clock.now())],
        )
        .await;
        fake.answer_next_json(400, graph_error(code, subcode)).await;
        qchat_notify::tick(&app.app, "flows-notify", app.clock.now().plus_secs(60))
            .await
            .expect("notify's tick runs");
        let stopped = listed(app, &a, &page).await;
        assert_eq!(
            (
                stopped["sending"].as_str(),
                stopped["stopped_reason"].as_str()
            ),
            (Some("stopped"), Some(reason))
        );

        let new = meta_token(&fake, &page, Some("Corner Bakery"));
        used.push(new.clone());
        // Another account: 404 exactly like a page nobody connected, and Meta is not even asked.
        let checks = token_checks(&fake).await;
        let foreign = put_token(app, &page, &new, &b).await;
        foreign
            .assert_error(404, "not_found")
            .assert_does_not_echo(&[&new]);
        let missing = put_token(app, &page_id(), &new, &b).await;
        assert_eq!(foreign.body, missing.body);
        assert_eq!(
            token_checks(&fake).await,
            checks,
            "no token check for a stranger"
        );

        // The owner with a token of another page, one Meta refuses, or while Meta is down: refused,
        // nothing changes.
        let of_other = meta_token(&fake, &other, None);
        let invented = invented_token();
        used.extend([of_other.clone(), invented.clone()]);
        put_token(app, &page, &of_other, &a)
            .await
            .assert_error(422, "page_not_verified")
            .assert_does_not_echo(&[&of_other]);
        put_token(app, &page, &invented, &a)
            .await
            .assert_error(422, "invalid_page_access_token");
        fake.answer_next_check_json(500, graph_error(1, None)).await;
        put_token(app, &page, &new, &a)
            .await
            .assert_error(503, "meta_unavailable");
        put_token(app, &page, "short", &a)
            .await
            .assert_error(400, "invalid_page_access_token");
        assert_eq!(listed(app, &a, &page).await, stopped);
        assert_eq!(stored_token(app, &owner.id, &page).await, current);

        // The owner with a new token of the page: it is sealed in place, and sending resumes.
        let r = put_token(app, &page, &new, &a).await;
        r.assert_status(200).assert_does_not_echo(&[&new, &current]);
        let answer = r.json();
        assert_eq!(answer["page_id"], page.as_str());
        assert_eq!(answer["name"], "Corner Bakery");
        assert_eq!(answer["consent_mode"], "implicit");
        assert_eq!(answer["sending"], "active");
        assert_eq!(answer["stopped_reason"], Value::Null);
        assert_eq!(answer["sending_resumed"], true);
        assert_eq!(listed(app, &a, &page).await["sending"], "active");
        assert_eq!(stored_token(app, &owner.id, &page).await, new);
        current = new;
    }

    // The next reply goes out, with the newest token.
    app.clock.advance_secs(10);
    site.events(
        &page,
        vec![message(&page, &psid(), &mid(), "Hello", app.clock.now())],
    )
    .await;
    let sends_before = fake
        .requests()
        .await
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .count();
    let report = qchat_notify::tick(&app.app, "flows-notify", app.clock.now().plus_secs(60))
        .await
        .expect("notify's tick runs");
    assert_eq!(report.replies.sent, 1, "{report:?}");
    let requests = fake.requests().await;
    let sends: Vec<_> = requests
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect();
    assert_eq!(sends.len(), sends_before + 1);
    let bearer = sends
        .last()
        .and_then(|r| r.headers.get("authorization"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(bearer, Some(format!("Bearer {current}")));

    // Every token is sealed: none of their bytes is anywhere in the store.
    let used: Vec<&str> = used.iter().map(String::as_str).collect();
    let found = app.raw_store().await.find(&used);
    assert!(found.is_empty(), "a token in the raw store: {found:?}");
    app.assert_every_stored_attribute_is_declared().await;
}

/// Meta's `policy_enforcement` event for `page`.
fn policy(page: &str, action: &str, at: Timestamp) -> Value {
    json!({
        "recipient": { "id": page },
        "timestamp": at.millis(),
        "policy_enforcement": { "action": action, "reason": "spam" },
    })
}

pub async fn a_new_token_does_not_lift_metas_block_of_a_page(backend: Backend) {
    let site = Site::spawn(backend).await;
    let app = &site.t;
    let (owner, a) = app.signed_in_holder("blocked").await;
    let page = page_id();
    app.post_json(
        "/api/pages",
        &connect(&page, &access_token(&page)),
        Some(&a),
    )
    .await
    .assert_status(201);
    site.events(&page, vec![policy(&page, "block", app.clock.now())])
        .await;
    let blocked = listed(app, &a, &page).await;
    assert_eq!(
        (
            blocked["sending"].as_str(),
            blocked["stopped_reason"].as_str()
        ),
        (Some("stopped"), Some("policy_block"))
    );

    // The token is replaced, but the page stays stopped, and the answer says why.
    let new = access_token(&page);
    let r = put_token(app, &page, &new, &a).await;
    r.assert_status(200).assert_does_not_echo(&[&new]);
    let answer = r.json();
    assert_eq!(answer["sending"], "stopped");
    assert_eq!(answer["stopped_reason"], "policy_block");
    assert_eq!(answer["sending_resumed"], false);
    let message = answer["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Meta blocked") && message.contains("does not lift"),
        "{message}"
    );
    assert_eq!(listed(app, &a, &page).await, blocked);
    assert_eq!(stored_token(app, &owner.id, &page).await, new);

    // Meta's unblock lifts it, as before.
    app.clock.advance_secs(5);
    site.events(&page, vec![policy(&page, "unblock", app.clock.now())])
        .await;
    let lifted = listed(app, &a, &page).await;
    assert_eq!(lifted["sending"], "active");
    assert_eq!(lifted["stopped_reason"], Value::Null);
    assert!(app.raw_store().await.find(&[&new]).is_empty());
}
