//! The broadcast function: an account holder composes a broadcast for one of their pages, lists and reads
//! their broadcasts with counts per outcome, cancels one, previews who would get it; and sets the page's
//! sending rate. The scheduled runner ([`run_due`]) sends due broadcasts through the engine's job handler
//! ([`qchat_shared::broadcast`]) on the shared job mechanism.
//!
//! Every route is scoped to a page the caller owns: another account's page or broadcast is answered
//! exactly like a missing one (404), after the same reads. In AWS the function is invoked by API Gateway
//! (the routes) and by an EventBridge schedule every minute (the runner); locally the server mounts the
//! routes and its ticker calls [`run_due`].

mod access;
mod compose;
mod detail;
mod list;
mod rate;
mod view;

use qchat_shared::app::App;
use qchat_shared::broadcast::Broadcasts;
use qchat_shared::clock::Timestamp;
use qchat_shared::http::{ApiError, PathParams, Request, Response};
use qchat_shared::jobs::{Jobs, RunReport};
use qchat_shared::routes::{self, BroadcastRoute};
use qchat_shared::store::StoreError;

/// A runner's lease on a broadcast job: longer than any single step (one batch) and than a Lambda run
/// (the template's timeout is 300 s), so a lease outlives the runner that took it.
pub const JOB_LEASE_SECS: i64 = 900;

/// Serves one request of the broadcast function's routes.
pub async fn handle(app: &App, req: Request) -> Response {
    routes::serve(req, |handler, req, params| async move {
        dispatch(app, handler, &req, &params).await
    })
    .await
}

async fn dispatch(
    app: &App,
    handler: BroadcastRoute,
    req: &Request,
    params: &PathParams,
) -> Result<Response, ApiError> {
    match handler {
        BroadcastRoute::CreateBroadcast => compose::create(app, req, params).await,
        BroadcastRoute::PreviewDraft => compose::preview(app, req, params).await,
        BroadcastRoute::ListBroadcasts => list::list(app, req, params).await,
        BroadcastRoute::GetBroadcast => detail::get(app, req, params).await,
        BroadcastRoute::CancelBroadcast => detail::cancel(app, req, params).await,
        BroadcastRoute::PreviewBroadcast => detail::preview(app, req, params).await,
        BroadcastRoute::SetPageRate => rate::set(app, req, params).await,
    }
}

/// Why a scheduled run failed: only the store can fail it (a send's failure is an outcome the engine
/// records, never raised).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the store failed")]
    Store(#[from] StoreError),
}

/// Lambda reports the error type; it says whether the run is worth retrying, never any data.
impl From<RunError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(e: RunError) -> Self {
        let error_type = match &e {
            RunError::Store(s) if s.is_retryable() => "Broadcast.Retryable",
            RunError::Store(_) => "Broadcast.Failed",
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Sends due broadcasts with `broadcasts`' job handler until none is due or `deadline` is near. `runner`
/// names this runner in job leases (an opaque id). Two runners at once never work the same broadcast.
///
/// # Errors
/// The store's; what was sent stays recorded and the next run resumes from the checkpoint.
pub async fn run_due_with(
    app: &App,
    broadcasts: &Broadcasts,
    runner: &str,
    deadline: Timestamp,
) -> Result<RunReport, RunError> {
    let jobs = Jobs::new(
        app.store.clone(),
        app.clock.clone(),
        app.ids.clone(),
        JOB_LEASE_SECS,
    );
    let handler = broadcasts.job_handler();
    Ok(jobs.run_due(runner, deadline, &[&handler]).await?)
}

/// [`run_due_with`] the engine as production builds it (real-time pacing).
///
/// # Errors
/// As [`run_due_with`].
pub async fn run_due(app: &App, runner: &str, deadline: Timestamp) -> Result<RunReport, RunError> {
    run_due_with(app, &Broadcasts::new(app), runner, deadline).await
}

/// One scheduled invocation: [`run_due`] until the invocation's deadline; its counts are the answer.
///
/// # Errors
/// As [`run_due`].
pub async fn scheduled(
    app: &App,
    runner: &str,
    deadline: Timestamp,
) -> Result<serde_json::Value, RunError> {
    let report = run_due(app, runner, deadline).await?;
    tracing::info!(
        claimed = report.claimed,
        finished = report.finished,
        steps = report.steps,
        failed_steps = report.failed_steps,
        paused = report.paused,
        skipped = report.skipped,
        "scheduled broadcast run finished"
    );
    Ok(serde_json::json!({
        "claimed": report.claimed,
        "finished": report.finished,
        "steps": report.steps,
        "failed_steps": report.failed_steps,
        "paused": report.paused,
        "skipped": report.skipped,
    }))
}
