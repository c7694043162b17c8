//! `GET /api/pages/{page_id}/leads/{lead_id}`: the full consent history, and the chain check that shows
//! an edited or removed record.

use http::{Method, StatusCode};
use qchat_shared::domain::{LeadId, PageId};
use qchat_shared::leads::consent::history_partition;
use qchat_shared::leads::{Action, LeadStatus};
use qchat_shared::store::{Condition, ItemKey, Value};
use serde_json::json;

use crate::helpers::{Backend, Holder, SeededLead, TestApp, psid};

fn record_key(page: &str, lead: &str, seq: u64) -> ItemKey {
    let page = PageId::parse(page).expect("page");
    let lead = LeadId::parse(lead).expect("lead");
    ItemKey::new(history_partition(&page, &lead), format!("SEQ#{seq:010}"))
}

async fn seeded(t: &TestApp, page: &str) -> (Holder, SeededLead) {
    let h = t.holder("detail").await;
    t.page(&h, page, Some("Shop")).await;
    let lead = t
        .lead(
            &h,
            page,
            &psid(),
            LeadStatus::Subscribed,
            &[
                Action::ConfirmationRequested,
                Action::OptIn,
                Action::MarketingOptIn,
            ],
        )
        .await;
    (h, lead)
}

async fn detail(t: &TestApp, h: &Holder, page: &str, lead: &str) -> serde_json::Value {
    let r = t
        .optin(
            Method::GET,
            &format!("/api/pages/{page}/leads/{lead}"),
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.json()
}

pub async fn a_lead_comes_with_its_whole_consent_history_and_an_intact_chain(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (h, lead) = seeded(&t, "3001").await;
    let v = detail(&t, &h, "3001", &lead.id).await;
    assert_eq!(v["id"], lead.id.as_str());
    assert_eq!(v["status"], "subscribed");
    assert_eq!(v["chain"], json!({"intact": true}));
    let history = v["consent_history"].as_array().expect("history");
    let actions: Vec<_> = history.iter().map(|r| r["action"].clone()).collect();
    assert_eq!(
        actions,
        vec![
            json!("confirmation_requested"),
            json!("opt_in"),
            json!("marketing_opt_in")
        ]
    );
    let fields = [
        "seq",
        "action",
        "source",
        "meta_ref",
        "meta_timestamp",
        "received_at",
        "policy_version",
        "consent_mode",
        "wording",
        "hash",
        "prev_hash",
    ];
    for (i, r) in history.iter().enumerate() {
        assert_eq!(r.as_object().expect("record").len(), fields.len());
        for f in fields {
            assert!(!r[f].is_null(), "{f} of record {i}");
        }
        assert_eq!(r["seq"], i + 1);
    }
    assert_eq!(history[0]["prev_hash"], qchat_shared::leads::GENESIS_HASH);
    assert_eq!(history[1]["prev_hash"], history[0]["hash"]);
    assert_eq!(history[0]["meta_ref"], "m_0");
    assert_eq!(
        history[0]["wording"],
        "Would you like to receive updates from us?"
    );
}

pub async fn an_edited_record_breaks_the_chain_where_it_was_edited(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (h, lead) = seeded(&t, "3002").await;
    let key = record_key("3002", &lead.id, 2);
    let stored = t.store().get(&key).await.expect("read").expect("record 2");
    let edited = stored
        .plain("action", Value::S("declined".to_owned()))
        .expect("edit");
    t.store()
        .put(edited, Condition::Always)
        .await
        .expect("rewritten");

    let v = detail(&t, &h, "3002", &lead.id).await;
    assert_eq!(v["chain"]["intact"], false);
    assert_eq!(v["chain"]["broken_at"], 2);
    assert_eq!(
        v["chain"]["reason"],
        "the record was changed after it was written"
    );
    // The history shows what is stored now, so the edit is visible next to the alarm.
    assert_eq!(v["consent_history"][1]["action"], "declined");
}

pub async fn a_removed_record_breaks_the_chain_where_it_was_removed(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (h, lead) = seeded(&t, "3003").await;
    t.store()
        .delete(&record_key("3003", &lead.id, 2), Condition::Exists)
        .await
        .expect("removed");
    let v = detail(&t, &h, "3003", &lead.id).await;
    assert_eq!(v["chain"]["intact"], false);
    assert_eq!(v["chain"]["broken_at"], 2);
    assert_eq!(v["consent_history"].as_array().map(Vec::len), Some(2));
}

pub async fn a_removed_last_record_is_detected_against_the_lead_head(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (h, lead) = seeded(&t, "3004").await;
    t.store()
        .delete(&record_key("3004", &lead.id, 3), Condition::Exists)
        .await
        .expect("removed");
    let v = detail(&t, &h, "3004", &lead.id).await;
    assert_eq!(v["chain"]["intact"], false);
    assert_eq!(v["chain"]["broken_at"], 3);
}

pub async fn an_unknown_or_malformed_lead_id_is_a_404(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let (h, _) = seeded(&t, "3005").await;
    for lead in ["abcdefghijklmnopqrstuvwxyz", "NOT-A-LEAD"] {
        for (method, suffix) in [(Method::GET, ""), (Method::POST, "/unsubscribe")] {
            let r = t
                .optin(
                    method,
                    &format!("/api/pages/3005/leads/{lead}{suffix}"),
                    Some(&h.token),
                )
                .await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            assert_eq!(r.error_code(), "not_found");
        }
    }
}
