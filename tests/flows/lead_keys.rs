//! A lead's values sealed under the lead's own key: what the webhook writes for a new lead (its PSID, its
//! marketing token and the replies that name it, in format 2) opens only with the lead's secret, and
//! every reader opens it (the lead's export, the account's export, notify); a lead from before lookups
//! held a secret keeps its values under the account's key and still works end to end; a lead whose
//! secret is gone reads as unreadable everywhere, and nothing is sent to it.

use qchat_shared::app::account_key_owner;
use qchat_shared::crypto::{LeadSecret, Sealed};
use qchat_shared::domain::{AccountId, LeadId, PageId, Psid};
use qchat_shared::inventory::{LEAD_KEYS, LEAD_LOOKUP};
use qchat_shared::leads::{Subject, lead_key, lookup};
use qchat_shared::replies::reply_key;
use qchat_shared::store::{Condition, Item, Value};
use qchat_shared::test_support::logs;
use serde_json::{Value as Json, json};

use crate::erasure::whole_export;
use crate::helpers::Backend;
use crate::lead_erasure::{Site, message, mid, psid};

const FORMAT_ACCOUNT: u8 = 1;
const FORMAT_LEAD: u8 = 2;

fn marketing_optin(page: &str, psid: &str, token: &str, site: &Site) -> Json {
    json!({
        "sender": { "id": psid }, "recipient": { "id": page }, "timestamp": site.now().millis(),
        "optin": { "type": "notification_messages", "payload": "deals",
                   "notification_messages_token": token },
    })
}

fn ids(page: &str, lead: &str) -> (PageId, LeadId) {
    (
        PageId::parse(page).expect("a page id"),
        LeadId::parse(lead).expect("a lead id"),
    )
}

/// The lead's item and the reply items that name it, as the store holds them.
async fn lead_items(site: &Site, page: &str, lead: &str) -> (Item, Vec<Item>) {
    let (page_id, lead_id) = ids(page, lead);
    let app = &site.t.app;
    let item = app
        .store
        .get(&lead_key(&page_id, &lead_id))
        .await
        .expect("read")
        .expect("the lead");
    let mut replies = Vec::new();
    for raw in site.t.raw_main_store().await.of_type("reply") {
        if raw.text("lead_id").as_deref() != Some(lead) {
            continue;
        }
        let pk = raw.text("pk").expect("a key");
        let reply = app
            .store
            .get(&reply_key(pk.trim_start_matches("REPLY#")))
            .await
            .expect("read")
            .expect("the reply");
        replies.push(reply);
    }
    (item, replies)
}

/// Every sealed value of `items` with its attribute.
fn sealed_values(items: &[&Item]) -> Vec<(Item, &'static str, Sealed)> {
    let mut out = Vec::new();
    for item in items {
        for attr in ["subject", "marketing_token", "recipient", "text"] {
            if let Some(sealed) = item.get_sealed(attr) {
                out.push(((*item).clone(), attr, sealed));
            }
        }
    }
    out
}

/// The lead's secret as its key-store entry holds it, if it has one.
async fn entry_secret(site: &Site, page: &str, lead: &str) -> Option<LeadSecret> {
    let (page, lead) = ids(page, lead);
    lookup::secret(site.t.app.key_store.as_ref(), &page, &lead)
        .await
        .expect("the key store answers")
}

/// Makes the lead of `person` one from before lookups held a secret: its lookup and entry rewritten
/// without one, and its subject sealed again under the account's key (format 1), as the webhook wrote it
/// then.
async fn as_before_lead_keys(
    site: &Site,
    account: &AccountId,
    page: &str,
    person: &str,
    lead: &str,
) {
    let app = &site.t.app;
    let (page_id, lead_id) = ids(page, lead);
    let indexer = app.keys.blind_indexer().await.expect("the index key");
    let subject = Subject::Psid(Psid::parse(person).expect("a PSID"));
    let index = lookup::subject_index(&indexer, &page_id, &subject);
    let now = site.now().millis();
    let lookup_item = Item::new(&LEAD_LOOKUP, lookup::lookup_key(&index))
        .plain("lead_id", Value::S(lead.to_owned()))
        .and_then(|i| i.plain("created", Value::N(now)))
        .expect("a lookup");
    let entry = Item::new(&LEAD_KEYS, lookup::keys_key(&page_id, &lead_id))
        .blind_index("lookup", &index)
        .and_then(|i| i.plain("created", Value::N(now)))
        .expect("an entry");
    for item in [lookup_item, entry] {
        app.key_store
            .put(item, Condition::Always)
            .await
            .expect("written");
    }
    let key = lead_key(&page_id, &lead_id);
    let item = app.store.get(&key).await.expect("read").expect("the lead");
    let sealed = app
        .keys
        .cipher(&account_key_owner(account))
        .await
        .expect("the account key")
        .seal(&key, "subject", person.as_bytes())
        .expect("sealed");
    let item = item.sealed("subject", sealed).expect("declared");
    app.store
        .put(item, Condition::Always)
        .await
        .expect("written");
    assert!(entry_secret(site, page, lead).await.is_none());
}

/// The state and failure of every reply naming `lead`.
async fn reply_outcomes(site: &Site, page: &str, lead: &str) -> Vec<(String, Option<String>)> {
    let (_, replies) = lead_items(site, page, lead).await;
    replies
        .iter()
        .map(|r| {
            (
                r.get_str("state").unwrap_or_default().to_owned(),
                r.get_str("failure").map(str::to_owned),
            )
        })
        .collect()
}

async fn lead_export(site: &Site, token: &str, page: &str, lead: &str) -> Json {
    let export = site
        .t
        .get(
            &format!("/api/pages/{page}/leads/{lead}/export"),
            Some(token),
        )
        .await;
    export.assert_status(200);
    export.json()
}

pub async fn a_new_leads_values_are_sealed_under_its_own_key_and_a_lead_from_before_still_works(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let (token, page, account) = site.holder_with_page("lead-keys").await;
    let owner = account_key_owner(&account);
    let keys = &site.t.app.keys;
    let (new, old) = (psid(), psid());
    let (new_token, old_token) = (format!("mm-new-{}", mid()), format!("mm-old-{}", mid()));

    // The older lead: written, its welcome reply sent, then made as it was before lead keys.
    site.events(
        &page,
        vec![message(&page, &old, &mid(), "hello", site.now())],
    )
    .await;
    let old_lead = site.lead_of(&token, &page, &old).await;
    site.send_replies().await;
    as_before_lead_keys(&site, &account, &page, &old, &old_lead).await;

    // A new person writes and opts in to marketing messages; the older one does too.
    site.events(
        &page,
        vec![message(&page, &new, &mid(), "hello", site.now())],
    )
    .await;
    site.events(
        &page,
        vec![
            marketing_optin(&page, &new, &new_token, &site),
            marketing_optin(&page, &old, &old_token, &site),
            message(&page, &old, &mid(), "MY DATA", site.now()),
        ],
    )
    .await;
    let new_lead = site.lead_of(&token, &page, &new).await;

    // The new lead: its PSID, token and replies in format 2, which the account's key does not open and
    // the lead's key does. Its lookup holds the same secret as its entry.
    let secret = entry_secret(&site, &page, &new_lead)
        .await
        .expect("a new lead has a secret");
    let (page_id, _) = ids(&page, &new_lead);
    let index = lookup::subject_index(
        &keys.blind_indexer().await.expect("the index key"),
        &page_id,
        &Subject::Psid(Psid::parse(&new).expect("a PSID")),
    );
    let found = lookup::find(site.t.app.key_store.as_ref(), &index)
        .await
        .expect("read")
        .expect("the lookup");
    assert_eq!(found.id.as_str(), new_lead);
    assert_eq!(
        found.secret.as_ref().map(LeadSecret::expose),
        Some(secret.expose())
    );
    let (item, replies) = lead_items(&site, &page, &new_lead).await;
    assert!(!replies.is_empty(), "the welcome reply names the lead");
    let mut all = vec![&item];
    all.extend(replies.iter());
    let values = sealed_values(&all);
    let attrs: Vec<&str> = values.iter().map(|(_, a, _)| *a).collect();
    for attr in ["subject", "marketing_token", "recipient", "text"] {
        assert!(attrs.contains(&attr), "{attr} is held: {attrs:?}");
    }
    for (item, attr, sealed) in &values {
        assert_eq!(sealed.as_bytes()[0], FORMAT_LEAD, "{attr}");
        assert!(
            keys.open(&owner, item.key(), attr, sealed).await.is_err(),
            "the account's key alone opens no {attr}"
        );
        assert!(
            keys.open_lead(&owner, Some(&secret), &new_lead, item.key(), attr, sealed)
                .await
                .is_ok(),
            "the lead's key opens its {attr}"
        );
    }

    // The older lead: its values, old and new, under the account's key.
    let (item, replies) = lead_items(&site, &page, &old_lead).await;
    let mut all = vec![&item];
    all.extend(replies.iter());
    let values = sealed_values(&all);
    let attrs: Vec<&str> = values.iter().map(|(_, a, _)| *a).collect();
    assert!(attrs.contains(&"marketing_token"), "{attrs:?}");
    let pending: Vec<&Item> = replies
        .iter()
        .filter(|r| r.get_str("state") == Some("pending"))
        .collect();
    assert_eq!(pending.len(), 1, "the MY DATA answer is queued");
    for (item, attr, sealed) in sealed_values(&[&item])
        .iter()
        .chain(&sealed_values(&pending))
    {
        assert_eq!(sealed.as_bytes()[0], FORMAT_ACCOUNT, "{attr}");
        assert!(keys.open(&owner, item.key(), attr, sealed).await.is_ok());
    }

    // Every reader opens both: the lead's export, the account's export, notify.
    for (lead, person, mm) in [(&new_lead, &new, &new_token), (&old_lead, &old, &old_token)] {
        let export = lead_export(&site, &token, &page, lead).await;
        assert_eq!(export["lead"]["subject"], person.as_str());
        assert_eq!(export["lead"]["marketing_token"], mm.as_str());
    }
    let pending = lead_export(&site, &token, &page, &new_lead).await;
    assert_eq!(
        pending["pending_replies"][0]["recipient"],
        new.as_str(),
        "{pending}"
    );
    let (_, items, _) = whole_export(&site.t, &token).await;
    let mut exported: Vec<(String, String)> = items
        .iter()
        .filter(|i| i["type"] == "lead")
        .map(|i| {
            (
                i["subject"].as_str().unwrap_or_default().to_owned(),
                i["marketing_token"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    exported.sort();
    let mut expected = vec![
        (new.clone(), new_token.clone()),
        (old.clone(), old_token.clone()),
    ];
    expected.sort();
    assert_eq!(exported, expected);
    site.send_replies().await;
    for lead in [&new_lead, &old_lead] {
        let outcomes = reply_outcomes(&site, &page, lead).await;
        assert!(
            !outcomes.is_empty() && outcomes.iter().all(|(state, _)| state == "sent"),
            "{outcomes:?}"
        );
    }
    site.t.assert_every_stored_attribute_is_declared().await;
}

pub async fn a_lead_whose_secret_is_gone_reads_as_unreadable_and_is_sent_nothing(backend: Backend) {
    let site = Site::spawn(backend).await;
    let log = logs::capture();
    let (token, page, _) = site.holder_with_page("lead-key-gone").await;
    let (gone, kept) = (psid(), psid());
    site.events(
        &page,
        vec![
            message(&page, &gone, &mid(), "hello", site.now()),
            message(&page, &kept, &mid(), "hello", site.now()),
        ],
    )
    .await;
    let lead = site.lead_of(&token, &page, &gone).await;
    let other = site.lead_of(&token, &page, &kept).await;

    // The lead's key-store items removed (as its erasure does last; or a restored copy of the main
    // store after its erasure), its items in the main store left, with its welcome reply still queued.
    let (page_id, lead_id) = ids(&page, &lead);
    assert!(
        lookup::erase_keys(site.t.app.key_store.as_ref(), &page_id, &lead_id)
            .await
            .expect("erased")
    );
    let unreadable = json!({ "unreadable": "lead_key_erased" });

    let export = lead_export(&site, &token, &page, &lead).await;
    assert_eq!(export["lead"]["subject"], unreadable, "{export}");
    assert_eq!(
        export["pending_replies"][0]["recipient"], unreadable,
        "{export}"
    );
    assert_eq!(export["pending_replies"][0]["text"], unreadable, "{export}");
    assert_eq!(
        lead_export(&site, &token, &page, &other).await["lead"]["subject"],
        kept.as_str()
    );

    let (_, items, _) = whole_export(&site.t, &token).await;
    let subjects: Vec<(String, Json)> = items
        .iter()
        .filter(|i| i["type"] == "lead")
        .map(|i| {
            (
                i["lead_id"].as_str().unwrap_or_default().to_owned(),
                i["subject"].clone(),
            )
        })
        .collect();
    assert!(
        subjects.contains(&(lead.clone(), unreadable.clone())),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&(other.clone(), json!(kept))),
        "{subjects:?}"
    );

    // Notify sends nothing to it: the reply fails as unreadable; the other lead's goes out.
    site.send_replies().await;
    assert_eq!(
        reply_outcomes(&site, &page, &lead).await,
        vec![("failed".to_owned(), Some("unreadable".to_owned()))]
    );
    assert_eq!(
        reply_outcomes(&site, &page, &other).await,
        vec![("sent".to_owned(), None)]
    );
    log.assert_absent(&[&gone, &kept]);
}
