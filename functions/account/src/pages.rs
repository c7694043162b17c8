//! Connected Facebook Pages: connect (the page access token is sealed under the account's key; a page
//! belongs to one account only), list, replace the token, disconnect. Another account's page is answered
//! as "not found".
//!
//! A token is accepted only once the messenger port confirms it belongs to the page
//! ([`page_of_token`](qchat_shared::messenger::Messenger::page_of_token): Meta's `/me` with the token,
//! or a local sample token). Connecting checks that first, before saying anything about whether the page
//! is connected, so a caller without a token of the page learns nothing about it; replacing the token
//! checks the caller owns the page first, so nobody can use qchat to test tokens of someone else's page.
//! A new token lifts a stop caused by a token or permission error; it does not lift Meta's policy block.
//!
//! Disconnecting erases the page's leads: the page item goes, and in the same transaction an erasure job
//! is queued ([`qchat_shared::leads::erase`]) that the erase function's runner runs — leads, consent records, unsubscribe links
//! and unsent replies, in bounded, resumable steps. Until the old leads are gone the page cannot be
//! connected again (409 `page_erasure_pending`), so a new connection always starts with no old leads.

use qchat_shared::app::{App, account_key_owner};
use qchat_shared::clock::Timestamp;
use qchat_shared::domain::{AccountId, PageAccessToken, PageId};
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json, parse_json};
use qchat_shared::inventory::PAGE;
use qchat_shared::jobs::Jobs;
use qchat_shared::leads::erase;
use qchat_shared::messenger::{PageCheckError, PageProfile, page_name};
use qchat_shared::pages::stop_reason;
use qchat_shared::store::{
    Condition, Index, Item, KeyRange, Order, Query, StoreError, Value, WriteOp, query_all,
};

use crate::auth;

// The page key and the ownership check are shared with the other page-scoped functions.
pub use qchat_shared::pages::{owned_page, page_key, page_param};

fn pages_partition(account: &AccountId) -> String {
    format!("ACCOUNT#{account}#PAGES")
}

/// The lease of the jobs queued here (the erasure runner renews it at every checkpoint).
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

fn not_verified(message: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "page_not_verified",
        message,
    )
}

/// Asks the messenger port which page `token` belongs to; anything but `page` is refused. Nothing is
/// stored on any path here, and no answer names the page the token does belong to.
async fn verify_token_of(
    app: &App,
    account: &AccountId,
    page: &PageId,
    token: &PageAccessToken,
) -> Result<PageProfile, ApiError> {
    let checked = app.messenger.page_of_token(token).await;
    let (outcome, refusal) = match checked {
        Ok(profile) if &profile.id == page => return Ok(profile),
        Ok(_) => (
            "another_page",
            not_verified(
                "this access token is not a token of this page; use a page access token of this page",
            ),
        ),
        Err(PageCheckError::TokenInvalid { .. }) => (
            "token_invalid",
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_page_access_token",
                "Meta refused this page access token (invalid, expired or revoked); create a new one for the page",
            ),
        ),
        Err(PageCheckError::Permission { .. }) => (
            "permission",
            not_verified(
                "Meta did not let this token read the page; give the token the page's permissions",
            ),
        ),
        Err(PageCheckError::Refused { .. }) => (
            "refused",
            not_verified("Meta refused to say which page this token belongs to"),
        ),
        Err(PageCheckError::NotVerifiable) => (
            "not_verifiable",
            not_verified(
                "this server cannot check real page tokens with Meta: set QCHAT_GRAPH_URL to check them, or connect a local sample page with the token sample-page-token-<page id>",
            ),
        ),
        Err(PageCheckError::Unavailable { .. }) => (
            "unavailable",
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "meta_unavailable",
                "could not ask Meta whether this token belongs to the page; try again shortly",
            ),
        ),
    };
    tracing::info!(account = %account, page = %page, outcome, "page access token not accepted");
    Err(refusal)
}

fn name_field(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) => page_name(n).map(Some).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_name",
                "name must be 1 to 100 characters, without control or invisible characters",
            )
        }),
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
        "language": qchat_shared::bot_texts::page_lang(item).code(),
        "sending": item.get_str("sending"),
        "stopped_reason": item.get_str("stopped_reason"),
    })
}

/// `POST /api/pages`: verifies the token belongs to the page, then connects it (201). Without a name in
/// the request, the page's name as Meta reports it.
pub async fn connect(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let body: ConnectRequest = parse_json(req)?;
    let page = PageId::parse(&body.page_id)
        .map_err(|e| ApiError::bad_request("invalid_page_id", e.to_string()))?;
    let token = PageAccessToken::parse(&body.page_access_token)
        .map_err(|e| ApiError::bad_request("invalid_page_access_token", e.to_string()))?;
    let name = name_field(body.name.as_deref())?;
    let profile = verify_token_of(app, &caller.account, &page, &token).await?;
    let name = name.or(profile.name);
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
/// its leads (the erase function's runner runs it within minutes). 202 as soon as both are stored, with the erasure's
/// confirmation code and the address of its status page (`GET /deletion/{code}`).
pub async fn disconnect(
    app: &App,
    req: &Request,
    params: &PathParams,
) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let page = page_param(params)?;
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
                return Ok(json(
                    StatusCode::ACCEPTED,
                    &serde_json::json!({ "erasure": {
                        "confirmation_code": job,
                        "status_url": format!("{}/deletion/{job}", app.config.public_url),
                    } }),
                ));
            }
            Err(
                StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict,
            ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::unavailable())
}

#[derive(serde::Deserialize)]
struct TokenUpdate {
    page_access_token: String,
}

/// Attempts at a token update whose page changed under it (a send stopped it, say) before 503.
const UPDATE_ATTEMPTS: usize = 3;

/// A copy of the page item with `sealed` as its token and, when `resume`, sending active again without a
/// stop reason. The other attributes are copied as they are (all of them plain; a sealed one would be
/// refused here rather than written as plain).
fn with_new_token(
    page: &Item,
    sealed: qchat_shared::crypto::Sealed,
    resume: bool,
) -> Result<Item, ApiError> {
    let mut out = Item::new(&PAGE, page.key().clone());
    for (name, value) in page.attributes() {
        let value = match name.as_str() {
            "access_token" => continue,
            "stopped_reason" if resume => continue,
            "sending" if resume => Value::S("active".to_owned()),
            _ => value.clone(),
        };
        out = out.plain(name, value).map_err(|_| ApiError::internal())?;
    }
    out = out
        .sealed("access_token", sealed)
        .map_err(|_| ApiError::internal())?;
    if let Some((pk, sk)) = page.gsi1() {
        out = out.with_gsi1(pk, sk);
    }
    Ok(out)
}

/// What a token update tells the caller about the page's sending.
fn sending_note(item: &Item, resumed: bool) -> &'static str {
    match (item.get_str("sending"), item.get_str("stopped_reason")) {
        _ if resumed => "token replaced; sending resumed",
        (Some("stopped"), Some(stop_reason::POLICY_BLOCK)) => {
            "token replaced; sending stays stopped: Meta blocked this page's messaging (policy enforcement), which a new token does not lift; sending resumes when Meta lifts the block"
        }
        (Some("stopped"), _) => "token replaced; sending stays stopped",
        _ => "token replaced",
    }
}

/// `PUT /api/pages/{page_id}/access-token`: the owner replaces the page's token with one Meta confirms
/// belongs to the page (200). A stop caused by a token or permission error ends; Meta's block stays.
pub async fn update_token(
    app: &App,
    req: &Request,
    params: &PathParams,
) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let page = page_param(params)?;
    let body: TokenUpdate = parse_json(req)?;
    let token = PageAccessToken::parse(&body.page_access_token)
        .map_err(|e| ApiError::bad_request("invalid_page_access_token", e.to_string()))?;
    // Ownership before the token check: for a page that is not the caller's, Meta is never asked.
    owned_page(app, &caller.account, &page).await?;
    verify_token_of(app, &caller.account, &page, &token).await?;
    let cipher = app.keys.cipher(&account_key_owner(&caller.account)).await?;
    for _ in 0..UPDATE_ATTEMPTS {
        // Read afresh each time: a send may have stopped the page since the last attempt.
        let current = owned_page(app, &caller.account, &page).await?;
        let resume = current.get_str("sending") == Some("stopped")
            && stop_reason::lifted_by_a_new_token(current.get_str("stopped_reason"));
        let sealed = cipher.seal(current.key(), "access_token", token.expose().as_bytes())?;
        let version = current.version();
        let item = with_new_token(&current, sealed, resume)?.with_version(version.unwrap_or(0) + 1);
        let condition = version.map_or(Condition::Exists, Condition::VersionIs);
        let mut answer = view(&item);
        answer["sending_resumed"] = serde_json::json!(resume);
        answer["message"] = serde_json::json!(sending_note(&item, resume));
        match app.store.put(item, condition).await {
            Ok(()) => {
                tracing::info!(account = %caller.account, page = %page, resumed = resume, "page access token replaced");
                return Ok(json(StatusCode::OK, &answer));
            }
            Err(StoreError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::unavailable())
}
