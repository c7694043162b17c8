//! `POST /api/pages/{page_id}/leads/{lead_id}/unsubscribe`: the account holder unsubscribes a lead.

use http::{Method, StatusCode};
use qchat_shared::leads::{Action, LeadStatus};

use crate::helpers::{Backend, TestApp, psid};

pub async fn the_account_holder_unsubscribes_a_lead_once_and_the_record_says_so(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let h = t.holder("holder").await;
    t.page(&h, "4001", Some("Shop")).await;
    let lead = t
        .lead(
            &h,
            "4001",
            &psid(),
            LeadStatus::Subscribed,
            &[Action::OptIn],
        )
        .await;
    let path = format!("/api/pages/4001/leads/{}/unsubscribe", lead.id);

    let first = t.optin(Method::POST, &path, Some(&h.token)).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.json()["id"], lead.id.as_str());
    assert_eq!(first.json()["status"], "unsubscribed");
    let second = t.optin(Method::POST, &path, Some(&h.token)).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.json(), first.json());

    let v = t
        .optin(
            Method::GET,
            &format!("/api/pages/4001/leads/{}", lead.id),
            Some(&h.token),
        )
        .await
        .json();
    let history = v["consent_history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["action"], "opt_out");
    assert_eq!(history[1]["source"], "account_holder");
    assert_eq!(v["chain"]["intact"], true);

    // The person's own link now shows they are unsubscribed.
    let page = t.optin(Method::GET, &lead.link, None).await;
    assert!(page.body.contains("You are unsubscribed"));
}
