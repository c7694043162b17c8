//! Who is calling an authenticated route: the session behind a bearer token or the session cookie.
//! Shared so that every function resolves callers the same way (sessions are written by account only).
//!
//! CSRF: a browser attaches the cookie to any request it sends to qchat, whoever's page asked for it, so a
//! state-changing request (any method but `GET`/`HEAD`) authenticated by the cookie must also prove it
//! was sent by qchat's own pages: it carries [`CSRF_HEADER`]`: 1` (a custom header, which another origin
//! cannot add without a CORS preflight that qchat never grants) and, when the browser says where it comes
//! from (`Sec-Fetch-Site`), comes from the same origin. A bearer token is never sent by a browser on its
//! own, so bearer requests need no proof. Every authenticated route resolves its caller here first, so
//! the check runs before any handler reads or writes anything.

use crate::app::App;
use crate::crypto::OneWayHash;
use crate::domain::{AccountId, SessionToken};
use crate::http::{ApiError, Request, session_token};
use crate::store::ItemKey;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: AccountId,
    /// The key of the session used for this request.
    pub session: ItemKey,
}

/// The key of a session item: the token is stored only as its SHA-256.
pub fn session_key(token: &SessionToken) -> ItemKey {
    ItemKey::new(
        format!(
            "SESSION#{}",
            OneWayHash::sha256_of(token.expose().as_bytes()).as_str()
        ),
        "SESSION",
    )
}

/// The header the console sends with every state-changing request (value `1`).
pub const CSRF_HEADER: &str = "x-qchat-csrf";

/// Refuses (403) a cookie-authenticated state-changing request without proof of same origin.
fn check_same_origin(req: &Request) -> Result<(), ApiError> {
    let safe = matches!(*req.method(), http::Method::GET | http::Method::HEAD);
    let bearer = req.headers().contains_key(http::header::AUTHORIZATION);
    if safe || bearer {
        return Ok(());
    }
    let marked = req
        .headers()
        .get(CSRF_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1");
    // `none` is a request the person started themselves (typed, bookmarked); absent on older browsers.
    let site_ok = req
        .headers()
        .get("sec-fetch-site")
        .is_none_or(|v| matches!(v.as_bytes(), b"same-origin" | b"none"));
    if marked && site_ok {
        Ok(())
    } else {
        Err(ApiError::new(
            http::StatusCode::FORBIDDEN,
            "csrf_check_failed",
            "a request signed in by the session cookie that changes something must come from qchat's own \
             pages (header X-Qchat-Csrf: 1, same origin); API clients use the bearer token",
        ))
    }
}

/// The caller of `req`, or 401. An expired session is absent (the store hides expired items).
pub async fn caller(app: &App, req: &Request) -> Result<Caller, ApiError> {
    let token = match session_token(req) {
        Some(Ok(t)) => t,
        Some(Err(_)) | None => return Err(ApiError::unauthorized()),
    };
    let key = session_key(&token);
    let session = app
        .store
        .get(&key)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    // After the lookup, so an unknown or ended session is the usual 401; before any handler acts.
    check_same_origin(req)?;
    let account = session
        .get_str("account_id")
        .and_then(|a| AccountId::parse(a).ok())
        .ok_or_else(ApiError::internal)?;
    Ok(Caller {
        account,
        session: key,
    })
}
