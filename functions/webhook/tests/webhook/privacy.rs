//! No PSID, message text or name in the stored bytes (the SQLite files, or a DynamoDB Scan on moto) or
//! in the logs.

use qchat_shared::test_support::logs;

use crate::helpers::*;

const PSIDS: [&str; 3] = [
    "918273645500112233",
    "918273645500112234",
    "918273645500112235",
];
const TEXTS: [&str; 3] = [
    "Hallo Bäckerei, ist der Zwetschgenkuchen heute frisch",
    "Please call me back at my office",
    "Raphaela Quintessenz-Oberholzer",
];

async fn flow(t: &TestApp) {
    let mut items = Vec::new();
    for (i, (p, text)) in PSIDS.iter().zip(TEXTS).enumerate() {
        items.push(message(p, &format!("m_p{i}"), text, i as i64 + 1));
    }
    items.push(quick_reply(PSIDS[0], "m_yes", "QCHAT_CONSENT_YES", 10));
    items.push(message(PSIDS[1], "m_stop", "STOP", 11));
    items.push(message(PSIDS[2], "m_md", "MY DATA", 12));
    items.push(checkbox("user-ref-secret-77", "cart", 13));
    items.push(marketing(
        PSIDS[0],
        Some("marketing-token-secret-88"),
        None,
        14,
    ));
    assert_eq!(t.post(&body(items)).await.status(), 200);
    qchat_notify::tick(&t.app, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();
}

pub async fn the_raw_store_holds_no_psid_text_or_name_after_a_flow(backend: Backend) {
    let t = app(backend, "confirmed").await;
    flow(&t).await;
    assert!(!t.sent_messages().is_empty());
    // SQLite: the database file and its write-ahead log as bytes; moto: a DynamoDB Scan of the table.
    let bytes = t.raw_store_bytes().await;
    assert!(bytes.len() > 1000);
    let hay = String::from_utf8_lossy(&bytes);
    // Not vacuous: the raw read sees the leads (their attribute names are stored in clear on both).
    assert!(
        hay.contains("unsubscribe_hash"),
        "the raw read sees the lead items"
    );
    for v in PSIDS.iter().chain(TEXTS.iter()).chain(
        [
            "user-ref-secret-77",
            "marketing-token-secret-88",
            PAGE_TOKEN,
        ]
        .iter(),
    ) {
        assert!(
            !hay.contains(v),
            "a personal or secret value is stored in clear"
        );
    }
}

pub async fn logs_of_a_whole_flow_hold_no_psid_text_or_token(backend: Backend) {
    let logs = logs::capture();
    let t = app(backend, "implicit").await;
    flow(&t).await;
    let mut values: Vec<&str> = PSIDS.to_vec();
    values.extend(TEXTS);
    values.extend([
        "user-ref-secret-77",
        "marketing-token-secret-88",
        PAGE_TOKEN,
    ]);
    logs.assert_absent(&values);
}
