//! Access to a page's broadcasts: the caller must be signed in (else 401) and own the page (else 404, the
//! same answer as for a page that does not exist, so other accounts' pages stay invisible).

use qchat_shared::app::App;
use qchat_shared::auth;
use qchat_shared::broadcast::BroadcastId;
use qchat_shared::domain::{AccountId, PageId};
use qchat_shared::http::{ApiError, PathParams, Request};
use qchat_shared::pages::{owned_page, page_param};
use qchat_shared::store::Item;

/// A page the caller owns, with its item.
#[derive(Debug)]
pub struct OwnedPage {
    pub account: AccountId,
    pub id: PageId,
    pub item: Item,
}

/// The page named by `{page_id}`, if the caller owns it. Authentication is checked first, so an
/// unauthenticated caller learns nothing about which pages exist.
pub async fn page(app: &App, req: &Request, params: &PathParams) -> Result<OwnedPage, ApiError> {
    let caller = auth::caller(app, req).await?;
    let id = page_param(params)?;
    let item = owned_page(app, &caller.account, &id).await?;
    Ok(OwnedPage {
        account: caller.account,
        id,
        item,
    })
}

pub fn not_found() -> ApiError {
    ApiError::not_found("broadcast")
}

/// The `{broadcast_id}` of the path; one that cannot be an id names no broadcast: 404.
pub fn broadcast_id(params: &PathParams) -> Result<BroadcastId, ApiError> {
    BroadcastId::parse(params.get("broadcast_id").unwrap_or_default()).ok_or_else(not_found)
}
