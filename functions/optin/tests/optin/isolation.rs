//! Tenant isolation: another account's page or lead is a 404 on every lead route, a missing or bad
//! session a 401; and no answer of any route carries a PSID.

use http::{Method, StatusCode};
use qchat_shared::leads::{Action, LeadStatus};

use crate::helpers::{Backend, TestApp, psid};

pub async fn another_accounts_pages_and_leads_are_not_found_on_every_route(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let alice = t.holder("alice").await;
    let bob = t.holder("bob").await;
    t.page(&alice, "5001", Some("Alice's")).await;
    t.page(&bob, "5002", Some("Bob's")).await;
    let lead = t
        .lead(
            &alice,
            "5001",
            &psid(),
            LeadStatus::Subscribed,
            &[Action::OptIn],
        )
        .await;
    let id = &lead.id;

    let routes = [
        (Method::GET, "/api/pages/5001/leads".to_owned()),
        (
            Method::GET,
            "/api/pages/5001/leads?status=subscribed".to_owned(),
        ),
        (Method::GET, format!("/api/pages/5001/leads/{id}")),
        (
            Method::POST,
            format!("/api/pages/5001/leads/{id}/unsubscribe"),
        ),
        // Bob's own page does not reach Alice's lead either.
        (Method::GET, format!("/api/pages/5002/leads/{id}")),
        (
            Method::POST,
            format!("/api/pages/5002/leads/{id}/unsubscribe"),
        ),
        // A page nobody connected answers the same.
        (Method::GET, "/api/pages/5999/leads".to_owned()),
    ];
    for (method, path) in &routes {
        let r = t.optin(method.clone(), path, Some(&bob.token)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(r.error_code(), "not_found");
    }
    for (method, path) in &routes {
        for token in [None, Some("not-a-session-token"), Some(&*"A".repeat(43))] {
            let r = t.optin(method.clone(), path, token).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
            assert_eq!(r.error_code(), "unauthenticated");
        }
    }
    let own = t
        .optin(Method::GET, "/api/pages/5002/leads", Some(&bob.token))
        .await;
    assert_eq!(own.json()["leads"], serde_json::json!([]));

    // Nothing Bob tried changed Alice's lead.
    let v = t
        .optin(
            Method::GET,
            &format!("/api/pages/5001/leads/{id}"),
            Some(&alice.token),
        )
        .await
        .json();
    assert_eq!(v["status"], "subscribed");
    assert_eq!(v["consent_history"].as_array().map(Vec::len), Some(1));
}

pub async fn no_answer_of_any_route_contains_the_psid(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let h = t.holder("psid").await;
    t.page(&h, "5003", Some("Shop")).await;
    let known = psid();
    let lead = t
        .lead(&h, "5003", &known, LeadStatus::Subscribed, &[Action::OptIn])
        .await;
    let id = &lead.id;
    let calls = [
        (Method::GET, lead.link.clone(), None),
        (
            Method::GET,
            "/api/pages/5003/leads".to_owned(),
            Some(h.token.as_str()),
        ),
        (
            Method::GET,
            "/api/pages/5003/leads?status=subscribed".to_owned(),
            Some(h.token.as_str()),
        ),
        (
            Method::GET,
            format!("/api/pages/5003/leads/{id}"),
            Some(h.token.as_str()),
        ),
        (Method::POST, lead.link.clone(), None),
        (
            Method::POST,
            format!("/api/pages/5003/leads/{id}/unsubscribe"),
            Some(h.token.as_str()),
        ),
        (
            Method::GET,
            "/api/pages/5003/leads?status=unsubscribed".to_owned(),
            Some(h.token.as_str()),
        ),
    ];
    for (method, path, token) in calls {
        let r = t.optin(method, &path, token).await;
        assert!(r.status.is_success(), "{path}: {}", r.status);
        // The helper checks every body against every sealed PSID; this states it for the one known here.
        assert!(!r.body.contains(&known));
    }
}
