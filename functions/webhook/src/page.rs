//! The connected page as the webhook sees it (PAGE item written by the account function), and Meta's
//! `policy_enforcement`: a block stops the page's sending and tells its account, in one transaction with
//! the event's de-duplication key; an unblock lifts only a policy block (a dead token stays stopped).

use qchat_shared::bot_texts::page_lang;
use qchat_shared::crypto::{BlindIndex, OneWayHash, Sealed};
use qchat_shared::domain::{AccountId, PageId};
use qchat_shared::i18n::Lang;
use qchat_shared::inventory::Protection;
use qchat_shared::outbox::{Notice, notice_op};
use qchat_shared::pages::page_key;
use qchat_shared::store::{Condition, Item, ItemStore, StoreError, Value, WriteOp};

use crate::envelope::PolicyAction;

/// The reason code of a stop caused by Meta's policy enforcement.
pub const POLICY_BLOCK: &str = "policy_block";

/// A page connected to an account.
#[derive(Debug, Clone)]
pub struct ConnectedPage {
    pub id: PageId,
    pub account: AccountId,
    /// `true` for `confirmed` (the default, also for an unknown value): ask before subscribing.
    pub confirmed: bool,
    pub name: Option<String>,
    /// The language of the page's Messenger texts (its `language` setting; English without one).
    pub lang: Lang,
    pub item: Item,
}

impl ConnectedPage {
    pub fn consent_mode(&self) -> &'static str {
        if self.confirmed {
            "confirmed"
        } else {
            "implicit"
        }
    }
    /// How replies name the page.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.lang.bot().this_page)
    }
}

/// The connected page, or `None` if no account connected it (or its item is unusable).
pub async fn load(store: &dyn ItemStore, id: &PageId) -> Result<Option<ConnectedPage>, StoreError> {
    let Some(item) = store.get(&page_key(id)).await? else {
        return Ok(None);
    };
    let Some(account) = item
        .get_str("account_id")
        .and_then(|a| AccountId::parse(a).ok())
    else {
        return Ok(None);
    };
    Ok(Some(ConnectedPage {
        id: id.clone(),
        account,
        confirmed: item.get_str("consent_mode") != Some("implicit"),
        name: item.get_str("name").map(str::to_owned),
        lang: page_lang(&item),
        item,
    }))
}

/// A copy of `item` without `attribute` (the item layer has no removal: rebuild through the checked
/// setters, so the copy is held to the inventory like any write).
pub fn without_attribute(item: &Item, attribute: &str) -> Result<Item, StoreError> {
    let mut out = Item::new(item.item_type(), item.key().clone());
    for (name, value) in item.attributes() {
        if name == attribute {
            continue;
        }
        let declared = item
            .item_type()
            .attribute(name)
            .map_or(Protection::Plain, |a| a.protection);
        out = match (declared, value) {
            (Protection::Encrypted, Value::B(b)) => {
                out.sealed(name, Sealed::from_bytes(b.clone()))?
            }
            (Protection::OneWayHash, Value::S(s)) => {
                out.hashed(name, &OneWayHash::from_stored(s))?
            }
            (Protection::BlindIndex, Value::S(s)) => {
                out.blind_index(name, &BlindIndex::from_stored(s))?
            }
            _ => out.plain(name, value.clone())?,
        };
    }
    if let Some(v) = item.version() {
        out = out.with_version(v);
    }
    if let Some(at) = item.expires() {
        out = out.expires_at(at);
    }
    if let Some((pk, sk)) = item.gsi1() {
        out = out.with_gsi1(pk, sk);
    }
    Ok(out)
}

/// The page with `sending = stopped` for `reason`, next version (for a put conditional on the current).
pub fn stopped(page: &Item, reason: &str) -> Result<(Item, Condition), StoreError> {
    let version = page.version().unwrap_or(0);
    let item = page
        .clone()
        .plain("sending", Value::S("stopped".to_owned()))?
        .plain("stopped_reason", Value::S(reason.to_owned()))?
        .with_version(version + 1);
    Ok((item, Condition::VersionIs(version)))
}

/// The writes a policy action needs on `page` (empty if the page already is as asked). `notice_id`
/// must be deterministic for the event, so a repeat cannot queue a second notice.
pub fn policy_ops(
    page: &ConnectedPage,
    action: PolicyAction,
    notice_id: &str,
    now: qchat_shared::clock::Timestamp,
) -> Result<Vec<WriteOp>, StoreError> {
    let sending = page.item.get_str("sending");
    let reason = page.item.get_str("stopped_reason");
    match action {
        PolicyAction::Warning => Ok(Vec::new()),
        PolicyAction::Block => {
            if sending == Some("stopped") && reason == Some(POLICY_BLOCK) {
                return Ok(Vec::new());
            }
            let (item, condition) = stopped(&page.item, POLICY_BLOCK)?;
            Ok(vec![
                WriteOp::Put { item, condition },
                notice_op(
                    notice_id,
                    &page.account,
                    &Notice::PageSendingStopped {
                        page_id: page.id.as_str().to_owned(),
                        reason: POLICY_BLOCK.to_owned(),
                    },
                    now,
                    None,
                )?,
            ])
        }
        PolicyAction::Unblock => {
            if sending != Some("stopped") || reason != Some(POLICY_BLOCK) {
                return Ok(Vec::new());
            }
            let version = page.item.version().unwrap_or(0);
            let item = without_attribute(&page.item, "stopped_reason")?
                .plain("sending", Value::S("active".to_owned()))?
                .with_version(version + 1);
            Ok(vec![WriteOp::Put {
                item,
                condition: Condition::VersionIs(version),
            }])
        }
    }
}
