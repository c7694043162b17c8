//! Cross-site request forgery: the browser sends the session cookie with any request to qchat, whoever's
//! page made it, so every state-changing request signed in by the cookie must prove it came from qchat's
//! own pages (`X-Qchat-Csrf: 1`, and a same-origin `Sec-Fetch-Site` when the browser sends one). The
//! attack is every such route called with the cookie alone, as a forged form or script would.

use http::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use qchat_shared::routes::{Body, ROUTES};

/// The state-changing `/api/` routes anyone may call without a session (they take no cookie).
const UNAUTHENTICATED: &[(&str, &str)] = &[
    ("POST", "/api/accounts"),
    ("POST", "/api/sessions"),
    ("POST", "/api/password-resets"),
];

fn page_id() -> String {
    let b = qchat_shared::crypto::random_bytes::<8>();
    format!("1{:015}", u64::from_be_bytes(b) % 1_000_000_000_000_000)
}

pub async fn a_cookie_request_that_changes_something_without_same_origin_proof_is_refused_and_changes_nothing(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = app.signed_in_holder("csrf").await;
    let page = page_id();
    app.post_json(
        "/api/pages",
        &json!({ "page_id": page, "page_access_token": format!("sample-page-token-{page}"), "name": "Before" }),
        Some(&token),
    )
    .await
    .assert_status(201);
    let before = app.get("/api/account", Some(&token)).await.json();
    let cookie = format!("qchat_session={token}");

    let state_changing = ROUTES.iter().filter(|r| {
        r.path.starts_with("/api/")
            && r.method != "GET"
            && !UNAUTHENTICATED.contains(&(r.method, r.path))
    });
    let mut checked = 0;
    for route in state_changing {
        let path = route
            .path
            .replace("{page_id}", &page)
            .replace("{lead_id}", "l1")
            .replace("{broadcast_id}", "b1");
        let method = Method::from_bytes(route.method.as_bytes()).unwrap();
        let body = match route.body {
            Body::JsonObject => Some(br#"{"name":"Forged","text":"forged"}"#.to_vec()),
            _ => None,
        };
        let forged: [&[(&str, &str)]; 4] = [
            // A form or script on another site: the cookie alone.
            &[("cookie", &cookie), ("content-type", "application/json")],
            // The header with another value.
            &[
                ("cookie", &cookie),
                ("content-type", "application/json"),
                ("x-qchat-csrf", "0"),
            ],
            // The header from another site (a browser says so in Sec-Fetch-Site).
            &[
                ("cookie", &cookie),
                ("content-type", "application/json"),
                ("x-qchat-csrf", "1"),
                ("sec-fetch-site", "cross-site"),
            ],
            &[
                ("cookie", &cookie),
                ("content-type", "application/json"),
                ("x-qchat-csrf", "1"),
                ("sec-fetch-site", "same-site"),
            ],
        ];
        for headers in forged {
            app.request(method.clone(), &path, body.clone(), headers)
                .await
                .assert_error(403, "csrf_check_failed");
        }
        checked += 1;
    }
    assert!(
        checked >= 15,
        "every authenticated state change is covered: {checked}"
    );

    // Nothing changed: the session lives, the name and the page are as they were.
    let after = app.get("/api/account", Some(&token)).await;
    after.assert_status(200);
    assert_eq!(after.json(), before);
    let pages = app.get("/api/pages", Some(&token)).await.json();
    assert_eq!(pages["pages"][0]["page_id"], page.as_str());
    assert_eq!(pages["pages"][0]["name"], "Before");

    // Reading with the cookie alone is fine: a read changes nothing and another site cannot see the answer.
    app.request(Method::GET, "/api/account", None, &[("cookie", &cookie)])
        .await
        .assert_status(200);
}

pub async fn the_consoles_proof_lets_a_cookie_request_through_and_bearer_requests_need_none(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = app.signed_in_holder("csrf-ok").await;
    let cookie = format!("qchat_session={token}");
    let rename = |name: &str| serde_json::to_vec(&json!({ "name": name })).unwrap();

    for (name, site) in [("By Console", Some("same-origin")), ("Old Browser", None)] {
        let mut headers = vec![
            ("cookie", cookie.as_str()),
            ("content-type", "application/json"),
            ("x-qchat-csrf", "1"),
        ];
        if let Some(site) = site {
            headers.push(("sec-fetch-site", site));
        }
        app.request(Method::PATCH, "/api/account", Some(rename(name)), &headers)
            .await
            .assert_status(200);
        assert_eq!(
            app.get("/api/account", Some(&token)).await.json()["name"],
            name
        );
    }

    // A bearer token is never attached by a browser on its own: no proof asked, whatever the headers say.
    let bearer = format!("Bearer {token}");
    app.request(
        Method::PATCH,
        "/api/account",
        Some(rename("By Bearer")),
        &[
            ("authorization", &bearer),
            ("content-type", "application/json"),
            ("sec-fetch-site", "cross-site"),
        ],
    )
    .await
    .assert_status(200);
    assert_eq!(
        app.get("/api/account", Some(&token)).await.json()["name"],
        "By Bearer"
    );

    // Signing out with the console's proof ends the session.
    app.request(
        Method::DELETE,
        "/api/sessions/current",
        None,
        &[
            ("cookie", &cookie),
            ("x-qchat-csrf", "1"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await
    .assert_status(204);
    app.get("/api/account", Some(&token))
        .await
        .assert_status(401);
}
