//! The notify function: sends account notices and Messenger replies from their outboxes, and runs the
//! notice fan-out jobs. (Erasure jobs are the erase function's runner's.)
//!
//! In AWS it is invoked three ways: by the table's stream (filtered to outbox inserts), delivering each new
//! notice at once; by the SES feedback topic, suppressing addresses that hard-bounced or complained
//! ([`qchat_shared::mail::suppression`]); and by an EventBridge schedule, running [`tick`] — due fan-out jobs, then every
//! due notice (the safety net for anything the stream missed or that waits for a retry). Locally the server's
//! ticker calls [`tick_except_replies`] every two seconds and sends replies continuously with
//! [`drain_due_replies_with`]. Both paths are safe to overlap: notices and jobs are claimed
//! under leases and every outcome is a conditional write.

pub mod delivery;
pub mod event;
pub mod fanout;
pub mod notices;
pub mod replies;

use qchat_shared::app::App;
use qchat_shared::clock::Timestamp;
use qchat_shared::jobs::{Jobs, RunReport};
use qchat_shared::mail::suppression::{self, SuppressionError};
use qchat_shared::store::StoreError;

pub use delivery::{Delivery, DrainReport, deliver, drain_due};
pub use event::Invocation;
pub use fanout::{BreachFanout, PolicyFanout};
pub use replies::{deliver_reply, drain_due_replies, drain_due_replies_with};

/// A job's lease: longer than any single step (one page of accounts or of leads), and than a Lambda run.
pub const JOB_LEASE_SECS: i64 = 900;

/// Why a notify run failed. Only the store can fail a run: a notice that cannot be sent is recorded on
/// its item (retry or failure), never raised.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("a mail suppression was not recorded")]
    Suppression(#[from] SuppressionError),
}

impl NotifyError {
    /// Whether running again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Suppression(e) => e.is_retryable(),
        }
    }
}

/// Lambda reports the error type; it says whether the run is worth retrying, never any data.
impl From<NotifyError> for lambda_runtime::Diagnostic {
    fn from(e: NotifyError) -> Self {
        let error_type = if e.is_retryable() {
            "Notify.Retryable"
        } else {
            "Notify.Failed"
        };
        Self {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// What one tick did. Counts only.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub jobs: RunReport,
    pub delivery: DrainReport,
    /// Messenger replies queued by the webhook.
    pub replies: DrainReport,
}

/// One scheduled run: due fan-out jobs, then every
/// due notice, then every due Messenger reply, until a few seconds before `deadline`.
/// `runner` names this process in job leases (an opaque id).
///
/// # Errors
/// The store's failures; whatever was done before stays done, and the next tick resumes.
pub async fn tick(app: &App, runner: &str, deadline: Timestamp) -> Result<TickReport, NotifyError> {
    let mut report = tick_except_replies(app, runner, deadline).await?;
    report.replies = drain_due_replies(app, deadline).await?;
    Ok(report)
}

/// [`tick`] without the Messenger replies, for a process that sends them on its own (the local server,
/// whose reply sender runs continuously).
///
/// # Errors
/// As [`tick`].
pub async fn tick_except_replies(
    app: &App,
    runner: &str,
    deadline: Timestamp,
) -> Result<TickReport, NotifyError> {
    let jobs = Jobs::new(
        app.store.clone(),
        app.clock.clone(),
        app.ids.clone(),
        JOB_LEASE_SECS,
    );
    let policy = PolicyFanout::new(app.clone());
    let breach = BreachFanout::new(app.clone());
    let jobs = jobs.run_due(runner, deadline, &[&policy, &breach]).await?;
    let delivery = drain_due(app, deadline).await?;
    Ok(TickReport {
        jobs,
        delivery,
        replies: DrainReport::default(),
    })
}

/// The stream path stops taking new notices this long before the Lambda deadline.
const STREAM_MARGIN_SECS: i64 = 3;

/// What one Lambda invocation did, as the function's response. Counts only; the stream shape
/// (`batchItemFailures`, always empty) tells Lambda the whole batch is handled — a notice that was not sent
/// stays pending for the scheduled sweep.
pub async fn handle(
    app: &App,
    runner: &str,
    event: &serde_json::Value,
    deadline: Timestamp,
) -> Result<serde_json::Value, NotifyError> {
    match event::parse(event) {
        Invocation::Stream {
            outbox_ids,
            reply_ids,
            ignored,
        } => {
            let stop_at = deadline.plus_secs(-STREAM_MARGIN_SECS);
            let mut report = DrainReport::default();
            let mut errors = 0usize;
            let mut left = 0usize;
            for id in &outbox_ids {
                if app.clock.now() >= stop_at {
                    left += 1;
                    continue;
                }
                match deliver(app, id).await {
                    Ok(delivery) => report.count(delivery),
                    Err(e) => {
                        errors += 1;
                        tracing::warn!(outbox = %id, error = %e, "delivery failed; the sweep retries it");
                    }
                }
            }
            let mut replies = DrainReport::default();
            for id in &reply_ids {
                if app.clock.now() >= stop_at {
                    left += 1;
                    continue;
                }
                match deliver_reply(app, id).await {
                    Ok(delivery) => replies.count(delivery),
                    Err(e) => {
                        errors += 1;
                        tracing::warn!(reply = %id, error = %e, "reply failed; the sweep retries it");
                    }
                }
            }
            tracing::info!(
                records = outbox_ids.len() + reply_ids.len(),
                ignored,
                replies_sent = replies.sent,
                replies_failed = replies.failed,
                sent = report.sent,
                retrying = report.retrying,
                failed = report.failed,
                skipped = report.skipped,
                errors,
                left,
                "stream batch handled"
            );
            Ok(serde_json::json!({ "batchItemFailures": [] }))
        }
        Invocation::MailFeedback { messages } => {
            let report = mail_feedback(app, &messages).await?;
            Ok(serde_json::json!({
                "suppressed": report.suppressed,
                "soft_bounces": report.soft_bounces,
                "ignored": report.ignored,
            }))
        }
        Invocation::Schedule => {
            let report = tick(app, runner, deadline).await?;
            tracing::info!(
                jobs_claimed = report.jobs.claimed,
                jobs_finished = report.jobs.finished,
                sent = report.delivery.sent,
                retrying = report.delivery.retrying,
                failed = report.delivery.failed,
                replies_sent = report.replies.sent,
                replies_failed = report.replies.failed,
                "scheduled run finished"
            );
            Ok(serde_json::json!({
                "jobs": { "claimed": report.jobs.claimed, "finished": report.jobs.finished, "paused": report.jobs.paused },
                "delivery": {
                    "sent": report.delivery.sent,
                    "retrying": report.delivery.retrying,
                    "failed": report.delivery.failed,
                    "skipped": report.delivery.skipped,
                },
                "replies": {
                    "sent": report.replies.sent,
                    "retrying": report.replies.retrying,
                    "failed": report.replies.failed,
                    "skipped": report.replies.skipped,
                },
            }))
        }
    }
}

/// What one batch of SES feedback did. Counts only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackReport {
    pub suppressed: usize,
    pub soft_bounces: usize,
    pub ignored: usize,
}

/// Suppresses every address a hard bounce or complaint names.
///
/// # Errors
/// The store or the blind-index key failed: the invocation fails and Lambda retries it (then the failure
/// queue keeps it); suppressions already written stay, and writing one again is harmless.
pub async fn mail_feedback(app: &App, messages: &[String]) -> Result<FeedbackReport, NotifyError> {
    let mut report = FeedbackReport::default();
    let (mut bounces, mut complaints) = (0usize, 0usize);
    for message in messages {
        let feedback = suppression::parse(message);
        report.soft_bounces += feedback.soft_bounces;
        report.ignored += feedback.ignored;
        for (address, reason) in &feedback.suppress {
            suppression::suppress(app, address, *reason).await?;
            report.suppressed += 1;
            match reason {
                suppression::Reason::HardBounce => bounces += 1,
                suppression::Reason::Complaint => complaints += 1,
            }
        }
    }
    tracing::info!(
        notifications = messages.len(),
        suppressed = report.suppressed,
        hard_bounces = bounces,
        complaints,
        soft_bounces = report.soft_bounces,
        ignored = report.ignored,
        "mail feedback handled"
    );
    Ok(report)
}
