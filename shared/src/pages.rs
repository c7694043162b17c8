//! Connected pages as other functions see them: where a page item lives, the ownership check every
//! page-scoped route makes, and the reasons a page's sending stops. Another account's page is answered
//! exactly like a missing one, so a caller learns nothing about pages that are not theirs.

use crate::app::App;
use crate::domain::{AccountId, PageId};
use crate::http::ApiError;
use crate::store::{Item, ItemKey};

/// The `{page_id}` of the path; a malformed (or non-canonical) id cannot name a page, so it is a 404 like
/// an unknown page.
pub fn page_param(params: &crate::http::PathParams) -> Result<PageId, ApiError> {
    PageId::parse(params.get("page_id").unwrap_or_default())
        .map_err(|_| ApiError::not_found("page"))
}

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

/// Why a page's sending stopped (its `stopped_reason`): notify writes the first two when a send meets a
/// token or permission error, the webhook the third when Meta blocks the page (`policy_enforcement`).
pub mod stop_reason {
    /// Meta refused the page's token (190).
    pub const TOKEN_INVALID: &str = "token_invalid";
    /// The token lacks a permission (10, 200–299).
    pub const PERMISSION: &str = "permission";
    /// Meta blocked the page's messaging; only Meta's unblock lifts it.
    pub const POLICY_BLOCK: &str = "policy_block";

    /// Whether a new, verified token removes the cause of a stop for `reason`: a token or permission
    /// error, yes; Meta's block (or a reason this code does not know), no.
    pub fn lifted_by_a_new_token(reason: Option<&str>) -> bool {
        matches!(reason, Some(TOKEN_INVALID | PERMISSION))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn only_token_and_permission_stops_are_lifted_by_a_new_token() {
            assert!(lifted_by_a_new_token(Some(TOKEN_INVALID)));
            assert!(lifted_by_a_new_token(Some(PERMISSION)));
            assert!(!lifted_by_a_new_token(Some(POLICY_BLOCK)));
            assert!(!lifted_by_a_new_token(Some("something_else")));
            assert!(!lifted_by_a_new_token(None));
        }
    }
}
