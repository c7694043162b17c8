//! The account itself: password change, name and email change, the security log and new-network notices.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::helpers::{
    Backend, START, TestApp, random_ipv4, random_ipv6, same_network, strong_password, unique_email,
};

fn change(current: &str, new: &str) -> Value {
    json!({ "current_password": current, "new_password": new })
}

pub async fn a_password_change_with_a_wrong_current_password_or_a_weak_new_one_is_refused(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (holder, token) = app.signed_in_holder("pwrefused").await;
    let strong = strong_password();
    let path = "/api/account/password";

    for wrong in ["Definitely Not It 99", ""] {
        app.post_json(path, &change(wrong, &strong), Some(&token))
            .await
            .assert_error(403, "wrong_password")
            .assert_does_not_echo(&[&strong, &holder.password]);
    }
    let contains_email = format!("{}!", holder.email);
    for weak in ["too short", contains_email.as_str(), "qwertyuiop123"] {
        app.post_json(path, &change(&holder.password, weak), Some(&token))
            .await
            .assert_error(400, "weak_password")
            .assert_does_not_echo(&[weak, &holder.password]);
    }
    app.post_json(
        path,
        &json!({ "current_password": holder.password }),
        Some(&token),
    )
    .await
    .assert_error(400, "missing_field");

    // Nothing changed: the old password still signs in, and no notice was queued.
    app.sign_in_ok(&holder.email, &holder.password, false).await;
    assert_eq!(app.queued_notices(&holder.id).await, ["account_created"]);
}

pub async fn a_password_change_ends_the_other_sessions_keeps_this_one_and_queues_a_notice(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (holder, this) = app.signed_in_holder("pwchange").await;
    let other = app.sign_in_ok(&holder.email, &holder.password, true).await;
    let new = strong_password();

    let r = app
        .post_json(
            "/api/account/password",
            &change(&holder.password, &new),
            Some(&this),
        )
        .await;

    r.assert_status(200)
        .assert_does_not_echo(&[&new, &holder.password]);
    assert_eq!(
        r.json(),
        json!({ "password_changed": true, "other_sessions_ended": 1 })
    );
    app.get("/api/account", Some(&this))
        .await
        .assert_status(200);
    app.get("/api/account", Some(&other))
        .await
        .assert_error(401, "unauthenticated");
    app.sign_in(&holder.email, &holder.password, false)
        .await
        .assert_error(401, "invalid_credentials");
    app.sign_in_ok(&holder.email, &new, false).await;

    let mut notices = app.queued_notices(&holder.id).await;
    notices.sort();
    assert_eq!(notices, ["account_created", "password_changed"]);
    let log = app
        .get("/api/account/security-log", Some(&this))
        .await
        .json();
    assert!(
        log["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["event"] == "password_changed"),
        "{log}"
    );
}

pub async fn the_name_changes_at_once_and_the_email_only_through_the_link_sent_to_the_new_address(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (holder, token) = app.signed_in_holder("patcher").await;
    let taken = app.new_holder("taken").await;

    let r = app
        .patch(
            "/api/account",
            &json!({ "name": " Grace Hopper " }),
            Some(&token),
        )
        .await;
    r.assert_status(200);
    assert_eq!(r.json()["name"], "Grace Hopper");
    assert_eq!(r.json()["email"], holder.email.as_str());

    app.patch("/api/account", &json!({}), Some(&token))
        .await
        .assert_error(400, "nothing_to_change");
    app.patch("/api/account", &json!({ "name": "" }), Some(&token))
        .await
        .assert_error(400, "invalid_name");
    app.patch(
        "/api/account",
        &json!({ "nickname": "Amazing Grace" }),
        Some(&token),
    )
    .await
    .assert_error(400, "invalid_field")
    .assert_does_not_echo(&["Amazing Grace"]);
    app.patch(
        "/api/account",
        &json!({ "email": "grace-at-nowhere" }),
        Some(&token),
    )
    .await
    .assert_error(400, "invalid_email")
    .assert_does_not_echo(&["grace-at-nowhere"]);
    // A taken address is answered exactly like a free one (nobody learns it is taken); its link,
    // which only that address's owner receives, changes nothing.
    let to_taken = app
        .patch(
            "/api/account",
            &json!({ "email": format!(" {} ", taken.email.to_uppercase()) }),
            Some(&token),
        )
        .await;
    to_taken.assert_status(200);
    assert_eq!(
        to_taken.json()["email_change"]["status"],
        "verification_sent"
    );
    assert_eq!(
        to_taken.json()["email"],
        holder.email.as_str(),
        "not changed yet"
    );
    let taken_link = app.link_token("confirm_email_change", &taken.email).await;
    let r = app
        .use_link(&format!("/verify-email/{taken_link}"), None)
        .await;
    r.assert_status(409);
    assert!(r.text().contains("already has an account"));
    assert_eq!(
        app.get("/api/account", Some(&token)).await.json()["email"],
        holder.email.as_str()
    );
    // Its own address (in another case) is not a change: no link, no notice.
    let same = app
        .patch(
            "/api/account",
            &json!({ "email": holder.email.to_uppercase() }),
            Some(&token),
        )
        .await;
    same.assert_status(200);
    assert!(same.json().get("email_change").is_none());
    let mut notices = app.queued_notices(&holder.id).await;
    notices.sort();
    assert_eq!(notices, ["account_created", "confirm_email_change"]);

    let new_email = unique_email("renamed");
    let r = app
        .patch(
            "/api/account",
            &json!({ "email": new_email.to_uppercase() }),
            Some(&token),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.json()["email"],
        holder.email.as_str(),
        "not before the link is used"
    );
    assert_eq!(r.json()["name"], "Grace Hopper");
    let link = app.link_token("confirm_email_change", &new_email).await;
    app.use_link(&format!("/verify-email/{link}"), None)
        .await
        .assert_status(200);
    let me = app.get("/api/account", Some(&token)).await.json();
    assert_eq!(me["email"], new_email.as_str());
    assert_eq!(me["email_verified"], true);

    app.sign_in(&holder.email, &holder.password, false)
        .await
        .assert_error(401, "invalid_credentials");
    app.sign_in_ok(&new_email, &holder.password, false).await;
    let mut notices = app.queued_notices(&holder.id).await;
    notices.sort();
    assert_eq!(
        notices,
        [
            "account_created",
            "confirm_email_change",
            "confirm_email_change",
            "email_changed"
        ]
    );
    // The old address is free again: a registration of it gets a link to create an account.
    app.clock.advance_secs(15 * 60);
    app.register(&holder.email, &strong_password(), None)
        .await
        .assert_status(202);
    assert!(
        app.try_link_token("confirm_registration", &holder.email)
            .await
            .is_some()
    );
}

fn events(log: &Value) -> Vec<(String, String, Option<String>)> {
    log["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["at"].as_str().expect("at").to_owned(),
                e["event"].as_str().expect("event").to_owned(),
                e["network"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

pub async fn the_security_log_lists_sign_ins_newest_first_with_their_network_address(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let home = app.network();
    let holder = app.new_holder("logged").await;
    app.clock.advance_secs(1);
    app.sign_in_ok(&holder.email, &holder.password, false).await;
    app.clock.advance_secs(1);
    let travel = random_ipv6();
    app.use_network(travel);
    let token = app.sign_in_ok(&holder.email, &holder.password, true).await;
    app.clock.advance_secs(1);
    app.sign_in(&holder.email, "Not My Password 1", false)
        .await
        .assert_error(401, "invalid_credentials");

    let r = app.get("/api/account/security-log", Some(&token)).await;

    r.assert_status(200);
    let at = |s: i64| START.plus_secs(s).to_rfc3339();
    let (home, travel) = (Some(home.to_string()), Some(travel.to_string()));
    assert_eq!(
        events(&r.json()),
        [
            (at(3), "sign_in_failed".to_owned(), travel.clone()),
            (at(2), "sign_in".to_owned(), travel),
            (at(1), "sign_in".to_owned(), home.clone()),
            (at(0), "registered".to_owned(), home),
        ]
    );

    // Another account's log holds none of it.
    app.use_network(random_ipv4());
    let other = app.new_holder("otherlog").await;
    app.clock.advance_secs(1);
    let other = app.sign_in_ok(&other.email, &other.password, false).await;
    let theirs = app
        .get("/api/account/security-log", Some(&other))
        .await
        .json();
    let kinds: Vec<String> = events(&theirs).into_iter().map(|(_, e, _)| e).collect();
    assert_eq!(kinds, ["sign_in", "registered"]);
}

pub async fn the_security_log_pages_with_a_cursor_that_only_its_own_list_accepts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("paged").await;
    let mut token = String::new();
    for _ in 0..4 {
        app.clock.advance_secs(1);
        token = app.sign_in_ok(&holder.email, &holder.password, false).await;
    }
    let whole = app.get("/api/account/security-log", Some(&token)).await;
    whole.assert_status(200);
    let whole = whole.json();
    assert_eq!(events(&whole).len(), 5, "registered and four sign-ins");
    assert!(
        whole["next_cursor"].is_null(),
        "one page holds them all by default"
    );

    // Two at a time: 2, 2, 1, the same entries in the same order, and the last page says there is no more.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut sizes = Vec::new();
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/account/security-log?limit=2&cursor={c}"),
            None => "/api/account/security-log?limit=2".to_owned(),
        };
        let page = app.get(&path, Some(&token)).await;
        page.assert_status(200);
        let page = page.json();
        sizes.push(events(&page).len());
        paged.extend(events(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(paged, events(&whole));

    // A cursor of this log does not open another account's, nor does a made-up one; a limit out of range
    // is refused.
    let first = app
        .get("/api/account/security-log?limit=2", Some(&token))
        .await
        .json();
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let other = app.new_holder("otherpaged").await;
    let other = app.sign_in_ok(&other.email, &other.password, false).await;
    app.get(
        &format!("/api/account/security-log?cursor={cursor}"),
        Some(&other),
    )
    .await
    .assert_error(400, "invalid_cursor");
    app.get(
        "/api/account/security-log?cursor=not-a-cursor",
        Some(&other),
    )
    .await
    .assert_error(400, "invalid_cursor");
    for limit in ["0", "201", "many"] {
        app.get(
            &format!("/api/account/security-log?limit={limit}"),
            Some(&token),
        )
        .await
        .assert_error(400, "invalid_limit");
    }
}

pub async fn a_sign_in_from_a_new_network_queues_one_notice_and_a_known_network_none(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let home = app.network();
    let holder = app.new_holder("travelling").await;
    let new_network_notices = |notices: Vec<String>| {
        notices
            .iter()
            .filter(|n| *n == "new_network_sign_in")
            .count()
    };

    // The first sign-in from the registration's network (another host of it) is not "new".
    app.use_network(same_network(home));
    app.sign_in_ok(&holder.email, &holder.password, false).await;
    assert_eq!(new_network_notices(app.queued_notices(&holder.id).await), 0);

    let prefix = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.octets()[..3].to_vec(),
        IpAddr::V6(v6) => v6.octets()[..6].to_vec(),
    };
    let away = loop {
        let candidate = random_ipv4();
        if prefix(candidate) != prefix(home) {
            break candidate;
        }
    };
    app.clock.advance_secs(60);
    app.use_network(away);
    app.sign_in_ok(&holder.email, &holder.password, false).await;
    assert_eq!(new_network_notices(app.queued_notices(&holder.id).await), 1);

    // Both networks are known now.
    for network in [away, home] {
        app.clock.advance_secs(60);
        app.use_network(network);
        app.sign_in_ok(&holder.email, &holder.password, false).await;
    }
    assert_eq!(new_network_notices(app.queued_notices(&holder.id).await), 1);
}
