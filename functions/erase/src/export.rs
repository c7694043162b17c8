//! `GET /api/account/export[?cursor=…]`: one bounded page of everything held about the caller's account
//! ([`qchat_shared::erasure::export`] says the shape and why it is paged).

use qchat_shared::app::App;
use qchat_shared::auth;
use qchat_shared::erasure::export;
use qchat_shared::http::{ApiError, Request, Response, StatusCode, json, query_param};

pub async fn show(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let cursor = query_param(req, "cursor");
    let page = export::page(app, &caller.account, cursor.as_deref()).await?;
    tracing::info!(
        account = %caller.account,
        section = ?page.section,
        items = page.items.len(),
        last = page.next_cursor.is_none(),
        "account export page"
    );
    Ok(json(StatusCode::OK, &page.to_json()))
}
