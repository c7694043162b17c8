//! Resumable background jobs: fan-outs (policy and breach notices to every account), broadcasts and
//! erasures all run through this one mechanism.
//!
//! A job is one item. While it waits it sits in the sparse index under `JOBS#<kind>`, by due time. A runner
//! (EventBridge every minute in AWS, a ticker locally) claims a due job with a lease — a conditional write
//! on the job's version — so two runners never work the same job at once. It then calls the job's handler
//! step by step; after every step it checkpoints the handler's cursor (the same conditional write, which
//! also renews the lease), and it stops before its deadline, leaving the job due so the next tick resumes
//! from the checkpoint. A runner that loses its lease (another took over after it expired) stops at its
//! next checkpoint. Handlers must make each step idempotent: a step may run again after a crash.

use std::sync::Arc;

use crate::clock::{Clock, Timestamp};
use crate::ids::IdGenerator;
use crate::inventory::JOB;
use crate::store::{
    Condition, Index, Item, ItemKey, ItemStore, KeyRange, Order, Query, StoreError, Value, WriteOp,
};

/// The index partition of queued jobs of one kind: each runner reads only the kinds it has handlers for.
fn due_partition(kind: &str) -> String {
    format!("JOBS#{kind}")
}
/// After this many failed steps in a row a job is parked as failed (kept for the operator, out of the queue).
const MAX_ATTEMPTS: i64 = 8;

/// A job as its handler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub kind: String,
    /// The non-personal parameters the job was queued with (ids, versions), e.g. JSON.
    pub params: String,
    pub due_at: Timestamp,
    pub attempts: i64,
}

/// What one step of a handler achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// More to do; resume from this cursor.
    Continue(String),
    /// Finished: the job item is deleted.
    Done,
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth retrying later (backend unavailable, throttled).
    #[error("job step failed and will be retried: {0}")]
    Retry(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Will never succeed (the job's subject is gone or malformed).
    #[error("job step failed permanently: {0}")]
    Permanent(&'static str),
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        Self::Retry(Box::new(e))
    }
}

/// Runs the steps of one kind of job.
#[async_trait::async_trait]
pub trait JobHandler: Send + Sync {
    /// The `kind` this handler runs.
    fn kind(&self) -> &'static str;
    /// Does a bounded amount of work (say one page of 25–100 items) from `cursor` (None at the start).
    async fn step(&self, job: &Job, cursor: Option<&str>) -> Result<Step, JobError>;
}

/// What a runner did in one tick. Opaque counts only.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub claimed: usize,
    pub finished: usize,
    pub steps: usize,
    pub failed_steps: usize,
    /// Jobs left unfinished because the deadline came (they resume next tick).
    pub paused: usize,
    /// Jobs another runner held or took over.
    pub skipped: usize,
}

/// The job queue over the item store.
#[derive(Debug, Clone)]
pub struct Jobs {
    store: Arc<dyn ItemStore>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
    lease_secs: i64,
}

fn job_key(id: &str) -> ItemKey {
    ItemKey::new(format!("JOB#{id}"), "JOB")
}

fn due_sort_key(due: Timestamp, id: &str) -> String {
    format!("{:013}#{id}", due.millis().max(0))
}

struct Claimed {
    job: Job,
    version: u64,
    cursor: Option<String>,
}

impl Jobs {
    /// `lease_secs` must exceed the longest single step (a Lambda's whole timeout is a safe choice).
    pub fn new(
        store: Arc<dyn ItemStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
        lease_secs: i64,
    ) -> Self {
        Self {
            store,
            clock,
            ids,
            lease_secs,
        }
    }

    /// A write that queues a job, for the caller to put in the same transaction as the change that needs it.
    /// Returns the job id too.
    pub fn enqueue_op(
        &self,
        kind: &str,
        params: &str,
        due_at: Timestamp,
    ) -> Result<(String, WriteOp), StoreError> {
        let id = self.ids.new_id();
        let item = Item::new(&JOB, job_key(&id))
            .plain("kind", Value::S(kind.to_owned()))?
            .plain("params", Value::S(params.to_owned()))?
            .plain("state", Value::S("queued".to_owned()))?
            .plain("due_at", Value::N(due_at.millis()))?
            .plain("attempts", Value::N(0))?
            .plain("lease_until", Value::N(0))?
            .plain("created", Value::N(self.clock.now().millis()))?
            .with_version(1)
            .with_gsi1(due_partition(kind), due_sort_key(due_at, &id));
        Ok((
            id.clone(),
            WriteOp::Put {
                item,
                condition: Condition::NotExists,
            },
        ))
    }

    /// Queues a job on its own.
    pub async fn enqueue(
        &self,
        kind: &str,
        params: &str,
        due_at: Timestamp,
    ) -> Result<String, StoreError> {
        let (id, op) = self.enqueue_op(kind, params, due_at)?;
        self.store.transact(vec![op]).await?;
        Ok(id)
    }

    /// Whether a job is still queued (not finished, not failed).
    pub async fn is_pending(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .store
            .get(&job_key(id))
            .await?
            .is_some_and(|i| i.get_str("state") == Some("queued")))
    }

    /// Claims and runs due jobs until none is due or `deadline` is near. `runner` names this runner in
    /// leases (an opaque id). Only jobs of the handlers' kinds are looked at.
    pub async fn run_due(
        &self,
        runner: &str,
        deadline: Timestamp,
        handlers: &[&dyn JobHandler],
    ) -> Result<RunReport, StoreError> {
        let mut report = RunReport::default();
        // A step must be able to finish before the deadline; keep a margin of a few seconds.
        let stop_at = deadline.plus_secs(-3);
        for handler in handlers {
            let now = self.clock.now();
            if now >= stop_at {
                break;
            }
            let due = self
                .store
                .query(&Query {
                    index: Index::Gsi1,
                    partition: due_partition(handler.kind()),
                    range: KeyRange::AtMost(format!("{:013}~", now.millis().max(0))),
                    order: Order::Ascending,
                    limit: 25,
                    cursor: None,
                })
                .await?;
            for item in due.items {
                if self.clock.now() >= stop_at {
                    break;
                }
                let Some(claimed) = self.claim(&item, runner).await? else {
                    report.skipped += 1;
                    continue;
                };
                report.claimed += 1;
                self.work(claimed, runner, stop_at, *handler, &mut report)
                    .await?;
            }
        }
        Ok(report)
    }

    async fn claim(&self, item: &Item, runner: &str) -> Result<Option<Claimed>, StoreError> {
        let now = self.clock.now();
        let held = item.get_i64("lease_until").unwrap_or(0) > now.millis();
        let (Some(version), false) = (item.version(), held) else {
            return Ok(None);
        };
        let job = Job {
            id: item.key().pk.trim_start_matches("JOB#").to_owned(),
            kind: item.get_str("kind").unwrap_or_default().to_owned(),
            params: item.get_str("params").unwrap_or_default().to_owned(),
            due_at: Timestamp::from_millis(item.get_i64("due_at").unwrap_or(0)),
            attempts: item.get_i64("attempts").unwrap_or(0),
        };
        let cursor = item.get_str("cursor").map(str::to_owned);
        let leased = self.leased(item.clone(), runner, version + 1)?;
        match self.store.put(leased, Condition::VersionIs(version)).await {
            Ok(()) => Ok(Some(Claimed {
                job,
                version: version + 1,
                cursor,
            })),
            Err(StoreError::ConditionFailed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn leased(&self, item: Item, runner: &str, version: u64) -> Result<Item, StoreError> {
        let until = self.clock.now().plus_secs(self.lease_secs);
        Ok(item
            .plain("lease_owner", Value::S(runner.to_owned()))?
            .plain("lease_until", Value::N(until.millis()))?
            .with_version(version))
    }

    async fn work(
        &self,
        mut claimed: Claimed,
        runner: &str,
        stop_at: Timestamp,
        handler: &dyn JobHandler,
        report: &mut RunReport,
    ) -> Result<(), StoreError> {
        let key = job_key(&claimed.job.id);
        loop {
            let outcome = handler.step(&claimed.job, claimed.cursor.as_deref()).await;
            report.steps += 1;
            let Some(current) = self.store.get(&key).await? else {
                return Ok(());
            };
            match outcome {
                Ok(Step::Done) => {
                    report.finished += 1;
                    tracing::info!(job = %claimed.job.id, kind = %claimed.job.kind, "job finished");
                    return match self
                        .store
                        .delete(&key, Condition::VersionIs(claimed.version))
                        .await
                    {
                        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
                        Err(e) => Err(e),
                    };
                }
                Ok(Step::Continue(cursor)) => {
                    let next = self
                        .leased(current, runner, claimed.version + 1)?
                        .plain("cursor", Value::S(cursor.clone()))?
                        .plain("attempts", Value::N(0))?;
                    match self
                        .store
                        .put(next, Condition::VersionIs(claimed.version))
                        .await
                    {
                        Ok(()) => {}
                        Err(StoreError::ConditionFailed) => {
                            report.skipped += 1;
                            return Ok(());
                        }
                        Err(e) => return Err(e),
                    }
                    claimed.version += 1;
                    claimed.cursor = Some(cursor);
                    claimed.job.attempts = 0;
                    if self.clock.now() >= stop_at {
                        report.paused += 1;
                        return self.release(&key, claimed.version).await;
                    }
                }
                Err(error) => {
                    report.failed_steps += 1;
                    let attempts = claimed.job.attempts + 1;
                    let permanent =
                        matches!(error, JobError::Permanent(_)) || attempts >= MAX_ATTEMPTS;
                    tracing::warn!(job = %claimed.job.id, kind = %claimed.job.kind, attempts, permanent, error = %error, "job step failed");
                    let mut next = current
                        .plain("attempts", Value::N(attempts))?
                        .plain("lease_until", Value::N(0))?
                        .with_version(claimed.version + 1);
                    if permanent {
                        next = next
                            .plain("state", Value::S("failed".to_owned()))?
                            .without_gsi1();
                    } else {
                        // Exponential backoff: 30 s, 1 min, 2 min … capped at 1 h.
                        let wait = (30i64 << (attempts - 1).min(7)).min(3600);
                        let due = self.clock.now().plus_secs(wait);
                        next = next.plain("due_at", Value::N(due.millis()))?.with_gsi1(
                            due_partition(&claimed.job.kind),
                            due_sort_key(due, &claimed.job.id),
                        );
                    }
                    return match self
                        .store
                        .put(next, Condition::VersionIs(claimed.version))
                        .await
                    {
                        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
                        Err(e) => Err(e),
                    };
                }
            }
        }
    }

    /// Gives the lease up so the next tick may resume at once.
    async fn release(&self, key: &ItemKey, version: u64) -> Result<(), StoreError> {
        let Some(current) = self.store.get(key).await? else {
            return Ok(());
        };
        let next = current
            .plain("lease_until", Value::N(0))?
            .with_version(version + 1);
        match self.store.put(next, Condition::VersionIs(version)).await {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
