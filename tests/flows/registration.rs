//! `POST /api/accounts`: registration and every documented refusal.

use http::Method;
use serde_json::json;

use crate::helpers::{Backend, START, TestApp, strong_password, unique_email};

pub async fn registering_answers_202_creates_nothing_and_the_mailed_link_creates_the_account(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("ada");
    let submitted = format!("  {}  ", email.to_uppercase());
    let password = strong_password();

    let r = app
        .register(&submitted, &password, Some("  Ada Lovelace "))
        .await;

    r.assert_status(202);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["status"], "verification_sent");
    r.assert_does_not_echo(&[&email, &password, "Ada"]);
    // Nothing exists until the address is proven: no account, no claim, no sign-in.
    assert_eq!(app.account_id_of(&email).await, None);
    assert_eq!(app.raw_store().await.of_type("account").count(), 0);
    app.sign_in(&email, &password, false)
        .await
        .assert_error(401, "invalid_credentials");

    // The link (mailed to the normalised address) shows a button; only its POST creates the account.
    let token = app.link_token("confirm_registration", &email).await;
    let page = app.get(&format!("/verify-email/{token}"), None).await;
    page.assert_status(200);
    assert!(
        page.text().contains("<form method=\"post\">"),
        "{}",
        page.text()
    );
    assert_eq!(
        app.account_id_of(&email).await,
        None,
        "a GET confirms nothing"
    );
    app.use_link(&format!("/verify-email/{token}"), None)
        .await
        .assert_status(200);
    let id = app.account_id_of(&email).await.expect("an account now");
    assert_eq!(id.len(), 26, "an opaque 128-bit id");

    let session = app.sign_in_ok(&email, &password, false).await;
    let account = app.get("/api/account", Some(&session)).await.json();
    assert_eq!(account["id"], id.as_str());
    assert_eq!(account["email"], email.as_str(), "trimmed and lowercased");
    assert_eq!(account["email_verified"], true);
    assert_eq!(account["name"], "Ada Lovelace", "trimmed");
    assert_eq!(account["created_at"], START.to_rfc3339());
    assert_eq!(app.queued_notices(&id).await, ["account_created"]);

    // The link is single-use: a second use, and its page, are "not valid".
    let again = app.use_link(&format!("/verify-email/{token}"), None).await;
    again.assert_status(404);
    assert!(again.text().contains("Link not valid"));
    app.get(&format!("/verify-email/{token}"), None)
        .await
        .assert_status(404);

    for (bad_name, part) in [
        ("   ", None),
        ("Bell\u{7}Ringer", Some("Ringer")),
        (&"n".repeat(101), Some("nnnnnnnnnnnn")),
    ] {
        let r = app
            .register(&unique_email("named"), &strong_password(), Some(bad_name))
            .await;
        r.assert_error(400, "invalid_name");
        if let Some(part) = part {
            r.assert_does_not_echo(&[part]);
        }
    }
}

pub async fn a_registration_link_expires_after_24_hours_and_an_unknown_link_is_not_valid(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("late");
    app.register(&email, &strong_password(), None)
        .await
        .assert_status(202);
    let token = app.link_token("confirm_registration", &email).await;

    app.clock.advance_secs(24 * 3600);
    let r = app.use_link(&format!("/verify-email/{token}"), None).await;
    r.assert_status(404);
    assert!(r.text().contains("Link not valid"));
    assert_eq!(app.account_id_of(&email).await, None);
    for bad in ["x", "%ff", &"A".repeat(43)] {
        app.use_link(&format!("/verify-email/{bad}"), None)
            .await
            .assert_status(404);
    }
}

pub async fn a_body_that_is_not_json_is_refused_as_invalid_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let json_type = [("content-type", "application/json")];
    for body in [
        b"{\"email\": \"broken@example.test\", ".to_vec(),
        b"not json at all".to_vec(),
        Vec::new(),
    ] {
        let r = app
            .request(Method::POST, "/api/accounts", Some(body), &json_type)
            .await;
        r.assert_error(400, "invalid_json")
            .assert_does_not_echo(&["broken@example.test"]);
    }
    // A body over 64 KiB is refused before it is parsed.
    let huge = serde_json::to_vec(&json!({ "email": "x".repeat(70 * 1024) })).unwrap();
    app.request(Method::POST, "/api/accounts", Some(huge), &json_type)
        .await
        .assert_error(413, "body_too_large");
    // The same rule on every JSON route.
    app.request(
        Method::POST,
        "/api/sessions",
        Some(b"[".to_vec()),
        &json_type,
    )
    .await
    .assert_error(400, "invalid_json");
}

pub async fn a_missing_field_is_refused_naming_the_field_without_echoing_any_value(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("missing");
    let password = strong_password();
    let cases = [
        (
            json!({ "password": password, "accepted_policy_version": "1" }),
            "email",
        ),
        (
            json!({ "email": email, "accepted_policy_version": "1" }),
            "password",
        ),
        (
            json!({ "email": email, "password": password }),
            "accepted_policy_version",
        ),
    ];
    for (body, field) in cases {
        let r = app.post_json("/api/accounts", &body, None).await;
        r.assert_error(400, "missing_field")
            .assert_does_not_echo(&[&email, &password]);
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(field), "{message:?} names {field}");
    }
    // A field of the wrong type is refused without quoting it.
    let r = app
        .post_json(
            "/api/accounts",
            &json!({ "email": email, "password": 12, "accepted_policy_version": "1" }),
            None,
        )
        .await;
    r.assert_error(400, "invalid_field")
        .assert_does_not_echo(&[&email]);
}

pub async fn an_invalid_email_is_refused_without_echoing_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let password = strong_password();
    for bad in [
        "secret-person-at-nowhere",
        "secret person@example.test",
        "secret@nodot",
        "",
    ] {
        let r = app.register(bad, &password, None).await;
        r.assert_error(400, "invalid_email");
        if !bad.is_empty() {
            r.assert_does_not_echo(&[bad, "secret", &password]);
        }
    }
}

pub async fn a_short_a_common_or_an_email_based_password_is_refused_as_weak(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("weakling");
    let local = email.split('@').next().unwrap().to_owned();
    for weak in [
        "Short 1!".to_owned(),
        "123456789qwerty".to_owned(),
        "QwertyAsdfgh".to_owned(),
        format!("{local}#1"),
        format!("{}!", email.to_uppercase()),
        "qchat-qchat!".to_owned(),
    ] {
        let r = app.register(&email, &weak, None).await;
        r.assert_error(400, "weak_password")
            .assert_does_not_echo(&[&weak, &email]);
    }
    // An empty password is weak too, not a missing field.
    app.register(&email, "", None)
        .await
        .assert_error(400, "weak_password");
    // None of the refusals stood in the way of the registration.
    app.register(&email, &strong_password(), None)
        .await
        .assert_status(202);
}

pub async fn a_policy_version_other_than_the_current_one_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("policy");
    let password = strong_password();
    for version in ["2", "0", "", "1 "] {
        let r = app
            .post_json(
                "/api/accounts",
                &json!({ "email": email, "password": password, "accepted_policy_version": version }),
                None,
            )
            .await;
        r.assert_error(400, "policy_version_mismatch")
            .assert_does_not_echo(&[&email, &password]);
    }
}

pub async fn registering_a_taken_address_answers_exactly_as_a_free_one_and_tells_the_owner(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let first = app.new_holder("taken").await;
    // Past the quarter hour in which the address was mailed its own registration link.
    app.clock.advance_secs(15 * 60);
    let password = strong_password();
    let free = app
        .register(&unique_email("free"), &password, Some("Someone Else"))
        .await;
    for variant in [
        first.email.clone(),
        first.email.to_uppercase(),
        format!(" \t{} ", first.email),
    ] {
        let r = app
            .register(&variant, &password, Some("Someone Else"))
            .await;
        assert_eq!(r.status, free.status, "the same status as a free address");
        assert_eq!(r.body, free.body, "the same body as a free address");
        r.assert_does_not_echo(&[&first.email, &password]);
    }
    // The owner is told once (one mail per address per quarter hour); no link exists for the address.
    let mut notices = app.queued_notices(&first.id).await;
    notices.sort();
    assert_eq!(notices, ["account_created", "registration_address_taken"]);
    assert_eq!(
        app.raw_store().await.of_type("email_verification").count(),
        1,
        "only the free address's registration is pending; none for the taken one"
    );
    // The first account is untouched: its password still signs in, the intruder's does not.
    app.sign_in_ok(&first.email, &first.password, false).await;
    app.sign_in(&first.email, &password, false)
        .await
        .assert_error(401, "invalid_credentials");
}

pub async fn a_link_for_an_address_taken_meanwhile_creates_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("race");
    // Two registrations of one free address (the second after the mail throttle's quarter hour).
    app.register(&email, &strong_password(), None)
        .await
        .assert_status(202);
    let first_link = app.link_token("confirm_registration", &email).await;
    app.clock.advance_secs(15 * 60);
    let second_password = strong_password();
    app.register(&email, &second_password, None)
        .await
        .assert_status(202);
    let second_link = app.link_token("confirm_registration", &email).await;
    assert_ne!(first_link, second_link);

    app.use_link(&format!("/verify-email/{second_link}"), None)
        .await
        .assert_status(200);
    let r = app
        .use_link(&format!("/verify-email/{first_link}"), None)
        .await;
    r.assert_status(409);
    assert!(r.text().contains("already has an account"));
    assert_eq!(app.raw_store().await.of_type("account").count(), 1);
    app.sign_in_ok(&email, &second_password, false).await;
}
