//! The HTTP surface: the public privacy notice, the security headers of every kind of response, and
//! answers for unknown routes and wrong methods.

use std::collections::{BTreeMap, BTreeSet};

use http::Method;
use qchat_shared::inventory::ITEM_TYPES;

use crate::helpers::{Backend, TestApp, strong_password, unique_email};

pub async fn the_privacy_notice_is_html_under_a_strict_csp_and_lists_every_inventory_attribute(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;

    let r = app.get("/privacy", None).await;

    r.assert_status(200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = r.header("content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp:?}");
    }
    assert!(!csp.contains("script-src"), "no scripts at all: {csp:?}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    let page = r.text();
    assert!(page.starts_with("<!doctype html>"));
    assert!(!page.contains("<script"), "no scripts");
    for t in ITEM_TYPES {
        for a in t.attributes {
            assert!(
                page.contains(&format!("<tr><td>{}</td><td>{}</td>", t.name, a.name)),
                "{}.{} is listed",
                t.name,
                a.name
            );
        }
    }
    for expected in [
        "qchat_session",
        "Meta Platforms",
        "Amazon Web Services",
        "Privacy policy version 1",
        "Terms (version 1)",
    ] {
        assert!(page.contains(expected), "{expected:?} is in the notice");
    }
}

pub async fn the_privacy_notice_is_json_when_asked_for_and_matches_the_inventory(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let r = app
        .request(
            Method::GET,
            "/privacy",
            None,
            &[("accept", "application/json")],
        )
        .await;

    r.assert_status(200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    let listed: BTreeMap<String, BTreeSet<String>> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| {
            let attributes = t["attributes"]
                .as_array()
                .expect("attributes")
                .iter()
                .map(|a| {
                    for field in ["category", "personal", "protection", "purpose"] {
                        assert!(!a[field].is_null(), "{field} of {a}");
                    }
                    a["name"].as_str().expect("a name").to_owned()
                })
                .collect();
            (
                t["item_type"].as_str().expect("a type").to_owned(),
                attributes,
            )
        })
        .collect();
    let declared: BTreeMap<String, BTreeSet<String>> = ITEM_TYPES
        .iter()
        .map(|t| {
            (
                t.name.to_owned(),
                t.attributes.iter().map(|a| a.name.to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(listed, declared);
    assert_eq!(body["cookies"][0]["name"], "qchat_session");
    assert_eq!(body["processors"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["privacy_policy"]["version"], "1");
    assert_eq!(body["terms"]["version"], "1");
}

pub async fn every_kind_of_response_carries_the_security_headers(backend: Backend) {
    // `TestApp::request` checks the headers on every response of every case; this case makes sure
    // every kind of answer is among them.
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("headers").await;
    let signed_in = app.sign_in(&holder.email, &holder.password, false).await;
    let token = signed_in.json()["token"].as_str().unwrap().to_owned();
    let responses = [
        signed_in,
        app.get("/api/account", Some(&token)).await,
        app.get("/privacy", None).await,
        app.request(
            Method::POST,
            "/api/accounts",
            Some(b"{".to_vec()),
            &[("content-type", "application/json")],
        )
        .await,
        app.request(Method::POST, "/api/accounts", Some(b"{}".to_vec()), &[])
            .await,
        app.get("/api/pages", None).await,
        app.post_json("/api/policies", &serde_json::json!({}), Some(&token))
            .await,
        app.delete("/api/pages/42", Some(&token)).await,
        app.get("/nowhere", None).await,
        app.request(Method::PUT, "/api/account", None, &[]).await,
        app.register(&holder.email, &holder.password, None).await,
        app.delete("/api/sessions/current", Some(&token)).await,
        app.register(&unique_email("second"), &strong_password(), None)
            .await,
    ];
    let statuses: Vec<u16> = responses.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses,
        [
            200, 200, 200, 400, 415, 401, 403, 404, 404, 405, 202, 204, 202
        ]
    );
    for r in &responses {
        r.assert_security_headers();
    }
}

pub async fn an_unknown_route_is_404_and_a_known_route_with_another_method_405(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/api/nope"),
        (Method::GET, "/api/account/"),
        (Method::DELETE, "/api/pages/"),
        (Method::GET, "/api/pages/1/2/3"),
        (Method::POST, "/API/ACCOUNTS"),
    ] {
        let r = app.request(method, path, None, &[]).await;
        r.assert_error(404, "not_found");
        assert_eq!(r.header("allow"), None, "a 404 has no Allow");
    }
    // A 405 carries `Allow`, the methods the route takes, comma-separated (RFC 9110): from the
    // function's own router, and from the router in front of every function.
    let req = http::Request::builder()
        .method(Method::PUT)
        .uri("/api/account")
        .body(bytes::Bytes::new())
        .expect("a request");
    let r = qchat_account::handle(&app.app, req).await;
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, HEAD, PATCH")
    );
    for (method, path, allow) in [
        (Method::GET, "/api/accounts", "POST"),
        (Method::PUT, "/api/account", "GET, HEAD, PATCH"),
        (Method::GET, "/api/sessions", "DELETE, POST"),
        (Method::POST, "/privacy", "GET, HEAD"),
        (Method::GET, "/api/pages/123", "DELETE"),
        (Method::OPTIONS, "/api/policies/current", "GET, HEAD"),
        (Method::DELETE, "/webhook", "GET, HEAD, POST"),
        (Method::PUT, "/u/some-token", "GET, HEAD, POST"),
        (Method::DELETE, "/api/pages/123/leads", "GET, HEAD"),
    ] {
        let r = app.request(method.clone(), path, None, &[]).await;
        r.assert_error(405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
}
