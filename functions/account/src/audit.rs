//! The operator's audit trail: every operator action (a policy published, a breach notice queued) is
//! written in the same transaction as the action itself, with the operator's account id, what it was about
//! and when — never a personal value. The operator reads it at `GET /api/operator/audit-log`, newest first;
//! entries are kept one year.

use qchat_shared::app::App;
use qchat_shared::clock::Timestamp;
use qchat_shared::domain::AccountId;
use qchat_shared::http::{ApiError, Request, Response, StatusCode, json, query_param};
use qchat_shared::inventory::AUDIT_ENTRY;
use qchat_shared::store::{
    Condition, Cursor, Index, Item, ItemKey, KeyRange, Order, Query, Value, WriteOp,
};

use crate::auth;

const PARTITION: &str = "AUDIT";
pub const RETENTION_DAYS: i64 = 365;
const PAGE_SIZE: usize = 50;

/// What the operator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    PolicyPublished,
    BreachNoticeQueued,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::PolicyPublished => "policy_published",
            Self::BreachNoticeQueued => "breach_notice_queued",
        }
    }
}

/// The write of one entry; `subject` holds ids, kinds, versions and counts only.
pub fn entry_op(
    id: &str,
    actor: &AccountId,
    action: Action,
    subject: &serde_json::Value,
    now: Timestamp,
) -> Result<WriteOp, ApiError> {
    let item = Item::new(
        &AUDIT_ENTRY,
        ItemKey::new(PARTITION, format!("{}#{id}", now.sort_key())),
    )
    .plain("action", Value::S(action.name().to_owned()))
    .and_then(|i| i.plain("actor", Value::S(actor.as_str().to_owned())))
    .and_then(|i| i.plain("subject", Value::S(subject.to_string())))
    .and_then(|i| i.plain("at", Value::N(now.millis())))
    .map_err(|_| ApiError::internal())?
    .expires_at(now.plus_days(RETENTION_DAYS));
    Ok(WriteOp::Put {
        item,
        condition: Condition::NotExists,
    })
}

/// `GET /api/operator/audit-log?cursor=` (operator only): a page of entries, newest first.
pub async fn list(app: &App, req: &Request) -> Result<Response, ApiError> {
    auth::operator(app, req).await?;
    let cursor = match query_param(req, "cursor") {
        Some(raw) => Some(Cursor::parse(&raw).map_err(|_| {
            ApiError::bad_request("invalid_cursor", "the cursor is not one this list gave")
        })?),
        None => None,
    };
    let page = app
        .store
        .query(&Query {
            index: Index::Table,
            partition: PARTITION.to_owned(),
            range: KeyRange::All,
            order: Order::Descending,
            limit: PAGE_SIZE,
            cursor,
        })
        .await?;
    let entries: Vec<_> = page
        .items
        .iter()
        .map(|e| {
            serde_json::json!({
                "at": Timestamp::from_millis(e.get_i64("at").unwrap_or(0)).to_rfc3339(),
                "action": e.get_str("action"),
                "actor": e.get_str("actor"),
                "subject": e.get_str("subject").and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()),
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "entries": entries,
            "next_cursor": page.next.as_ref().map(Cursor::as_str),
        }),
    ))
}
