//! Connected pages: connect, list, disconnect, and that no account reaches another account's page.

use serde_json::{Value, json};

use crate::helpers::{Backend, START, TestApp};

/// A page id (digits) no other test uses.
fn page_id() -> String {
    let b = qchat_shared::crypto::random_bytes::<8>();
    format!("1{:015}", u64::from_be_bytes(b) % 1_000_000_000_000_000)
}

/// A page access token as Meta issues them: long, printable, unique.
fn access_token() -> String {
    let b = qchat_shared::crypto::random_bytes::<24>();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("EAAGflows{hex}ZD")
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
    let (page_a, token_a) = (page_id(), access_token());
    let (page_b, token_b) = (page_id(), access_token());

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
    let theirs = access_token();
    app.post_json("/api/pages", &connect(&page, &access_token()), Some(&a))
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
    app.post_json("/api/pages", &connect(&page, &access_token()), Some(&a))
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
    assert_eq!(
        listed_ids(&app.get("/api/pages", Some(&a)).await.json()),
        [page.as_str()]
    );

    let own = app.delete(&format!("/api/pages/{page}"), Some(&a)).await;
    own.assert_status(204);
    assert!(own.body.is_empty());
    assert!(listed_ids(&app.get("/api/pages", Some(&a)).await.json()).is_empty());
    app.delete(&format!("/api/pages/{page}"), Some(&a))
        .await
        .assert_error(404, "not_found");
    // Disconnected, the page is free for another account.
    app.post_json("/api/pages", &connect(&page, &access_token()), Some(&b))
        .await
        .assert_status(201);
}

pub async fn a_malformed_page_id_or_token_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, a) = app.signed_in_holder("malformed").await;
    let token = access_token();

    let too_long = "1".repeat(33);
    for bad in ["12ab", "", " 123", "-5", too_long.as_str()] {
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
