//! The erase function (SPEC §4 "erase"): access and erasure.
//!
//! Routes: the status page of every erasure's receipt, `GET /deletion/{code}` (the code is the erasure
//! job's id, given to whoever asked for the erasure); an account holder's erasure of their account
//! (`DELETE /api/account`, [`account`]) and the export of everything held about it
//! (`GET /api/account/export`, [`export`]); one lead's export and erasure for the account holder of its
//! page ([`lead`]); Meta's data-deletion callback (`POST /facebook/data-deletion`,
//! [`meta_callback`]). The scheduled runner ([`run_due`], EventBridge every minute in AWS, the local server's
//! ticker) runs the erasure jobs: single leads ([`qchat_shared::leads::erase_lead`]), accounts
//! ([`qchat_shared::erasure::account`]) and a disconnected page's leads ([`qchat_shared::leads::erase`]).

mod account;
mod export;
mod lead;
mod meta_callback;
mod status;

use qchat_shared::app::App;
use qchat_shared::clock::Timestamp;
use qchat_shared::erasure::account::AccountErasure;
use qchat_shared::http::{ApiError, PathParams, Request, Response};
use qchat_shared::jobs::{Jobs, RunReport};
use qchat_shared::leads::erase::PageLeadsErasure;
use qchat_shared::leads::erase_lead::LeadErasure;
use qchat_shared::meta_deletion::MetaDeletion;
use qchat_shared::routes::{self, EraseRoute};
use qchat_shared::store::StoreError;

pub use lead::SCHEMA_VERSION as LEAD_EXPORT_SCHEMA_VERSION;

/// A runner's lease on an erasure job: longer than any single step and than a Lambda run.
pub const JOB_LEASE_SECS: i64 = 900;

/// Serves one request of the erase function's routes.
pub async fn handle(app: &App, req: Request) -> Response {
    routes::serve(req, |handler, req, params| async move {
        dispatch(app, handler, &req, &params).await
    })
    .await
}

async fn dispatch(
    app: &App,
    handler: EraseRoute,
    req: &Request,
    params: &PathParams,
) -> Result<Response, ApiError> {
    match handler {
        EraseRoute::DeletionStatus => status::show(app, req, params).await,
        EraseRoute::EraseAccount => account::erase(app, req).await,
        EraseRoute::ExportAccount => export::show(app, req).await,
        EraseRoute::ExportLead => lead::export(app, req, params).await,
        EraseRoute::EraseLead => lead::erase(app, req, params).await,
        EraseRoute::MetaDataDeletion => meta_callback::callback(app, req).await,
    }
}

/// Why a scheduled run failed: only the store can fail it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the store failed")]
    Store(#[from] StoreError),
}

/// Lambda reports the error type; it says whether the run is worth retrying, never any data.
impl From<RunError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(e: RunError) -> Self {
        let error_type = match &e {
            RunError::Store(s) if s.is_retryable() => "Erase.Retryable",
            RunError::Store(_) => "Erase.Failed",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Runs due erasure jobs (single leads first: a person waits for their confirmation; then accounts, then
/// pages, then Meta's data-deletion requests, which queue single-lead erasures) until
/// none is due or `deadline` is near. `runner` names this runner in job leases (an opaque id).
///
/// # Errors
/// The store's; what was erased stays erased and the next run resumes from the checkpoint.
pub async fn run_due(app: &App, runner: &str, deadline: Timestamp) -> Result<RunReport, RunError> {
    let jobs = Jobs::new(
        app.store.clone(),
        app.clock.clone(),
        app.ids.clone(),
        JOB_LEASE_SECS,
    );
    let lead = LeadErasure::new(app.store.clone(), app.key_store.clone(), app.clock.clone());
    let account = AccountErasure::new(
        app.store.clone(),
        app.key_store.clone(),
        app.clock.clone(),
        app.keys.clone(),
    );
    let page = PageLeadsErasure::new(app.store.clone(), app.key_store.clone(), app.clock.clone());
    let meta = MetaDeletion::new(app.clone());
    Ok(jobs
        .run_due(runner, deadline, &[&lead, &account, &page, &meta])
        .await?)
}

/// One scheduled invocation (every minute): [`run_due`], then the retention sweep
/// ([`qchat_shared::retention::sweep`]) with what is left of the invocation's time; their counts are the
/// answer. A sweep pass is due 20 hours after the one before began, so about daily; a pass longer than
/// one run continues in the next minute's run rather than the next day's, which a daily schedule of its
/// own would give, and erasures people wait for always go first.
///
/// # Errors
/// As [`run_due`], and the sweep's store failures.
pub async fn scheduled(
    app: &App,
    runner: &str,
    deadline: Timestamp,
) -> Result<serde_json::Value, RunError> {
    let report = run_due(app, runner, deadline).await?;
    let sweep = qchat_shared::retention::sweep(app, deadline)
        .await
        .map_err(|qchat_shared::retention::RetentionError::Store(e)| RunError::Store(e))?;
    tracing::info!(
        claimed = report.claimed,
        finished = report.finished,
        steps = report.steps,
        failed_steps = report.failed_steps,
        paused = report.paused,
        skipped = report.skipped,
        "scheduled erasure run finished"
    );
    Ok(serde_json::json!({
        "claimed": report.claimed,
        "finished": report.finished,
        "steps": report.steps,
        "failed_steps": report.failed_steps,
        "paused": report.paused,
        "skipped": report.skipped,
        "sweep": sweep,
    }))
}
