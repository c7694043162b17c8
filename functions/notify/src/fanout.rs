//! Notice fan-out jobs: a new policy version told to every account, a breach notice told to its scope.
//!
//! Each is a [`JobHandler`] run by the resumable job queue ([`qchat_shared::jobs`]): one step reads one page
//! of accounts (from the index of all accounts, or the next slice of a breach notice's listed ids) and
//! queues one outbox notice per account. The notice id is deterministic, `<job id>.<account id>`, so a step
//! repeated after a crash, a lost lease or a deadline writes nothing twice and no account is told twice.

use qchat_shared::accounts::ALL_ACCOUNTS_PARTITION;
use qchat_shared::app::App;
use qchat_shared::domain::AccountId;
use qchat_shared::jobs::{Job, JobError, JobHandler, Step};
use qchat_shared::outbox::{BREACH_FANOUT_JOB, Notice, POLICY_FANOUT_JOB, notice_op};
use qchat_shared::store::{
    Cursor, Index, Item, ItemKey, KeyRange, MAX_TRANSACTION_OPS, Order, Query, StoreError, WriteOp,
};

/// Accounts handled per step: a step stays well inside the job lease and the runner's deadline margin.
pub const PAGE: usize = 50;

/// The outbox id of the notice a fan-out job writes for one account.
pub fn notice_id(job_id: &str, account: &AccountId) -> String {
    format!("{job_id}.{account}")
}

/// Queues `notice` for each account, idempotently: a chunk goes in one transaction; if the transaction
/// fails because a notice already exists (a repeated step), the chunk is written again one notice at a
/// time, each only if absent. Returns how many notices are queued by this call or were already.
async fn queue_notices(
    app: &App,
    job_id: &str,
    accounts: &[AccountId],
    notice: &Notice,
) -> Result<usize, JobError> {
    let now = app.clock.now();
    for chunk in accounts.chunks(MAX_TRANSACTION_OPS) {
        let ops = chunk
            .iter()
            .map(|account| notice_op(&notice_id(job_id, account), account, notice, now, None))
            .collect::<Result<Vec<_>, _>>()?;
        match app.store.transact(ops.clone()).await {
            Ok(()) => {}
            Err(StoreError::TransactionConditionFailed { .. }) => {
                for op in ops {
                    let WriteOp::Put { item, condition } = op else {
                        continue;
                    };
                    match app.store.put(item, condition).await {
                        Ok(()) | Err(StoreError::ConditionFailed) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(accounts.len())
}

/// One page of the index of all accounts, from a job cursor (a store cursor).
async fn accounts_page(
    app: &App,
    cursor: Option<&str>,
) -> Result<(Vec<Item>, Option<String>), JobError> {
    let cursor = cursor
        .map(Cursor::parse)
        .transpose()
        .map_err(|_| JobError::Permanent("the job cursor is malformed"))?;
    let page = app
        .store
        .query(&Query {
            index: Index::Gsi1,
            partition: ALL_ACCOUNTS_PARTITION.to_owned(),
            range: KeyRange::All,
            order: Order::Ascending,
            limit: PAGE,
            cursor,
        })
        .await
        .map_err(|e| match e {
            StoreError::InvalidCursor => JobError::Permanent("the job cursor is malformed"),
            other => other.into(),
        })?;
    Ok((page.items, page.next.map(|c| c.as_str().to_owned())))
}

/// The account id of an account item from the index (`ACCOUNT#<id>`).
fn account_of(item: &Item) -> Option<AccountId> {
    let id = item.key().pk.strip_prefix("ACCOUNT#")?;
    AccountId::parse(id).ok()
}

fn step_after(next: Option<String>) -> Step {
    match next {
        Some(cursor) => Step::Continue(cursor),
        None => Step::Done,
    }
}

#[derive(serde::Deserialize)]
struct PolicyParams {
    kind: String,
    version: String,
}

/// Tells every account that a policy version is in force. The POLICY item gives what the notice says.
#[derive(Debug, Clone)]
pub struct PolicyFanout {
    app: App,
}

impl PolicyFanout {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[async_trait::async_trait]
impl JobHandler for PolicyFanout {
    fn kind(&self) -> &'static str {
        POLICY_FANOUT_JOB
    }

    async fn step(&self, job: &Job, cursor: Option<&str>) -> Result<Step, JobError> {
        let params: PolicyParams = serde_json::from_str(&job.params)
            .map_err(|_| JobError::Permanent("the job parameters are malformed"))?;
        let policy = self
            .app
            .store
            .get(&ItemKey::new(
                format!("POLICY#{}", params.kind),
                format!("VERSION#{}", params.version),
            ))
            .await?
            .ok_or(JobError::Permanent("the policy version does not exist"))?;
        let (Some(url), Some(summary)) = (policy.get_str("url"), policy.get_str("summary")) else {
            return Err(JobError::Permanent("the policy item is malformed"));
        };
        let notice = Notice::PolicyUpdated {
            kind: params.kind.clone(),
            version: params.version.clone(),
            url: url.to_owned(),
            summary: summary.to_owned(),
        };
        // Someone who registered (or accepted) after publication already agreed to this very version:
        // telling them it changed would be noise.
        let accepted_attribute = match params.kind.as_str() {
            "privacy" => Some("privacy_version"),
            "terms" => Some("terms_version"),
            _ => None,
        };
        let (items, next) = accounts_page(&self.app, cursor).await?;
        let accounts: Vec<AccountId> = items
            .iter()
            .filter(|item| {
                accepted_attribute
                    .is_none_or(|attr| item.get_str(attr) != Some(params.version.as_str()))
            })
            .filter_map(account_of)
            .collect();
        let queued = queue_notices(&self.app, &job.id, &accounts, &notice).await?;
        tracing::info!(job = %job.id, queued, "policy notices queued");
        Ok(step_after(next))
    }
}

#[derive(serde::Deserialize)]
struct BreachParams {
    notice_id: String,
}

/// Sends a breach notice to every account (`scope = "all"`) or to the listed account ids (`scope` a JSON
/// list). For a list, the job cursor is the offset of the next slice.
#[derive(Debug, Clone)]
pub struct BreachFanout {
    app: App,
}

impl BreachFanout {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

/// The listed accounts, duplicates dropped (first occurrence kept, so slices are stable across steps).
fn listed_accounts(scope: &str) -> Result<Vec<AccountId>, JobError> {
    let raw: Vec<String> = serde_json::from_str(scope)
        .map_err(|_| JobError::Permanent("the breach notice scope is malformed"))?;
    let mut seen = std::collections::HashSet::new();
    Ok(raw
        .iter()
        .filter_map(|id| AccountId::parse(id).ok())
        .filter(|id| seen.insert(id.clone()))
        .collect())
}

#[async_trait::async_trait]
impl JobHandler for BreachFanout {
    fn kind(&self) -> &'static str {
        BREACH_FANOUT_JOB
    }

    async fn step(&self, job: &Job, cursor: Option<&str>) -> Result<Step, JobError> {
        let params: BreachParams = serde_json::from_str(&job.params)
            .map_err(|_| JobError::Permanent("the job parameters are malformed"))?;
        let breach = self
            .app
            .store
            .get(&ItemKey::new(
                format!("BREACH#{}", params.notice_id),
                "NOTICE",
            ))
            .await?
            .ok_or(JobError::Permanent("the breach notice does not exist"))?;
        let notice = Notice::BreachNotice {
            notice_id: params.notice_id.clone(),
        };
        let (accounts, next) = match breach.get_str("scope") {
            Some("all") => {
                let (items, next) = accounts_page(&self.app, cursor).await?;
                (items.iter().filter_map(account_of).collect(), next)
            }
            Some(list) => {
                let listed = listed_accounts(list)?;
                let from = match cursor {
                    None => 0,
                    Some(c) => c
                        .parse::<usize>()
                        .map_err(|_| JobError::Permanent("the job cursor is malformed"))?,
                };
                let to = from.saturating_add(PAGE).min(listed.len());
                let slice = listed.get(from..to).unwrap_or_default().to_vec();
                let next = (to < listed.len()).then(|| to.to_string());
                (slice, next)
            }
            None => return Err(JobError::Permanent("the breach notice has no scope")),
        };
        let queued = queue_notices(&self.app, &job.id, &accounts, &notice).await?;
        tracing::info!(job = %job.id, queued, "breach notices queued");
        Ok(step_after(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_accounts_drop_duplicates_and_malformed_ids_in_order() {
        let ids = listed_accounts(r#"["b","a","b","NOT VALID","c"]"#)
            .map(|v| v.iter().map(|a| a.as_str().to_owned()).collect::<Vec<_>>())
            .map_err(|e| e.to_string());
        assert_eq!(ids, Ok(vec!["b".into(), "a".into(), "c".into()]));
        assert!(listed_accounts("all").is_err());
    }

    #[test]
    fn notice_ids_are_job_then_account() {
        let account = AccountId::parse("acc1").map_err(|e| e.to_string());
        assert_eq!(
            account.map(|a| notice_id("job1", &a)),
            Ok("job1.acc1".into())
        );
    }
}
