//! No PSID, message text or name in the stored bytes or in the logs.

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

#[tokio::test]
async fn the_sqlite_files_hold_no_psid_text_or_name_after_a_flow() {
    let t = app("confirmed").await;
    flow(&t).await;
    assert!(!t.sent_messages().is_empty());
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(t.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("qchat.sqlite3") {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(bytes.len() > 1000);
    let hay = String::from_utf8_lossy(&bytes);
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

#[tokio::test]
async fn logs_of_a_whole_flow_hold_no_psid_text_or_token() {
    let logs = logs::capture();
    let t = app("implicit").await;
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
