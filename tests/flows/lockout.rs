//! Sign-in limits as an attacker meets them: wrong passwords for one address sent all at once, a known
//! and an unknown address compared answer by answer, guesses sprayed over many addresses from one
//! network, and successful sign-ins, which must not count.

use std::sync::Arc;

use qchat_shared::test_support::logs;
use tokio::task::JoinSet;

use crate::helpers::{Backend, TestApp, TestResponse, random_ipv4, unique_email};

const WINDOW: i64 = 15 * 60;

/// Sends `count` sign-ins for `email` with wrong passwords at once (each on its own task, so they run in
/// parallel on the test runtime's threads); their answers by status: (401s, 429s, others).
async fn wrong_passwords_at_once(app: &Arc<TestApp>, email: &str, count: usize) -> (usize, usize) {
    let mut tasks = JoinSet::new();
    for attempt in 0..count {
        let app = app.clone();
        let email = email.to_owned();
        tasks.spawn(async move {
            app.sign_in(&email, &format!("Wrong Guess Number {attempt}"), false)
                .await
        });
    }
    let (mut unauthorized, mut too_many) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        let r = joined.expect("the sign-in task completes");
        match r.status.as_u16() {
            401 => {
                r.assert_error(401, "invalid_credentials");
                unauthorized += 1;
            }
            429 => {
                r.assert_error(429, "too_many_attempts");
                assert_eq!(
                    r.header("retry-after"),
                    Some("900"),
                    "until the window ends"
                );
                too_many += 1;
            }
            other => panic!("unexpected status {other}: {}", r.text()),
        }
        assert!(r.headers.get("set-cookie").is_none(), "no cookie");
    }
    (unauthorized, too_many)
}

/// The parts of an answer an attacker compares: status, every header but the date, the body.
fn observable(r: &TestResponse) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(name, _)| name.as_str() != "date")
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    headers.sort();
    (r.status.as_u16(), headers, r.body.to_vec())
}

pub async fn wrong_passwords_sent_at_once_get_exactly_5_checked_and_the_rest_429_until_the_window_passes(
    backend: Backend,
) {
    let logs = logs::capture();
    let app = Arc::new(TestApp::spawn(backend).await);
    let holder = app.new_holder("burst").await;
    // The embedded store takes a larger burst in the suite's time; moto answers more slowly.
    let burst = match backend {
        Backend::Sqlite => 150,
        Backend::Moto => 30,
    };

    let (unauthorized, too_many) = wrong_passwords_at_once(&app, &holder.email, burst).await;
    assert_eq!(
        (unauthorized, too_many),
        (5, burst - 5),
        "5 passwords checked"
    );

    // Even the right password waits for the window: it is not checked.
    let r = app.sign_in(&holder.email, &holder.password, false).await;
    r.assert_error(429, "too_many_attempts")
        .assert_does_not_echo(&[&holder.email, &holder.password]);
    assert_eq!(r.header("retry-after"), Some("900"));

    app.clock.advance_secs(WINDOW);
    let token = app.sign_in_ok(&holder.email, &holder.password, false).await;

    // The holder's security log counts the failures that were checked, and only those.
    let log = app.get("/api/account/security-log", Some(&token)).await;
    log.assert_status(200);
    let failures = log.json()["events"]
        .as_array()
        .expect("the log's events")
        .iter()
        .filter(|e| e["event"] == "sign_in_failed")
        .count();
    assert_eq!(failures, 5);
    logs.assert_absent(&[&holder.email, &holder.password]);
}

pub async fn an_unknown_address_gets_exactly_the_answers_a_known_one_gets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("known").await;
    let unknown = unique_email("unknown");

    let mut answers = Vec::new();
    for email in [holder.email.as_str(), unknown.as_str()] {
        app.use_network(random_ipv4());
        let mut seen = Vec::new();
        for attempt in 1..=7 {
            let password = format!("Wrong Guess Number {attempt}");
            let r = app.sign_in(email, &password, false).await;
            r.assert_does_not_echo(&[email, &password]);
            seen.push(observable(&r));
        }
        // The right password of the known account, for both: no more telling than a wrong one.
        let r = app.sign_in(email, &holder.password, false).await;
        seen.push(observable(&r));
        answers.push(seen);
    }

    let statuses: Vec<u16> = answers[0].iter().map(|a| a.0).collect();
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    assert_eq!(
        answers[0], answers[1],
        "the same statuses, headers and bodies"
    );
}

pub async fn guesses_sprayed_over_many_addresses_from_one_network_hit_its_limit_alone(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("sprayed").await;
    let spraying = random_ipv4();
    app.use_network(spraying);

    for _ in 0..30 {
        let email = unique_email("spray");
        let r = app.sign_in(&email, "Common Password 2024", false).await;
        r.assert_error(401, "invalid_credentials");
    }
    // The 31st address from that network is refused before any check, as is the holder there.
    let r = app
        .sign_in(&unique_email("spray-next"), "Common Password 2024", false)
        .await;
    r.assert_error(429, "too_many_attempts");
    assert_eq!(r.header("retry-after"), Some("900"));
    for _ in 0..5 {
        let r = app.sign_in(&holder.email, &holder.password, false).await;
        r.assert_error(429, "too_many_attempts");
    }

    // Another network is unaffected, and the refused attempts used none of the address's 5.
    app.use_network(random_ipv4());
    for attempt in 1..=4 {
        let r = app
            .sign_in(
                &holder.email,
                &format!("Wrong Guess Number {attempt}"),
                false,
            )
            .await;
        r.assert_error(401, "invalid_credentials");
    }
    app.sign_in_ok(&holder.email, &holder.password, false).await;

    // Once the window passes, the network may try again.
    app.clock.advance_secs(WINDOW);
    app.use_network(spraying);
    app.sign_in_ok(&holder.email, &holder.password, false).await;
}

pub async fn successful_sign_ins_do_not_count_against_the_limits(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("regular").await;

    for _ in 0..10 {
        app.sign_in_ok(&holder.email, &holder.password, false).await;
    }
    // All 5 attempts are still there for failures.
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
    let r = app.sign_in(&holder.email, &holder.password, false).await;
    r.assert_error(429, "too_many_attempts");
}

pub async fn without_a_known_network_only_the_address_limit_applies(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    // More failures than a network may have, over as many addresses, from a caller the platform gave no
    // address for: each address is still limited on its own, so every one is checked.
    for _ in 0..31 {
        let body = serde_json::json!({
            "email": unique_email("no-network"),
            "password": "Common Password 2024",
            "remember": false,
        });
        let req = http::Request::builder()
            .method(http::Method::POST)
            .uri("/api/sessions")
            .header("content-type", "application/json")
            .body(bytes::Bytes::from(body.to_string()))
            .expect("a well-formed request");
        let resp = qchat_local::dispatch(&app.app, req).await;
        assert_eq!(resp.status().as_u16(), 401);
    }
}
