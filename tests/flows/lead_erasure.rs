//! One lead's export and erasure: `GET /api/pages/{page_id}/leads/{lead_id}/export`,
//! `DELETE /api/pages/{page_id}/leads/{lead_id}` and "DELETE MY DATA" in Messenger, run by the erase
//! function's runner (`qchat_erase::run_due`). Leads are made through the real webhook route; what is
//! left is read from the raw store, below every qchat abstraction.

use std::sync::Arc;

use http::Method;
use qchat_shared::app::{App, account_key_owner};
use qchat_shared::clock::{Clock as _, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::domain::{AccountId, LeadId, PageId};
use qchat_shared::http::ClientAddr;
use qchat_shared::inventory::{LEAD, REPLY};
use qchat_shared::jobs::{Job, JobHandler, Jobs, Step};
use qchat_shared::leads::erase_lead::{LEAD_ERASURE_JOB, LeadErasure, OUTSIDE_WINDOW};
use qchat_shared::replies::reply_key;
use qchat_shared::store::{Condition, Item, Value};
use qchat_shared::test_support::logs;
use serde_json::{Value as Json, json};

use crate::helpers::{Backend, RawStore, TestApp};

const APP_SECRET: &str = "flows-app-secret-for-lead-erasure";

/// The test app, plus the same app configured with a Meta app secret so `POST /webhook` accepts events.
pub(crate) struct Site {
    pub(crate) t: TestApp,
    webhook: App,
}

pub(crate) fn page_id() -> String {
    let b = qchat_shared::crypto::random_bytes::<8>();
    format!("1{:015}", u64::from_be_bytes(b) % 1_000_000_000_000_000)
}

pub(crate) fn psid() -> String {
    let b = qchat_shared::crypto::random_bytes::<8>();
    format!("28{:014}", u64::from_be_bytes(b) % 100_000_000_000_000)
}

pub(crate) fn mid() -> String {
    format!(
        "m_{}",
        hex::encode(qchat_shared::crypto::random_bytes::<12>())
    )
}

pub(crate) fn message(page: &str, psid: &str, mid: &str, text: &str, at: Timestamp) -> Json {
    json!({
        "sender": { "id": psid }, "recipient": { "id": page }, "timestamp": at.millis(),
        "message": { "mid": mid, "text": text },
    })
}

fn marketing_optin(page: &str, psid: &str, token: &str, at: Timestamp) -> Json {
    json!({
        "sender": { "id": psid }, "recipient": { "id": page }, "timestamp": at.millis(),
        "optin": { "type": "notification_messages", "payload": "deals",
                   "notification_messages_token": token },
    })
}

impl Site {
    pub(crate) async fn spawn(backend: Backend) -> Self {
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

    pub(crate) async fn events(&self, page: &str, messaging: Vec<Json>) {
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
        assert_eq!(response.status().as_u16(), 200);
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.t.clock.now()
    }

    /// A signed-in holder with a connected page in implicit mode: (token, page, account id).
    pub(crate) async fn holder_with_page(&self, label: &str) -> (String, String, AccountId) {
        let (holder, token) = self.t.signed_in_holder(label).await;
        let page = page_id();
        self.t
            .post_json(
                "/api/pages",
                &json!({ "page_id": page, "page_access_token": format!("sample-page-token-{page}"),
                         "consent_mode": "implicit" }),
                Some(&token),
            )
            .await
            .assert_status(201);
        let account = self
            .t
            .account_id_of(&holder.email)
            .await
            .expect("an account");
        (
            token,
            page,
            AccountId::parse(&account).expect("an account id"),
        )
    }

    /// The lead id of the page's only lead written by `psid` (the newest listed, by status subscribed).
    pub(crate) async fn lead_of(&self, token: &str, page: &str, psid: &str) -> String {
        let list = self
            .t
            .get(&format!("/api/pages/{page}/leads"), Some(token))
            .await
            .json();
        let page_id = PageId::parse(page).expect("page");
        for lead in list["leads"].as_array().expect("leads") {
            let id = lead["id"].as_str().expect("id").to_owned();
            let export = self
                .t
                .get(
                    &format!("/api/pages/{page_id}/leads/{id}/export"),
                    Some(token),
                )
                .await
                .json();
            if export["lead"]["subject"] == psid {
                return id;
            }
        }
        panic!("no lead of this person");
    }

    fn jobs(&self) -> Jobs {
        Jobs::new(
            self.t.app.store.clone(),
            self.t.app.clock.clone(),
            self.t.app.ids.clone(),
            900,
        )
    }

    /// Runs the erase function's runner a minute apart until `job` is finished.
    pub(crate) async fn run_erasures(&self, job: &str) {
        for _ in 0..20 {
            if !self.jobs().is_pending(job).await.expect("read") {
                return;
            }
            qchat_erase::run_due(&self.t.app, "flows-erase", self.now().plus_secs(60))
                .await
                .expect("the runner runs");
            self.t.clock.advance_secs(60);
        }
        panic!("the lead erasure did not finish");
    }

    pub(crate) async fn send_replies(&self) {
        qchat_notify::drain_due_replies(&self.t.app, self.now().plus_secs(60))
            .await
            .expect("replies drain");
    }

    /// A broadcast of `page` with a delivery record for `lead`, as the sender writes them.
    async fn seed_delivery(&self, page: &str, lead: &str) {
        use qchat_shared::broadcast::{BroadcastId, broadcast_key, sender::delivery_key};
        use qchat_shared::inventory::{BROADCAST, DELIVERY};
        let page = PageId::parse(page).expect("page");
        let lead = LeadId::parse(lead).expect("lead");
        let id = BroadcastId::parse(&format!(
            "{}-{}",
            self.now().sort_key(),
            hex::encode(qchat_shared::crypto::random_bytes::<4>())
        ))
        .expect("id");
        let b = Item::new(&BROADCAST, broadcast_key(&page, &id))
            .plain("state", Value::S("done".into()))
            .and_then(|i| i.plain("created", Value::N(self.now().millis())))
            .expect("broadcast");
        self.t
            .app
            .store
            .put(b, Condition::NotExists)
            .await
            .expect("put");
        let d = Item::new(&DELIVERY, delivery_key(&page, &id, &lead))
            .plain("state", Value::S("sent".into()))
            .and_then(|i| i.plain("via", Value::S("update".into())))
            .expect("delivery")
            .expires_at(self.now().plus_days(30));
        self.t
            .app
            .store
            .put(d, Condition::NotExists)
            .await
            .expect("put");
    }
}

/// Every stored item that names `lead` in a key or attribute (its id is a keyed hash, so only its items
/// carry it), by item type and attribute. Items only: SQLite keeps a deleted row's bytes in free pages
/// and its write-ahead log until they are reused (see the README), so the files are not searched for it.
fn items_naming(raw: &RawStore, lead: &str) -> Vec<(usize, String)> {
    raw.find(&[lead])
        .into_iter()
        .filter(|(_, place)| !place.starts_with("file "))
        .collect()
}

pub async fn erasing_a_lead_removes_every_item_and_byte_of_it_and_nothing_of_another_lead(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let log = logs::capture();
    let (token, page, _) = site.holder_with_page("lead-erase").await;
    let (gone, kept) = (psid(), psid());
    let mm_token = format!(
        "mm-{}",
        hex::encode(qchat_shared::crypto::random_bytes::<8>())
    );
    site.events(
        &page,
        vec![
            message(&page, &gone, &mid(), "hello", site.now()),
            message(&page, &kept, &mid(), "hello", site.now()),
        ],
    )
    .await;
    site.events(
        &page,
        vec![marketing_optin(&page, &gone, &mm_token, site.now())],
    )
    .await;
    let lead = site.lead_of(&token, &page, &gone).await;
    let other = site.lead_of(&token, &page, &kept).await;
    site.seed_delivery(&page, &lead).await;
    site.seed_delivery(&page, &other).await;
    let raw = site.t.raw_store().await;
    assert!(!raw.find(&[&gone]).is_empty() || !items_naming(&raw, &lead).is_empty());

    let first = site
        .t
        .delete(&format!("/api/pages/{page}/leads/{lead}"), Some(&token))
        .await;
    first.assert_status(202);
    let code = first.json()["erasure"]["confirmation_code"]
        .as_str()
        .expect("a code")
        .to_owned();
    assert!(
        first.json()["erasure"]["status_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/deletion/{code}")))
    );
    // Asked again while it runs: the same erasure.
    let again = site
        .t
        .delete(&format!("/api/pages/{page}/leads/{lead}"), Some(&token))
        .await;
    again.assert_status(202);
    assert_eq!(again.json()["erasure"]["confirmation_code"], code.as_str());
    let status = site
        .t
        .get_json_accepting(&format!("/deletion/{code}"))
        .await;
    assert_eq!(status.json()["status"], "in_progress");

    site.run_erasures(&code).await;

    let raw = site.t.raw_store().await;
    assert_eq!(items_naming(&raw, &lead), vec![], "no item names the lead");
    assert_eq!(
        raw.find(&[&gone, &mm_token]),
        vec![],
        "no byte of its values"
    );
    assert!(
        !items_naming(&raw, &other).is_empty(),
        "the other lead stays"
    );
    let other_export = site
        .t
        .get(
            &format!("/api/pages/{page}/leads/{other}/export"),
            Some(&token),
        )
        .await;
    other_export.assert_status(200);
    assert_eq!(other_export.json()["lead"]["subject"], kept.as_str());
    assert_eq!(
        other_export.json()["lead"]["deliveries"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // The receipt: counts, a time and the page (not personal, so the status page can name it), nothing
    // naming the lead or the person.
    let status = site
        .t
        .get_json_accepting(&format!("/deletion/{code}"))
        .await;
    let body = status.json();
    assert_eq!(body["status"], "completed");
    assert_eq!(body["erased"]["leads"], 1);
    assert_eq!(body["erased"]["deliveries"], 1);
    assert!(body["erased"]["consent_records"].as_u64() >= Some(2));
    assert_eq!(body["erased"]["unsubscribe_links"], 1);
    let job = raw
        .of_type("job")
        .find(|j| j.text("kind").as_deref() == Some(LEAD_ERASURE_JOB))
        .expect("the receipt is kept");
    for (name, value) in &job.attributes {
        let text = String::from_utf8_lossy(value);
        for held in [lead.as_str(), gone.as_str()] {
            assert!(!text.contains(held), "the receipt's {name} names it");
        }
    }
    let receipt = job.text("cursor").expect("the receipt");
    let receipt: serde_json::Value = serde_json::from_str(&receipt).expect("the receipt is JSON");
    assert_eq!(receipt["pages"], serde_json::json!([page.as_str()]));

    // Erased: a third DELETE and an export are 404.
    site.t
        .delete(&format!("/api/pages/{page}/leads/{lead}"), Some(&token))
        .await
        .assert_error(404, "not_found");
    site.t
        .get(
            &format!("/api/pages/{page}/leads/{lead}/export"),
            Some(&token),
        )
        .await
        .assert_error(404, "not_found");
    log.assert_absent(&[&gone, &kept, &mm_token]);
}

pub async fn delete_my_data_in_messenger_erases_the_lead_and_confirms_with_the_status_page(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let log = logs::capture();
    let (token, page, account) = site.holder_with_page("dmd").await;
    let person = psid();
    let hello = message(&page, &person, &mid(), "hello", site.now());
    site.events(&page, vec![hello.clone()]).await;
    let lead = site.lead_of(&token, &page, &person).await;
    site.t.clock.advance_secs(5);
    site.events(
        &page,
        vec![message(
            &page,
            &person,
            &mid(),
            "DELETE MY DATA",
            site.now(),
        )],
    )
    .await;
    // Frozen: a "Yes" meanwhile changes nothing.
    site.events(
        &page,
        vec![message(&page, &person, &mid(), "START", site.now())],
    )
    .await;
    site.send_replies().await;
    let job = site
        .t
        .raw_store()
        .await
        .of_type("job")
        .find(|j| j.text("kind").as_deref() == Some(LEAD_ERASURE_JOB))
        .map(|j| {
            String::from_utf8_lossy(j.get("pk").expect("pk"))
                .trim_start_matches("JOB#")
                .to_owned()
        })
        .expect("the erasure is queued");
    site.run_erasures(&job).await;
    site.send_replies().await;

    // The confirmation went out after the erasure, with the status page of its code.
    let raw = site.t.raw_store().await;
    let confirmation = raw
        .of_type("reply")
        .find(|r| r.text("pk").is_some_and(|pk| pk.ends_with("-erased")))
        .expect("the confirmation reply");
    assert_eq!(confirmation.text("state").as_deref(), Some("sent"));
    let pk = confirmation.text("pk").expect("pk");
    let item = site
        .t
        .app
        .store
        .get(&reply_key(pk.trim_start_matches("REPLY#")))
        .await
        .expect("read")
        .expect("the reply");
    let text = site
        .t
        .app
        .keys
        .open(
            &account_key_owner(&account),
            item.key(),
            "text",
            &item.get_sealed("text").expect("sealed text"),
        )
        .await
        .expect("opens");
    let text = text.as_str().expect("utf-8").to_owned();
    assert!(text.contains(&format!("/deletion/{job}")), "{text}");
    assert_eq!(
        site.t
            .get_json_accepting(&format!("/deletion/{job}"))
            .await
            .json()["status"],
        "completed"
    );
    assert_eq!(items_naming(&raw, &lead), vec![]);

    // Meta delivers the old message again: a duplicate, nothing comes back.
    site.events(&page, vec![hello]).await;
    assert_eq!(items_naming(&site.t.raw_store().await, &lead), vec![]);
    // A new message after the erasure starts afresh, as a stranger's would: a new lead, under a new
    // random id (the erased lead's lookup is gone with it).
    site.events(
        &page,
        vec![message(&page, &person, &mid(), "hi again", site.now())],
    )
    .await;
    let again = site.lead_of(&token, &page, &person).await;
    assert_ne!(again, lead);
    assert_eq!(items_naming(&site.t.raw_store().await, &lead), vec![]);
    log.assert_absent(&[&person]);
}

pub async fn an_erasure_finished_after_metas_window_sends_no_confirmation_and_says_why(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let (token, page, _) = site.holder_with_page("dmd-late").await;
    let person = psid();
    site.events(
        &page,
        vec![message(&page, &person, &mid(), "hello", site.now())],
    )
    .await;
    let lead = site.lead_of(&token, &page, &person).await;
    site.events(
        &page,
        vec![message(
            &page,
            &person,
            &mid(),
            "DELETE MY DATA",
            site.now(),
        )],
    )
    .await;
    site.t.clock.advance_secs(25 * 3600);
    let job = site
        .t
        .raw_store()
        .await
        .of_type("job")
        .find(|j| j.text("kind").as_deref() == Some(LEAD_ERASURE_JOB))
        .and_then(|j| j.text("pk"))
        .map(|pk| pk.trim_start_matches("JOB#").to_owned())
        .expect("queued");
    site.run_erasures(&job).await;
    site.send_replies().await;
    let raw = site.t.raw_store().await;
    let confirmation = raw
        .of_type("reply")
        .find(|r| r.text("pk").is_some_and(|pk| pk.ends_with("-erased")))
        .expect("the confirmation reply");
    assert_eq!(confirmation.text("state").as_deref(), Some("failed"));
    assert_eq!(
        confirmation.text("failure").as_deref(),
        Some(OUTSIDE_WINDOW)
    );
    assert!(confirmation.get("recipient").is_none() && confirmation.get("text").is_none());
    assert_eq!(items_naming(&raw, &lead), vec![]);
}

pub async fn the_export_holds_every_personal_attribute_the_inventory_declares_for_a_lead(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let (token, page, _) = site.holder_with_page("export").await;
    let person = psid();
    let mm_token = format!(
        "mm-{}",
        hex::encode(qchat_shared::crypto::random_bytes::<8>())
    );
    site.events(
        &page,
        vec![message(&page, &person, &mid(), "hello", site.now())],
    )
    .await;
    site.events(
        &page,
        vec![marketing_optin(&page, &person, &mm_token, site.now())],
    )
    .await;
    let lead = site.lead_of(&token, &page, &person).await;
    let export = site
        .t
        .get(
            &format!("/api/pages/{page}/leads/{lead}/export"),
            Some(&token),
        )
        .await;
    export.assert_status(200);
    let body = export.json();
    assert_eq!(
        body["schema_version"],
        qchat_erase::LEAD_EXPORT_SCHEMA_VERSION
    );
    for attr in LEAD.attributes.iter().filter(|a| a.personal) {
        assert!(
            body["lead"].get(attr.name).is_some(),
            "the export lacks the lead's {}",
            attr.name
        );
    }
    let replies = body["pending_replies"].as_array().expect("pending replies");
    assert!(!replies.is_empty(), "the unsent replies are held, so shown");
    for attr in REPLY.attributes.iter().filter(|a| a.personal) {
        assert!(
            replies[0].get(attr.name).is_some(),
            "the export lacks a reply's {}",
            attr.name
        );
    }
    assert_eq!(body["lead"]["subject"], person.as_str());
    assert_eq!(body["lead"]["marketing_token"], mm_token.as_str());
    assert_eq!(replies[0]["recipient"], person.as_str());
    assert_eq!(body["lead"]["chain"]["intact"], true);
    assert!(
        body["lead"]["consent_history"]
            .as_array()
            .is_some_and(|h| h.len() >= 2)
    );
    assert_eq!(body["lead"]["unsubscribe_link"]["active"], true);
}

pub async fn another_accounts_lead_a_missing_one_and_a_malformed_id_get_the_same_404(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let (alice, page, _) = site.holder_with_page("alice").await;
    let (bob, bobs_page, _) = site.holder_with_page("bob").await;
    let person = psid();
    site.events(
        &page,
        vec![message(&page, &person, &mid(), "hello", site.now())],
    )
    .await;
    let lead = site.lead_of(&alice, &page, &person).await;
    let paths = [
        format!("/api/pages/{page}/leads/{lead}"),
        format!("/api/pages/{bobs_page}/leads/{lead}"),
        format!("/api/pages/{page}/leads/{}", "b".repeat(26)),
        format!("/api/pages/{page}/leads/NOT-AN-ID"),
        format!("/api/pages/{}/leads/{lead}", page_id()),
    ];
    let mut bodies = Vec::new();
    for path in &paths {
        for (method, path) in [
            (Method::DELETE, path.clone()),
            (Method::GET, format!("{path}/export")),
        ] {
            let r = if method == Method::DELETE {
                site.t.delete(&path, Some(&bob)).await
            } else {
                site.t.get(&path, Some(&bob)).await
            };
            r.assert_error(404, "not_found");
            bodies.push(r.body.clone());
        }
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one 404 for all");
    // Nothing was queued and the lead is whole.
    let raw = site.t.raw_store().await;
    assert_eq!(
        raw.of_type("job")
            .filter(|j| j.text("kind").as_deref() == Some(LEAD_ERASURE_JOB))
            .count(),
        0
    );
    site.t
        .get(
            &format!("/api/pages/{page}/leads/{lead}/export"),
            Some(&alice),
        )
        .await
        .assert_status(200);
    site.t
        .delete(&format!("/api/pages/{page}/leads/{lead}"), None)
        .await
        .assert_error(401, "unauthenticated");
}

pub async fn a_lead_erasure_cut_at_every_step_or_repeated_after_a_lost_lease_finishes_once(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let (token, page, _) = site.holder_with_page("resume").await;
    let person = psid();
    site.events(
        &page,
        vec![message(&page, &person, &mid(), "hello", site.now())],
    )
    .await;
    let lead = site.lead_of(&token, &page, &person).await;
    site.seed_delivery(&page, &lead).await;
    let code = site
        .t
        .delete(&format!("/api/pages/{page}/leads/{lead}"), Some(&token))
        .await
        .json()["erasure"]["confirmation_code"]
        .as_str()
        .expect("code")
        .to_owned();
    let item = site
        .t
        .app
        .store
        .get(&qchat_shared::store::ItemKey::new(
            format!("JOB#{code}"),
            "JOB",
        ))
        .await
        .expect("read")
        .expect("the job");
    let job = Job {
        id: code.clone(),
        kind: LEAD_ERASURE_JOB.to_owned(),
        params: item.get_str("params").expect("params").to_owned(),
        due_at: site.now(),
        attempts: 0,
    };
    let handler = LeadErasure::new(
        site.t.app.store.clone(),
        site.t.app.key_store.clone(),
        site.t.app.clock.clone(),
    );
    // Every step runs twice from the same checkpoint, as after a lost lease or a crash before the
    // checkpoint: the second run finds nothing the first deleted, so nothing is counted twice.
    let mut cursor: Option<String> = None;
    let mut before = json!({ "leads": 0, "consent_records": 0, "unsubscribe_links": 0,
                             "pending_replies": 0, "sent_replies": 0, "deliveries": 0,
                             "lead_keys": 0 });
    let mut steps = 0;
    let receipt = loop {
        steps += 1;
        assert!(steps < 20, "the erasure finishes");
        let first = handler.step(&job, cursor.as_deref()).await.expect("step");
        let again = handler.step(&job, cursor.as_deref()).await.expect("step");
        match (first, again) {
            (Step::Continue(a), Step::Continue(b)) => {
                let (a, b): (Json, Json) = (
                    serde_json::from_str(&a).expect("json"),
                    serde_json::from_str(&b).expect("json"),
                );
                assert_eq!(
                    b["erased"], before,
                    "the repeated step found nothing to erase"
                );
                before = a["erased"].clone();
                cursor = Some(serde_json::to_string(&a).expect("json"));
            }
            (Step::DoneWithReceiptOnly(a), Step::DoneWithReceiptOnly(_)) => break a,
            other => panic!("unexpected {other:?}"),
        }
    };
    let receipt: Json = serde_json::from_str(&receipt).expect("receipt");
    assert_eq!(receipt["erased"]["leads"], 1);
    assert_eq!(receipt["erased"]["deliveries"], 1);
    assert_eq!(receipt["erased"]["unsubscribe_links"], 1);
    assert_eq!(receipt["erased"]["lead_keys"], 1);
    assert!(receipt["erased"]["consent_records"].as_u64() >= Some(1));
    assert!(receipt["erased"]["pending_replies"].as_u64() >= Some(1));
    // And cut by deadlines, run by the runner in the queue, the real job finishes.
    site.run_erasures(&code).await;
    assert_eq!(items_naming(&site.t.raw_store().await, &lead), vec![]);
}
