//! Who is calling: the session behind a bearer token or the session cookie, and whether that account holds
//! the operator role.

use qchat_shared::accounts::{self, Profile};
use qchat_shared::app::App;
use qchat_shared::domain::AccountId;
use qchat_shared::http::{ApiError, Request};

// Resolving the caller is shared with the other functions' authenticated routes.
pub use qchat_shared::auth::{Caller, caller, session_key};

/// The index partition of an account's sessions.
pub fn sessions_partition(account: &AccountId) -> String {
    format!("ACCOUNT#{account}#SESSIONS")
}

/// The caller's profile; 401 if the account is gone (its sessions are erased with it).
pub async fn profile(app: &App, caller: &Caller) -> Result<Profile, ApiError> {
    accounts::load_profile(app, &caller.account)
        .await?
        .ok_or_else(ApiError::unauthorized)
}

/// Whether this profile holds the operator role: its address is `QCHAT_OPERATOR_EMAIL` and was proven by
/// a link sent to it. Every address an account holds was proven so (registration and address changes
/// take effect only through the link), and the check says so again, so no account can take the role by
/// typing the address.
pub fn is_operator(app: &App, profile: &Profile) -> bool {
    app.config
        .operator_email
        .as_ref()
        .is_some_and(|operator| operator == &profile.email && profile.email_verified_at.is_some())
}

/// The caller, if it is the operator; 403 otherwise.
pub async fn operator(app: &App, req: &Request) -> Result<Caller, ApiError> {
    let caller = caller(app, req).await?;
    let profile = profile(app, &caller).await?;
    if !is_operator(app, &profile) {
        return Err(ApiError::forbidden("only the operator may do this"));
    }
    Ok(caller)
}
