//! Broadcasts over HTTP: composing (every validation rule, refused with its status and code and without
//! repeating what was sent), listing newest first with a cursor, reading, cancelling (then 409),
//! previewing who would get one, the page's sending rate, tenant isolation (another account gets the
//! same 404, after the same store calls, as for nothing at all), and one broadcast from compose to the person's Messenger: leads
//! made by signed webhook events, the broadcast run by the same runner the schedule invokes, the
//! messages read back from the local Messenger outbox.

use std::path::PathBuf;
use std::sync::Arc;

use http::Method;
use qchat_shared::app::account_key_owner;
use qchat_shared::clock::Timestamp;
use qchat_shared::config::Config;
use qchat_shared::crypto::field::FORMAT_LEAD_V1;
use qchat_shared::domain::{AccountId, LeadId, PageId, Psid};
use qchat_shared::http::ClientAddr;
use qchat_shared::leads::{Subject, find_lead, lead_key, lookup};
use qchat_shared::messenger::outbox::{OutboxLine, OutboxMessenger, read_lines};
use qchat_shared::test_support::counting::{CountingStore, StoreCalls};
use qchat_shared::test_support::logs;
use serde_json::{Value, json};

use crate::helpers::{Backend, START, TestApp, TestResponse};

/// The Meta app secret the webhook checks signatures with in these cases.
const APP_SECRET: &str = "flows-app-secret-for-broadcasts";

/// A page id (digits) no other test uses.
fn page_id() -> String {
    let b = qchat_shared::crypto::random_bytes::<8>();
    format!("1{:015}", u64::from_be_bytes(b) % 1_000_000_000_000_000)
}

/// A PSID (16 digits) no other test uses.
fn psid() -> String {
    let b = qchat_shared::crypto::random_bytes::<8>();
    format!("27{:014}", u64::from_be_bytes(b) % 100_000_000_000_000)
}

fn mid() -> String {
    format!(
        "m_{}",
        hex::encode(qchat_shared::crypto::random_bytes::<12>())
    )
}

/// A test app whose webhook accepts signed events and whose Messenger outbox is a file this test reads.
struct Site {
    t: TestApp,
    /// Every store call the app makes goes through it.
    store: Arc<CountingStore>,
    outbox: PathBuf,
    _dir: tempfile::TempDir,
}

impl Site {
    async fn spawn(backend: Backend) -> Self {
        let mut t = TestApp::spawn(backend).await;
        let secret = Config::from_lookup(|name| {
            (name == "QCHAT_FB_APP_SECRET").then(|| APP_SECRET.to_owned())
        })
        .expect("a configuration with the app secret");
        let mut config = (*t.app.config).clone();
        config.graph.app_secret = secret.graph.app_secret;
        // The webhook reads the app secret through the run-time secret cache, made from this config.
        let secrets = qchat_shared::meta_secrets::MetaSecretCache::new(
            Arc::new(qchat_shared::meta_secrets::FixedSource::from_config(
                &config.graph,
            )),
            t.app.clock.clone(),
            qchat_shared::meta_secrets::SecretCachePolicy::default(),
        );
        t.app = t.app.clone().with_meta_secrets(Arc::new(secrets));
        t.app.config = Arc::new(config);
        let store = Arc::new(CountingStore::new(t.app.store.clone()));
        t.app.store = store.clone();
        let dir = tempfile::tempdir().expect("a temporary folder");
        let outbox = dir.path().join("messenger-outbox.jsonl");
        t.app.messenger = Arc::new(OutboxMessenger::new(
            outbox.clone(),
            t.clock.clone(),
            t.app.ids.clone(),
        ));
        Self {
            t,
            store,
            outbox,
            _dir: dir,
        }
    }

    /// A holder signed in for 30 days (some cases move the clock a day) with a connected page
    /// (implicit consent: a first message subscribes).
    async fn holder_with_page(&self, label: &str) -> (String, String) {
        let (token, page, _) = self.holder_page_and_account(label).await;
        (token, page)
    }

    /// As [`Self::holder_with_page`], with the holder's account id.
    async fn holder_page_and_account(&self, label: &str) -> (String, String, String) {
        let holder = self.t.new_holder(label).await;
        let token = self
            .t
            .sign_in_ok(&holder.email, &holder.password, true)
            .await;
        let page = page_id();
        let connect = json!({
            "page_id": page,
            "page_access_token": format!("sample-page-token-{page}"),
            "consent_mode": "implicit",
        });
        self.t
            .post_json("/api/pages", &connect, Some(&token))
            .await
            .assert_status(201);
        (token, page, holder.id)
    }

    /// Posts one messaging event of `page` to `POST /webhook`, signed as Meta signs.
    async fn event(&self, page: &str, messaging: Value) {
        let body = serde_json::to_vec(
            &json!({ "object": "page", "entry": [ { "id": page, "time": 1, "messaging": [messaging] } ] }),
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
        let response = qchat_local::dispatch(&self.t.app, req).await;
        assert_eq!(response.status().as_u16(), 200, "webhook");
    }

    /// A person writes to `page` now; in implicit mode a first message subscribes them.
    async fn person_writes(&self, page: &str, psid: &str, text: &str) {
        let at = self.now();
        self.event(
            page,
            json!({
                "sender": { "id": psid },
                "recipient": { "id": page },
                "timestamp": at.millis(),
                "message": { "mid": mid(), "text": text },
            }),
        )
        .await;
    }

    async fn subscribed_lead(&self, page: &str) -> String {
        let psid = psid();
        self.person_writes(page, &psid, "Hello, do you deliver?")
            .await;
        psid
    }

    fn now(&self) -> Timestamp {
        use qchat_shared::clock::Clock as _;
        self.t.clock.now()
    }

    /// One run of the runner the schedule invokes, with a minute's deadline.
    async fn run_broadcasts(&self) {
        let deadline = self.now().plus_secs(60);
        qchat_broadcast::run_due(&self.t.app, "flows-runner", deadline)
            .await
            .expect("the runner runs");
    }

    fn sent(&self) -> Vec<OutboxLine> {
        read_lines(&self.outbox).expect("the outbox is readable")
    }

    async fn compose(&self, token: &str, page: &str, body: &Value) -> TestResponse {
        self.t
            .post_json(&format!("/api/pages/{page}/broadcasts"), body, Some(token))
            .await
    }

    async fn created(&self, token: &str, page: &str, body: &Value) -> Value {
        let r = self.compose(token, page, body).await;
        r.assert_status(201);
        r.json()
    }

    async fn broadcast(&self, token: &str, page: &str, id: &str) -> Value {
        let r = self
            .t
            .get(&format!("/api/pages/{page}/broadcasts/{id}"), Some(token))
            .await;
        r.assert_status(200);
        r.json()
    }

    async fn broadcasts(&self, token: &str, page: &str, query: &str) -> TestResponse {
        self.t
            .get(&format!("/api/pages/{page}/broadcasts{query}"), Some(token))
            .await
    }
}

/// The store calls made between two readings of the counters.
fn calls_since(before: StoreCalls, after: StoreCalls) -> StoreCalls {
    StoreCalls {
        get: after.get - before.get,
        put: after.put - before.put,
        delete: after.delete - before.delete,
        query: after.query - before.query,
        transact: after.transact - before.transact,
        transact_each: after.transact_each - before.transact_each,
        delete_many: after.delete_many - before.delete_many,
        get_many: after.get_many - before.get_many,
    }
}

fn id_of(b: &Value) -> String {
    b["id"].as_str().expect("an id").to_owned()
}

fn ids(list: &Value) -> Vec<String> {
    list["broadcasts"]
        .as_array()
        .expect("broadcasts")
        .iter()
        .map(id_of)
        .collect()
}

/// `t` in RFC 3339 (UTC, with milliseconds).
fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339()
}

pub async fn a_composed_broadcast_is_scheduled_and_shown_with_its_content_and_zero_counts(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let (token, page) = site.holder_with_page("composer").await;
    let send_at = START.plus_hours(2);
    let body = json!({
        "text": "  Fresh croissants from 7 am!\n",
        "buttons": [{ "title": "Order", "url": "https://bakery.example/order" }],
        "send_at": rfc3339(send_at),
        "audience": { "refs": ["winter-flyer"], "subscribed_since": "2026-01-01T00:00:00+01:00" },
    });
    let b = site.created(&token, &page, &body).await;
    assert_eq!(b["state"], "scheduled");
    assert_eq!(b["page_id"], page.as_str());
    assert_eq!(b["text"], "Fresh croissants from 7 am!", "trimmed");
    assert_eq!(
        b["buttons"],
        json!([{ "title": "Order", "url": "https://bakery.example/order" }])
    );
    assert_eq!(b["send_at"], rfc3339(send_at).as_str());
    assert_eq!(b["audience"]["refs"], json!(["winter-flyer"]));
    assert_eq!(
        b["audience"]["subscribed_since"], "2025-12-31T23:00:00Z",
        "offsets are read and shown in UTC"
    );
    assert_eq!(b["created_at"], rfc3339(START).as_str());
    assert_eq!(b["started_at"], Value::Null);
    assert_eq!(b["counts"]["sent"], 0);

    // The same broadcast is read back, and without send_at a broadcast is due now.
    let got = site
        .t
        .get(
            &format!("/api/pages/{page}/broadcasts/{}", id_of(&b)),
            Some(&token),
        )
        .await;
    got.assert_status(200);
    assert_eq!(got.json(), b);
    let now = site.created(&token, &page, &json!({ "text": "Now" })).await;
    assert_eq!(now["send_at"], rfc3339(START).as_str());
    assert_eq!(
        now["audience"],
        json!({ "refs": [], "subscribed_since": null })
    );

    // The text is the account's content: sealed at rest, never in the raw store as written.
    let raw = site.t.raw_store().await;
    assert!(
        raw.find(&["Fresh croissants", "bakery.example/order"])
            .is_empty(),
        "the text and buttons are sealed"
    );
    site.t.assert_every_stored_attribute_is_declared().await;
}

pub async fn every_invalid_compose_request_is_refused_with_its_rule_and_without_echo(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let (token, page) = site.holder_with_page("validator").await;
    let secret = "Zq7SecretValue";
    let long = "a".repeat(qchat_shared::broadcast::draft::max_text_units(false) + 1);
    let button = |title: &str, url: &str| json!({ "title": title, "url": url });
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({}), 400, "missing_field"),
        (json!({ "text": 7 }), 400, "invalid_field"),
        (
            json!({ "text": "hi", secret: secret }),
            400,
            "unknown_field",
        ),
        (json!({ "text": "   " }), 422, "invalid_text"),
        (
            json!({ "text": format!("{secret}\u{202E}") }),
            422,
            "invalid_text",
        ),
        (
            json!({ "text": format!("{secret}{long}") }),
            422,
            "text_too_long",
        ),
        (
            json!({ "text": format!("{secret}{}", "b".repeat(500)), "buttons": [button("Go", "https://a.example")] }),
            422,
            "text_too_long",
        ),
        (
            json!({ "text": "hi", "buttons": secret }),
            400,
            "invalid_field",
        ),
        (
            json!({ "text": "hi", "buttons": vec![button("Go", "https://a.example"); 4] }),
            422,
            "too_many_buttons",
        ),
        (
            json!({ "text": "hi", "buttons": [{ "url": "https://a.example" }] }),
            400,
            "missing_field",
        ),
        (
            json!({ "text": "hi", "buttons": [button(&format!("{secret}{secret}"), "https://a.example")] }),
            422,
            "invalid_button_title",
        ),
        (
            // 11 characters, 22 UTF-16 units: longer than Meta's 20.
            json!({ "text": "hi", "buttons": [button(&"🥐".repeat(11), "https://a.example")] }),
            422,
            "invalid_button_title",
        ),
        (
            json!({ "text": "hi", "buttons": [button("Go", &format!("http://{secret}.example"))] }),
            422,
            "invalid_button_url",
        ),
        (
            json!({ "text": "hi", "buttons": [button("Go", &format!("javascript:alert('{secret}')"))] }),
            422,
            "invalid_button_url",
        ),
        (
            json!({ "text": "hi", "send_at": secret }),
            400,
            "invalid_time",
        ),
        (
            json!({ "text": "hi", "send_at": rfc3339(START.plus_secs(-61)) }),
            422,
            "send_at_in_past",
        ),
        (
            json!({ "text": "hi", "send_at": rfc3339(START.plus_days(90).plus_secs(1)) }),
            422,
            "send_at_too_far",
        ),
        (
            json!({ "text": "hi", "audience": [secret] }),
            400,
            "invalid_field",
        ),
        (
            json!({ "text": "hi", "audience": { secret: 1 } }),
            400,
            "unknown_field",
        ),
        (
            json!({ "text": "hi", "audience": { "refs": [format!("{secret} <script>")] } }),
            422,
            "invalid_ref",
        ),
        (
            json!({ "text": "hi", "audience": { "subscribed_since": secret } }),
            400,
            "invalid_time",
        ),
        (
            json!({ "text": "hi", "audience": { "subscribed_since": rfc3339(START.plus_hours(1)) } }),
            422,
            "subscribed_since_after_send_at",
        ),
    ];
    for (body, status, code) in &cases {
        let r = site.compose(&token, &page, body).await;
        r.assert_error(*status, code)
            .assert_does_not_echo(&[secret]);
    }
    // Not JSON, or not sent as JSON: refused before any rule.
    let path = format!("/api/pages/{page}/broadcasts");
    let auth = format!("Bearer {token}");
    let r = site
        .t
        .request(
            Method::POST,
            &path,
            Some(format!("text={secret}").into_bytes()),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &auth),
            ],
        )
        .await;
    r.assert_error(415, "unsupported_media_type");
    let r = site
        .t
        .request(
            Method::POST,
            &path,
            Some(format!("{{\"text\": \"{secret}").into_bytes()),
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
        )
        .await;
    r.assert_error(400, "invalid_json")
        .assert_does_not_echo(&[secret]);
    // Without a session nothing is even parsed.
    site.t
        .post_json(&path, &json!({ "text": "hi" }), None)
        .await
        .assert_error(401, "unauthenticated");

    // Nothing was stored by any refusal.
    let list = site.broadcasts(&token, &page, "").await;
    list.assert_status(200);
    assert!(ids(&list.json()).is_empty());
}

pub async fn another_account_gets_the_same_404_as_for_a_page_or_broadcast_that_does_not_exist(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let (owner, page) = site.holder_with_page("owner").await;
    let b = site
        .created(
            &owner,
            &page,
            &json!({ "text": "Owner's news", "send_at": rfc3339(START.plus_hours(1)) }),
        )
        .await;
    let id = id_of(&b);
    let (intruder, own_page) = site.holder_with_page("intruder").await;
    let nowhere = page_id();
    let unknown_id = format!("{}unknown", START.sort_key());

    // Each request, on the owner's page, as the answer to the same request on a page that does not
    // exist (or, on the intruder's own page, with the owner's broadcast id).
    let requests = |p: &str, bid: &str| -> Vec<(Method, String, Option<Value>)> {
        vec![
            (Method::GET, format!("/api/pages/{p}/broadcasts"), None),
            (
                Method::POST,
                format!("/api/pages/{p}/broadcasts"),
                Some(json!({ "text": "hijack" })),
            ),
            (
                Method::GET,
                format!("/api/pages/{p}/broadcasts/{bid}"),
                None,
            ),
            (
                Method::HEAD,
                format!("/api/pages/{p}/broadcasts/{bid}"),
                None,
            ),
            (
                Method::POST,
                format!("/api/pages/{p}/broadcasts/{bid}/cancel"),
                None,
            ),
            (
                Method::GET,
                format!("/api/pages/{p}/broadcasts/{bid}/preview"),
                None,
            ),
            (
                Method::POST,
                format!("/api/pages/{p}/broadcasts/preview"),
                Some(json!({})),
            ),
            (
                Method::PATCH,
                format!("/api/pages/{p}"),
                Some(json!({ "broadcast_rate": 250 })),
            ),
        ]
    };
    // The answer, and the store calls it took: "not yours" must cost what "not there" costs.
    let send = |method: Method, path: String, body: Option<Value>| {
        let auth = format!("Bearer {intruder}");
        let t = &site.t;
        let store = &site.store;
        async move {
            let mut headers = vec![("authorization", auth.as_str())];
            if body.is_some() {
                headers.push(("content-type", "application/json"));
            }
            let body = body.map(|b| serde_json::to_vec(&b).expect("JSON"));
            let before = store.calls();
            let r = t.request(method, &path, body, &headers).await;
            (r, calls_since(before, store.calls()))
        }
    };
    let theirs = requests(&page, &id);
    let missing = requests(&nowhere, &id);
    let not_in_own_page = requests(&own_page, &id);
    let unknown_in_own_page = requests(&own_page, &unknown_id);
    for (i, (method, path, body)) in theirs.into_iter().enumerate() {
        let head = method == Method::HEAD;
        let (a, a_calls) = send(method.clone(), path.clone(), body.clone()).await;
        let (m, p, bd) = missing[i].clone();
        let (b, b_calls) = send(m, p, bd).await;
        assert_eq!(a.status, 404, "{method} {path}: {}", a.text());
        assert_eq!(a.body, b.body, "{method} {path} answers as for no page");
        assert_eq!(a_calls, b_calls, "{method} {path} reads as for no page");
        if !head {
            a.assert_error(404, "not_found");
        }
    }
    // The owner's broadcast id under the intruder's own page is no broadcast of theirs either.
    for (i, (method, path, body)) in not_in_own_page.into_iter().enumerate() {
        if !path.contains(&id) {
            continue;
        }
        let (a, a_calls) = send(method.clone(), path.clone(), body.clone()).await;
        let (m, p, bd) = unknown_in_own_page[i].clone();
        let (b, b_calls) = send(m, p, bd).await;
        assert_eq!(a.status, 404, "{method} {path}");
        assert_eq!(
            a_calls, b_calls,
            "{method} {path} reads as for an unknown id"
        );
        assert_eq!(
            a.body, b.body,
            "{method} {path} answers as for an unknown id"
        );
    }
    // A malformed id names no broadcast: 404 too.
    site.t
        .get(
            &format!("/api/pages/{page}/broadcasts/..%2F..%2Fx"),
            Some(&owner),
        )
        .await
        .assert_error(404, "not_found");

    // The owner's broadcast and rate are untouched, and nothing was created on their page.
    let list = site.broadcasts(&owner, &page, "").await.json();
    assert_eq!(ids(&list), vec![id]);
    assert_eq!(list["broadcasts"][0]["state"], "scheduled");
    assert_eq!(list["broadcast_rate"], 20);
}

pub async fn the_list_is_newest_first_and_pages_with_a_cursor(backend: Backend) {
    let site = Site::spawn(backend).await;
    let (token, page) = site.holder_with_page("lister").await;
    let mut made = Vec::new();
    for i in 0..5 {
        let b = site
            .created(&token, &page, &json!({ "text": format!("News {i}") }))
            .await;
        made.push(id_of(&b));
        site.t.clock.advance_secs(1);
    }
    made.reverse();
    let first = site.broadcasts(&token, &page, "?limit=2").await.json();
    assert_eq!(ids(&first), made[0..2]);
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_owned();
    let query = |c: &str| {
        let c: String = percent_encode(c);
        format!("?limit=2&cursor={c}")
    };
    let second = site.broadcasts(&token, &page, &query(&cursor)).await.json();
    assert_eq!(ids(&second), made[2..4]);
    let cursor = second["next_cursor"].as_str().expect("a cursor").to_owned();
    let third = site.broadcasts(&token, &page, &query(&cursor)).await.json();
    assert_eq!(ids(&third), made[4..5]);
    assert_eq!(third["next_cursor"], Value::Null);
    // Without a limit, 20 a page: everything at once here.
    let all = site.broadcasts(&token, &page, "").await.json();
    assert_eq!(ids(&all), made);
    assert_eq!(all["next_cursor"], Value::Null);

    for bad in ["?limit=0", "?limit=101", "?limit=x", "?limit=-1"] {
        site.broadcasts(&token, &page, bad)
            .await
            .assert_error(400, "invalid_limit");
    }
    site.broadcasts(&token, &page, "?cursor=not-a-cursor-Zq7")
        .await
        .assert_error(400, "invalid_cursor")
        .assert_does_not_echo(&["not-a-cursor-Zq7"]);
    // Another page's cursor is no cursor of this list.
    let other_page = page_id();
    let connect = json!({
        "page_id": other_page,
        "page_access_token": format!("sample-page-token-{other_page}"),
    });
    site.t
        .post_json("/api/pages", &connect, Some(&token))
        .await
        .assert_status(201);
    site.broadcasts(&token, &other_page, &query(&cursor))
        .await
        .assert_error(400, "invalid_cursor");

    // HEAD answers as GET without the body.
    let head = site
        .t
        .request(
            Method::HEAD,
            &format!("/api/pages/{page}/broadcasts"),
            None,
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
    head.assert_status(200);
    assert!(head.body.is_empty());
}

fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub async fn a_cancelled_broadcast_sends_nothing_and_cannot_be_cancelled_again(backend: Backend) {
    let site = Site::spawn(backend).await;
    let (token, page) = site.holder_with_page("canceller").await;
    site.subscribed_lead(&page).await;
    let b = site
        .created(
            &token,
            &page,
            &json!({ "text": "Never sent", "send_at": rfc3339(START.plus_secs(600)) }),
        )
        .await;
    let cancel = format!("/api/pages/{page}/broadcasts/{}/cancel", id_of(&b));
    let r = site.t.post_json(&cancel, &json!({}), Some(&token)).await;
    r.assert_status(200);
    assert_eq!(r.json()["state"], "cancelled");
    assert_eq!(r.json()["ended_at"], rfc3339(START).as_str());
    site.t
        .post_json(&cancel, &json!({}), Some(&token))
        .await
        .assert_error(409, "broadcast_finished");

    site.t.clock.advance_secs(601);
    site.run_broadcasts().await;
    assert!(
        site.sent().is_empty(),
        "a cancelled broadcast sends nothing"
    );
    let got = site
        .t
        .get(
            &format!("/api/pages/{page}/broadcasts/{}", id_of(&b)),
            Some(&token),
        )
        .await
        .json();
    assert_eq!(got["state"], "cancelled");
    assert_eq!(got["counts"]["sent"], 0);
}

pub async fn a_preview_counts_who_would_get_it_now_and_why_the_others_would_not(backend: Backend) {
    let site = Site::spawn(backend).await;
    let (token, page) = site.holder_with_page("previewer").await;
    // One person wrote 25 hours ago: outside the 24-hour window, with no marketing token.
    site.subscribed_lead(&page).await;
    site.t.clock.advance_secs(25 * 3600);
    // Two wrote just now; one of them then stopped.
    site.subscribed_lead(&page).await;
    let leaver = site.subscribed_lead(&page).await;
    site.person_writes(&page, &leaver, "STOP").await;

    let expected = json!({
        "eligible": 1,
        "by_reason": { "outside_window": 1, "unsubscribed": 1 },
        "via_update": 1,
        "via_token": 0,
    });
    let draft = site
        .t
        .post_json(
            &format!("/api/pages/{page}/broadcasts/preview"),
            &json!({}),
            Some(&token),
        )
        .await;
    draft.assert_status(200);
    assert_eq!(draft.json(), expected);
    // A stored broadcast's preview is its audience's, now.
    let b = site
        .created(
            &token,
            &page,
            &json!({ "text": "Hi", "send_at": rfc3339(site.now().plus_hours(1)) }),
        )
        .await;
    let stored = site
        .t
        .get(
            &format!("/api/pages/{page}/broadcasts/{}/preview", id_of(&b)),
            Some(&token),
        )
        .await;
    stored.assert_status(200);
    assert_eq!(stored.json(), expected);
    // An audience of a ref none of them came with reaches nobody subscribed.
    let narrowed = site
        .t
        .post_json(
            &format!("/api/pages/{page}/broadcasts/preview"),
            &json!({ "audience": { "refs": ["spring-ad"] } }),
            Some(&token),
        )
        .await
        .json();
    assert_eq!(narrowed["eligible"], 0);
    assert_eq!(narrowed["by_reason"]["not_in_audience"], 2);
    assert_eq!(narrowed["by_reason"]["unsubscribed"], 1);
    // A preview takes only an audience.
    site.t
        .post_json(
            &format!("/api/pages/{page}/broadcasts/preview"),
            &json!({ "text": "Zq7" }),
            Some(&token),
        )
        .await
        .assert_error(400, "unknown_field")
        .assert_does_not_echo(&["Zq7"]);
}

pub async fn the_page_rate_is_20_until_set_and_only_1_to_250_is_accepted(backend: Backend) {
    let site = Site::spawn(backend).await;
    let (token, page) = site.holder_with_page("pacer").await;
    let list = site.broadcasts(&token, &page, "").await.json();
    assert_eq!(list["broadcast_rate"], 20);
    let path = format!("/api/pages/{page}");
    for (body, status, code) in [
        (
            json!({ "broadcast_rate": 0 }),
            422,
            "invalid_broadcast_rate",
        ),
        (
            json!({ "broadcast_rate": 251 }),
            422,
            "invalid_broadcast_rate",
        ),
        (
            json!({ "broadcast_rate": -5 }),
            422,
            "invalid_broadcast_rate",
        ),
        (json!({ "broadcast_rate": 2.5 }), 400, "invalid_field"),
        (json!({ "broadcast_rate": "40" }), 400, "invalid_field"),
        (json!({}), 400, "missing_field"),
        (
            json!({ "broadcast_rate": 40, "name": "Zq7" }),
            400,
            "unknown_field",
        ),
    ] {
        site.t
            .patch(&path, &body, Some(&token))
            .await
            .assert_error(status, code)
            .assert_does_not_echo(&["Zq7"]);
    }
    assert_eq!(
        site.broadcasts(&token, &page, "").await.json()["broadcast_rate"],
        20
    );
    let set = site
        .t
        .patch(&path, &json!({ "broadcast_rate": 250 }), Some(&token))
        .await;
    set.assert_status(200);
    assert_eq!(
        set.json(),
        json!({ "page_id": page, "broadcast_rate": 250, "language": "en" })
    );
    assert_eq!(
        site.broadcasts(&token, &page, "").await.json()["broadcast_rate"],
        250
    );
    // The page itself is otherwise unchanged: still listed, still sending.
    let pages = site.t.get("/api/pages", Some(&token)).await.json();
    assert_eq!(pages["pages"][0]["page_id"], page.as_str());
    site.t.assert_every_stored_attribute_is_declared().await;
}

pub async fn a_scheduled_broadcast_is_sent_by_the_runner_to_each_subscribed_person_once(
    backend: Backend,
) {
    let logs = logs::capture();
    let site = Site::spawn(backend).await;
    let (token, page) = site.holder_with_page("sender").await;
    let ana = site.subscribed_lead(&page).await;
    let ben = site.subscribed_lead(&page).await;
    let leaver = site.subscribed_lead(&page).await;
    site.person_writes(&page, &leaver, "STOP").await;
    let text = format!("Sunday market: 20% off everything Zq{}", mid());
    let b = site
        .created(
            &token,
            &page,
            &json!({ "text": text, "send_at": rfc3339(START.plus_secs(600)) }),
        )
        .await;
    let id = id_of(&b);
    // Before its time the runner leaves it alone.
    site.run_broadcasts().await;
    assert!(site.sent().is_empty(), "nothing before send_at");
    assert_eq!(
        site.broadcast(&token, &page, &id).await["state"],
        "scheduled"
    );

    // At its time one run sends it to the two subscribed people (they wrote 10 minutes ago: inside
    // their 24-hour window).
    site.t.clock.advance_secs(600);
    site.run_broadcasts().await;
    let lines: Vec<OutboxLine> = site
        .sent()
        .into_iter()
        .filter(|l| l.metadata.as_deref() == Some(&format!("qchat.broadcast.{id}")))
        .collect();
    let mut recipients: Vec<String> = lines
        .iter()
        .map(|l| serde_json::to_value(&l.recipient).expect("JSON")["id"].to_string())
        .collect();
    recipients.sort();
    let mut expected = vec![format!("\"{ana}\""), format!("\"{ben}\"")];
    expected.sort();
    assert_eq!(
        recipients, expected,
        "each subscribed person once; not the leaver"
    );
    for line in &lines {
        assert_eq!(line.page_id, page);
        assert_eq!(line.messaging_type.as_deref(), Some("UPDATE"));
        assert!(line.text.starts_with(&text), "the text comes first");
        assert!(
            line.quick_replies.iter().any(|q| q.title == "Unsubscribe"),
            "every message carries the Unsubscribe quick reply"
        );
    }
    let done = site.broadcast(&token, &page, &id).await;
    assert_eq!(done["state"], "done");
    assert_eq!(done["counts"]["sent"], 2);
    assert_eq!(done["counts"]["pending"], 0);
    assert!(done["started_at"].is_string() && done["ended_at"].is_string());
    // A finished broadcast cannot be cancelled.
    site.t
        .post_json(
            &format!("/api/pages/{page}/broadcasts/{id}/cancel"),
            &json!({}),
            Some(&token),
        )
        .await
        .assert_error(409, "broadcast_finished");

    // Another run sends nothing again.
    site.t.clock.advance_secs(60);
    site.run_broadcasts().await;
    assert_eq!(site.sent().len(), lines.len(), "nobody gets it twice");

    // Neither the text nor anyone's PSID is in the logs; the text is sealed at rest.
    logs.assert_absent(&[&text, &ana, &ben, &leaver]);
    assert!(site.t.raw_store().await.find(&[&text]).is_empty());
    site.t.assert_every_stored_attribute_is_declared().await;
}

pub async fn a_page_set_to_german_broadcasts_with_a_german_footer_and_unsubscribe_button(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let (token, page) = site.holder_with_page("deutsch").await;
    let path = format!("/api/pages/{page}");
    let pages = site.t.get("/api/pages", Some(&token)).await.json();
    assert_eq!(pages["pages"][0]["language"], "en", "English until set");
    for (body, status, code) in [
        (json!({ "language": "Zq7" }), 422, "invalid_language"),
        (json!({ "language": "DE" }), 422, "invalid_language"),
        (json!({ "language": 7 }), 400, "invalid_field"),
        (
            json!({ "language": "de", "name": "Zq7" }),
            400,
            "unknown_field",
        ),
    ] {
        site.t
            .patch(&path, &body, Some(&token))
            .await
            .assert_error(status, code)
            .assert_does_not_echo(&["Zq7"]);
    }
    let set = site
        .t
        .patch(&path, &json!({ "language": "de" }), Some(&token))
        .await;
    set.assert_status(200);
    assert_eq!(
        set.json(),
        json!({ "page_id": page, "broadcast_rate": 20, "language": "de" })
    );
    let pages = site.t.get("/api/pages", Some(&token)).await.json();
    assert_eq!(pages["pages"][0]["language"], "de");

    let ana = site.subscribed_lead(&page).await;
    let text = format!("Sonntagsmarkt Zq{}", mid());
    let b = site.created(&token, &page, &json!({ "text": text })).await;
    let id = id_of(&b);
    site.run_broadcasts().await;
    let lines: Vec<OutboxLine> = site
        .sent()
        .into_iter()
        .filter(|l| l.metadata.as_deref() == Some(&format!("qchat.broadcast.{id}")))
        .collect();
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert!(line.text.starts_with(&text));
    assert!(
        line.text
            .contains("\n\nUm diese Nachrichten abzubestellen, antworte STOP oder öffne "),
        "{}",
        line.text
    );
    assert!(!line.text.contains(&ana), "nothing personal in the text");
    assert_eq!(
        line.quick_replies
            .iter()
            .map(|q| (q.title.as_str(), q.payload.as_str()))
            .collect::<Vec<_>>(),
        [("Abmelden", "QCHAT_UNSUBSCRIBE")]
    );
    site.t.assert_every_stored_attribute_is_declared().await;
}

/// The lead of `psid` on `page`, whose `subject` the webhook sealed under the lead's own key (format 2,
/// which the account's key alone does not open).
async fn sealed_under_lead_key(site: &Site, account: &str, page: &str, psid: &str) -> LeadId {
    let app = &site.t.app;
    let page = PageId::parse(page).expect("a page id");
    let subject = Subject::Psid(Psid::parse(psid).expect("a PSID"));
    let lead = find_lead(app, &page, &subject)
        .await
        .expect("the lookup answers")
        .expect("the lead");
    let secrets = lookup::secrets(app.key_store.as_ref(), &page, std::slice::from_ref(&lead))
        .await
        .expect("the key store answers");
    let owner = account_key_owner(&AccountId::parse(account).expect("an account id"));
    let key = lead_key(&page, &lead);
    let item = app.store.get(&key).await.expect("read").expect("the lead");
    let sealed = item.get_sealed("subject").expect("a sealed subject");
    assert_eq!(sealed.as_bytes()[0], FORMAT_LEAD_V1);
    assert!(
        app.keys
            .open(&owner, &key, "subject", &sealed)
            .await
            .is_err()
    );
    let opened = app
        .keys
        .open_lead(
            &owner,
            secrets.get(&lead),
            lead.as_str(),
            &key,
            "subject",
            &sealed,
        )
        .await
        .expect("the lead's key opens it");
    assert_eq!(opened.as_str().expect("text"), psid);
    lead
}

pub async fn a_lead_sealed_under_its_own_key_is_sent_after_one_key_store_read_per_batch_and_not_once_its_secret_is_gone(
    backend: Backend,
) {
    let mut site = Site::spawn(backend).await;
    let keys = Arc::new(CountingStore::new(site.t.app.key_store.clone()));
    site.t.app.key_store = keys.clone();
    let (token, page, account) = site.holder_page_and_account("lead-key").await;
    let ana = site.subscribed_lead(&page).await;
    let ben = site.subscribed_lead(&page).await;
    let ben_lead = sealed_under_lead_key(&site, &account, &page, &ben).await;

    // A broadcast due in a minute, then one run of the runner at its time.
    let send = |text: String| {
        let (site, token, page) = (&site, &token, &page);
        async move {
            let b = site
                .created(
                    token,
                    page,
                    &json!({ "text": text, "send_at": rfc3339(site.now().plus_secs(60)) }),
                )
                .await;
            site.t.clock.advance_secs(60);
            site.run_broadcasts().await;
            let id = id_of(&b);
            (site.broadcast(token, page, &id).await, id)
        }
    };
    let before = keys.calls();
    let (done, id) = send(format!("Fresh bread Zq{}", mid())).await;
    let during = calls_since(before, keys.calls());
    assert_eq!(done["counts"]["sent"], 2, "{done}");
    let mut recipients: Vec<String> = site
        .sent()
        .into_iter()
        .filter(|l| l.metadata.as_deref() == Some(&format!("qchat.broadcast.{id}")))
        .map(|l| serde_json::to_value(&l.recipient).expect("JSON")["id"].to_string())
        .collect();
    recipients.sort();
    let mut expected = vec![format!("\"{ana}\""), format!("\"{ben}\"")];
    expected.sort();
    assert_eq!(recipients, expected, "the lead's own key opened its PSID");
    // The batch's secrets: one key-store read for the whole batch, no single gets.
    assert_eq!((during.get_many, during.get), (1, 0), "{during:?}");

    // The lead's secret erased (as its erasure does last): its value opens no more, nothing is sent
    // to it, and the other lead is unaffected.
    let page_id = PageId::parse(&page).expect("a page id");
    lookup::erase_keys(keys.as_ref(), &page_id, &ben_lead)
        .await
        .expect("erased");
    site.t.clock.advance_secs(3600);
    let (done, _) = send(format!("Fresh rolls Zq{}", mid())).await;
    assert_eq!(done["counts"]["sent"], 1, "{done}");
    assert_eq!(
        done["counts"]["failed"],
        json!({ "unreadable": 1 }),
        "{done}"
    );
}
