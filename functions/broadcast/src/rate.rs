//! `PATCH /api/pages/{page_id}` `{"broadcast_rate": n}`: how many messages per second the page's
//! broadcasts may send together (1 to 250; a page that set none sends 20). Meta's Page Inbox stops
//! keeping up above about 40 a second, so the default stays below it; the Send API allows 300.

use qchat_shared::app::App;
use qchat_shared::broadcast::{MAX_RATE, set_page_rate};
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json};
use serde_json::Value;

use crate::access;

fn out_of_range() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_broadcast_rate",
        format!("broadcast_rate must be from 1 to {MAX_RATE} messages per second"),
    )
}

/// The requested rate: `{"broadcast_rate": <whole number>}` and nothing else.
fn parse(body: &[u8]) -> Result<u32, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request("invalid_json", "the request body is not valid JSON"))?;
    let map = value.as_object().ok_or_else(|| {
        ApiError::bad_request("invalid_json", "the request body must be a JSON object")
    })?;
    if map.keys().any(|k| k != "broadcast_rate") {
        return Err(ApiError::bad_request(
            "unknown_field",
            "the request body may hold only broadcast_rate",
        ));
    }
    let raw = map.get("broadcast_rate").ok_or_else(|| {
        ApiError::bad_request("missing_field", "the field broadcast_rate is required")
    })?;
    if !raw.is_i64() && !raw.is_u64() {
        return Err(ApiError::bad_request(
            "invalid_field",
            "broadcast_rate must be a whole number",
        ));
    }
    raw.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| (1..=MAX_RATE).contains(n))
        .ok_or_else(out_of_range)
}

#[tracing::instrument(name = "broadcast.set_rate", skip_all)]
pub async fn set(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let page = access::page(app, req, params).await?;
    let rate = parse(req.body())?;
    let set = set_page_rate(app, &page.account, &page.id, rate)
        .await?
        .ok_or_else(|| ApiError::not_found("page"))?;
    tracing::info!(page = %page.id, rate = set, "page broadcast rate set");
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "page_id": page.id.as_str(), "broadcast_rate": set }),
    ))
}
