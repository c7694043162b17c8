//! The webhook function: Meta's verification handshake (`GET /webhook`) and signed events
//! (`POST /webhook`) — leads, consent records and Messenger replies.
//!
//! Invariants:
//! - the signature is checked over the raw body before anything parses it; a bad one stores nothing;
//! - a 200 means every event of the batch is durably stored (or was a duplicate, or is ignored by
//!   design); any store or key failure answers 503, so Meta retries — and the retry applies only what
//!   was not applied, because each event commits with its de-duplication key ([`consent`]);
//! - nothing here calls the Graph API: replies are queued as REPLY items that notify sends;
//! - logs carry counts and opaque ids (page id, lead id) only — never a PSID, user_ref, text or token.
//!
//! "DELETE MY DATA" records the request on the lead and unsubscribes; erasure itself is the job of
//! qchat's erase function (not built yet), which will process the recorded requests.

pub mod consent;
pub mod envelope;
pub mod keywords;
pub mod page;
pub mod replies;
pub mod signature;

use std::collections::HashMap;

use qchat_shared::app::App;
use qchat_shared::crypto::{CryptoError, constant_time_eq};
use qchat_shared::domain::PageId;
use qchat_shared::http::{ApiError, Request, Response, StatusCode, finish, json, query_param};
use qchat_shared::routes::{self, Function};
use qchat_shared::store::StoreError;
use secrecy::ExposeSecret as _;
use tracing::instrument;

use crate::consent::Outcome;
use crate::envelope::Kind;

/// Why an event could not be stored. Every variant answers 503: Meta retries the batch.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("a data key was not available")]
    Crypto(#[from] CryptoError),
}

impl From<qchat_shared::store::InventoryError> for ProcessError {
    fn from(e: qchat_shared::store::InventoryError) -> Self {
        Self::Store(e.into())
    }
}

/// Serves one request of the webhook function's routes.
pub async fn handle(app: &App, req: Request) -> Response {
    let result = match routes::resolve(Function::Webhook, req.method().as_str(), req.uri().path()) {
        Ok((route, _)) => match route.handler {
            "verify" => verify(app, &req),
            "events" => events(app, &req).await,
            _ => Err(ApiError::route_not_found()),
        },
        Err(e) => Err(e),
    };
    finish(result.unwrap_or_else(ApiError::into_response))
}

/// `GET /webhook`: echoes `hub.challenge` (1–64 digits) when the mode is `subscribe` and the verify token
/// matches in constant time.
fn verify(app: &App, req: &Request) -> Result<Response, ApiError> {
    let forbidden = || ApiError::forbidden("the verification request was not accepted");
    let expected = app
        .config
        .graph
        .verify_token
        .as_ref()
        .ok_or_else(forbidden)?;
    let mode = query_param(req, "hub.mode");
    let token = query_param(req, "hub.verify_token").unwrap_or_default();
    let token_ok = constant_time_eq(token.as_bytes(), expected.expose_secret().as_bytes());
    if mode.as_deref() != Some("subscribe") || !token_ok {
        return Err(forbidden());
    }
    let challenge = query_param(req, "hub.challenge").unwrap_or_default();
    if challenge.is_empty()
        || challenge.len() > 64
        || !challenge.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ApiError::bad_request(
            "invalid_challenge",
            "hub.challenge must be 1 to 64 digits",
        ));
    }
    let mut r = http::Response::new(qchat_shared::http::Bytes::from(challenge));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

/// What one batch did. Counts only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub applied: usize,
    pub duplicates: usize,
    pub no_effect: usize,
    pub echoes: usize,
    pub receipts: usize,
    pub unconnected: usize,
    pub standby: usize,
    pub unknown: usize,
    pub malformed: usize,
}

/// `POST /webhook`.
#[instrument(name = "webhook.events", skip_all)]
async fn events(app: &App, req: &Request) -> Result<Response, ApiError> {
    let Some(secret) = app.config.graph.app_secret.as_ref() else {
        tracing::error!("no app secret configured: webhook events cannot be verified");
        return Err(ApiError::unavailable());
    };
    let header = req
        .headers()
        .get(signature::HEADER)
        .map(http::HeaderValue::as_bytes);
    if let Err(e) = signature::verify(secret.expose_secret().as_bytes(), header, req.body()) {
        tracing::warn!(problem = %e, "webhook signature refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "the X-Hub-Signature-256 header does not match the body",
        ));
    }
    let report = process(app, req.body()).await.map_err(|e| {
        tracing::error!(error = %e, "webhook batch not stored; Meta will retry");
        ApiError::unavailable()
    })?;
    tracing::info!(
        applied = report.applied,
        duplicates = report.duplicates,
        no_effect = report.no_effect,
        echoes = report.echoes,
        receipts = report.receipts,
        unconnected = report.unconnected,
        standby = report.standby,
        unknown = report.unknown,
        malformed = report.malformed,
        "webhook batch handled"
    );
    Ok(json(StatusCode::OK, &serde_json::json!({ "status": "ok" })))
}

/// Parses a verified body and applies its events in time order; stops at the first failure (what was
/// applied stays applied, and is skipped as a duplicate when Meta retries).
///
/// # Errors
/// The store's or keyring's failure.
pub async fn process(app: &App, body: &[u8]) -> Result<Report, ProcessError> {
    let parsed = envelope::parse(body);
    let mut report = Report {
        standby: parsed.skipped.standby,
        unknown: parsed.skipped.unknown,
        malformed: parsed.skipped.malformed,
        ..Report::default()
    };
    if !parsed.is_page {
        return Ok(report);
    }
    let mut pages: HashMap<PageId, Option<page::ConnectedPage>> = HashMap::new();
    let mut batch: Option<consent::Batch<'_>> = None;
    for ev in &parsed.events {
        match ev.kind {
            Kind::Echo => {
                report.echoes += 1;
                continue;
            }
            Kind::Receipt => {
                report.receipts += 1;
                continue;
            }
            _ => {}
        }
        let connected = match pages.get(&ev.page) {
            Some(p) => p.clone(),
            None => {
                let p = page::load(app.store.as_ref(), &ev.page).await?;
                pages.insert(ev.page.clone(), p.clone());
                p
            }
        };
        let Some(connected) = connected else {
            report.unconnected += 1;
            continue;
        };
        let batch = match &mut batch {
            Some(b) => b,
            None => batch.insert(consent::Batch::new(app, app.keys.blind_indexer().await?)),
        };
        match consent::apply(batch, &connected, ev).await? {
            Outcome::Applied => report.applied += 1,
            Outcome::Duplicate => report.duplicates += 1,
            Outcome::NoEffect => report.no_effect += 1,
        }
        if matches!(ev.kind, Kind::Policy { .. }) {
            // The page item changed: later events read it afresh.
            pages.remove(&ev.page);
        }
    }
    Ok(report)
}
