//! The erasure status page, `GET /deletion/{code}`: what it answers for a code that names no erasure.
//! (A real code's page is followed through a whole erasure in `pages`.) And Meta's data-deletion
//! callback, `POST /facebook/data-deletion`: its answer, its job and the status page of its code, and
//! every way a `signed_request` can be refused.

use std::sync::Arc;

use http::Method;
use qchat_shared::clock::{Clock as _, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::domain::{AppScopedUserId, PageAccessToken, PageId, Psid};
use qchat_shared::jobs::{Jobs, due_partition};
use qchat_shared::leads::find_lead;
use qchat_shared::leads::record::{Subject, lead_key};
use qchat_shared::messenger::outbox::{OutboxMessenger, add_ids_for_pages};
use qchat_shared::messenger::{
    Messenger, OutgoingMessage, PageCheckError, PageProfile, SendError, SentMessage,
};
use qchat_shared::meta_deletion::signed_request::{sign, sign_encoded};
use qchat_shared::meta_deletion::{META_DELETION_JOB, Receipt as MetaReceipt};
use qchat_shared::meta_secrets::FixedSource;
use qchat_shared::store::{Index, KeyRange, Order, Query};
use serde_json::{Value, json};

use crate::helpers::{Backend, PUBLIC_URL, TestApp, TestResponse};

/// Malformed, unknown, and a real job's id that is not an erasure all get the same 404, in HTML and in
/// JSON, naming nothing.
pub async fn a_code_that_names_no_erasure_gets_the_same_404_whatever_it_is(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A job that is not an erasure (a policy fan-out's id must not open a status page).
    let jobs = Jobs::new(
        app.app.store.clone(),
        app.app.clock.clone(),
        app.app.ids.clone(),
        60,
    );
    let other = jobs
        .enqueue("policy_fanout", "{}", app.app.clock.now())
        .await
        .expect("a job is queued");
    let long = "a".repeat(65);
    let codes = [
        "abcdefghijklmnopqrstuvwxyz",
        other.as_str(),
        "NOT-LOWER",
        "%3Cscript%3E",
        long.as_str(),
    ];
    let mut html_bodies = Vec::new();
    let mut json_bodies = Vec::new();
    for code in codes {
        let html = app.get(&format!("/deletion/{code}"), None).await;
        html.assert_status(404);
        assert!(html.text().contains("Deletion request not found"));
        assert!(!html.text().contains(code), "the code is not echoed");
        html_bodies.push(html.body.clone());
        let json = app.get_json_accepting(&format!("/deletion/{code}")).await;
        json.assert_error(404, "not_found");
        json_bodies.push(json.body.clone());
    }
    assert!(html_bodies.windows(2).all(|w| w[0] == w[1]));
    assert!(json_bodies.windows(2).all(|w| w[0] == w[1]));

    // In the browser's language.
    let spanish = app
        .request(
            http::Method::GET,
            "/deletion/abcdefghijklmnopqrstuvwxyz",
            None,
            &[("accept-language", "es-ES,es;q=0.9")],
        )
        .await;
    spanish.assert_status(404);
    assert!(spanish.text().contains("<html lang=\"es\">"));
    assert!(
        spanish
            .text()
            .contains("Solicitud de eliminación no encontrada")
    );
}

// ---- Meta's data-deletion callback, `POST /facebook/data-deletion` ---------------------------------

/// The Meta app secret the callback (and the webhook that seeds leads) checks signatures with.
const META_SECRET: &str = "flows-app-secret-for-meta-deletion";

/// A test app whose Meta app secret is [`META_SECRET`] and whose messenger is an outbox in a folder the
/// test holds, so it can write the local `ids_for_pages` mapping ([`add_ids_for_pages`]).
struct Meta {
    t: TestApp,
    outbox: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// A messenger that answers like `inner`, except that Meta refuses the token of `refused` pages.
#[derive(Debug)]
struct RefusingPages {
    inner: Arc<dyn Messenger>,
    refused: Vec<PageId>,
}

#[async_trait::async_trait]
impl Messenger for RefusingPages {
    async fn send(
        &self,
        page: &PageId,
        token: &PageAccessToken,
        message: &OutgoingMessage,
    ) -> Result<SentMessage, SendError> {
        self.inner.send(page, token, message).await
    }
    async fn page_of_token(&self, token: &PageAccessToken) -> Result<PageProfile, PageCheckError> {
        self.inner.page_of_token(token).await
    }
    async fn ids_for_pages(
        &self,
        user: &AppScopedUserId,
        page: &PageId,
        token: &PageAccessToken,
    ) -> Result<Vec<Psid>, PageCheckError> {
        if self.refused.contains(page) {
            return Err(PageCheckError::TokenInvalid {
                code: 190,
                subcode: Some(460),
            });
        }
        self.inner.ids_for_pages(user, page, token).await
    }
}

fn digits(prefix: &str, len: usize) -> String {
    let b = qchat_shared::crypto::random_bytes::<8>();
    let n = u64::from_be_bytes(b) % 10u64.pow((len - prefix.len()) as u32);
    format!("{prefix}{n:0width$}", width = len - prefix.len())
}

impl Meta {
    async fn spawn(backend: Backend) -> Self {
        let mut t = TestApp::spawn(backend).await;
        let dir = tempfile::tempdir().expect("a temporary folder");
        let outbox = dir.path().join("messenger-outbox.jsonl");
        t.app.messenger = Arc::new(OutboxMessenger::new(
            outbox.clone(),
            t.app.clock.clone(),
            t.app.ids.clone(),
        ));
        let secret = Config::from_lookup(|name| {
            (name == "QCHAT_FB_APP_SECRET").then(|| META_SECRET.to_owned())
        })
        .expect("a configuration with the app secret");
        t.app = t
            .app
            .clone()
            .with_meta_secret_source(Arc::new(FixedSource::from_config(&secret.graph)));
        Self {
            t,
            outbox,
            _dir: dir,
        }
    }

    /// A signed-in account with a connected page (confirmed mode); returns the page id.
    async fn page(&self, label: &str) -> String {
        let (_, session) = self.t.signed_in_holder(label).await;
        let page = digits("1", 16);
        let token = format!("sample-page-token-{page}-{}", digits("", 8));
        self.t
            .post_json(
                "/api/pages",
                &json!({ "page_id": page, "page_access_token": token }),
                Some(&session),
            )
            .await
            .assert_status(201);
        page
    }

    /// A person writes to `page` (through the signed webhook): a lead appears.
    async fn lead(&self, page: &str, psid: &str) {
        let now = self.t.clock.now();
        let body = serde_json::to_vec(&json!({
            "object": "page",
            "entry": [{ "id": page, "time": now.millis(), "messaging": [{
                "sender": { "id": psid },
                "recipient": { "id": page },
                "timestamp": now.millis(),
                "message": { "mid": format!("m_{}", digits("", 12)), "text": "Hello" },
            }] }],
        }))
        .expect("JSON encodes");
        let signature = qchat_webhook::signature::sign(META_SECRET.as_bytes(), &body);
        self.t
            .request(
                Method::POST,
                "/webhook",
                Some(body),
                &[
                    ("content-type", "application/json"),
                    ("x-hub-signature-256", &signature),
                ],
            )
            .await
            .assert_status(200);
    }

    /// Makes the local stand-in for Meta know `user` as `psid` on `page`.
    fn knows(&self, user: &str, page: &str, psid: &str) {
        add_ids_for_pages(
            &self.outbox,
            &AppScopedUserId::parse(user).expect("an app-scoped id"),
            &PageId::parse(page).expect("a page id"),
            &Psid::parse(psid).expect("a psid"),
        )
        .expect("the mapping file is written");
    }

    /// Posts `signed_request` as Meta does.
    async fn callback(&self, signed_request: &str) -> TestResponse {
        let body = format!("signed_request={}", signed_request.replace('=', "%3D"));
        self.t
            .request(
                Method::POST,
                "/facebook/data-deletion",
                Some(body.into_bytes()),
                &[("content-type", "application/x-www-form-urlencoded")],
            )
            .await
    }

    fn signed(&self, user: &str) -> String {
        sign(META_SECRET.as_bytes(), &payload(user, self.t.clock.now()))
    }

    /// Runs the erasure runner (`qchat_erase::run_due`, which runs Meta's requests and the lead erasures
    /// they queue), a minute apart, until `code` is no longer queued.
    async fn run_until_done(&self, code: &str, messenger: Option<Arc<dyn Messenger>>) {
        let mut app = self.t.app.clone();
        if let Some(m) = messenger {
            app.messenger = m;
        }
        let jobs = Jobs::new(app.store.clone(), app.clock.clone(), app.ids.clone(), 900);
        for _ in 0..10 {
            qchat_erase::run_due(&app, "flows", self.t.clock.now().plus_secs(60))
                .await
                .expect("the runner runs");
            if !jobs.is_pending(code).await.expect("the queue is readable") {
                return;
            }
            self.t.clock.advance_secs(61);
        }
        panic!("the data-deletion job did not finish");
    }

    /// Whether the store holds a lead of `psid` on `page`.
    async fn has_lead(&self, page: &str, psid: &str) -> bool {
        let page = PageId::parse(page).expect("a page id");
        let subject = Subject::Psid(Psid::parse(psid).expect("a psid"));
        let Some(lead) = find_lead(&self.t.app, &page, &subject)
            .await
            .expect("the lookup answers")
        else {
            return false;
        };
        self.t
            .app
            .store
            .get(&lead_key(&page, &lead))
            .await
            .expect("the store answers")
            .is_some()
    }

    async fn status(&self, code: &str) -> Value {
        let status = self
            .t
            .get_json_accepting(&format!("/deletion/{code}"))
            .await;
        status.assert_status(200);
        status.json()
    }

    async fn queued_callbacks(&self) -> usize {
        self.t
            .app
            .store
            .query(&Query {
                index: Index::Gsi1,
                partition: due_partition(META_DELETION_JOB),
                range: KeyRange::All,
                order: Order::Ascending,
                limit: 100,
                cursor: None,
            })
            .await
            .expect("the queue is readable")
            .items
            .len()
    }
}

fn payload(user: &str, now: Timestamp) -> Value {
    json!({ "algorithm": "HMAC-SHA256", "expires": 0, "issued_at": now.secs(), "user_id": user })
}

/// The answer Meta requires: 200, JSON with the status page's URL and an alphanumeric code naming it.
fn code_of(response: &TestResponse) -> String {
    response.assert_status(200);
    let body = response.json();
    let code = body["confirmation_code"]
        .as_str()
        .expect("a confirmation code")
        .to_owned();
    assert!(!code.is_empty() && code.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        body["url"].as_str(),
        Some(format!("{PUBLIC_URL}/deletion/{code}").as_str())
    );
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(2),
        "url and code only"
    );
    code
}

/// A valid callback answers at once with the code; the status page says "in progress" until the job
/// has looked the person up on every page (a page whose token Meta refuses is skipped and counted) and
/// every erasure it queued is done, then "completed" with the counts. Only the person's lead, on the
/// page where Meta knows them, is erased; their app-scoped id is nowhere in the store, the answer, the
/// receipt or the logs.
pub async fn metas_deletion_callback_answers_a_code_whose_status_page_completes_after_the_job(
    backend: Backend,
) {
    let logs = qchat_shared::test_support::logs::capture();
    let meta = Meta::spawn(backend).await;
    let (page, other_page, refused_page) = (
        meta.page("meta-a").await,
        meta.page("meta-b").await,
        meta.page("meta-c").await,
    );
    let (user, psid, bystander, stranger) = (
        digits("1015", 17),
        digits("27", 16),
        digits("27", 16),
        digits("27", 16),
    );
    meta.lead(&page, &psid).await;
    meta.lead(&page, &bystander).await;
    meta.lead(&refused_page, &stranger).await;
    meta.knows(&user, &page, &psid);
    let signed = meta.signed(&user);

    let answer = meta.callback(&signed).await;
    let code = code_of(&answer);
    answer.assert_does_not_echo(&[&user, &signed]);
    let status = meta.status(&code).await;
    assert_eq!(status["status"], "in_progress");
    let raw = meta.t.raw_store().await;
    assert_eq!(raw.of_type("meta_deletion_subject").count(), 1);
    assert!(
        raw.find(&[&user]).is_empty(),
        "the app-scoped id is stored only sealed"
    );

    let refusing: Arc<dyn Messenger> = Arc::new(RefusingPages {
        inner: meta.t.app.messenger.clone(),
        refused: vec![PageId::parse(&refused_page).expect("a page id")],
    });
    meta.run_until_done(&code, Some(refusing)).await;

    assert!(
        !meta.has_lead(&page, &psid).await,
        "the person's lead, on the page Meta knows them on, is erased"
    );
    assert!(
        meta.has_lead(&page, &bystander).await,
        "another person's lead stays"
    );
    assert!(
        meta.has_lead(&refused_page, &stranger).await,
        "a page Meta would not answer for keeps its leads"
    );
    let status = meta.status(&code).await;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["erased"], json!({ "leads": 1 }));
    let receipt = Jobs::new(
        meta.t.app.store.clone(),
        meta.t.app.clock.clone(),
        meta.t.app.ids.clone(),
        0,
    )
    .receipt(&code)
    .await
    .expect("the receipt is readable")
    .expect("a receipt");
    let receipt = MetaReceipt::parse(&receipt).expect("the receipt's shape");
    assert_eq!((receipt.pages_checked, receipt.pages_skipped), (2, 1));
    let _ = other_page;
    let html = meta.t.get(&format!("/deletion/{code}"), None).await;
    html.assert_status(200);
    assert!(html.text().contains("complete"));

    let raw = meta.t.raw_store().await;
    assert_eq!(
        raw.of_type("meta_deletion_subject").count(),
        0,
        "the subject went with the mapping"
    );
    assert!(raw.find(&[&user, &psid]).is_empty());
    meta.t.assert_every_stored_attribute_is_declared().await;
    logs.assert_absent(&[&user, &psid, &bystander, &stranger, &signed]);
}

/// Someone qchat holds nothing of gets the very answer someone with leads gets, and a receipt that
/// counts zero; a second callback for the same person, after the first was carried out, is answered
/// the same way and finds nothing more to erase.
pub async fn a_callback_about_nobody_is_answered_like_any_other_and_a_repeat_is_harmless(
    backend: Backend,
) {
    let meta = Meta::spawn(backend).await;
    let page = meta.page("meta-nobody").await;
    let (known, psid, nobody) = (digits("1015", 17), digits("27", 16), digits("1015", 17));
    meta.lead(&page, &psid).await;
    meta.knows(&known, &page, &psid);

    let mut answers = vec![
        meta.callback(&meta.signed(&known)).await,
        meta.callback(&meta.signed(&nobody)).await,
    ];
    for answer in &answers {
        meta.run_until_done(&code_of(answer), None).await;
    }
    assert!(!meta.has_lead(&page, &psid).await, "the lead is erased");
    answers.push(meta.callback(&meta.signed(&known)).await);
    let codes: Vec<String> = answers.iter().map(code_of).collect();
    assert!(codes[0] != codes[1] && codes[0] != codes[2] && codes[1] != codes[2]);
    let shape = |r: &TestResponse| {
        let mut v = r.json();
        v["confirmation_code"] = json!("");
        v["url"] = json!(v["url"].as_str().map(|u| u.len()));
        (r.status, v, r.header("content-type").map(str::to_owned))
    };
    assert_eq!(shape(&answers[0]), shape(&answers[1]));
    assert_eq!(shape(&answers[0]), shape(&answers[2]));

    meta.run_until_done(&codes[2], None).await;
    let counted: Vec<Value> = {
        let mut out = Vec::new();
        for code in &codes {
            let status = meta.status(code).await;
            assert_eq!(status["status"], "completed");
            out.push(status["erased"].clone());
        }
        out
    };
    assert_eq!(
        counted,
        vec![
            json!({"leads": 1}),
            json!({"leads": 0}),
            json!({"leads": 0})
        ]
    );
}

/// Every way a `signed_request` can be wrong is a 400 naming the rule, echoing nothing and queuing
/// nothing: tampered payload or signature, another secret, another algorithm, too old, from the future,
/// bad base64, oversized, missing, not JSON, no user id.
pub async fn every_signed_request_attack_is_refused_with_the_rule_and_queues_nothing(
    backend: Backend,
) {
    let meta = Meta::spawn(backend).await;
    let now = meta.t.clock.now();
    let user = digits("1015", 17);
    let key = META_SECRET.as_bytes();
    let good = meta.signed(&user);
    let (sig, body) = good.split_once('.').expect("two parts");
    let with = |field: &str, value: Value| {
        let mut p = payload(&user, now);
        p[field] = value;
        sign(key, &p)
    };
    let other_user = sign(key, &payload(&digits("1015", 17), now));
    let (_, other_body) = other_user.split_once('.').expect("two parts");
    let cases: Vec<(String, &str)> = vec![
        (format!("{sig}.{other_body}"), "signature"),
        // One character of the signature changed (in the middle: the last one carries unused bits).
        (
            format!(
                "{}{}{}.{body}",
                &sig[..10],
                if sig[10..].starts_with('A') { "B" } else { "A" },
                &sig[11..]
            ),
            "signature",
        ),
        (
            sign(b"another-app-secret", &payload(&user, now)),
            "signature",
        ),
        (with("algorithm", json!("HMAC-SHA1")), "algorithm"),
        (with("issued_at", json!(now.secs() - 7200)), "hour"),
        (with("issued_at", json!(now.secs() + 3600)), "future"),
        (format!("{sig}.{body}!"), "base64url"),
        (with("padding", json!("x".repeat(5000))), "4096"),
        (String::new(), "not <signature>.<payload>"),
        (sign_encoded(key, "bm90IGpzb24"), "JSON"),
        (with("user_id", json!("")), "user_id"),
    ];
    let logs = qchat_shared::test_support::logs::capture();
    for (raw, rule) in &cases {
        let answer = meta.callback(raw).await;
        answer.assert_error(400, "invalid_signed_request");
        let message = answer.json()["error"]["message"]
            .as_str()
            .expect("a message")
            .to_owned();
        assert!(
            message.contains(rule),
            "{message:?} names the rule {rule:?}"
        );
        if raw.len() > 8 {
            answer.assert_does_not_echo(&[&user, &raw[..8]]);
        }
    }
    // The form field missing altogether, and a body far too large to be a signed_request.
    let missing = meta
        .t
        .request(
            Method::POST,
            "/facebook/data-deletion",
            Some(b"other=1".to_vec()),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    missing.assert_error(400, "invalid_signed_request");
    let huge = format!("signed_request={}", "a".repeat(64 * 1024));
    meta.t
        .request(
            Method::POST,
            "/facebook/data-deletion",
            Some(huge.into_bytes()),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await
        .assert_error(400, "invalid_signed_request");

    assert_eq!(meta.queued_callbacks().await, 0, "nothing queued");
    assert_eq!(
        meta.t
            .raw_store()
            .await
            .of_type("meta_deletion_subject")
            .count(),
        0
    );
    logs.assert_absent(&[&user, &good]);
    // And the genuine request still works.
    code_of(&meta.callback(&good).await);
    assert_eq!(meta.queued_callbacks().await, 1);
}

/// A signed-in account with a connected page named `name`; returns the page id and the session.
async fn named_page(meta: &Meta, label: &str, name: &str) -> (String, String) {
    let (_, session) = meta.t.signed_in_holder(label).await;
    let page = digits("1", 16);
    let token = format!("sample-page-token-{page}-{}", digits("", 8));
    meta.t
        .post_json(
            "/api/pages",
            &json!({ "page_id": page, "page_access_token": token, "name": name }),
            Some(&session),
        )
        .await
        .assert_status(201);
    (page, session)
}

/// The status page of a finished erasure names its page as it is named now: the lead erasure's page by
/// its public name; once the page is disconnected, a neutral phrase instead (in the reader's language),
/// on that page and on the disconnect's own receipt; never the page id, the person or the account.
pub async fn a_status_page_names_the_erasures_page_while_it_is_connected_and_says_so_when_not(
    backend: Backend,
) {
    let meta = Meta::spawn(backend).await;
    let (page, session) = named_page(&meta, "status-name", "Ana <Bakery> & Co").await;
    let psid = digits("27", 16);
    meta.lead(&page, &psid).await;
    let leads = meta
        .t
        .get(&format!("/api/pages/{page}/leads"), Some(&session))
        .await;
    leads.assert_status(200);
    let lead = leads.json()["leads"][0]["id"]
        .as_str()
        .expect("a lead id")
        .to_owned();
    let erased = meta
        .t
        .delete(&format!("/api/pages/{page}/leads/{lead}"), Some(&session))
        .await;
    erased.assert_status(202);
    let code = erased.json()["erasure"]["confirmation_code"]
        .as_str()
        .expect("a code")
        .to_owned();
    assert_eq!(
        meta.status(&code).await["pages"],
        json!([]),
        "in progress, no page is named yet"
    );
    meta.run_until_done(&code, None).await;

    let status = meta.status(&code).await;
    assert_eq!(status["status"], "completed");
    assert_eq!(
        status["pages"],
        json!([{ "name": "Ana <Bakery> & Co", "connected": true }])
    );
    let html = meta.t.get(&format!("/deletion/{code}"), None).await;
    html.assert_status(200);
    let text = html.text();
    assert!(
        text.contains("<p>Page: <strong>Ana &lt;Bakery&gt; &amp; Co</strong></p>"),
        "the name, escaped: {text}"
    );
    html.assert_does_not_echo(&[&page, &psid, &lead]);

    // Disconnected: the name is gone with the page, and both receipts say so.
    let disconnected = meta
        .t
        .delete(&format!("/api/pages/{page}"), Some(&session))
        .await;
    disconnected.assert_status(202);
    let page_code = disconnected.json()["erasure"]["confirmation_code"]
        .as_str()
        .expect("a code")
        .to_owned();
    meta.run_until_done(&page_code, None).await;
    for code in [&code, &page_code] {
        let status = meta.status(code).await;
        assert_eq!(status["status"], "completed");
        assert_eq!(
            status["pages"],
            json!([{ "name": null, "connected": false }])
        );
        let html = meta.t.get(&format!("/deletion/{code}"), None).await;
        let text = html.text();
        assert!(
            text.contains("<p>Page: a page that is no longer connected to qchat</p>"),
            "{text}"
        );
        assert!(!text.contains("Bakery"));
        html.assert_does_not_echo(&[&page, &psid, &lead]);
        let german = meta
            .t
            .request(
                Method::GET,
                &format!("/deletion/{code}"),
                None,
                &[("accept-language", "de")],
            )
            .await;
        assert!(
            german
                .text()
                .contains("<p>Seite: eine Seite, die nicht mehr mit qchat verbunden ist</p>")
        );
    }
    meta.t.assert_every_stored_attribute_is_declared().await;
}

/// Meta's callback covers every page the person is found on: its status page names each of them (in
/// the order found; one without a public name as such), and no page the person was not found on.
pub async fn a_meta_deletion_status_page_names_every_page_the_person_was_found_on(
    backend: Backend,
) {
    let meta = Meta::spawn(backend).await;
    let (bakery, _) = named_page(&meta, "status-meta-a", "Ana Bakery").await;
    let (bikes, _) = named_page(&meta, "status-meta-b", "Bea Bikes").await;
    let (elsewhere, _) = named_page(&meta, "status-meta-c", "Cy Cafe").await;
    let unnamed = meta.page("status-meta-d").await;
    let (user, on_bakery, on_bikes, on_unnamed, bystander) = (
        digits("1015", 17),
        digits("27", 16),
        digits("27", 16),
        digits("27", 16),
        digits("27", 16),
    );
    for (page, psid) in [
        (&bakery, &on_bakery),
        (&bikes, &on_bikes),
        (&unnamed, &on_unnamed),
        (&elsewhere, &bystander),
    ] {
        meta.lead(page, psid).await;
    }
    meta.knows(&user, &bakery, &on_bakery);
    meta.knows(&user, &bikes, &on_bikes);
    meta.knows(&user, &unnamed, &on_unnamed);
    let code = code_of(&meta.callback(&meta.signed(&user)).await);
    meta.run_until_done(&code, None).await;

    let status = meta.status(&code).await;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["erased"], json!({ "leads": 3 }));
    let mut names: Vec<Value> = status["pages"]
        .as_array()
        .expect("pages")
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    // The order is the order the person was found in, which follows the store's order of accounts.
    names.sort_by_key(|n| n.to_string());
    assert_eq!(
        names,
        vec![json!("Ana Bakery"), json!("Bea Bikes"), Value::Null]
    );
    assert_eq!(status["more_pages"], 0);
    let html = meta.t.get(&format!("/deletion/{code}"), None).await;
    let text = html.text();
    assert!(text.contains("<p>Pages:</p><ul>"), "{text}");
    for shown in [
        "<li><strong>Ana Bakery</strong></li>",
        "<li><strong>Bea Bikes</strong></li>",
        "<li>a page without a public name</li>",
    ] {
        assert!(text.contains(shown), "{shown} in {text}");
    }
    assert!(!text.contains("Cy Cafe"), "a page the person was not on");
    html.assert_does_not_echo(&[&user, &on_bakery, &on_bikes, &on_unnamed, &bakery, &bikes]);
}
