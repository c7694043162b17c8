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
//!
//! A step may also ask to resume no earlier than a given time ([`Step::ResumeAt`]: the job waits in the
//! queue, released, until then), and a finished job may be kept as its own receipt
//! ([`Step::DoneWithReceipt`]: out of the queue, `state = done`, its last cursor replaced by what the job
//! did, expiring after [`RECEIPT_DAYS`]) — erasures leave such a receipt, without personal data.

use std::sync::Arc;

use crate::clock::{Clock, Timestamp};
use crate::ids::IdGenerator;
use crate::inventory::JOB;
use crate::store::{
    Condition, Index, Item, ItemKey, ItemStore, KeyRange, Order, Query, StoreError, Value, WriteOp,
};

/// The index partition of queued jobs of one kind: each runner reads only the kinds it has handlers for.
/// (Also where a caller looks for a job of a kind that is still queued, e.g. an erasure of one page.)
pub fn due_partition(kind: &str) -> String {
    format!("JOBS#{kind}")
}
/// After this many failed steps in a row a job is parked as failed (kept for the operator, out of the queue).
const MAX_ATTEMPTS: i64 = 8;
/// How long a job finished with [`Step::DoneWithReceipt`] keeps its item as the receipt (SPEC §3: erasure
/// receipts 1 year).
pub const RECEIPT_DAYS: i64 = 365;

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

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting, due or running.
    Queued,
    /// Finished; its item is kept as a receipt.
    Done,
    /// Parked after too many failed steps, for the operator.
    Failed,
}

/// A job as a status page sees it: no params, no cursor, only its receipt once done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub kind: String,
    pub state: JobState,
    /// The receipt text of a job finished with [`Step::DoneWithReceipt`].
    pub receipt: Option<String>,
}

/// What one step of a handler achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// More to do; resume from this cursor.
    Continue(String),
    /// More to do, but not before this time: the cursor is checkpointed and the job goes back to the queue,
    /// released, due at that time (a time already past makes it due at once, for the next run).
    ResumeAt(String, Timestamp),
    /// Finished: the job item is deleted.
    Done,
    /// Finished, and the job item is kept as a receipt: `state = done`, out of the queue, its cursor
    /// replaced by this text (what the job did: counts, never personal data), expiring after
    /// [`RECEIPT_DAYS`].
    DoneWithReceipt(String),
    /// As [`Step::DoneWithReceipt`], and the job's params are removed too: the receipt alone is kept (an
    /// erasure whose params name its subject, such as one person's lead, keeps no trace of whom it erased).
    DoneWithReceiptOnly(String),
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
    format!("{}#{id}", due.sort_key())
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
        let item = self.queued_item(&id, kind, params, due_at)?;
        Ok((
            id,
            WriteOp::Put {
                item,
                condition: Condition::NotExists,
            },
        ))
    }

    /// The item of a job queued with `id`, due at `due_at`.
    fn queued_item(
        &self,
        id: &str,
        kind: &str,
        params: &str,
        due_at: Timestamp,
    ) -> Result<Item, StoreError> {
        Ok(Item::new(&JOB, job_key(id))
            .plain("kind", Value::S(kind.to_owned()))?
            .plain("params", Value::S(params.to_owned()))?
            .plain("state", Value::S("queued".to_owned()))?
            .plain("due_at", Value::N(due_at.millis()))?
            .plain("attempts", Value::N(0))?
            .plain("lease_until", Value::N(0))?
            .plain("created", Value::N(self.clock.now().millis()))?
            .with_version(1)
            .with_gsi1(due_partition(kind), due_sort_key(due_at, id)))
    }

    /// Queues the job with the fixed id `id` unless it is already queued (a job that failed for good is
    /// queued again): for a job that must exist once, such as the retention sweep. Whether it queued it.
    pub async fn ensure_queued(
        &self,
        id: &str,
        kind: &str,
        params: &str,
        due_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = job_key(id);
        let condition = match self.store.get(&key).await? {
            None => Condition::NotExists,
            Some(item) if item.get_str("state") == Some("queued") => return Ok(false),
            Some(item) => Condition::VersionIs(item.version().unwrap_or(0)),
        };
        let item = self.queued_item(id, kind, params, due_at)?;
        match self.store.put(item, condition).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(e) => Err(e),
        }
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

    /// Where job `id` stands (its kind, state and, once finished with a receipt, the receipt), for a
    /// status page: absent once it was deleted ([`Step::Done`]) or its receipt expired. One `get`.
    pub async fn status(&self, id: &str) -> Result<Option<JobStatus>, StoreError> {
        let Some(item) = self.store.get(&job_key(id)).await? else {
            return Ok(None);
        };
        let state = match item.get_str("state") {
            Some("queued") => JobState::Queued,
            Some("done") => JobState::Done,
            Some("failed") => JobState::Failed,
            _ => return Ok(None),
        };
        Ok(Some(JobStatus {
            kind: item.get_str("kind").unwrap_or_default().to_owned(),
            receipt: (state == JobState::Done)
                .then(|| item.get_str("cursor").map(str::to_owned))
                .flatten(),
            state,
        }))
    }

    /// The receipt of a job finished with [`Step::DoneWithReceipt`], while it is kept.
    pub async fn receipt(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .get(&job_key(id))
            .await?
            .filter(|i| i.get_str("state") == Some("done"))
            .and_then(|i| i.get_str("cursor").map(str::to_owned)))
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
                    range: KeyRange::AtMost(format!("{}~", now.sort_key())),
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
                Ok(step @ (Step::DoneWithReceipt(_) | Step::DoneWithReceiptOnly(_))) => {
                    report.finished += 1;
                    tracing::info!(job = %claimed.job.id, kind = %claimed.job.kind, "job finished; its receipt is kept");
                    let bare = matches!(step, Step::DoneWithReceiptOnly(_));
                    let (Step::DoneWithReceipt(receipt) | Step::DoneWithReceiptOnly(receipt)) =
                        step
                    else {
                        return Ok(());
                    };
                    let current = if bare {
                        current.plain("params", Value::S("{}".to_owned()))?
                    } else {
                        current
                    };
                    let kept = current
                        .plain("state", Value::S("done".to_owned()))?
                        .plain("cursor", Value::S(receipt))?
                        .plain("attempts", Value::N(0))?
                        .plain("lease_until", Value::N(0))?
                        .without_gsi1()
                        .expires_at(self.clock.now().plus_days(RECEIPT_DAYS))
                        .with_version(claimed.version + 1);
                    return match self
                        .store
                        .put(kept, Condition::VersionIs(claimed.version))
                        .await
                    {
                        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
                        Err(e) => Err(e),
                    };
                }
                Ok(Step::ResumeAt(cursor, at)) => {
                    let next = current
                        .plain("cursor", Value::S(cursor))?
                        .plain("attempts", Value::N(0))?
                        .plain("lease_until", Value::N(0))?
                        .plain("due_at", Value::N(at.millis()))?
                        .with_version(claimed.version + 1)
                        .with_gsi1(
                            due_partition(&claimed.job.kind),
                            due_sort_key(at, &claimed.job.id),
                        );
                    return match self
                        .store
                        .put(next, Condition::VersionIs(claimed.version))
                        .await
                    {
                        Ok(()) => {
                            report.paused += 1;
                            Ok(())
                        }
                        Err(StoreError::ConditionFailed) => {
                            report.skipped += 1;
                            Ok(())
                        }
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::clock::ManualClock;
    use crate::ids::SequentialIds;
    use crate::store::sqlite::SqliteStore;

    const KIND: &str = "test_job";
    const LEASE: i64 = 900;
    const START: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    struct Fixture {
        jobs: Jobs,
        store: Arc<dyn ItemStore>,
        clock: Arc<ManualClock>,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::at(START));
        let store: Arc<dyn ItemStore> = Arc::new(
            SqliteStore::open(&dir.path().join("jobs.db"), clock.clone()).expect("store opens"),
        );
        store.ensure_schema().await.expect("schema");
        let jobs = Jobs::new(
            store.clone(),
            clock.clone(),
            Arc::new(SequentialIds::default()),
            LEASE,
        );
        Fixture {
            jobs,
            store,
            clock,
            _dir: dir,
        }
    }

    /// A handler that counts to `last` through the cursor, records every cursor it is given, and can
    /// advance the clock per step (a slow step) or fail.
    struct Counter {
        clock: Arc<ManualClock>,
        last: u32,
        step_secs: i64,
        fail: Option<fn() -> JobError>,
        seen: Mutex<Vec<Option<String>>>,
    }

    impl Counter {
        fn new(clock: &Arc<ManualClock>, last: u32) -> Self {
            Self {
                clock: clock.clone(),
                last,
                step_secs: 0,
                fail: None,
                seen: Mutex::new(Vec::new()),
            }
        }
        fn seen(&self) -> Vec<Option<String>> {
            self.seen.lock().expect("lock").clone()
        }
    }

    #[async_trait::async_trait]
    impl JobHandler for Counter {
        fn kind(&self) -> &'static str {
            KIND
        }
        async fn step(&self, _job: &Job, cursor: Option<&str>) -> Result<Step, JobError> {
            self.seen
                .lock()
                .expect("lock")
                .push(cursor.map(str::to_owned));
            self.clock.advance_secs(self.step_secs);
            if let Some(fail) = self.fail {
                return Err(fail());
            }
            let n: u32 = cursor.map_or(0, |c| c.parse().expect("a counter cursor")) + 1;
            Ok(if n >= self.last {
                Step::Done
            } else {
                Step::Continue(n.to_string())
            })
        }
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    async fn job_item(f: &Fixture, id: &str) -> Option<Item> {
        f.store.get(&job_key(id)).await.expect("get")
    }

    #[tokio::test]
    async fn a_job_ensured_by_its_id_is_queued_once_and_queued_again_after_it_failed_for_good() {
        let f = fixture().await;
        let now = f.clock.now();
        assert!(
            f.jobs
                .ensure_queued("the-one", KIND, "{}", now)
                .await
                .expect("ensure")
        );
        assert!(
            !f.jobs
                .ensure_queued("the-one", KIND, "{}", now)
                .await
                .expect("ensure")
        );
        let failing = Counter {
            fail: Some(|| JobError::Permanent("broken")),
            ..Counter::new(&f.clock, 3)
        };
        let run = f
            .jobs
            .run_due("r", now.plus_secs(60), &[&failing])
            .await
            .expect("run");
        assert_eq!((run.claimed, run.failed_steps), (1, 1));
        let parked = job_item(&f, "the-one").await.expect("kept");
        assert_eq!(parked.get_str("state"), Some("failed"));
        assert!(
            f.jobs
                .ensure_queued("the-one", KIND, "{}", now)
                .await
                .expect("ensure")
        );
        assert!(f.jobs.is_pending("the-one").await.expect("read"));
        let counter = Counter::new(&f.clock, 2);
        let run = f
            .jobs
            .run_due("r", now.plus_secs(60), &[&counter])
            .await
            .expect("run");
        assert_eq!((run.claimed, run.finished), (1, 1));
    }

    async fn claim_as(f: &Fixture, id: &str, runner: &str) -> Option<Claimed> {
        let item = job_item(f, id).await.expect("the job exists");
        f.jobs.claim(&item, runner).await.expect("claim")
    }

    #[tokio::test]
    async fn a_held_lease_keeps_a_second_runner_off_the_job() {
        let f = fixture().await;
        let id = f.jobs.enqueue(KIND, "{}", START).await.expect("enqueue");
        let read_before_the_claim = job_item(&f, &id).await.expect("the job exists");
        let first = claim_as(&f, &id, "runner-a").await;
        assert!(first.is_some(), "the first runner claims the job");

        let handler = Counter::new(&f.clock, 3);
        let report = f
            .jobs
            .run_due("runner-b", START.plus_secs(60), &[&handler])
            .await
            .expect("run");
        assert_eq!(report.claimed, 0);
        assert_eq!(report.skipped, 1);
        assert!(handler.seen().is_empty(), "the second runner ran no step");
        assert!(f.jobs.is_pending(&id).await.expect("read"));
        // A runner working from a read taken before the claim (a lagging index) loses the conditional
        // write, even after the lease has expired.
        f.clock.advance_secs(LEASE + 1);
        let stale = f
            .jobs
            .claim(&read_before_the_claim, "runner-c")
            .await
            .expect("claim");
        assert!(stale.is_none());
    }

    #[tokio::test]
    async fn an_expired_lease_is_taken_over_from_the_checkpoint_and_the_old_holder_is_stopped() {
        let f = fixture().await;
        let id = f.jobs.enqueue(KIND, "{}", START).await.expect("enqueue");
        // Runner A does one slow step before its deadline and checkpoints "1"; then it claims the job
        // again and dies (or hangs) holding the lease.
        let mut a = Counter::new(&f.clock, 5);
        a.step_secs = 2;
        let report = f
            .jobs
            .run_due("runner-a", START.plus_secs(5), &[&a])
            .await
            .expect("run a");
        assert_eq!(report.paused, 1, "the deadline pauses after one step");
        let stuck = claim_as(&f, &id, "runner-a")
            .await
            .expect("runner a claims again");
        assert_eq!(stuck.cursor.as_deref(), Some("1"));

        // While A's lease runs, B cannot take the job; once it has expired, B resumes at A's checkpoint.
        let b = Counter::new(&f.clock, 5);
        f.clock.advance_secs(LEASE - 10);
        let held = f
            .jobs
            .run_due("runner-b", f.clock.now().plus_secs(60), &[&b])
            .await
            .expect("run b");
        assert_eq!((held.claimed, held.skipped), (0, 1));
        f.clock.advance_secs(11);
        let taken = f
            .jobs
            .run_due("runner-b", f.clock.now().plus_secs(60), &[&b])
            .await
            .expect("run b again");
        assert_eq!((taken.claimed, taken.finished), (1, 1));
        assert_eq!(b.seen(), vec![some("1"), some("2"), some("3"), some("4")]);
        assert!(job_item(&f, &id).await.is_none());

        // A wakes up and tries to checkpoint: its version is stale, so it stops without writing.
        let mut late = RunReport::default();
        let a_again = Counter::new(&f.clock, 5);
        f.jobs
            .work(
                stuck,
                "runner-a",
                f.clock.now().plus_secs(60),
                &a_again,
                &mut late,
            )
            .await
            .expect("work");
        assert_eq!(late.finished, 0);
        assert!(
            job_item(&f, &id).await.is_none(),
            "the finished job stays gone"
        );
    }

    #[tokio::test]
    async fn a_failing_step_backs_off_exponentially_and_is_parked_failed_after_the_maximum() {
        let f = fixture().await;
        let id = f.jobs.enqueue(KIND, "{}", START).await.expect("enqueue");
        let mut handler = Counter::new(&f.clock, 3);
        handler.fail = Some(|| JobError::Retry("backend down".into()));
        let mut waits = Vec::new();
        for attempt in 1..=MAX_ATTEMPTS {
            let report = f
                .jobs
                .run_due("runner", f.clock.now().plus_secs(60), &[&handler])
                .await
                .expect("run");
            assert_eq!(report.failed_steps, 1, "attempt {attempt} ran and failed");
            let item = job_item(&f, &id).await.expect("a failed job is kept");
            assert_eq!(item.get_i64("attempts"), Some(attempt));
            if attempt == MAX_ATTEMPTS {
                assert_eq!(item.get_str("state"), Some("failed"));
                assert!(item.gsi1().is_none(), "a parked job leaves the queue");
                break;
            }
            let due = item.get_i64("due_at").expect("due_at") - f.clock.now().millis();
            waits.push(due / 1000);
            // Not due a second before the backoff ends; due right after.
            f.clock.advance_secs(due / 1000 - 1);
            let early = f
                .jobs
                .run_due("runner", f.clock.now().plus_secs(60), &[&handler])
                .await
                .expect("run early");
            assert_eq!(early.claimed, 0);
            f.clock.advance_secs(1);
        }
        assert_eq!(waits, vec![30, 60, 120, 240, 480, 960, 1920]);
        assert!(!f.jobs.is_pending(&id).await.expect("read"));
        f.clock.advance_secs(7200);
        let after = f
            .jobs
            .run_due("runner", f.clock.now().plus_secs(60), &[&handler])
            .await
            .expect("run after");
        assert_eq!(after.claimed, 0, "a parked job is never run again");
        assert_eq!(
            handler.seen().len(),
            usize::try_from(MAX_ATTEMPTS).unwrap_or(0)
        );
    }

    #[tokio::test]
    async fn a_permanent_failure_parks_the_job_at_once() {
        let f = fixture().await;
        let id = f.jobs.enqueue(KIND, "{}", START).await.expect("enqueue");
        let mut handler = Counter::new(&f.clock, 3);
        handler.fail = Some(|| JobError::Permanent("subject gone"));
        f.jobs
            .run_due("runner", START.plus_secs(60), &[&handler])
            .await
            .expect("run");
        let item = job_item(&f, &id).await.expect("kept");
        assert_eq!(item.get_str("state"), Some("failed"));
        assert_eq!(item.get_i64("attempts"), Some(1));
    }

    #[tokio::test]
    async fn the_deadline_pauses_a_job_and_the_next_run_resumes_at_the_checkpoint() {
        let f = fixture().await;
        let id = f.jobs.enqueue(KIND, "{}", START).await.expect("enqueue");
        let mut handler = Counter::new(&f.clock, 6);
        handler.step_secs = 2;
        // Stops 3 s before the deadline: steps end at +2, +4, +6 and +8 s; the last one passes +7.
        let report = f
            .jobs
            .run_due("runner", START.plus_secs(10), &[&handler])
            .await
            .expect("run");
        assert_eq!((report.steps, report.paused, report.finished), (4, 1, 0));
        let item = job_item(&f, &id).await.expect("still queued");
        assert_eq!(item.get_str("cursor"), Some("4"));
        assert_eq!(
            item.get_i64("lease_until"),
            Some(0),
            "a paused job is released"
        );

        let report = f
            .jobs
            .run_due("another-runner", f.clock.now().plus_secs(60), &[&handler])
            .await
            .expect("resume");
        assert_eq!((report.steps, report.finished), (2, 1));
        assert_eq!(
            handler.seen(),
            vec![None, some("1"), some("2"), some("3"), some("4"), some("5")]
        );
    }

    /// A handler that answers its steps from a script and records the cursors it was given.
    struct Scripted {
        steps: Mutex<Vec<Step>>,
        seen: Mutex<Vec<Option<String>>>,
    }

    impl Scripted {
        fn new(steps: Vec<Step>) -> Self {
            Self {
                steps: Mutex::new(steps.into_iter().rev().collect()),
                seen: Mutex::new(Vec::new()),
            }
        }
    }

    #[async_trait::async_trait]
    impl JobHandler for Scripted {
        fn kind(&self) -> &'static str {
            KIND
        }
        async fn step(&self, _job: &Job, cursor: Option<&str>) -> Result<Step, JobError> {
            self.seen
                .lock()
                .expect("lock")
                .push(cursor.map(str::to_owned));
            self.steps
                .lock()
                .expect("lock")
                .pop()
                .ok_or(JobError::Permanent("the script ran out"))
        }
    }

    #[tokio::test]
    async fn resume_at_checkpoints_and_keeps_the_job_waiting_released_until_that_time() {
        let f = fixture().await;
        let id = f.jobs.enqueue(KIND, "{}", START).await.expect("enqueue");
        let handler = Scripted::new(vec![
            Step::Continue("a".into()),
            Step::ResumeAt("b".into(), START.plus_secs(60)),
            Step::Done,
        ]);
        let report = f
            .jobs
            .run_due("runner", START.plus_secs(20), &[&handler])
            .await
            .expect("run");
        assert_eq!((report.steps, report.paused, report.finished), (2, 1, 0));
        let item = job_item(&f, &id).await.expect("still queued");
        assert_eq!(item.get_str("cursor"), Some("b"));
        assert_eq!(item.get_i64("lease_until"), Some(0), "released");
        assert_eq!(item.get_i64("due_at"), Some(START.plus_secs(60).millis()));
        assert!(f.jobs.is_pending(&id).await.expect("read"));

        f.clock.advance_secs(59);
        let early = f
            .jobs
            .run_due("runner", f.clock.now().plus_secs(20), &[&handler])
            .await
            .expect("run early");
        assert_eq!(early.claimed, 0, "not due before its time");
        f.clock.advance_secs(1);
        let resumed = f
            .jobs
            .run_due("other", f.clock.now().plus_secs(20), &[&handler])
            .await
            .expect("resume");
        assert_eq!((resumed.claimed, resumed.finished), (1, 1));
        assert_eq!(
            *handler.seen.lock().expect("lock"),
            vec![None, some("a"), some("b")]
        );
    }

    #[tokio::test]
    async fn done_with_receipt_keeps_the_job_out_of_the_queue_as_its_receipt_for_a_year() {
        let f = fixture().await;
        let id = f.jobs.enqueue(KIND, "{}", START).await.expect("enqueue");
        let handler = Scripted::new(vec![
            Step::Continue("half".into()),
            Step::DoneWithReceipt(r#"{"erased":3}"#.into()),
        ]);
        let report = f
            .jobs
            .run_due("runner", START.plus_secs(60), &[&handler])
            .await
            .expect("run");
        assert_eq!((report.claimed, report.finished), (1, 1));
        assert!(!f.jobs.is_pending(&id).await.expect("read"));
        assert_eq!(
            f.jobs.receipt(&id).await.expect("read").as_deref(),
            Some(r#"{"erased":3}"#)
        );
        let item = job_item(&f, &id).await.expect("kept");
        assert_eq!(item.get_str("state"), Some("done"));
        assert!(item.gsi1().is_none(), "a receipt is out of the queue");
        assert_eq!(
            item.expires().map(Timestamp::secs),
            Some(START.plus_days(RECEIPT_DAYS).secs())
        );
        f.clock.advance_secs(7200);
        let again = f
            .jobs
            .run_due("runner", f.clock.now().plus_secs(60), &[&handler])
            .await
            .expect("run again");
        assert_eq!(again.claimed, 0, "a receipt is never run again");
        f.clock.set(START.plus_days(RECEIPT_DAYS));
        assert!(job_item(&f, &id).await.is_none(), "the receipt expires");
        assert_eq!(f.jobs.receipt(&id).await.expect("read"), None);
    }

    #[tokio::test]
    async fn done_deletes_the_job_and_a_job_not_yet_due_or_of_another_kind_waits() {
        let f = fixture().await;
        let later = f
            .jobs
            .enqueue(KIND, "{}", START.plus_secs(600))
            .await
            .expect("enqueue later");
        let other = f
            .jobs
            .enqueue("other_kind", "{}", START)
            .await
            .expect("enqueue other");
        let now = f
            .jobs
            .enqueue(KIND, "{}", START)
            .await
            .expect("enqueue now");
        let handler = Counter::new(&f.clock, 1);
        let report = f
            .jobs
            .run_due("runner", START.plus_secs(60), &[&handler])
            .await
            .expect("run");
        assert_eq!((report.claimed, report.finished), (1, 1));
        assert!(
            job_item(&f, &now).await.is_none(),
            "a finished job is deleted"
        );
        assert!(!f.jobs.is_pending(&now).await.expect("read"));
        assert!(f.jobs.is_pending(&later).await.expect("read"));
        assert!(f.jobs.is_pending(&other).await.expect("read"));

        f.clock.advance_secs(600);
        let report = f
            .jobs
            .run_due("runner", f.clock.now().plus_secs(60), &[&handler])
            .await
            .expect("run later");
        assert_eq!(report.finished, 1);
        assert!(job_item(&f, &later).await.is_none());
    }
}
