//! Messenger texts in the page's language: a page set to German gets every reply (the consent question
//! and its quick replies, the confirmation, STOP, MY DATA, DELETE MY DATA and its confirmation) in
//! German, with the page's name and nothing personal; a page without the setting stays in English.

use qchat_shared::app::account_key_owner;
use qchat_shared::bot_texts::{DE, EN};
use qchat_shared::leads::LeadStatus;
use qchat_shared::pages::page_key;
use qchat_shared::replies::reply_key;
use qchat_shared::store::{Condition, ItemKey, Value};

use crate::helpers::*;

/// Sets the test page's `language`, as `PATCH /api/pages/{page_id}` does.
async fn set_language(t: &TestApp, code: &str) {
    let item = t.page_item().await;
    let version = item.version().unwrap_or(0);
    let updated = item
        .plain("language", Value::S(code.to_owned()))
        .unwrap()
        .with_version(version + 1);
    t.app
        .store
        .put(updated, Condition::VersionIs(version))
        .await
        .unwrap();
    assert!(t.app.store.get(&page_key(&t.page)).await.unwrap().is_some());
}

/// The texts sent so far to `person`, with their quick reply titles.
fn sent_to(t: &TestApp, person: &str) -> Vec<(String, Vec<String>)> {
    t.sent_messages()
        .into_iter()
        .filter(|l| {
            serde_json::to_string(&l.recipient)
                .unwrap()
                .contains(person)
        })
        .map(|l| {
            let titles = l.quick_replies.iter().map(|q| q.title.clone()).collect();
            (l.text, titles)
        })
        .collect()
}

pub async fn a_german_page_asks_confirms_and_answers_stop_in_german_with_its_name(
    backend: Backend,
) {
    let t = app(backend, "confirmed").await;
    set_language(&t, "de").await;

    t.post(&body(vec![message("6001", "m_1", "hallo", 1)]))
        .await;
    t.post(&body(vec![quick_reply(
        "6001",
        "m_2",
        "QCHAT_CONSENT_YES",
        2,
    )]))
    .await;
    t.post(&body(vec![message("6001", "m_3", "STOP", 3)])).await;
    t.post(&body(vec![message("6002", "m_4", "hallo", 4)]))
        .await;
    t.post(&body(vec![quick_reply(
        "6002",
        "m_5",
        "QCHAT_CONSENT_NO",
        5,
    )]))
    .await;
    qchat_notify::tick(&t.app, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();

    // (The test clock stands still, so notify's order among these replies is not the events' order.)
    let first = sent_to(&t, "6001");
    assert_eq!(first.len(), 3, "{first:?}");
    let find = |sent: &[(String, Vec<String>)], start: &str| {
        sent.iter()
            .find(|(text, _)| text.starts_with(start))
            .cloned()
            .unwrap_or_else(|| panic!("{start:?} in {sent:?}"))
    };
    let (question, titles) = find(
        &first,
        "Hallo! Bakery Example möchte dir hier im Messenger Neuigkeiten senden.",
    );
    assert!(question.ends_with(&format!("{PUBLIC_URL}/privacy")));
    assert_eq!(titles, ["Ja", "Nein"]);
    // The wording recorded as consent is the German question that was sent.
    let records = t.records(&psid("6001")).await;
    assert_eq!(records[0].event.wording, question);

    let (subscribed, titles) = find(&first, "Du erhältst jetzt Nachrichten von Bakery Example.");
    assert!(
        subscribed.contains(&format!("{PUBLIC_URL}/u/")),
        "{subscribed}"
    );
    assert_eq!(titles, [DE.unsubscribe]);
    let (stopped, _) = find(&first, "Du bist abgemeldet");
    assert_eq!(
        stopped,
        "Du bist abgemeldet: Bakery Example sendet dir keine Nachrichten mehr. Doch anders \
         entschieden? Antworte START."
    );
    let second = sent_to(&t, "6002");
    find(
        &second,
        "In Ordnung, Bakery Example sendet dir keine Neuigkeiten. Wenn du es dir anders überlegst, \
         antworte START.",
    );
    // Nothing personal in any text: not the person's id, not what they wrote.
    for (text, _) in first.iter().chain(&second) {
        assert!(!text.contains("6001") && !text.contains("6002") && !text.contains("hallo"));
    }
}

pub async fn my_data_and_delete_my_data_are_answered_in_the_pages_language(backend: Backend) {
    let t = app(backend, "implicit").await;
    set_language(&t, "de").await;

    t.post(&body(vec![message("6101", "m_1", "hallo", 1)]))
        .await;
    t.post(&body(vec![message("6101", "m_2", "MY DATA", 2)]))
        .await;
    t.post(&body(vec![message("6102", "m_3", "MY DATA", 3)]))
        .await;
    t.post(&body(vec![message("6101", "m_4", "DELETE MY DATA", 4)]))
        .await;
    assert_eq!(
        t.lead(&psid("6101")).await.unwrap().status,
        LeadStatus::Unsubscribed
    );
    qchat_notify::tick(&t.app, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();

    let texts: Vec<String> = sent_to(&t, "6101").into_iter().map(|(x, _)| x).collect();
    assert!(
        texts.iter().any(
            |x| x.starts_with("Was Bakery Example über qchat über dich speichert")
                && x.contains("Status: angemeldet")
                && x.contains("Einwilligungsnachweise: 1")
                && x.contains("Marketing-Nachrichten: nie eingeschaltet")
        ),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|x| x.starts_with("Deine Anfrage ist eingegangen") && x.contains("Bakery Example")),
        "{texts:?}"
    );
    // A person of whom nothing is held is told so, in German too (by notify).
    let nothing: Vec<String> = sent_to(&t, "6102").into_iter().map(|(x, _)| x).collect();
    assert!(
        nothing
            .iter()
            .any(|x| x.starts_with("Bakery Example speichert über qchat keine Daten über dich")),
        "{nothing:?}"
    );

    // The confirmation held until the erasure is done is German as well.
    let lead = t.lead(&psid("6101")).await.unwrap();
    let job = lead.item.get_str("erasure_job").unwrap().to_owned();
    let job_item = t
        .app
        .store
        .get(&ItemKey::new(format!("JOB#{job}"), "JOB"))
        .await
        .unwrap()
        .expect("the erasure job");
    let params: serde_json::Value =
        serde_json::from_str(job_item.get_str("params").unwrap()).unwrap();
    let reply = params["confirm_reply"]
        .as_str()
        .expect("a held confirmation");
    let held = t
        .app
        .store
        .get(&reply_key(reply))
        .await
        .unwrap()
        .expect("the held reply");
    let cipher = t
        .app
        .keys
        .cipher(&account_key_owner(&t.account))
        .await
        .unwrap();
    let text = cipher
        .open(&reply_key(reply), "text", &held.get_sealed("text").unwrap())
        .unwrap();
    let text = text.as_str().unwrap();
    assert_eq!(
        text,
        format!(
            "Alles, was qchat für Bakery Example über dich gespeichert hatte, ist gelöscht. \
             Bestätigungscode: {job}. Status: {PUBLIC_URL}/deletion/{job}"
        )
    );
}

pub async fn a_page_without_a_language_or_with_an_unknown_one_speaks_english(backend: Backend) {
    let t = app(backend, "confirmed").await;
    t.post(&body(vec![message("6201", "m_1", "hi", 1)])).await;
    set_language(&t, "xx").await;
    t.post(&body(vec![message("6202", "m_2", "hi", 2)])).await;
    qchat_notify::tick(&t.app, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();
    for person in ["6201", "6202"] {
        let sent = sent_to(&t, person);
        assert!(
            sent[0].0.starts_with("Hi! Bakery Example would like"),
            "{sent:?}"
        );
        assert_eq!(sent[0].1, [EN.yes, EN.no]);
    }
}
