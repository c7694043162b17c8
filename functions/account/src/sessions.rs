//! Sessions: sign in, sign out, sign out everywhere.
//!
//! Sign-in answers the same (401 `invalid_credentials`) in similar time for an unknown email and a wrong
//! password: an unknown email still runs one argon2id verification. Before any password is checked the
//! attempt claims a slot under two limits ([`qchat_shared::limits`]): its email address (5 per 15 minutes)
//! and its network (30 per 15 minutes). Both are keyed by blind index, whether or not an account holds
//! the address, so a registered and an unregistered address are limited alike. A successful sign-in gives
//! its slots back; a failed one keeps them, so 5 failures within 15 minutes lock further attempts (429)
//! until the oldest leaves the window, however many arrive at once.

use qchat_shared::accounts::{self, purpose};
use qchat_shared::app::{App, account_key_owner};
use qchat_shared::domain::{AccountId, Password, SessionToken};
use qchat_shared::http::{
    ApiError, Request, Response, StatusCode, clear_session_cookie, json, no_content, parse_json,
    session_cookie,
};
use qchat_shared::inventory::SESSION;
use qchat_shared::limits::{self, Claim, Limit};
use qchat_shared::outbox::{Notice, notice_op};
use qchat_shared::password;
use qchat_shared::store::{
    Condition, Index, Item, ItemKey, KeyRange, Order, Query, Value, WriteOp, query_all,
};

use crate::auth::{self, session_key, sessions_partition};
use crate::{network, seclog};

pub const UNREMEMBERED_HOURS: i64 = 12;
pub const REMEMBERED_DAYS: i64 = 30;

/// The window both sign-in limits count attempts in.
pub const ATTEMPT_WINDOW_SECS: i64 = 15 * 60;

/// Failed sign-ins per email address (SPEC §4: 5 in 15 minutes), shared with every password check.
pub const EMAIL_LIMIT: Limit = qchat_shared::limits::SIGNIN_EMAIL_LIMIT;

/// Failed sign-ins per source network (/24 or /48). One network can be an office, a campus or a mobile
/// carrier's NAT with many holders behind it, so the limit is six addresses' worth of lockouts: well
/// above what their typos add up to, while one network spraying guesses across many addresses gets 30
/// per 15 minutes instead of 5 per address it tries.
pub const NETWORK_LIMIT: Limit = Limit {
    scope: "SIGNIN#NET",
    slots: 30,
    window_secs: ATTEMPT_WINDOW_SECS,
};

#[derive(serde::Deserialize)]
struct SignInRequest {
    email: String,
    password: String,
    #[serde(default)]
    remember: bool,
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "the email or the password is wrong",
    )
}

async fn verify(
    pw: Password,
    hash: Option<qchat_shared::crypto::OneWayHash>,
) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || match hash {
        Some(h) => password::verify(&pw, &h),
        None => {
            password::verify_against_nothing(&pw);
            false
        }
    })
    .await
    .map_err(|_| ApiError::internal())
}

/// The write of a new session item.
pub fn session_op(
    app: &App,
    account: &AccountId,
    token: &SessionToken,
    remember: bool,
) -> Result<(WriteOp, i64), ApiError> {
    let now = app.clock.now();
    let expires = if remember {
        now.plus_days(REMEMBERED_DAYS)
    } else {
        now.plus_hours(UNREMEMBERED_HOURS)
    };
    let item = Item::new(&SESSION, session_key(token))
        .plain("account_id", Value::S(account.as_str().to_owned()))
        .and_then(|i| i.plain("created", Value::N(now.millis())))
        .and_then(|i| i.plain("remember", Value::Bool(remember)))
        .map_err(|_| ApiError::internal())?
        .expires_at(expires)
        .with_gsi1(
            sessions_partition(account),
            format!("{:013}#{}", now.millis(), app.ids.new_id()),
        );
    Ok((
        WriteOp::Put {
            item,
            condition: Condition::NotExists,
        },
        expires.millis(),
    ))
}

fn too_many_attempts(retry_after_secs: i64) -> Response {
    let mut resp =
        ApiError::too_many_requests("too many failed sign-ins; try again later").into_response();
    if let Ok(v) = http::HeaderValue::from_str(&retry_after_secs.to_string()) {
        resp.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    resp
}

/// `POST /api/sessions`.
pub async fn sign_in(app: &App, req: &Request) -> Result<Response, ApiError> {
    let body: SignInRequest = parse_json(req)?;
    let pw = Password::parse(&body.password).map_err(|_| invalid_credentials())?;
    let indexer = app.keys.blind_indexer().await?;
    let email = qchat_shared::domain::EmailAddress::parse(&body.email);
    // A malformed address is limited too, by the index of what was sent: every address gets the same
    // answers in the same order, whatever it is.
    let email_index = match &email {
        Ok(e) => indexer.index(purpose::EMAIL, e.expose().as_bytes()),
        Err(_) => indexer.index(purpose::EMAIL, body.email.as_bytes()),
    };
    let addr = network::client_addr(req);
    let network_index = addr.map(|ip| network::network_index(&indexer, ip));
    let mut subjects = vec![(&EMAIL_LIMIT, &email_index)];
    if let Some(n) = &network_index {
        subjects.push((&NETWORK_LIMIT, n));
    }
    let now = app.clock.now();
    // The slots are keyed by the address's blind index: they live in the key store, not the backed-up one.
    let slots = match limits::claim(app.key_store.as_ref(), now, &subjects).await? {
        Claim::Granted(slots) => slots,
        Claim::Refused { retry_after_secs } => {
            tracing::info!(retry_after_secs, "sign-in refused: too many attempts");
            return Ok(too_many_attempts(retry_after_secs));
        }
    };

    if email.is_err() {
        verify(pw, None).await?;
        return Err(invalid_credentials());
    }
    // A wrong password costs the same store work whether or not an account holds the address: a profile
    // read, the argon2id check, one key-store transaction marking the attempt's slots failed, and one
    // main-store transaction (the account's security-log entry, or a check of the absent profile). So
    // the time tells nothing either.
    let failed = || -> Result<Vec<WriteOp>, ApiError> {
        let mut ops = Vec::new();
        for ((limit, _), key) in subjects.iter().zip(&slots) {
            ops.push(limits::failed_op(limit, key.clone(), now)?);
        }
        Ok(ops)
    };
    // The address's claim (key store), then the profile it names (a random absent one without a claim):
    // the same reads for every address. A claim that its account does not name back (an orphan, or an
    // address since changed) finds no account.
    let claim = accounts::email_claim(app, &email_index).await?;
    let read = claim.as_ref().map_or_else(
        || AccountId::generate(app.ids.as_ref()),
        |c| c.account.clone(),
    );
    let profile = match &claim {
        Some(claim) => accounts::load_profile(app, &claim.account)
            .await?
            .filter(|p| p.email_claim.as_deref() == Some(claim.claim_id.as_str())),
        None => {
            app.store.get(&accounts::profile_key(&read)).await?;
            None
        }
    };
    let Some(profile) = profile else {
        verify(pw, None).await?;
        app.key_store.transact(failed()?).await?;
        // In place of the security-log entry an account gets: a check that always holds.
        let nobody = AccountId::generate(app.ids.as_ref());
        app.store
            .transact(vec![WriteOp::Check {
                key: accounts::profile_key(&nobody),
                condition: Condition::NotExists,
            }])
            .await?;
        return Err(invalid_credentials());
    };
    let account = profile.id.clone();
    let ok = verify(pw, Some(profile.password_hash.clone())).await?;
    let owner = account_key_owner(&account);
    let cipher = app.keys.cipher(&owner).await?;
    if !ok {
        // The claimed slots stay: they count this failure until they expire.
        let entry = seclog::entry_op(
            app,
            &account,
            &cipher,
            &indexer,
            seclog::Event::SignInFailed,
            addr,
        )?;
        app.key_store.transact(failed()?).await?;
        app.store.transact(vec![entry]).await?;
        tracing::info!(account = %account, "sign-in failed");
        return Err(invalid_credentials());
    }

    let history = seclog::recent(app, &account, 100).await?;
    let token = SessionToken::generate();
    let (session, expires_ms) = session_op(app, &account, &token, body.remember)?;
    let mut ops = vec![
        session,
        seclog::entry_op(
            app,
            &account,
            &cipher,
            &indexer,
            seclog::Event::SignIn,
            addr,
        )?,
    ];
    if let Some(ip) = addr
        && seclog::has_history(&history)
        && !seclog::network_seen(&history, &indexer, ip)
    {
        ops.push(notice_op(
            &app.ids.new_id(),
            &account,
            &Notice::NewNetworkSignIn { at: now },
            now,
            None,
        )?);
    }
    app.store.transact(ops).await?;
    // Only failures count: a successful sign-in gives its slots back once its session is written.
    app.key_store
        .transact(slots.into_iter().map(limits::release_op).collect())
        .await?;
    tracing::info!(account = %account, remember = body.remember, "signed in");

    let max_age = body.remember.then_some(REMEMBERED_DAYS * 24 * 3600);
    let mut resp = json(
        StatusCode::OK,
        &serde_json::json!({
            "token": token.expose(),
            "expires_at": qchat_shared::clock::Timestamp::from_millis(expires_ms).to_rfc3339(),
        }),
    );
    if let Ok(v) = http::HeaderValue::from_str(&session_cookie(&token, max_age)) {
        resp.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    Ok(resp)
}

fn with_cleared_cookie(mut resp: Response) -> Response {
    if let Ok(v) = http::HeaderValue::from_str(&clear_session_cookie()) {
        resp.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    resp
}

/// `DELETE /api/sessions/current`.
pub async fn sign_out(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    app.store.delete(&caller.session, Condition::Always).await?;
    tracing::info!(account = %caller.account, "signed out");
    Ok(with_cleared_cookie(no_content()))
}

/// Every session key of an account (expired ones are absent and expire by themselves).
pub async fn all_sessions(app: &App, account: &AccountId) -> Result<Vec<ItemKey>, ApiError> {
    let query = Query {
        index: Index::Gsi1,
        partition: sessions_partition(account),
        range: KeyRange::All,
        order: Order::Ascending,
        limit: 100,
        cursor: None,
    };
    let items = query_all(app.store.as_ref(), query).await?;
    Ok(items.iter().map(|i| i.key().clone()).collect())
}

/// `DELETE /api/sessions`: ends every session of the account, this one included.
pub async fn sign_out_everywhere(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let keys = all_sessions(app, &caller.account).await?;
    app.store.delete_many(&keys).await?;
    let owner = account_key_owner(&caller.account);
    let cipher = app.keys.cipher(&owner).await?;
    let indexer = app.keys.blind_indexer().await?;
    let op = seclog::entry_op(
        app,
        &caller.account,
        &cipher,
        &indexer,
        seclog::Event::SignedOutEverywhere,
        network::client_addr(req),
    )?;
    app.store.transact(vec![op]).await?;
    tracing::info!(account = %caller.account, sessions = keys.len(), "signed out everywhere");
    Ok(with_cleared_cookie(no_content()))
}
