//! Who is calling an authenticated route: the session behind a bearer token or the session cookie.
//! Shared so that every function resolves callers the same way (sessions are written by account only).

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
    let account = session
        .get_str("account_id")
        .and_then(|a| AccountId::parse(a).ok())
        .ok_or_else(ApiError::internal)?;
    Ok(Caller {
        account,
        session: key,
    })
}
