//! Connected Facebook Pages: connect (the page access token is sealed under the account's key; a page
//! belongs to one account only), list, disconnect. Another account's page is answered as "not found".

use qchat_shared::app::{App, account_key_owner};
use qchat_shared::clock::Timestamp;
use qchat_shared::domain::{AccountId, PageAccessToken, PageId};
use qchat_shared::http::{
    ApiError, PathParams, Request, Response, StatusCode, json, no_content, parse_json,
};
use qchat_shared::inventory::PAGE;
use qchat_shared::store::{Condition, Index, Item, KeyRange, Order, Query, StoreError, Value};

use crate::auth;

// The page key and the ownership check are shared with the other page-scoped functions.
pub use qchat_shared::pages::{owned_page, page_key};

fn pages_partition(account: &AccountId) -> String {
    format!("ACCOUNT#{account}#PAGES")
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
        Err(StoreError::ConditionFailed) => {
            return Err(ApiError::conflict(
                "page_already_connected",
                "this page is already connected to an account",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(account = %caller.account, page = %page, "page connected");
    Ok(json(StatusCode::CREATED, &view_of))
}

/// `GET /api/pages`: the caller's pages only.
pub async fn list(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let page = app
            .store
            .query(&Query {
                index: Index::Gsi1,
                partition: pages_partition(&caller.account),
                range: KeyRange::All,
                order: Order::Ascending,
                limit: 100,
                cursor,
            })
            .await?;
        pages.extend(page.items.iter().map(view));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(json(StatusCode::OK, &serde_json::json!({ "pages": pages })))
}

/// `DELETE /api/pages/{page_id}`.
pub async fn disconnect(
    app: &App,
    req: &Request,
    params: &PathParams,
) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let page = PageId::parse(params.get("page_id").unwrap_or_default())
        .map_err(|_| ApiError::not_found("page"))?;
    let item = owned_page(app, &caller.account, &page).await?;
    let condition = item
        .version()
        .map_or(Condition::Exists, Condition::VersionIs);
    match app.store.delete(item.key(), condition).await {
        Ok(()) | Err(StoreError::ConditionFailed) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(account = %caller.account, page = %page, "page disconnected");
    Ok(no_content())
}
