//! What the router lets through: JSON routes take only a JSON object sent as `application/json`, a link
//! page answers its own "Link not valid" page for any malformed token, and `HEAD` is `GET` without a body.

use http::Method;

use crate::helpers::{Backend, TestApp, strong_password, unique_email};

pub async fn a_json_array_is_refused_where_an_object_is_expected_and_nothing_is_stored(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("array");
    let password = strong_password();
    // serde would read a struct from an array, field by position: the router refuses it first.
    let body = serde_json::to_vec(&serde_json::json!([email, password, "Arr", "1"])).unwrap();

    let r = app
        .request(
            Method::POST,
            "/api/accounts",
            Some(body),
            &[("content-type", "application/json")],
        )
        .await;

    r.assert_error(400, "invalid_json")
        .assert_does_not_echo(&[&email, &password]);
    for other in ["1", "\"text\"", "null", "[]", " "] {
        app.request(
            Method::POST,
            "/api/sessions",
            Some(other.as_bytes().to_vec()),
            &[("content-type", "application/json")],
        )
        .await
        .assert_error(400, "invalid_json");
    }
    let raw = app.raw_store().await;
    assert_eq!(raw.of_type("account").count(), 0, "no account was made");
    assert!(raw.find(&[&email]).is_empty());
}

pub async fn a_json_route_refuses_a_body_sent_as_text_or_as_a_form_with_415(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("csrf").await;
    let login = serde_json::to_vec(&serde_json::json!({
        "email": holder.email, "password": holder.password, "remember": false
    }))
    .unwrap();

    // A cross-site form can post `text/plain`, `application/x-www-form-urlencoded` or multipart bodies
    // without a preflight; none of them reaches sign-in (no login CSRF), whatever the body holds.
    for content_type in [
        None,
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let headers: Vec<(&str, &str)> = content_type
            .iter()
            .map(|ct| ("content-type", *ct))
            .collect();
        let r = app
            .request(Method::POST, "/api/sessions", Some(login.clone()), &headers)
            .await;
        r.assert_error(415, "unsupported_media_type")
            .assert_does_not_echo(&[&holder.email, &holder.password]);
        assert_eq!(r.header("set-cookie"), None, "{content_type:?}");
    }
    // The same body as JSON signs in (a parameter on the media type is fine).
    let r = app
        .request(
            Method::POST,
            "/api/sessions",
            Some(login),
            &[("content-type", "application/json; charset=utf-8")],
        )
        .await;
    r.assert_status(200);
}

pub async fn an_undecodable_unsubscribe_token_gets_the_html_link_not_valid_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let valid_looking = app.get("/u/not-a-token", None).await;
    valid_looking.assert_status(404);

    for method in [Method::GET, Method::POST] {
        let r = app.request(method.clone(), "/u/%ff%fe%fd", None, &[]).await;
        r.assert_status(404);
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{method}"
        );
        assert!(
            r.text().contains("Link not valid"),
            "{method}: {}",
            r.text()
        );
        assert_eq!(
            r.text(),
            valid_looking.text(),
            "the same page for every bad token"
        );
    }
}

pub async fn head_answers_like_get_without_a_body_and_is_listed_in_allow(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = app.signed_in_holder("head").await;
    let bearer = format!("Bearer {token}");

    for (path, auth) in [
        ("/privacy", None),
        ("/api/policies/current", None),
        ("/api/account", Some(bearer.as_str())),
        ("/api/pages", Some(bearer.as_str())),
        ("/u/not-a-token", None),
        ("/api/account", None),
    ] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let get = app.request(Method::GET, path, None, &headers).await;
        let head = app.request(Method::HEAD, path, None, &headers).await;
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert!(head.body.is_empty(), "HEAD {path} has no body");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "HEAD {path}"
        );
        assert_eq!(
            head.header("content-length"),
            Some(get.body.len().to_string().as_str()),
            "HEAD {path} tells the GET body's length"
        );
    }
    let r = app.request(Method::PUT, "/privacy", None, &[]).await;
    r.assert_error(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    // HEAD is only GET's: a route without GET does not take it.
    let r = app.request(Method::HEAD, "/api/sessions", None, &[]).await;
    assert_eq!(r.status.as_u16(), 405);
    assert_eq!(r.header("allow"), Some("DELETE, POST"));
}

pub async fn names_with_direction_overrides_invisible_or_control_characters_are_refused(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = app.signed_in_holder("names").await;
    let before = app.get("/api/account", Some(&token)).await.json();

    for bad in [
        "Ana\u{202E}gpj.exe",
        "\u{200B}\u{200B}\u{200B}",
        "\u{200D}",
        "   ",
        "Ana\u{0000}",
        "Ana\u{2066}x",
        "A\u{FEFF}na",
    ] {
        let r = app
            .register(&unique_email("badname"), &strong_password(), Some(bad))
            .await;
        r.assert_error(400, "invalid_name");
        if !bad.trim().is_empty() {
            r.assert_does_not_echo(&[bad.trim()]);
        }
        app.patch(
            "/api/account",
            &serde_json::json!({ "name": bad }),
            Some(&token),
        )
        .await
        .assert_error(400, "invalid_name");
    }
    assert_eq!(
        app.get("/api/account", Some(&token)).await.json(),
        before,
        "nothing changed"
    );
    // A name in another script, with a zero-width non-joiner where the script needs one, is fine.
    app.patch(
        "/api/account",
        &serde_json::json!({ "name": "می\u{200C}خواهم" }),
        Some(&token),
    )
    .await
    .assert_status(200);
}
