//! `GET /api/pages/{page_id}/leads?status=&cursor=`: a page's leads, 50 at a time. Without `status` the
//! page's own partition is read (its `LEAD#` items, in lead id order: stable, and meaningless); with it,
//! the status index partition, so a filtered list never scans leads of other statuses, in the order the
//! leads came (the index sorts by creation time, `leads::record::status_sort_key`).

use qchat_shared::app::App;
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json, query_param};
use qchat_shared::leads::record::{page_leads_partition, status_partition};
use qchat_shared::leads::{Lead, LeadStatus};
use qchat_shared::store::{Cursor, Index, KeyRange, Order, Query, StoreError};

use crate::{access, view};

/// Leads per answer.
pub const PAGE_SIZE: usize = 50;

fn invalid_cursor() -> ApiError {
    ApiError::bad_request(
        "invalid_cursor",
        "cursor must be a next_cursor from an earlier answer of this list",
    )
}

/// Names every status of [`LeadStatus::ALL`], so a new status is never missing from the message.
fn invalid_status() -> ApiError {
    let names: Vec<&str> = LeadStatus::ALL.iter().map(|s| s.name()).collect();
    ApiError::bad_request(
        "invalid_status",
        format!("status must be one of {}", names.join(", ")),
    )
}

#[tracing::instrument(skip_all)]
pub async fn list(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let page = access::page(app, req, params).await?;
    let status = match query_param(req, "status").as_deref() {
        None | Some("") => None,
        Some(raw) => Some(LeadStatus::parse(raw).ok_or_else(invalid_status)?),
    };
    let cursor = match query_param(req, "cursor").as_deref() {
        None | Some("") => None,
        Some(raw) => Some(Cursor::parse(raw).map_err(|_| invalid_cursor())?),
    };
    let (index, partition, range) = match status {
        None => (
            Index::Table,
            page_leads_partition(&page.id),
            KeyRange::Prefix("LEAD#".to_owned()),
        ),
        Some(s) => (Index::Gsi1, status_partition(&page.id, s), KeyRange::All),
    };
    let query = Query {
        index,
        partition,
        range,
        order: Order::Ascending,
        limit: PAGE_SIZE,
        cursor,
    };
    // The store refuses a cursor made for another partition (another page or status) as invalid.
    let found = match app.store.query(&query).await {
        Ok(found) => found,
        Err(StoreError::InvalidCursor) => return Err(invalid_cursor()),
        Err(e) => return Err(e.into()),
    };
    let leads: Vec<_> = found
        .items
        .into_iter()
        .filter_map(|item| Lead::from_item(&page.id, item))
        .map(|lead| view::lead(&lead))
        .collect();
    tracing::info!(page = %page.id, count = leads.len(), "leads listed");
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "leads": leads,
            "next_cursor": found.next.as_ref().map(Cursor::as_str),
        }),
    ))
}
