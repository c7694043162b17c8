//! Connected pages as other functions see them: where a page item lives and the ownership check every
//! page-scoped route makes. Another account's page is answered exactly like a missing one, so a caller
//! learns nothing about pages that are not theirs.

use crate::app::App;
use crate::domain::{AccountId, PageId};
use crate::http::ApiError;
use crate::store::{Item, ItemKey};

pub fn page_key(page: &PageId) -> ItemKey {
    ItemKey::new(format!("PAGE#{page}"), "PAGE")
}

/// The caller's page item, or 404 (also for another account's page: its existence is not revealed).
pub async fn owned_page(app: &App, account: &AccountId, page: &PageId) -> Result<Item, ApiError> {
    let item = app
        .store
        .get(&page_key(page))
        .await?
        .ok_or_else(|| ApiError::not_found("page"))?;
    if item.get_str("account_id") != Some(account.as_str()) {
        return Err(ApiError::not_found("page"));
    }
    Ok(item)
}
