//! `GET /api/pages/{page_id}/broadcasts?cursor=&limit=`: the page's broadcasts, newest first, `limit`
//! (1 to 100, default 20) at a time, with the page's sending rate.

use qchat_shared::app::App;
use qchat_shared::broadcast::{Broadcasts, MAX_LIST_LIMIT, pace};
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json, query_param};

use crate::{access, view};

/// Broadcasts per answer when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 20;

fn invalid_limit() -> ApiError {
    ApiError::bad_request(
        "invalid_limit",
        format!("limit must be a whole number from 1 to {MAX_LIST_LIMIT}"),
    )
}

fn limit(req: &Request) -> Result<usize, ApiError> {
    match query_param(req, "limit").as_deref() {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
            .ok_or_else(invalid_limit),
    }
}

#[tracing::instrument(name = "broadcast.list", skip_all)]
pub async fn list(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let page = access::page(app, req, params).await?;
    let limit = limit(req)?;
    let cursor = query_param(req, "cursor").filter(|c| !c.is_empty());
    let (broadcasts, next) = Broadcasts::new(app)
        .list(&page.account, &page.id, cursor.as_deref(), limit)
        .await?;
    tracing::info!(page = %page.id, count = broadcasts.len(), "broadcasts listed");
    let broadcasts: Vec<_> = broadcasts.iter().map(view::broadcast).collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "broadcasts": broadcasts,
            "next_cursor": next,
            "broadcast_rate": pace::rate_of(&page.item),
        }),
    ))
}
