//! `POST /api/accounts`: registration and every documented refusal.

use http::Method;
use serde_json::json;

use crate::helpers::{Backend, START, TestApp, strong_password, unique_email};

pub async fn registering_answers_201_with_the_id_the_normalised_email_the_name_and_the_creation_time(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("ada");
    let submitted = format!("  {}  ", email.to_uppercase());

    let r = app
        .register(&submitted, &strong_password(), Some("  Ada Lovelace "))
        .await;

    r.assert_status(201);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    let id = body["id"].as_str().expect("an id");
    assert_eq!(id.len(), 26, "an opaque 128-bit id");
    assert_eq!(body["email"], email.as_str(), "trimmed and lowercased");
    assert_eq!(body["name"], "Ada Lovelace", "trimmed");
    assert_eq!(body["created_at"], START.to_rfc3339());
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(4),
        "nothing else (no hash, no policy internals): {body}"
    );
    assert_eq!(app.queued_notices(id).await, ["account_created"]);

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
    let anonymous = app
        .register(&unique_email("anon"), &strong_password(), None)
        .await;
    anonymous.assert_status(201);
    assert!(anonymous.json()["name"].is_null());
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
    // None of the refusals created the account.
    app.register(&email, &strong_password(), None)
        .await
        .assert_status(201);
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

pub async fn an_email_already_registered_is_refused_even_cased_or_spaced_differently(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let first = app.new_holder("taken").await;
    let password = strong_password();
    for variant in [
        first.email.clone(),
        first.email.to_uppercase(),
        format!(" \t{} ", first.email),
    ] {
        let r = app
            .register(&variant, &password, Some("Someone Else"))
            .await;
        r.assert_error(409, "email_taken")
            .assert_does_not_echo(&[&first.email, &password]);
    }
    // The first account is untouched: its password still signs in, the intruder's does not.
    app.sign_in_ok(&first.email, &first.password, false).await;
    app.sign_in(&first.email, &password, false)
        .await
        .assert_error(401, "invalid_credentials");
}
