//! The single-use links qchat mails (confirm an address, reset a password), read back the way notify
//! reads them when it sends the mail: the token sealed in the outbox item's `secret`, opened with the
//! app's keys. Lets the suites follow a link as the person who received the mail would.

use crate::accounts::{self, REGISTRATIONS_KEY_OWNER};
use crate::app::{App, account_key_owner};
use crate::domain::AccountId;
use crate::outbox::DUE_PARTITION;
use crate::store::{Index, Item, KeyRange, Order, Query, query_all};

/// The link token of the newest unsent mail `notice` (e.g. `confirm_registration`) to `email`; `None`
/// when no such mail is queued. Panics if the store or the keys fail (a test set-up failure).
pub async fn link_token(app: &App, notice: &str, email: &str) -> Option<String> {
    let query = Query {
        index: Index::Gsi1,
        partition: DUE_PARTITION.to_owned(),
        range: KeyRange::All,
        order: Order::Descending,
        limit: 100,
        cursor: None,
    };
    #[allow(clippy::expect_used)]
    let items = query_all(app.store.as_ref(), query)
        .await
        .expect("the outbox is readable");
    for item in items.iter().filter(|i| i.get_str("notice") == Some(notice)) {
        let account = item
            .get_str("account_id")
            .and_then(|a| AccountId::parse(a).ok());
        let owner = account
            .as_ref()
            .map_or_else(|| REGISTRATIONS_KEY_OWNER.to_owned(), account_key_owner);
        let to = match open(app, &owner, item, "recipient").await {
            Some(to) => to,
            None => match &account {
                Some(id) => match accounts::load_profile(app, id).await {
                    Ok(Some(profile)) => profile.email.expose().to_owned(),
                    _ => continue,
                },
                None => continue,
            },
        };
        if to.eq_ignore_ascii_case(email.trim()) {
            return open(app, &owner, item, "secret").await;
        }
    }
    None
}

async fn open(app: &App, owner: &str, item: &Item, attribute: &str) -> Option<String> {
    let sealed = item.get_sealed(attribute)?;
    #[allow(clippy::expect_used)]
    let plain = app
        .keys
        .open(owner, item.key(), attribute, &sealed)
        .await
        .expect("a sealed outbox value opens");
    plain.as_str().ok().map(str::to_owned)
}
