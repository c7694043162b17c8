//! Fan-out jobs through `tick` on the embedded backends: a policy notice to 120 accounts with two
//! concurrent runners and with a deadline cutting the job, breach notices to a listed scope or to all, and
//! repeated steps.

use std::collections::{HashMap, HashSet};

use qchat_notify::fanout::{PolicyFanout, notice_id};
use qchat_notify::tick;
use qchat_shared::clock::Clock as _;
use qchat_shared::jobs::{Job, JobHandler, Step};
use qchat_shared::outbox::POLICY_FANOUT_JOB;

use crate::helpers::{PUBLIC_URL, TestApp, local_app};

/// Every delivered notice by reference: each must have gone out exactly once.
fn assert_each_sent_once(t: &TestApp, expected: &HashSet<String>) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for d in t.mailer.delivered() {
        *counts.entry(d.reference).or_default() += 1;
    }
    let references: HashSet<String> = counts.keys().cloned().collect();
    assert_eq!(
        &references, expected,
        "exactly the expected notices went out"
    );
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "notices sent more than once: {repeated:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_policy_fanout_to_120_accounts_sends_each_one_notice_once_with_two_concurrent_runners() {
    let t = local_app().await;
    let accounts = t.create_accounts(120, "policy").await;
    let job = t
        .publish_policy("privacy", "2", "We keep sign-in logs for 30 days now.")
        .await;

    let deadline = t.roomy_deadline();
    let (a, b) = tokio::join!(
        tick(&t.app, "runner-a", deadline),
        tick(&t.app, "runner-b", deadline)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.jobs.finished + b.jobs.finished,
        1,
        "one runner ran the job"
    );
    // Whatever the interleaving, a last tick finds nothing left, and nothing went out twice.
    tick(&t.app, "runner-a", t.roomy_deadline()).await.unwrap();
    assert!(!t.jobs().is_pending(&job).await.unwrap());
    assert!(t.due_ids().await.is_empty());

    let expected: HashSet<String> = accounts.iter().map(|(id, _)| notice_id(&job, id)).collect();
    assert_eq!(expected.len(), 120);
    assert_each_sent_once(&t, &expected);
    for (id, email) in &accounts {
        let reference = notice_id(&job, id);
        let d = t
            .mailer
            .delivered()
            .into_iter()
            .find(|d| d.reference == reference)
            .unwrap();
        assert_eq!(&d.to, email.expose());
        assert_eq!(d.subject, "We updated our privacy policy");
        assert!(d.body.contains("version 2 of our privacy policy"));
        assert!(d.body.contains("We keep sign-in logs for 30 days now."));
        assert!(d.body.contains(&format!("{PUBLIC_URL}/policies/privacy/2")));
    }
}

#[tokio::test]
async fn a_fanout_cut_by_the_deadline_resumes_from_its_checkpoint_and_sends_each_once() {
    let t = local_app().await;
    let accounts = t.create_accounts(120, "cut").await;
    let job = t.publish_policy("terms", "3", "Clearer wording.").await;
    // Each transaction (a chunk of up to 25 notices) takes 2 s: a 10 s budget stops 3 s early, so the
    // first tick does two pages of 50 (8 s) and pauses.
    t.store.set_transact_cost_secs(2);

    let first = tick(&t.app, "runner-a", t.clock.now().plus_secs(10))
        .await
        .unwrap();
    assert_eq!((first.jobs.paused, first.jobs.finished), (1, 0));
    assert!(first.delivery.stopped_early);
    assert!(t.mailer.delivered().is_empty());
    assert_eq!(
        t.due_ids().await.len(),
        100,
        "two pages queued before the pause"
    );
    assert!(t.jobs().is_pending(&job).await.unwrap());

    let second = tick(&t.app, "runner-b", t.clock.now().plus_secs(10))
        .await
        .unwrap();
    assert_eq!(
        second.jobs.finished, 1,
        "the job resumed at page three and finished"
    );
    assert_eq!(second.jobs.steps, 1);
    assert_eq!(second.delivery.sent, 120);
    assert!(!t.jobs().is_pending(&job).await.unwrap());

    tick(&t.app, "runner-a", t.roomy_deadline()).await.unwrap();
    let expected: HashSet<String> = accounts.iter().map(|(id, _)| notice_id(&job, id)).collect();
    assert_each_sent_once(&t, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runners_racing_a_fanout_cut_by_deadlines_still_send_each_notice_once() {
    let t = local_app().await;
    let accounts = t.create_accounts(120, "race").await;
    let job = t.publish_policy("privacy", "4", "Shorter retention.").await;
    t.store.set_transact_cost_secs(1);
    let mut rounds = 0;
    for _ in 0..20 {
        rounds += 1;
        let deadline = t.clock.now().plus_secs(6);
        let (a, b) = tokio::join!(
            tick(&t.app, "runner-a", deadline),
            tick(&t.app, "runner-b", deadline)
        );
        a.unwrap();
        b.unwrap();
        if !t.jobs().is_pending(&job).await.unwrap() && t.due_ids().await.is_empty() {
            break;
        }
    }
    assert!(rounds > 1, "the deadlines cut the work into several rounds");
    assert!(!t.jobs().is_pending(&job).await.unwrap());
    assert!(t.due_ids().await.is_empty());
    let expected: HashSet<String> = accounts.iter().map(|(id, _)| notice_id(&job, id)).collect();
    assert_each_sent_once(&t, &expected);
}

#[tokio::test]
async fn a_repeated_step_writes_no_notice_twice() {
    let t = local_app().await;
    let accounts = t.create_accounts(30, "repeat").await;
    let job_id = t.publish_policy("privacy", "5", "Again.").await;
    let handler = PolicyFanout::new(t.app.clone());
    let job = Job {
        id: job_id.clone(),
        kind: POLICY_FANOUT_JOB.to_owned(),
        params: r#"{"kind":"privacy","version":"5"}"#.to_owned(),
        due_at: t.clock.now(),
        attempts: 0,
    };
    assert_eq!(handler.step(&job, None).await.unwrap(), Step::Done);
    // The first notice is sent meanwhile; a repeat of the step must neither re-queue nor reset it.
    let first = notice_id(&job_id, &accounts[0].0);
    qchat_notify::deliver(&t.app, &first).await.unwrap();
    assert_eq!(handler.step(&job, None).await.unwrap(), Step::Done);
    assert_eq!(t.state_of(&first).await.0, "sent");
    assert_eq!(t.due_ids().await.len(), 29);

    tick(&t.app, "runner", t.roomy_deadline()).await.unwrap();
    let expected: HashSet<String> = accounts
        .iter()
        .map(|(id, _)| notice_id(&job_id, id))
        .collect();
    assert_each_sent_once(&t, &expected);
}

#[tokio::test]
async fn accounts_that_already_accepted_the_new_version_are_not_told_it_changed() {
    let t = local_app().await;
    let accounts = t.create_accounts(3, "accepted").await;
    // One account registered after publication, accepting version 2 then.
    let (late, _) = &accounts[2];
    let key = qchat_shared::accounts::profile_key(late);
    let item = t.app.store.get(&key).await.unwrap().unwrap();
    let v = item.version().unwrap();
    let item = item
        .plain(
            "privacy_version",
            qchat_shared::store::Value::S("2".to_owned()),
        )
        .unwrap()
        .with_version(v + 1);
    t.app
        .store
        .put(item, qchat_shared::store::Condition::VersionIs(v))
        .await
        .unwrap();

    let job = t.publish_policy("privacy", "2", "New.").await;
    tick(&t.app, "runner", t.roomy_deadline()).await.unwrap();
    let expected: HashSet<String> = accounts[..2]
        .iter()
        .map(|(id, _)| notice_id(&job, id))
        .collect();
    assert_each_sent_once(&t, &expected);
}

#[tokio::test]
async fn a_breach_notice_to_a_listed_scope_reaches_only_those_accounts() {
    let t = local_app().await;
    let accounts = t.create_accounts(8, "breach").await;
    let listed: Vec<_> = accounts
        .iter()
        .step_by(2)
        .map(|(id, _)| id.clone())
        .collect();
    let summary = "On 3 March a misconfigured backup exposed account emails for two hours.";
    let job = t.issue_breach_notice(summary, Some(&listed)).await;

    tick(&t.app, "runner", t.roomy_deadline()).await.unwrap();
    let expected: HashSet<String> = listed.iter().map(|id| notice_id(&job, id)).collect();
    assert_each_sent_once(&t, &expected);
    for d in t.mailer.delivered() {
        assert!(d.body.contains(summary));
        assert!(d.subject.contains("personal data breach"));
    }
    let reached: HashSet<String> = t.mailer.delivered().into_iter().map(|d| d.to).collect();
    let expected_to: HashSet<String> = accounts
        .iter()
        .step_by(2)
        .map(|(_, e)| e.expose().to_owned())
        .collect();
    assert_eq!(reached, expected_to);
    assert!(!t.jobs().is_pending(&job).await.unwrap());
}

#[tokio::test]
async fn a_long_listed_scope_is_sliced_across_steps_and_an_erased_listed_account_gets_nothing() {
    let t = local_app().await;
    let accounts = t.create_accounts(60, "slices").await;
    let mut listed: Vec<_> = accounts.iter().map(|(id, _)| id.clone()).collect();
    listed.push(listed[0].clone()); // a duplicate is told once
    t.erase_account(&accounts[59].0).await;
    let job = t.issue_breach_notice("Details.", Some(&listed)).await;

    let report = tick(&t.app, "runner", t.roomy_deadline()).await.unwrap();
    assert_eq!(report.jobs.steps, 2, "60 ids in slices of 50");
    assert_eq!(report.delivery.sent, 59);
    assert_eq!(report.delivery.failed, 1);
    let expected: HashSet<String> = accounts[..59]
        .iter()
        .map(|(id, _)| notice_id(&job, id))
        .collect();
    assert_each_sent_once(&t, &expected);
    assert_eq!(
        t.state_of(&notice_id(&job, &accounts[59].0))
            .await
            .1
            .as_deref(),
        Some("account_gone")
    );
}

#[tokio::test]
async fn a_breach_notice_to_all_reaches_every_account() {
    let t = local_app().await;
    let accounts = t.create_accounts(5, "all").await;
    let job = t.issue_breach_notice("Everyone is concerned.", None).await;
    tick(&t.app, "runner", t.roomy_deadline()).await.unwrap();
    let expected: HashSet<String> = accounts.iter().map(|(id, _)| notice_id(&job, id)).collect();
    assert_each_sent_once(&t, &expected);
}

#[tokio::test]
async fn a_fanout_for_a_policy_that_does_not_exist_is_parked_failed() {
    let t = local_app().await;
    t.create_accounts(2, "nopolicy").await;
    let job = t
        .jobs()
        .enqueue(
            POLICY_FANOUT_JOB,
            r#"{"kind":"privacy","version":"404"}"#,
            t.clock.now(),
        )
        .await
        .unwrap();
    let report = tick(&t.app, "runner", t.roomy_deadline()).await.unwrap();
    assert_eq!(report.jobs.failed_steps, 1);
    assert!(!t.jobs().is_pending(&job).await.unwrap());
    assert!(t.due_ids().await.is_empty());
}
