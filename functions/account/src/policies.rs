//! Policies: the current privacy policy and terms (a fresh install ships version "1" of each, so
//! registration works out of the box), publishing a new version (operator; every account is told by
//! email through a resumable fan-out job), accepting a version, and breach notices (operator).

use qchat_shared::app::App;
use qchat_shared::domain::AccountId;
use qchat_shared::http::{ApiError, Request, Response, StatusCode, json, parse_json};
use qchat_shared::inventory::{BREACH_NOTICE, POLICY};
use qchat_shared::jobs::Jobs;
use qchat_shared::store::{Condition, Item, ItemKey, StoreError, Value, WriteOp};

use crate::{audit, auth};

/// Job kinds run by notify; declared beside the outbox so notify need not depend on this crate.
pub use qchat_shared::outbox::{BREACH_FANOUT_JOB, POLICY_FANOUT_JOB};
// The version in force is read by other functions too (consent records), so it lives in `shared`.
pub use qchat_shared::policies::{CurrentPolicy, PolicyKind, SHIPPED_VERSION, index_partition};

/// The version in force: the latest published, or the shipped one.
pub async fn current_policy(app: &App, kind: PolicyKind) -> Result<CurrentPolicy, ApiError> {
    Ok(qchat_shared::policies::current_policy(app, kind).await?)
}

/// `GET /api/policies/current` (public).
pub async fn current(app: &App) -> Result<Response, ApiError> {
    let privacy = current_policy(app, PolicyKind::Privacy).await?;
    let terms = current_policy(app, PolicyKind::Terms).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "privacy": privacy, "terms": terms }),
    ))
}

#[derive(serde::Deserialize)]
struct PublishRequest {
    kind: PolicyKind,
    version: String,
    url: String,
    summary: String,
}

fn valid_version(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 32
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}

fn valid_url(u: &str) -> bool {
    u.len() <= 2048
        && (u.starts_with("https://") || u.starts_with("http://"))
        && !u.chars().any(char::is_whitespace)
}

fn valid_text(t: &str, max: usize) -> bool {
    qchat_shared::text::display_text(t, max).is_ok()
}

/// `POST /api/policies` (operator): publishes a version and queues the notice to every account.
pub async fn publish(app: &App, req: &Request) -> Result<Response, ApiError> {
    let operator = auth::operator(app, req).await?;
    let body: PublishRequest = parse_json(req)?;
    if !valid_version(&body.version) {
        return Err(ApiError::bad_request(
            "invalid_version",
            "version must be 1 to 32 letters, digits, '.', '-' or '_'",
        ));
    }
    if !valid_url(&body.url) {
        return Err(ApiError::bad_request(
            "invalid_url",
            "url must be an http(s) URL",
        ));
    }
    if !valid_text(&body.summary, 2000) {
        return Err(ApiError::bad_request(
            "invalid_summary",
            "summary must be 1 to 2000 characters, without control or invisible characters",
        ));
    }
    if body.version == SHIPPED_VERSION {
        return Err(ApiError::conflict(
            "version_exists",
            "that version is already published",
        ));
    }
    let now = app.clock.now();
    let item = Item::new(
        &POLICY,
        ItemKey::new(
            format!("POLICY#{}", body.kind.name()),
            format!("VERSION#{}", body.version),
        ),
    )
    .plain("kind", Value::S(body.kind.name().to_owned()))
    .and_then(|i| i.plain("version", Value::S(body.version.clone())))
    .and_then(|i| i.plain("url", Value::S(body.url.clone())))
    .and_then(|i| i.plain("summary", Value::S(body.summary.clone())))
    .and_then(|i| i.plain("published_at", Value::N(now.millis())))
    .map_err(|_| ApiError::internal())?
    .with_gsi1(
        index_partition(body.kind),
        format!("{:013}#{}", now.millis(), body.version),
    );
    let params =
        serde_json::json!({ "kind": body.kind.name(), "version": body.version }).to_string();
    let jobs = Jobs::new(
        app.store.clone(),
        app.clock.clone(),
        app.ids.clone(),
        15 * 60,
    );
    let (job_id, job_op) = jobs.enqueue_op(POLICY_FANOUT_JOB, &params, now)?;
    let audit = audit::entry_op(
        &app.ids.new_id(),
        &operator.account,
        audit::Action::PolicyPublished,
        &serde_json::json!({ "kind": body.kind.name(), "version": body.version, "notice_job": job_id }),
        now,
    )?;
    match app
        .store
        .transact(vec![
            WriteOp::Put {
                item,
                condition: Condition::NotExists,
            },
            job_op,
            audit,
        ])
        .await
    {
        Ok(()) => {}
        Err(StoreError::TransactionConditionFailed { index: 0 }) => {
            return Err(ApiError::conflict(
                "version_exists",
                "that version is already published",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(job = %job_id, kind = body.kind.name(), "policy published; notices queued");
    let published = current_policy(app, body.kind).await?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({ "policy": published, "notice_job": job_id }),
    ))
}

#[derive(serde::Deserialize)]
struct AcceptRequest {
    kind: PolicyKind,
    version: String,
}

/// `POST /api/account/policy-acceptance`: records that the holder accepted the version in force.
pub async fn accept(app: &App, req: &Request) -> Result<Response, ApiError> {
    let caller = auth::caller(app, req).await?;
    let body: AcceptRequest = parse_json(req)?;
    let current = current_policy(app, body.kind).await?;
    if body.version != current.version {
        return Err(ApiError::conflict(
            "policy_version_mismatch",
            "only the version in force can be accepted",
        ));
    }
    let profile = auth::profile(app, &caller).await?;
    let (version_attr, at_attr) = match body.kind {
        PolicyKind::Privacy => ("privacy_version", "privacy_accepted_at"),
        PolicyKind::Terms => ("terms_version", "terms_accepted_at"),
    };
    let version = profile.item.version().unwrap_or(0);
    let updated = profile
        .item
        .clone()
        .plain(version_attr, Value::S(current.version.clone()))
        .and_then(|i| i.plain(at_attr, Value::N(app.clock.now().millis())))
        .map_err(|_| ApiError::internal())?
        .with_version(version + 1);
    match app.store.put(updated, Condition::VersionIs(version)).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => {
            return Err(ApiError::conflict(
                "concurrent_update",
                "the account changed meanwhile; try again",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "kind": body.kind, "accepted_version": current.version }),
    ))
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Scope {
    All(String),
    Accounts(Vec<String>),
}

#[derive(serde::Deserialize)]
struct BreachRequest {
    summary: String,
    scope: Scope,
}

/// `POST /api/breach-notices` (operator): queues a breach notice to all or the listed accounts.
pub async fn breach_notice(app: &App, req: &Request) -> Result<Response, ApiError> {
    let operator = auth::operator(app, req).await?;
    let body: BreachRequest = parse_json(req)?;
    if !valid_text(&body.summary, 4000) {
        return Err(ApiError::bad_request(
            "invalid_summary",
            "summary must be 1 to 4000 characters, without control or invisible characters",
        ));
    }
    let scope_size = match &body.scope {
        Scope::Accounts(ids) => serde_json::json!(ids.len()),
        Scope::All(_) => serde_json::json!("all"),
    };
    let scope = match &body.scope {
        Scope::All(s) if s == "all" => "all".to_owned(),
        Scope::All(_) => {
            return Err(ApiError::bad_request(
                "invalid_scope",
                "scope must be \"all\" or a list of account ids",
            ));
        }
        Scope::Accounts(ids) => {
            if ids.is_empty() || ids.len() > 1000 {
                return Err(ApiError::bad_request(
                    "invalid_scope",
                    "list 1 to 1000 account ids, or use \"all\"",
                ));
            }
            let parsed: Result<Vec<AccountId>, _> =
                ids.iter().map(|i| AccountId::parse(i)).collect();
            let parsed = parsed.map_err(|_| {
                ApiError::bad_request("invalid_scope", "an account id is malformed")
            })?;
            serde_json::to_string(&parsed).map_err(|_| ApiError::internal())?
        }
    };
    let now = app.clock.now();
    let notice_id = app.ids.new_id();
    let item = Item::new(
        &BREACH_NOTICE,
        ItemKey::new(format!("BREACH#{notice_id}"), "NOTICE"),
    )
    .plain("summary", Value::S(body.summary.clone()))
    .and_then(|i| i.plain("scope", Value::S(scope)))
    .and_then(|i| i.plain("created", Value::N(now.millis())))
    .map_err(|_| ApiError::internal())?;
    let jobs = Jobs::new(
        app.store.clone(),
        app.clock.clone(),
        app.ids.clone(),
        15 * 60,
    );
    let params = serde_json::json!({ "notice_id": notice_id }).to_string();
    let (job_id, job_op) = jobs.enqueue_op(BREACH_FANOUT_JOB, &params, now)?;
    let audit = audit::entry_op(
        &app.ids.new_id(),
        &operator.account,
        audit::Action::BreachNoticeQueued,
        &serde_json::json!({ "notice_id": notice_id, "scope": scope_size, "notice_job": job_id }),
        now,
    )?;
    app.store
        .transact(vec![
            WriteOp::Put {
                item,
                condition: Condition::NotExists,
            },
            job_op,
            audit,
        ])
        .await?;
    tracing::info!(job = %job_id, "breach notice queued");
    Ok(json(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "id": notice_id, "notice_job": job_id }),
    ))
}
