//! Sessions: sign in (cookie attributes and lifetimes), authentication by bearer token or cookie, the same
//! answer for an unknown email and a wrong password, lockout, expiry, sign out and sign out everywhere.

use http::Method;
use qchat_shared::clock::Clock as _;

use crate::helpers::{Backend, START, TestApp, TestResponse};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// The attributes of the one `Set-Cookie` header: (name=value, [attributes]).
fn set_cookie(r: &TestResponse) -> (String, Vec<String>) {
    let all: Vec<_> = r.headers.get_all("set-cookie").iter().collect();
    assert_eq!(all.len(), 1, "exactly one Set-Cookie header");
    let value = all[0].to_str().expect("an ASCII cookie");
    let mut parts = value.split(';').map(|p| p.trim().to_owned());
    let pair = parts.next().expect("name=value");
    (pair, parts.collect())
}

#[track_caller]
fn assert_session_cookie_attributes(attributes: &[String]) {
    for required in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(
            attributes.iter().any(|a| a == required),
            "{required} in {attributes:?}"
        );
    }
    assert!(
        !attributes
            .iter()
            .any(|a| a.to_ascii_lowercase().starts_with("domain")),
        "no Domain: the cookie stays on the API's host"
    );
}

fn has_attribute(attributes: &[String], prefix: &str) -> bool {
    attributes.iter().any(|a| {
        a.to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase())
    })
}

async fn account_status(app: &TestApp, token: &str) -> u16 {
    app.get("/api/account", Some(token)).await.status.as_u16()
}

pub async fn signing_in_without_remember_sets_a_browser_session_cookie_for_12_hours(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("unremembered").await;

    // The address is normalised at sign-in as at registration.
    let submitted = format!(" {} ", holder.email.to_uppercase());
    let r = app.sign_in(&submitted, &holder.password, false).await;

    r.assert_status(200);
    let body = r.json();
    let token = body["token"].as_str().expect("a token").to_owned();
    assert_eq!(token.len(), 43, "256 random bits, base64url");
    assert_eq!(body["expires_at"], START.plus_hours(12).to_rfc3339());
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");

    let (pair, attributes) = set_cookie(&r);
    assert_eq!(pair, format!("qchat_session={token}"));
    assert_session_cookie_attributes(&attributes);
    assert!(
        !has_attribute(&attributes, "max-age") && !has_attribute(&attributes, "expires"),
        "a browser-session cookie has no lifetime: {attributes:?}"
    );

    // The server side lives 12 hours (to the second).
    app.clock.advance_secs(12 * HOUR - 1);
    assert_eq!(account_status(&app, &token).await, 200);
    app.clock.advance_secs(1);
    assert_eq!(account_status(&app, &token).await, 401);
}

pub async fn signing_in_with_remember_sets_a_30_day_cookie_and_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("remembered").await;

    let r = app.sign_in(&holder.email, &holder.password, true).await;

    r.assert_status(200);
    let token = r.json()["token"].as_str().expect("a token").to_owned();
    assert_eq!(r.json()["expires_at"], START.plus_days(30).to_rfc3339());
    let (pair, attributes) = set_cookie(&r);
    assert_eq!(pair, format!("qchat_session={token}"));
    assert_session_cookie_attributes(&attributes);
    assert!(
        attributes.iter().any(|a| a == "Max-Age=2592000"),
        "{attributes:?}"
    );

    app.clock.advance_secs(30 * DAY - 1);
    assert_eq!(account_status(&app, &token).await, 200);
    app.clock.advance_secs(1);
    assert_eq!(account_status(&app, &token).await, 401);
}

pub async fn the_bearer_token_and_the_session_cookie_both_authenticate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (holder, token) = app.signed_in_holder("both").await;

    let by_bearer = app.get("/api/account", Some(&token)).await;
    by_bearer.assert_status(200);
    assert_eq!(by_bearer.json()["email"], holder.email.as_str());
    assert_eq!(by_bearer.json()["id"], holder.id.as_str());

    for cookie in [
        format!("qchat_session={token}"),
        format!("theme=dark; qchat_session={token}; lang=en"),
    ] {
        let by_cookie = app
            .request(Method::GET, "/api/account", None, &[("cookie", &cookie)])
            .await;
        by_cookie.assert_status(200);
        assert_eq!(by_cookie.json()["id"], holder.id.as_str());
    }
}

pub async fn requests_without_a_token_or_with_a_malformed_or_unknown_one_are_unauthenticated(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let unknown = "A".repeat(43);
    let unknown_bearer = format!("Bearer {unknown}");
    let unknown_cookie = format!("qchat_session={unknown}");
    let credentials: [&[(&str, &str)]; 6] = [
        &[],
        &[("authorization", "Bearer short")],
        &[("authorization", "Basic dXNlcjpwYXNz")],
        &[("authorization", &unknown_bearer)],
        &[("cookie", &unknown_cookie)],
        &[("cookie", "qchat_session=not-a-token")],
    ];
    let routes = [
        (Method::GET, "/api/account"),
        (Method::PATCH, "/api/account"),
        (Method::POST, "/api/account/password"),
        (Method::GET, "/api/account/security-log"),
        (Method::POST, "/api/account/policy-acceptance"),
        (Method::DELETE, "/api/sessions/current"),
        (Method::DELETE, "/api/sessions"),
        (Method::POST, "/api/pages"),
        (Method::GET, "/api/pages"),
        (Method::DELETE, "/api/pages/123"),
        (Method::POST, "/api/policies"),
        (Method::POST, "/api/breach-notices"),
    ];
    for headers in credentials {
        for (method, path) in &routes {
            let mut with_json = headers.to_vec();
            with_json.push(("content-type", "application/json"));
            let r = app
                .request(method.clone(), path, Some(b"{}".to_vec()), &with_json)
                .await;
            r.assert_error(401, "unauthenticated");
        }
    }
}

pub async fn an_unknown_email_and_a_wrong_password_get_the_identical_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("credentials").await;
    let unknown = crate::helpers::unique_email("nobody");

    let wrong_password = app
        .sign_in(&holder.email, "Not The Password 123", false)
        .await;
    let unknown_email = app.sign_in(&unknown, &holder.password, false).await;
    let malformed_email = app.sign_in("no-at-sign", &holder.password, false).await;

    for r in [&wrong_password, &unknown_email, &malformed_email] {
        r.assert_error(401, "invalid_credentials")
            .assert_does_not_echo(&[&holder.email, &holder.password, &unknown]);
        assert!(r.headers.get("set-cookie").is_none(), "no cookie");
    }
    assert_eq!(wrong_password.body, unknown_email.body);
    assert_eq!(wrong_password.body, malformed_email.body);
    assert_eq!(
        wrong_password.headers.len(),
        unknown_email.headers.len(),
        "the same headers too"
    );
}

pub async fn five_failures_lock_sign_in_for_15_minutes_even_with_the_right_password(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("locked").await;
    let bystander = app.new_holder("bystander").await;

    for attempt in 1..=5 {
        let r = app
            .sign_in(
                &holder.email,
                &format!("Wrong Guess Number {attempt}"),
                false,
            )
            .await;
        r.assert_error(401, "invalid_credentials");
    }

    for password in [holder.password.as_str(), "Wrong Guess Number 6"] {
        let r = app.sign_in(&holder.email, password, false).await;
        r.assert_error(429, "too_many_attempts")
            .assert_does_not_echo(&[&holder.email, password]);
        assert_eq!(r.header("retry-after"), Some("900"));
        assert!(r.headers.get("set-cookie").is_none());
    }
    // The lock is per account: another account signs in meanwhile.
    app.sign_in_ok(&bystander.email, &bystander.password, false)
        .await;

    app.clock.advance_secs(15 * 60 - 1);
    let r = app.sign_in(&holder.email, &holder.password, false).await;
    r.assert_error(429, "too_many_attempts");
    assert_eq!(r.header("retry-after"), Some("1"));

    app.clock.advance_secs(1);
    let token = app.sign_in_ok(&holder.email, &holder.password, false).await;
    assert_eq!(account_status(&app, &token).await, 200);
}

pub async fn an_expired_session_is_refused_although_its_item_is_still_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("expiring").await;
    let short = app.sign_in_ok(&holder.email, &holder.password, false).await;
    let long = app.sign_in_ok(&holder.email, &holder.password, true).await;

    app.clock.advance_secs(12 * HOUR + 1);

    app.get("/api/account", Some(&short))
        .await
        .assert_error(401, "unauthenticated");
    app.request(
        Method::GET,
        "/api/account",
        None,
        &[("cookie", &format!("qchat_session={short}"))],
    )
    .await
    .assert_error(401, "unauthenticated");
    assert_eq!(account_status(&app, &long).await, 200);

    // The expired item is still in the store (DynamoDB deletes expired items only within days).
    let now = app.clock.now().secs();
    let raw = app.raw_store().await;
    let ttls: Vec<i64> = raw
        .of_type("session")
        .filter(|s| s.text("account_id").as_deref() == Some(holder.id.as_str()))
        .map(|s| {
            s.text("ttl")
                .expect("a session has a TTL")
                .parse()
                .expect("epoch seconds")
        })
        .collect();
    assert_eq!(ttls.len(), 2, "both session items are stored");
    assert!(ttls.iter().any(|t| *t <= now), "one is past its TTL");
    assert!(ttls.iter().any(|t| *t > now), "one is live");
}

pub async fn a_signed_out_token_is_refused_and_the_cookie_is_cleared(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (holder, token) = app.signed_in_holder("signout").await;
    let other = app.sign_in_ok(&holder.email, &holder.password, true).await;

    let r = app.delete("/api/sessions/current", Some(&token)).await;

    r.assert_status(204);
    assert!(r.body.is_empty());
    let (pair, attributes) = set_cookie(&r);
    assert_eq!(pair, "qchat_session=");
    assert_session_cookie_attributes(&attributes);
    assert!(
        attributes.iter().any(|a| a == "Max-Age=0"),
        "{attributes:?}"
    );
    app.get("/api/account", Some(&token))
        .await
        .assert_error(401, "unauthenticated");
    app.delete("/api/sessions/current", Some(&token))
        .await
        .assert_error(401, "unauthenticated");

    // Only that session ended; the other one signs out by its cookie (with the console's CSRF proof).
    assert_eq!(account_status(&app, &other).await, 200);
    let cookie = format!("qchat_session={other}");
    app.request(
        Method::DELETE,
        "/api/sessions/current",
        None,
        &[("cookie", &cookie), ("x-qchat-csrf", "1")],
    )
    .await
    .assert_status(204);
    assert_eq!(account_status(&app, &other).await, 401);
}

pub async fn signing_out_everywhere_ends_every_session_of_the_account_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (holder, first) = app.signed_in_holder("everywhere").await;
    let second = app.sign_in_ok(&holder.email, &holder.password, true).await;
    let (other_holder, others) = app.signed_in_holder("unaffected").await;

    let r = app.delete("/api/sessions", Some(&second)).await;

    r.assert_status(204);
    let (pair, _) = set_cookie(&r);
    assert_eq!(pair, "qchat_session=");
    assert_eq!(account_status(&app, &first).await, 401);
    assert_eq!(account_status(&app, &second).await, 401);
    assert_eq!(account_status(&app, &others).await, 200);
    let raw = app.raw_store().await;
    let owners: Vec<String> = raw
        .of_type("session")
        .filter_map(|s| s.text("account_id"))
        .collect();
    assert_eq!(
        owners,
        [other_holder.id],
        "only the other account's session is left"
    );

    let log = app.sign_in_ok(&holder.email, &holder.password, false).await;
    let events = app
        .get("/api/account/security-log", Some(&log))
        .await
        .json();
    assert!(
        events["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["event"] == "signed_out_everywhere"),
        "{events}"
    );
}
