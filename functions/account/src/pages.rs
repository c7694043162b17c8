//! Connected Facebook Pages: connect (the page access token is sealed under the account's key; a page
//! belongs to one account only), list, disconnect. Another account's page is answered as "not found".
//!
//! Disconnecting erases the page's leads: the page item goes, and in the same transaction an erasure job
//! is queued ([`qchat_shared::leads::erase`]) that notify runs — leads, consent records, unsubscribe links
//! and unsent replies, in bounded, resumable steps. Until the old leads are gone the page cannot be
//! connected again (409 `page_erasure_pending`), so a new connection always starts with no old leads.

use qchat_shared::app::{App, account_key_owner};
use qchat_shared::clock::Timestamp;
use qchat_shared::domain::{AccountId, PageAccessToken, PageId};
use qchat_shared::http::{
    ApiError, PathParams, Request, Response, StatusCode, json, no_content, parse_json,
};
use qchat_shared::inventory::PAGE;
use qchat_shared::jobs::Jobs;
use qchat_shared::leads::erase;
use qchat_shared::store::{
    Condition, Index, Item, KeyRange, Order, Query, StoreError, Value, WriteOp, query_all,
};

use crate::auth;

// The page key and the ownership check are shared with the other page-scoped functions.
pub use qchat_shared::pages::{owned_page, page_key};

fn pages_partition(account: &AccountId) -> String {
    format!("ACCOUNT#{account}#PAGES")
}

/// The lease of the jobs queued here (notify's runner renews it at every checkpoint).
const JOB_LEASE_SECS: i64 = 15 * 60;

fn jobs(app: &App) -> Jobs {
    Jobs::new(
        app.store.clone(),
        app.clock.clone(),
        app.ids.clone(),
        JOB_LEASE_SECS,
    )
}

fn already_connected() -> ApiError {
    ApiError::conflict(
        "page_already_connected",
        "this page is already connected to an account",
    )
}

/// Refuses to connect a page while leads of an earlier connection are stored (their erasure has not
/// finished), so no new connection ever sees them. Leads left without an erasure queued (one that failed
/// for good, or from before disconnecting erased leads) get one now, so the page frees itself.
async fn refuse_while_old_leads_remain(app: &App, page: &PageId) -> Result<(), ApiError> {
    if app.store.get(&page_key(page)).await?.is_some() {
        return Err(already_connected());
    }
    let store = app.store.as_ref();
    if !erase::has_leads(store, page).await? {
        return Ok(());
    }
    if !erase::erasure_queued(store, page).await? {
        let (job, op) = erase::enqueue_op(&jobs(app), page, None, app.clock.now())?;
        app.store.transact(vec![op]).await?;
        tracing::info!(page = %page, job = %job, "leftover leads of an unconnected page queued for erasure");
    }
    Err(ApiError::conflict(
        "page_erasure_pending",
        "this page's leads from its previous connection are still being erased; connect it again in a few minutes",
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMode {
    /// The person's first message is answered with a consent question; subscribed only on "yes".
    #[default]
    Confirmed,
    /// Starting the conversation is the opt-in.
    Implicit,
}

impl ConsentMode {
    fn name(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Implicit => "implicit",
        }
    }
}

#[derive(serde::Deserialize)]
struct ConnectRequest {
    page_id: String,
    page_access_token: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    consent_mode: ConsentMode,
}

fn view(item: &Item) -> serde_json::Value {
    serde_json::json!({
        "page_id": item.key().pk.trim_start_matches("PAGE#"),
        "name": item.get_str("name"),
        "connected_at": Timestamp::from_millis(item.get_i64("connected_at").unwrap_or(0)).to_rfc3339(),
        "consent_mode": item.get_str("consent_mode"),
        "sending": item.get_str("sending"),
        "stopped_reason": item.get_str("stopped_reason"),
    })
}

/// `POST /api/pages`.
pub async fn connect(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let body: ConnectRequest = parse_json(req)?;
    let page = PageId::parse(&body.page_id)
        .map_err(|e| ApiError::bad_request("invalid_page_id", e.to_string()))?;
    let token = PageAccessToken::parse(&body.page_access_token)
        .map_err(|e| ApiError::bad_request("invalid_page_access_token", e.to_string()))?;
    let name = match body.name.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) if n.chars().count() <= 100 && !n.chars().any(char::is_control) => {
            Some(n.to_owned())
        }
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_name",
                "name must be at most 100 characters",
            ));
        }
    };
    refuse_while_old_leads_remain(app, &page).await?;
    let cipher = app.keys.cipher(&account_key_owner(&caller.account)).await?;
    let key = page_key(&page);
    let now = app.clock.now();
    let sealed_token = cipher.seal(&key, "access_token", token.expose().as_bytes())?;
    let mut item = Item::new(&PAGE, key.clone())
        .plain("account_id", Value::S(caller.account.as_str().to_owned()))
        .and_then(|i| i.sealed("access_token", sealed_token))
        .map_err(|_| ApiError::internal())?;
    item = item
        .plain("connected_at", Value::N(now.millis()))
        .and_then(|i| {
            i.plain(
                "consent_mode",
                Value::S(body.consent_mode.name().to_owned()),
            )
        })
        .and_then(|i| i.plain("sending", Value::S("active".to_owned())))
        .map_err(|_| ApiError::internal())?
        .with_version(1)
        .with_gsi1(pages_partition(&caller.account), page.as_str());
    if let Some(n) = name {
        item = item
            .plain("name", Value::S(n))
            .map_err(|_| ApiError::internal())?;
    }
    let view_of = view(&item);
    match app.store.put(item, Condition::NotExists).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => return Err(already_connected()),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(account = %caller.account, page = %page, "page connected");
    Ok(json(StatusCode::CREATED, &view_of))
}

/// `GET /api/pages`: the caller's pages only.
pub async fn list(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let query = Query {
        index: Index::Gsi1,
        partition: pages_partition(&caller.account),
        range: KeyRange::All,
        order: Order::Ascending,
        limit: 100,
        cursor: None,
    };
    let pages: Vec<_> = query_all(app.store.as_ref(), query)
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(json(StatusCode::OK, &serde_json::json!({ "pages": pages })))
}

/// Attempts at a disconnect whose page changed under it (Meta stopped its sending, say) before 503.
const DISCONNECT_ATTEMPTS: usize = 3;

/// `DELETE /api/pages/{page_id}`: removes the page and, in the same transaction, queues the erasure of
/// its leads (notify runs it within minutes). 204 as soon as both are stored.
pub async fn disconnect(
    app: &App,
    req: &Request,
    params: &PathParams,
) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let page = PageId::parse(params.get("page_id").unwrap_or_default())
        .map_err(|_| ApiError::not_found("page"))?;
    let jobs = jobs(app);
    for _ in 0..DISCONNECT_ATTEMPTS {
        // Read afresh each time: a page someone else has just disconnected is 404 now.
        let item = owned_page(app, &caller.account, &page).await?;
        let condition = item
            .version()
            .map_or(Condition::Exists, Condition::VersionIs);
        let (job, erasure) =
            erase::enqueue_op(&jobs, &page, Some(&caller.account), app.clock.now())?;
        let remove = WriteOp::Delete {
            key: item.key().clone(),
            condition,
        };
        match app.store.transact(vec![remove, erasure]).await {
            Ok(()) => {
                tracing::info!(account = %caller.account, page = %page, job = %job, "page disconnected; its leads are queued for erasure");
                return Ok(no_content());
            }
            Err(
                StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict,
            ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::unavailable())
}
