//! Identity that is proven before it is trusted: password reset by a link mailed to the address, the
//! operator role only for a proven address, and the operator's audit trail.

use serde_json::json;

use crate::helpers::{Backend, TestApp, strong_password, unique_email};

pub async fn a_password_reset_answers_alike_for_any_address_and_its_link_works_once_and_ends_every_session(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("forgetful").await;
    let first = app.sign_in_ok(&holder.email, &holder.password, true).await;
    let second = app.sign_in_ok(&holder.email, &holder.password, false).await;
    let unknown = unique_email("nobody");
    // Someone guessed at the address until it locked.
    for _ in 0..5 {
        app.sign_in(&holder.email, "Wrong Guess Number 1", false)
            .await
            .assert_error(401, "invalid_credentials");
    }
    app.sign_in(&holder.email, &holder.password, false)
        .await
        .assert_error(429, "too_many_attempts");

    let known = app
        .post_json(
            "/api/password-resets",
            &json!({ "email": holder.email }),
            None,
        )
        .await;
    let stranger = app
        .post_json("/api/password-resets", &json!({ "email": unknown }), None)
        .await;
    known
        .assert_status(202)
        .assert_does_not_echo(&[&holder.email]);
    assert_eq!(
        (known.status, &known.body),
        (stranger.status, &stranger.body)
    );
    let raw = app.raw_store().await;
    assert_eq!(
        raw.of_type("password_reset").count(),
        1,
        "a link only for the account"
    );
    assert!(raw.find(&[&holder.email, &unknown]).is_empty());

    let token = app.link_token("password_reset", &holder.email).await;
    let path = format!("/reset-password/{token}");
    let form = app.get(&path, None).await;
    form.assert_status(200);
    assert!(form.text().contains("name=\"new_password\""));
    // A weak password is refused on the form; the link stays usable.
    let weak = app.use_link(&path, Some("new_password=short")).await;
    weak.assert_status(400);
    assert!(weak.text().contains("at least 12"));
    let new_password = strong_password();
    let body = format!("new_password={}", new_password.replace(' ', "+"));
    app.use_link(&path, Some(&body)).await.assert_status(200);

    // Every session ended; the old password is gone, the new one signs in.
    for session in [&first, &second] {
        app.get("/api/account", Some(session))
            .await
            .assert_error(401, "unauthenticated");
    }
    app.sign_in(&holder.email, &holder.password, false)
        .await
        .assert_error(401, "invalid_credentials");
    // The reset proved the address, so the lock is lifted at once.
    let latest = app.sign_in_ok(&holder.email, &new_password, false).await;
    let log = app
        .get("/api/account/security-log", Some(&latest))
        .await
        .json();
    assert!(
        log["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "password_reset")
    );
    assert!(
        app.queued_notices(&holder.id)
            .await
            .contains(&"password_changed".to_owned())
    );
    // The link is single-use.
    let again = app.use_link(&path, Some(&body)).await;
    again.assert_status(404);
    assert!(again.text().contains("Link not valid"));

    // A second request within the quarter hour mails nothing more; after it, a new link that expires
    // after an hour.
    app.post_json(
        "/api/password-resets",
        &json!({ "email": holder.email }),
        None,
    )
    .await
    .assert_status(202);
    assert_eq!(app.raw_store().await.of_type("password_reset").count(), 0);
    app.clock.advance_secs(15 * 60);
    app.post_json(
        "/api/password-resets",
        &json!({ "email": holder.email }),
        None,
    )
    .await
    .assert_status(202);
    let late = app.link_token("password_reset", &holder.email).await;
    app.clock.advance_secs(3600);
    app.get(&format!("/reset-password/{late}"), None)
        .await
        .assert_status(404);
    app.use_link(&format!("/reset-password/{late}"), Some(&body))
        .await
        .assert_status(404);
    app.sign_in_ok(&holder.email, &new_password, false).await;
}

pub async fn an_account_cannot_take_the_operator_role_by_typing_its_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator_address = app.operator_email.clone();

    // Registering the operator's address creates nothing: the link goes to the operator's mailbox.
    app.register(&operator_address, &strong_password(), None)
        .await
        .assert_status(202);
    assert_eq!(app.account_id_of(&operator_address).await, None);

    // An ordinary account asking to move to the operator's address stays an ordinary account.
    let (_, intruder) = app.signed_in_holder("intruder").await;
    let r = app
        .patch(
            "/api/account",
            &json!({ "email": operator_address }),
            Some(&intruder),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["role"], "account_holder");
    let publish = json!({
        "kind": "terms", "version": "2", "url": "https://evil.example/terms", "summary": "Gotcha."
    });
    app.post_json("/api/policies", &publish, Some(&intruder))
        .await
        .assert_error(403, "forbidden");
    app.post_json(
        "/api/breach-notices",
        &json!({ "summary": "Click https://evil.example", "scope": "all" }),
        Some(&intruder),
    )
    .await
    .assert_error(403, "forbidden");
    app.get("/api/operator/audit-log", Some(&intruder))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(app.raw_store().await.of_type("policy").count(), 0);
    assert_eq!(app.raw_store().await.of_type("breach_notice").count(), 0);
}

pub async fn the_proven_operator_acts_and_every_action_is_in_the_audit_trail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator_token().await;
    let me = app.get("/api/account", Some(&operator)).await.json();
    assert_eq!(me["role"], "operator");
    assert_eq!(me["email_verified"], true);

    app.post_json(
        "/api/policies",
        &json!({
            "kind": "privacy", "version": "2", "url": "https://example.test/privacy-2",
            "summary": "We keep logs 30 days."
        }),
        Some(&operator),
    )
    .await
    .assert_status(201);
    app.clock.advance_secs(60);
    app.post_json(
        "/api/breach-notices",
        &json!({ "summary": "A backup was exposed.", "scope": "all" }),
        Some(&operator),
    )
    .await
    .assert_status(202);

    let log = app.get("/api/operator/audit-log", Some(&operator)).await;
    log.assert_status(200)
        .assert_does_not_echo(&[&app.operator_email]);
    let entries = log.json()["entries"].as_array().unwrap().clone();
    let actions: Vec<_> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["breach_notice_queued", "policy_published"],
        "newest first"
    );
    for e in &entries {
        assert_eq!(e["actor"], me["id"]);
    }
    assert_eq!(entries[1]["subject"]["kind"], "privacy");
    assert_eq!(entries[1]["subject"]["version"], "2");
    assert_eq!(entries[0]["subject"]["scope"], "all");
    assert!(log.json()["next_cursor"].is_null());
    app.assert_every_stored_attribute_is_declared().await;
}
