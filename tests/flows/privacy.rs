//! The whole privacy flow: after an account holder registers, signs in from two networks, connects a
//! page, fails a sign-in, changes the password and the email address, reads the security log and signs
//! out, neither the raw store (every item, every attribute, as bytes; for SQLite also the database files)
//! nor the captured logs hold any personal value used, and every stored attribute is declared in the data
//! inventory.

use std::net::IpAddr;

use serde_json::json;

use qchat_shared::test_support::{logs, unique_name};

use crate::helpers::{Backend, TestApp, random_ipv4, random_ipv6, searchable};

/// The network prefix the new-network check derives from an address (the input of its blind index).
fn prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

pub async fn after_a_whole_flow_no_personal_value_is_in_the_raw_store_or_the_logs(
    backend: Backend,
) {
    let logs = logs::capture();
    let app = TestApp::spawn(backend).await;
    let tag = unique_name("pf");
    let email = format!("Quintessa.Marlowe-{tag}@Privacy-Flows.Example");
    let second_email = format!("Q.Vandersloot-{tag}@Elsewhere.Example");
    let name = "Quintessa Marlowe-Vandersloot";
    let first_password = format!("Amber Orchid Tundra {tag}");
    let second_password = format!("Cobalt Meadow Zephyr {tag}");
    let wrong_password = format!("Wrong Guess Marmalade {tag}");
    let page_id = "104729000000001";
    // The local messenger's sample form (the only tokens it verifies), unique to this run.
    let page_token = format!("sample-page-token-{page_id}-{}", tag.replace('-', ""));
    let home = random_ipv4();
    let travel = random_ipv6();

    // Register and sign in at home.
    app.use_network(home);
    let r = app
        .register(&format!("  {email} "), &first_password, Some(name))
        .await;
    r.assert_status(202);
    let confirm_link = app.link_token("confirm_registration", &email).await;
    app.use_link(&format!("/verify-email/{confirm_link}"), None)
        .await
        .assert_status(200);
    let account = app.account_id_of(&email).await.expect("an account");
    let at_home = app.sign_in_ok(&email, &first_password, true).await;

    // Sign in while travelling: a new network.
    app.clock.advance_secs(60);
    app.use_network(travel);
    let travelling = app
        .sign_in_ok(&email.to_uppercase(), &first_password, false)
        .await;
    assert!(
        app.queued_notices(&account)
            .await
            .contains(&"new_network_sign_in".to_owned())
    );

    // Connect a page.
    app.post_json(
        "/api/pages",
        &json!({ "page_id": page_id, "page_access_token": page_token, "name": "Marlowe's Bakery" }),
        Some(&at_home),
    )
    .await
    .assert_status(201);

    // A failed sign-in, then a password change (which ends the home session).
    app.clock.advance_secs(60);
    app.sign_in(&email, &wrong_password, false)
        .await
        .assert_error(401, "invalid_credentials");
    app.post_json(
        "/api/account/password",
        &json!({ "current_password": first_password, "new_password": second_password }),
        Some(&travelling),
    )
    .await
    .assert_status(200);
    let latest = app.sign_in_ok(&email, &second_password, true).await;

    // The security log shows both networks to the holder.
    let log = app
        .get("/api/account/security-log", Some(&latest))
        .await
        .text();
    assert!(log.contains(&home.to_string()) && log.contains(&travel.to_string()));

    // Change the address, read the account, sign out of one session.
    app.clock.advance_secs(60);
    app.patch(
        "/api/account",
        &json!({ "email": second_email }),
        Some(&latest),
    )
    .await
    .assert_status(200);
    let change_link = app
        .link_token("confirm_email_change", &second_email.to_lowercase())
        .await;
    app.use_link(&format!("/verify-email/{change_link}"), None)
        .await
        .assert_status(200);
    let me = app.get("/api/account", Some(&latest)).await.json();
    assert_eq!(me["email"], second_email.to_lowercase());
    assert_eq!(me["name"], name);
    app.delete("/api/sessions/current", Some(&travelling))
        .await
        .assert_status(204);

    let home_address = home.to_string();
    let travel_address = travel.to_string();
    let (home_prefix, travel_prefix) = (prefix(home), prefix(travel));
    let personal: Vec<&str> = vec![
        &email,
        &second_email,
        name,
        &first_password,
        &second_password,
        &wrong_password,
        &at_home,
        &travelling,
        &latest,
        &page_token,
        &confirm_link,
        &change_link,
        &home_address,
        &travel_address,
        &home_prefix,
        &travel_prefix,
    ];

    let raw = app.raw_store().await;
    for item_type in [
        "account",
        "email_claim",
        "session",
        "security_event",
        "page",
        "outbox",
        "data_key",
    ] {
        assert!(
            raw.of_type(item_type).next().is_some(),
            "the scan sees {item_type} items"
        );
    }
    assert!(raw.of_type("security_event").count() >= 6);
    let found = raw.find(&personal);
    assert!(
        found.is_empty(),
        "personal values (by index) found in the raw store: {found:?}"
    );
    let undeclared = raw.undeclared_attributes();
    assert!(
        undeclared.is_empty(),
        "stored attributes missing from the data inventory: {undeclared:?}"
    );

    assert!(
        logs.contents().contains(&account),
        "the flow's own log lines were captured"
    );
    logs.assert_absent(&personal);
    // In any case, too (addresses are stored and compared lowercased).
    let captured = searchable(logs.contents().as_bytes());
    for (i, value) in personal.iter().enumerate() {
        assert!(
            !captured.contains(&value.to_ascii_lowercase()),
            "personal value {i} appears in the logs in another case"
        );
    }
}
