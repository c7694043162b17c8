//! Email claims in the key store, written before the account they name (two stores, no transaction
//! across them): every crash between the two leaves a claim that finds nothing, and the address's next
//! claim takes it over once it cannot be in flight any more.

use qchat_shared::accounts::{self, ClaimOutcome, ORPHAN_CLAIM_GRACE_SECS};
use qchat_shared::clock::Clock as _;
use qchat_shared::domain::{AccountId, EmailAddress};
use qchat_shared::inventory::EMAIL_CLAIM;
use qchat_shared::store::{Condition, Item, Value};
use serde_json::json;

use crate::helpers::{Backend, TestApp, strong_password, unique_email};

async fn index(app: &TestApp, email: &str) -> qchat_shared::crypto::BlindIndex {
    let email = EmailAddress::parse(email).expect("an address");
    accounts::email_index(&app.app, &email)
        .await
        .expect("the blind-index key")
}

/// What a request that crashed after its claim leaves: a claim of `email` naming `account`, which does
/// not name it back.
async fn crashed_claim(app: &TestApp, email: &str, account: &AccountId) {
    let key = accounts::email_claim_key(&index(app, email).await);
    let existing = app.app.key_store.get(&key).await.expect("the key store");
    let item = Item::new(&EMAIL_CLAIM, key)
        .plain("account_id", Value::S(account.as_str().to_owned()))
        .and_then(|i| i.plain("claim_id", Value::S(app.app.ids.new_id())))
        .and_then(|i| i.plain("created", Value::N(app.clock.now().millis())))
        .expect("a claim")
        .with_version(existing.and_then(|i| i.version()).unwrap_or(0) + 1);
    app.app
        .key_store
        .put(item, Condition::Always)
        .await
        .expect("the claim is written");
}

async fn confirm(app: &TestApp, email: &str) -> crate::helpers::TestResponse {
    let link = app.link_token("confirm_registration", email).await;
    app.use_link(&format!("/verify-email/{link}"), None).await
}

pub async fn a_claim_whose_account_never_appeared_finds_nothing_and_is_taken_over_after_its_grace(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let email = unique_email("orphan");
    let password = strong_password();
    // A registration that crashed between its claim and its account.
    let ghost = AccountId::generate(app.app.ids.as_ref());
    crashed_claim(&app, &email, &ghost).await;

    // The claim finds no account: sign-in fails as for any unknown address; a registration is not
    // told the address is taken, and gets its link.
    app.sign_in(&email, &password, false)
        .await
        .assert_error(401, "invalid_credentials");
    app.register(&email, &password, None)
        .await
        .assert_status(202);
    assert!(app.queued_notices(ghost.as_str()).await.is_empty());
    let link = app.link_token("confirm_registration", &email).await;

    // While the claim could still be a request in flight, the link waits and stays valid.
    let r = app.use_link(&format!("/verify-email/{link}"), None).await;
    r.assert_status(409);
    assert!(r.text().contains("Open the link again"), "{}", r.text());
    assert_eq!(app.raw_store().await.of_type("account").count(), 0);

    // After the grace time the orphan is taken over.
    app.clock.advance_secs(ORPHAN_CLAIM_GRACE_SECS);
    app.use_link(&format!("/verify-email/{link}"), None)
        .await
        .assert_status(200);
    let id = app.account_id_of(&email).await.expect("the claim");
    assert_ne!(id, ghost.as_str());
    app.sign_in_ok(&email, &password, false).await;
    assert_eq!(app.raw_key_store().await.of_type("email_claim").count(), 1);
}

pub async fn a_change_of_address_that_crashed_after_its_claim_changes_nothing_and_can_be_done_again(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (holder, session) = app.signed_in_holder("mover").await;
    let account = AccountId::parse(&holder.id).expect("an id");
    let new_email = unique_email("moved");
    app.patch(
        "/api/account",
        &json!({ "email": new_email }),
        Some(&session),
    )
    .await
    .assert_status(200);
    // The confirmation claimed the new address, then crashed before the profile changed.
    crashed_claim(&app, &new_email, &account).await;
    app.sign_in(&new_email, &holder.password, false)
        .await
        .assert_error(401, "invalid_credentials");
    app.sign_in_ok(&holder.email, &holder.password, false).await;

    // Using the link again finishes the change at once (the claim is this account's own).
    let link = app.link_token("confirm_email_change", &new_email).await;
    app.use_link(&format!("/verify-email/{link}"), None)
        .await
        .assert_status(200);
    app.sign_in_ok(&new_email, &holder.password, false).await;
    app.sign_in(&holder.email, &holder.password, false)
        .await
        .assert_error(401, "invalid_credentials");
    // The old address was released: one claim left, for the new address.
    let claims = app.raw_key_store().await;
    assert_eq!(claims.of_type("email_claim").count(), 1);
    assert_eq!(app.account_id_of(&holder.email).await, None);
    assert_eq!(app.account_id_of(&new_email).await, Some(holder.id.clone()));
}

pub async fn an_old_address_whose_release_crashed_finds_nothing_and_is_free_after_its_grace(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (holder, _) = app.signed_in_holder("leaver").await;
    let account = AccountId::parse(&holder.id).expect("an id");
    // The profile names another claim now (the address was changed), but the old claim was not
    // released: it still names the account.
    crashed_claim(&app, &holder.email, &account).await;
    app.sign_in(&holder.email, &holder.password, false)
        .await
        .assert_error(401, "invalid_credentials");

    // Someone else registers the old address: within the grace time the link waits, then works.
    let password = strong_password();
    app.clock.advance_secs(15 * 60);
    app.register(&holder.email, &password, None)
        .await
        .assert_status(202);
    let r = confirm(&app, &holder.email).await;
    // The crashed claim is older than the grace time by now.
    r.assert_status(200);
    let new_owner = app.account_id_of(&holder.email).await.expect("claimed");
    assert_ne!(new_owner, holder.id);
    app.sign_in_ok(&holder.email, &password, false).await;
}

pub async fn a_claim_is_refused_while_its_address_is_live_and_while_another_claim_is_in_flight(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("taken").await;
    let idx = index(&app, &holder.email).await;
    let other = AccountId::generate(app.app.ids.as_ref());
    assert!(matches!(
        accounts::claim_email(&app.app, &idx, &other).await,
        Ok(ClaimOutcome::Taken)
    ));
    let free = unique_email("free");
    let free_idx = index(&app, &free).await;
    assert!(matches!(
        accounts::claim_email(&app.app, &free_idx, &other).await,
        Ok(ClaimOutcome::Claimed { .. })
    ));
    let third = AccountId::generate(app.app.ids.as_ref());
    assert!(matches!(
        accounts::claim_email(&app.app, &free_idx, &third).await,
        Ok(ClaimOutcome::InFlight)
    ));
    app.clock.advance_secs(ORPHAN_CLAIM_GRACE_SECS);
    assert!(matches!(
        accounts::claim_email(&app.app, &free_idx, &third).await,
        Ok(ClaimOutcome::Claimed { .. })
    ));
    // Releasing is only the named account's: the earlier claimant's release leaves it.
    accounts::release_email(&app.app, &free_idx, &other)
        .await
        .expect("released");
    assert!(
        accounts::email_claim(&app.app, &free_idx)
            .await
            .expect("read")
            .is_some_and(|c| c.account == third)
    );
}
