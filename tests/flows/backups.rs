//! Erasure that reaches backups: a copy of the main store taken before an account is erased, put back
//! after the erasure destroyed its keys, neither opens nor finds the account; a copy taken before one
//! lead is erased holds no value computable from the person's id once the lead's key-store items are
//! gone, and no sealed value of the lead that any remaining key opens (they were sealed under the lead's
//! own key, whose secret went with those items).
//!
//! The erasure here is the part that reaches backups, done the way account erasure does it: the
//! account's data keys destroyed ([`KeyManager::destroy`]) and its email claim released, both in the key
//! store, which backups do not copy. [`erase_keys`], [`sealed_values_that_open`] and
//! [`main_store_finds_email`] are for the account-erasure tests to reuse.
//!
//! Erasure by expiry reaches backups too: a registration's values (sealed under the registrations key,
//! whose versions the retention sweep rotates daily and destroys once all they sealed has expired) do
//! not open from a copy once that happened.

use std::sync::Arc;

use qchat_shared::accounts::{self, REGISTRATIONS_KEY_OWNER};
use qchat_shared::app::account_key_owner;
use qchat_shared::clock::Clock;
use qchat_shared::crypto::{KeyCachePolicy, KeyManager, LeadSecret};
use qchat_shared::domain::{AccountId, EmailAddress, LeadId, PageId, Psid};
use qchat_shared::inventory::{self, Protection, StoreKind};
use qchat_shared::leads::Subject;
use qchat_shared::store::ItemKey;
use serde_json::json;

use crate::helpers::{Backend, MainBackup, TestApp, strong_password, unique_email};
use crate::lead_erasure::{Site, message, mid, psid};

/// What a fresh process sees: a key manager with an empty cache over the app's key store and keyring.
fn fresh_keys(app: &TestApp) -> KeyManager {
    KeyManager::new(
        app.app.key_store.clone(),
        app.keyring.clone(),
        app.clock.clone() as Arc<dyn Clock>,
        KeyCachePolicy::default(),
    )
}

/// How many of the sealed values in `backup`'s items, as the main store now holds them, open under
/// `owner`'s key with `keys`, and how many sealed values were tried.
pub async fn sealed_values_that_open(
    app: &TestApp,
    keys: &KeyManager,
    owner: &str,
    backup: &MainBackup,
) -> (usize, usize) {
    lead_values_that_open(app, keys, owner, &TestApp::backup_keys(backup), None).await
}

/// Whether the main store holds, anywhere in any item (keys and every attribute), the blind index the
/// system key computes from `email`: whether anyone with the system key could find the address's
/// account in it.
pub async fn main_store_finds_email(app: &TestApp, email: &str) -> bool {
    let index = email_index(app, email).await;
    !app.raw_main_store()
        .await
        .find(&[index.as_str()])
        .is_empty()
}

async fn email_index(app: &TestApp, email: &str) -> qchat_shared::crypto::BlindIndex {
    let email = EmailAddress::parse(email).expect("an address");
    accounts::email_index(&app.app, &email)
        .await
        .expect("the blind-index key")
}

/// The erasure's steps that reach backups: the account's data keys destroyed and its email claim
/// released, in the key store.
pub async fn erase_keys(app: &TestApp, account: &str, email: &str) {
    let id = AccountId::parse(account).expect("an account id");
    app.app
        .keys
        .destroy(&account_key_owner(&id))
        .await
        .expect("the keys are destroyed");
    accounts::release_email(&app.app, &email_index(app, email).await, &id)
        .await
        .expect("the claim is released");
}

pub async fn a_main_store_restored_from_before_an_erasure_neither_opens_nor_finds_the_account(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    // An account with sealed values of every kind a holder leaves: address, name, a page token, a
    // security log (network), a session.
    let email = unique_email("restored");
    let password = strong_password();
    app.register(&email, &password, Some("Ada Lovelace"))
        .await
        .assert_status(202);
    let link = app.link_token("confirm_registration", &email).await;
    app.use_link(&format!("/verify-email/{link}"), None)
        .await
        .assert_status(200);
    let account = app.account_id_of(&email).await.expect("the account");
    let session = app.sign_in_ok(&email, &password, false).await;
    let page = "1987654321012345";
    app.post_json(
        "/api/pages",
        &json!({
            "page_id": page,
            "page_access_token": format!("sample-page-token-{page}-restore"),
            "name": "Ada's Bakery",
        }),
        Some(&session),
    )
    .await
    .assert_status(201);
    let owner = format!("account:{account}");

    let backup = app.backup_main_store().await;
    // The copy holds the account's sealed values, and they open while its keys exist.
    let (opened, tried) = sealed_values_that_open(&app, &fresh_keys(&app), &owner, &backup).await;
    assert!(
        opened >= 4,
        "the address, the name, the page token and the log open before: {opened} of {tried}"
    );
    // The address's blind index is in the key store (its claim) and nowhere in the main store.
    let index = email_index(&app, &email).await;
    assert!(
        !app.raw_key_store().await.find(&[index.as_str()]).is_empty(),
        "the claim holds the index the system key computes"
    );
    assert!(!main_store_finds_email(&app, &email).await);
    // Key-store items are where the inventory says, and only there.
    for (raw, kind) in [
        (app.raw_main_store().await, StoreKind::Main),
        (app.raw_key_store().await, StoreKind::Keys),
    ] {
        for item in &raw.items {
            assert_eq!(
                inventory::store_of(&item.item_type),
                kind,
                "{} in the {kind:?} store",
                item.item_type
            );
        }
    }

    erase_keys(&app, &account, &email).await;
    app.restore_main_store(&backup).await;

    // Every item of the account is back, and none of its sealed values opens, in this process or a
    // fresh one.
    for keys in [&app.app.keys, &Arc::new(fresh_keys(&app))] {
        let (opened, tried) = sealed_values_that_open(&app, keys, &owner, &backup).await;
        assert!(tried >= 4, "the restored items hold their sealed values");
        assert_eq!(opened, 0, "no sealed value of the erased account opens");
    }
    // No blind index in the restored main store matches the address; nothing finds the account by it.
    assert!(!main_store_finds_email(&app, &email).await);
    assert_eq!(app.account_id_of(&email).await, None);
    app.sign_in(&email, &password, false)
        .await
        .assert_error(401, "invalid_credentials");
    // The address is free again: registering it makes a new account (after the quarter hour in which
    // it was mailed last; the restored outbox holds that older mail too).
    app.clock.advance_secs(16 * 60);
    app.register(&email, &strong_password(), None)
        .await
        .assert_status(202);
    let link = app.link_token("confirm_registration", &email).await;
    app.use_link(&format!("/verify-email/{link}"), None)
        .await
        .assert_status(200);
    let again = app.account_id_of(&email).await.expect("a new account");
    assert_ne!(again, account);
}

/// The versions of the registrations key in the key store.
async fn registration_key_versions(app: &TestApp) -> Vec<u32> {
    app.app
        .keys
        .versions(REGISTRATIONS_KEY_OWNER)
        .await
        .expect("the versions are read")
        .into_iter()
        .map(|(v, _)| v)
        .collect()
}

async fn sweep_at(app: &TestApp, at: qchat_shared::clock::Timestamp) {
    app.clock.set(at);
    let report = qchat_shared::retention::sweep(&app.app, at.plus_secs(600))
        .await
        .expect("the sweep runs");
    assert_eq!(report.passes_finished, 1, "{report:?}");
}

pub async fn a_copy_holding_an_expired_registration_opens_nothing_once_the_sweep_retired_its_key(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    // A registration never confirmed: its pending verification (24 h) and its confirmation mail (30
    // days) hold the address, the name and the password hash, sealed under the registrations key.
    let email = unique_email("pending");
    app.register(&email, &strong_password(), Some("Grace Hopper"))
        .await
        .assert_status(202);
    let taken = app.clock.now();
    let backup = app.backup_main_store().await;
    let (opened, tried) =
        sealed_values_that_open(&app, &fresh_keys(&app), REGISTRATIONS_KEY_OWNER, &backup).await;
    assert!(
        opened >= 3 && opened == tried,
        "the address, name and password hash open while the registration is pending: {opened} of {tried}"
    );
    assert_eq!(registration_key_versions(&app).await, vec![1]);

    // A day on, the sweep makes a new version; the old one stays while anything it sealed lives: the
    // mail, 29 days on, still opens.
    sweep_at(&app, taken.plus_hours(24).plus_secs(1)).await;
    assert_eq!(registration_key_versions(&app).await, vec![1, 2]);
    sweep_at(&app, taken.plus_days(29)).await;
    let versions = registration_key_versions(&app).await;
    assert_eq!(versions.first(), Some(&1), "{versions:?}");
    let (opened, tried) =
        sealed_values_that_open(&app, &fresh_keys(&app), REGISTRATIONS_KEY_OWNER, &backup).await;
    assert!(
        tried >= 1 && opened == tried,
        "the live mail opens: {opened} of {tried}"
    );

    // Once everything version 1 sealed has expired, the sweep destroys it.
    let later = taken.plus_days(33);
    sweep_at(&app, later).await;
    let versions = registration_key_versions(&app).await;
    assert!(!versions.contains(&1), "{versions:?}");
    // A registration now seals under the newest version, and its link works.
    let other = unique_email("later");
    app.register(&other, &strong_password(), None)
        .await
        .assert_status(202);
    let link = app.link_token("confirm_registration", &other).await;
    app.use_link(&format!("/verify-email/{link}"), None)
        .await
        .assert_status(200);

    // The copy put back, read as of the time it was taken (so its items are live again): nothing of
    // the old registration opens, in this process or a fresh one.
    app.restore_main_store(&backup).await;
    app.clock.set(taken);
    for keys in [&app.app.keys, &Arc::new(fresh_keys(&app))] {
        let (opened, tried) =
            sealed_values_that_open(&app, keys, REGISTRATIONS_KEY_OWNER, &backup).await;
        assert!(
            tried >= 3,
            "the restored items hold their sealed values: {tried}"
        );
        assert_eq!(
            opened, 0,
            "no sealed value of the expired registration opens"
        );
    }
}

/// Every value the system key computes from `psid` on `page` that the main store could hold: the
/// lookup's blind index, and the lead id earlier versions derived from it (base32 of its SHA-256).
async fn computable_from(app: &TestApp, page: &str, psid: &str) -> [String; 2] {
    let indexer = app
        .app
        .keys
        .blind_indexer()
        .await
        .expect("the blind-index key");
    let page = PageId::parse(page).expect("a page id");
    let subject = Subject::Psid(Psid::parse(psid).expect("a PSID"));
    let index = qchat_shared::leads::subject_index(&indexer, &page, &subject);
    let digest = qchat_shared::crypto::sha256(index.as_str().as_bytes());
    [
        index.as_str().to_owned(),
        qchat_shared::ids::base32_lower(&digest[..16]),
    ]
}

/// The places of `found` that are items (SQLite keeps a deleted row's bytes in free pages and its
/// write-ahead log until they are reused, see the README: the files are not what a restore brings back).
fn items_only(found: Vec<(usize, String)>) -> Vec<(usize, String)> {
    found
        .into_iter()
        .filter(|(_, place)| !place.starts_with("file "))
        .collect()
}

/// Whether an item of the key store holds `bytes` in an attribute.
async fn key_store_holds(app: &TestApp, bytes: &[u8]) -> bool {
    app.raw_key_store().await.items.iter().any(|i| {
        i.attributes
            .iter()
            .any(|(_, v)| v.windows(bytes.len()).any(|w| w == bytes))
    })
}

/// The secrets of `leads` on `page` in the key store, and the key-store calls that read them.
async fn lead_secrets(
    app: &TestApp,
    page: &str,
    leads: &[&str],
) -> (
    std::collections::HashMap<LeadId, qchat_shared::crypto::LeadSecret>,
    qchat_shared::test_support::counting::StoreCalls,
) {
    let page = PageId::parse(page).expect("a page id");
    let leads: Vec<LeadId> = leads
        .iter()
        .map(|l| LeadId::parse(l).expect("a lead id"))
        .collect();
    let counting =
        qchat_shared::test_support::counting::CountingStore::new(app.app.key_store.clone());
    let found = qchat_shared::leads::lookup::secrets(&counting, &page, &leads)
        .await
        .expect("the key store answers");
    let calls = counting.calls();
    assert_eq!((calls.get_many, calls.total()), (1, 1), "{calls:?}");
    (found, calls)
}

async fn lead_found(app: &TestApp, page: &str, psid: &str) -> Option<LeadId> {
    let page = PageId::parse(page).expect("a page id");
    let subject = Subject::Psid(Psid::parse(psid).expect("a PSID"));
    qchat_shared::leads::find_lead(&app.app, &page, &subject)
        .await
        .expect("the lookup answers")
}

/// The keys of the main-store items holding sealed values of `lead` on `page`: the lead and the replies
/// that name it.
async fn lead_sealed_items(app: &TestApp, page: &str, lead: &str) -> Vec<ItemKey> {
    let (page, lead_id) = (
        PageId::parse(page).expect("a page id"),
        LeadId::parse(lead).expect("a lead id"),
    );
    let mut keys = vec![qchat_shared::leads::lead_key(&page, &lead_id)];
    for reply in app.raw_main_store().await.of_type("reply") {
        if reply.text("lead_id").as_deref() == Some(lead) {
            let pk = reply.text("pk").expect("a key");
            keys.push(qchat_shared::replies::reply_key(
                pk.trim_start_matches("REPLY#"),
            ));
        }
    }
    keys
}

/// How many sealed values of the items at `items` open with `keys` under `owner`'s key, or under the
/// lead's key when `lead` gives its secret and id, and how many sealed values were tried.
async fn lead_values_that_open(
    app: &TestApp,
    keys: &KeyManager,
    owner: &str,
    items: &[ItemKey],
    lead: Option<(&LeadSecret, &str)>,
) -> (usize, usize) {
    let (mut opened, mut tried) = (0, 0);
    for key in items {
        let Some(item) = app.app.store.get(key).await.expect("the store answers") else {
            continue;
        };
        for attribute in item.item_type().attributes {
            if attribute.protection != Protection::Encrypted {
                continue;
            }
            let Some(sealed) = item.get_sealed(attribute.name) else {
                continue;
            };
            tried += 1;
            let result = match lead {
                Some((secret, id)) => {
                    keys.open_lead(owner, Some(secret), id, key, attribute.name, &sealed)
                        .await
                }
                None => keys.open(owner, key, attribute.name, &sealed).await,
            };
            if result.is_ok() {
                opened += 1;
            }
        }
    }
    (opened, tried)
}

pub async fn a_main_store_restored_from_before_a_lead_erasure_holds_nothing_that_finds_the_person(
    backend: Backend,
) {
    let site = Site::spawn(backend).await;
    let (token, page, account) = site.holder_with_page("restored-lead").await;
    let owner = account_key_owner(&account);
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
    let app = &site.t;
    let computable = computable_from(app, &page, &gone).await;
    let refs: Vec<&str> = computable.iter().map(String::as_str).collect();
    // The lead id is random: the person's lookup is in the key store, and nothing in the main store is
    // computable from their PSID.
    assert_eq!(
        lead_found(app, &page, &gone)
            .await
            .map(|l| l.as_str().to_owned()),
        Some(lead.clone())
    );
    assert!(!computable.contains(&lead));
    assert!(!app.raw_key_store().await.find(&refs[..1]).is_empty());
    assert_eq!(app.raw_main_store().await.find(&refs), vec![]);

    // Each lead has its secret in the key store; a batch of leads' secrets is one read.
    let (both, _) = lead_secrets(app, &page, &[&lead, &other]).await;
    assert_eq!(both.len(), 2);
    let before = both
        .get(&LeadId::parse(&lead).expect("an id"))
        .expect("the lead's secret")
        .expose()
        .to_vec();
    assert!(key_store_holds(app, &before).await);

    // Its values (PSID, the welcome reply's recipient and text) are sealed under its own key: they open
    // with its secret, and not with the account's key alone.
    let sealed_items = lead_sealed_items(app, &page, &lead).await;
    assert!(sealed_items.len() >= 2, "the lead and its reply");
    let secret = LeadSecret::from_stored(&before).expect("a secret");
    let (opened, tried) = lead_values_that_open(
        app,
        &app.app.keys,
        &owner,
        &sealed_items,
        Some((&secret, &lead)),
    )
    .await;
    assert!(tried >= 3 && opened == tried, "{opened} of {tried}");
    let (opened, _) = lead_values_that_open(app, &app.app.keys, &owner, &sealed_items, None).await;
    assert_eq!(opened, 0, "the account's key alone opens none");

    // The copy: every item of the main store (the lead's and its page's among them).
    let backup = app.backup_main_store().await;
    let erasure = app
        .delete(&format!("/api/pages/{page}/leads/{lead}"), Some(&token))
        .await;
    erasure.assert_status(202);
    let code = erasure.json()["erasure"]["confirmation_code"]
        .as_str()
        .expect("a code")
        .to_owned();
    site.run_erasures(&code).await;
    assert_eq!(
        items_only(app.raw_main_store().await.find(&[&lead])),
        vec![]
    );
    app.restore_main_store(&backup).await;

    // The lead's items are back in the main store, and nothing finds them from the person's PSID: no
    // lookup, no key-store item, no value in the main store computable from it.
    assert!(
        !app.raw_main_store().await.find(&[&lead]).is_empty(),
        "the restored copy holds the lead"
    );
    assert_eq!(lead_found(app, &page, &gone).await, None);
    assert_eq!(app.raw_main_store().await.find(&refs), vec![]);
    assert_eq!(items_only(app.raw_key_store().await.find(&refs)), vec![]);
    assert_eq!(items_only(app.raw_key_store().await.find(&[&lead])), vec![]);
    // Its secret went with its key-store entry (the other lead's stays): nothing derives its key.
    let (left, _) = lead_secrets(app, &page, &[&lead, &other]).await;
    assert_eq!(
        left.keys().map(LeadId::as_str).collect::<Vec<_>>(),
        vec![other.as_str()]
    );
    assert!(!key_store_holds(app, &before).await);
    // No sealed value of the restored lead opens with any key that still exists: the account's key,
    // in this process or a fresh one, opens none of them.
    for keys in [&app.app.keys, &Arc::new(fresh_keys(app))] {
        let (opened, tried) = lead_values_that_open(app, keys, &owner, &sealed_items, None).await;
        assert!(
            tried >= 3,
            "the restored items hold their sealed values: {tried}"
        );
        assert_eq!(opened, 0, "no sealed value of the erased lead opens");
    }
    // The person's next message is a stranger's: a new lead, not the restored one.
    site.events(
        &page,
        vec![message(&page, &gone, &mid(), "hi again", site.now())],
    )
    .await;
    let again = lead_found(app, &page, &gone).await.expect("a new lead");
    assert_ne!(again.as_str(), lead);

    // The account and its other lead still work.
    assert_eq!(
        lead_found(app, &page, &kept)
            .await
            .map(|l| l.as_str().to_owned()),
        Some(other.clone())
    );
    let export = app
        .get(
            &format!("/api/pages/{page}/leads/{other}/export"),
            Some(&token),
        )
        .await;
    export.assert_status(200);
    assert_eq!(export.json()["lead"]["subject"], kept.as_str());
}
