//! Who is calling: the session behind a bearer token or the session cookie, and whether that account holds
//! the operator role.

use qchat_shared::accounts::{self, Profile};
use qchat_shared::app::App;
use qchat_shared::crypto::OneWayHash;
use qchat_shared::domain::{AccountId, SessionToken};
use qchat_shared::http::{ApiError, Request, session_token};
use qchat_shared::store::ItemKey;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: AccountId,
    /// The key of the session used for this request.
    pub session: ItemKey,
}

pub fn session_key(token: &SessionToken) -> ItemKey {
    ItemKey::new(
        format!(
            "SESSION#{}",
            OneWayHash::sha256_of(token.expose().as_bytes()).as_str()
        ),
        "SESSION",
    )
}

/// The index partition of an account's sessions.
pub fn sessions_partition(account: &AccountId) -> String {
    format!("ACCOUNT#{account}#SESSIONS")
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

/// The caller's profile; 401 if the account is gone (its sessions are erased with it).
pub async fn profile(app: &App, caller: &Caller) -> Result<Profile, ApiError> {
    accounts::load_profile(app, &caller.account)
        .await?
        .ok_or_else(ApiError::unauthorized)
}

/// Whether this profile's address is `QCHAT_OPERATOR_EMAIL`.
pub async fn is_operator(app: &App, profile: &Profile) -> Result<bool, ApiError> {
    let Some(operator) = &app.config.operator_email else {
        return Ok(false);
    };
    Ok(operator == &profile.email)
}

/// The caller, if it is the operator; 403 otherwise.
pub async fn operator(app: &App, req: &Request) -> Result<Caller, ApiError> {
    let caller = caller(app, req).await?;
    let profile = profile(app, &caller).await?;
    if !is_operator(app, &profile).await? {
        return Err(ApiError::forbidden("only the operator may do this"));
    }
    Ok(caller)
}
