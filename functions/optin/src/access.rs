//! Access to a page's leads: the caller must be signed in (else 401) and own the page (else 404, the same
//! answer as for a page that does not exist, so other accounts' pages stay invisible).

use qchat_shared::app::App;
use qchat_shared::auth;
use qchat_shared::domain::{LeadId, PageId};
use qchat_shared::http::{ApiError, PathParams, Request};
use qchat_shared::pages::{owned_page, page_param};
use qchat_shared::store::Item;

/// A page the caller owns, with its item.
#[derive(Debug)]
pub struct OwnedPage {
    pub id: PageId,
    pub item: Item,
}

/// The page named by `{page_id}`, if the caller owns it. Authentication is checked first, so an
/// unauthenticated caller learns nothing about which pages exist.
pub async fn page(app: &App, req: &Request, params: &PathParams) -> Result<OwnedPage, ApiError> {
    let caller = auth::caller(app, req).await?;
    let id = page_param(params)?;
    let item = owned_page(app, &caller.account, &id).await?;
    Ok(OwnedPage { id, item })
}

/// The `{lead_id}` of the path; a malformed id cannot name a lead, so it is a 404 too.
pub fn lead_id(params: &PathParams) -> Result<LeadId, ApiError> {
    LeadId::parse(params.get("lead_id").unwrap_or_default())
        .map_err(|_| ApiError::not_found("lead"))
}
