//! The erasure runner (moved here from notify's tick, with what its tests proved): it runs page and lead
//! erasures; a run's deadline cuts an erasure that the next run resumes, each item erased and counted
//! once; what is erased is never sent.

use qchat_shared::clock::Clock as _;
use qchat_shared::domain::PageId;
use qchat_shared::leads::erase::{self, SETTLE_SECS};
use qchat_shared::leads::erase_lead::{self, Origin};
use qchat_shared::leads::record::page_leads_partition;
use qchat_shared::replies::DUE_PARTITION;
use qchat_shared::store::{Index, KeyRange, Order, Query};

use crate::helpers::{Backend, TestApp};

fn page(id: &str) -> PageId {
    PageId::parse(id).expect("page id")
}

async fn due_replies(t: &TestApp) -> usize {
    t.app
        .store
        .query(&Query {
            index: Index::Gsi1,
            partition: DUE_PARTITION.to_owned(),
            range: KeyRange::All,
            order: Order::Ascending,
            limit: 1000,
            cursor: None,
        })
        .await
        .expect("query")
        .items
        .len()
}

async fn queue_page_erasure(t: &TestApp, page: &PageId) -> String {
    let (id, op) = erase::enqueue_op(&t.jobs(), page, None, t.clock.now()).expect("op");
    t.app.store.transact(vec![op]).await.expect("queued");
    id
}

/// Runs the runner a minute apart, each run with `budget_secs`, until `job` is done; the runs it took.
async fn run_to_end(t: &TestApp, job: &str, budget_secs: i64) -> usize {
    for run in 1..=40 {
        qchat_erase::run_due(&t.app, "runner", t.clock.now().plus_secs(budget_secs))
            .await
            .expect("run");
        if !t.jobs().is_pending(job).await.expect("read") {
            return run;
        }
        t.clock.advance_secs(60);
    }
    panic!("the erasure did not finish");
}

pub async fn the_runner_erases_a_disconnected_pages_leads_so_none_of_their_replies_is_sent(
    backend: Backend,
) {
    let t = TestApp::spawn(backend).await;
    let (gone, kept) = (page("1001"), page("2002"));
    let mut seeded = Vec::new();
    for name in ["ada", "bob", "cy"] {
        seeded.push(t.seed_lead(&gone, name, 1).await);
    }
    let other = t.seed_lead(&kept, "dee", 2).await;
    let job = queue_page_erasure(&t, &gone).await;
    let report = qchat_erase::run_due(&t.app, "runner", t.clock.now().plus_secs(60))
        .await
        .expect("run");
    assert_eq!(
        (report.claimed, report.paused),
        (1, 1),
        "it waits to settle"
    );
    assert_eq!(t.count(page_leads_partition(&gone)).await, 0);
    // Only the other page's reply is left for notify.
    assert_eq!(due_replies(&t).await, 1);
    let drained = qchat_notify::drain_due_replies(&t.app, t.clock.now().plus_secs(60))
        .await
        .expect("drain");
    assert_eq!(drained.sent, 0, "nothing of the erased leads is sent");

    t.clock.advance_secs(SETTLE_SECS);
    run_to_end(&t, &job, 60).await;
    for s in &seeded {
        assert_eq!(t.held(&gone, s).await, (false, 0, false, false));
    }
    assert_eq!(t.held(&kept, &other).await, (true, 2, true, true));
    let receipt =
        erase::Receipt::parse(&t.jobs().receipt(&job).await.expect("read").expect("kept"))
            .expect("a receipt");
    assert_eq!(
        receipt.erased,
        erase::Counts {
            leads: 3,
            consent_records: 3,
            unsubscribe_links: 3,
            pending_replies: 3,
            ..erase::Counts::default()
        }
    );
}

pub async fn a_page_erasure_cut_by_the_runs_deadline_resumes_at_the_next_run(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let gone = page("1001");
    for i in 0..60 {
        t.seed_lead(&gone, &format!("lead{i:02}"), 1).await;
    }
    // Every batch delete takes 2 s; a run may work 9 s (it stops 3 s early).
    t.store.set_delete_many_cost_secs(2);
    let job = queue_page_erasure(&t, &gone).await;
    let first = qchat_erase::run_due(&t.app, "runner", t.clock.now().plus_secs(9))
        .await
        .expect("run");
    assert_eq!(first.paused, 1);
    let left = t.count(page_leads_partition(&gone)).await;
    assert!(
        0 < left && left < 60,
        "the deadline cut the erasure: {left} left"
    );
    run_to_end(&t, &job, 9).await;
    assert_eq!(t.count(page_leads_partition(&gone)).await, 0);
    assert_eq!(due_replies(&t).await, 0);
    let receipt =
        erase::Receipt::parse(&t.jobs().receipt(&job).await.expect("read").expect("kept"))
            .expect("a receipt");
    assert_eq!(
        receipt.erased,
        erase::Counts {
            leads: 60,
            consent_records: 60,
            unsubscribe_links: 60,
            pending_replies: 60,
            ..erase::Counts::default()
        }
    );
}

pub async fn a_lead_erasure_cut_by_the_runs_deadline_resumes_at_the_next_run_and_touches_no_other_lead(
    backend: Backend,
) {
    let t = TestApp::spawn(backend).await;
    let p = page("1001");
    let target = t.seed_lead(&p, "target", 3).await;
    let mut others = Vec::new();
    for i in 0..3 {
        others.push(t.seed_lead(&p, &format!("other{i}"), 2).await);
    }
    // Every batch delete takes 4 s and a run may work 7 s: one step that deletes per run.
    t.store.set_delete_many_cost_secs(4);
    let (job, op) = erase_lead::enqueue_op(
        &t.jobs(),
        &p,
        &target.lead,
        Origin::AccountHolder,
        t.clock.now(),
        None,
    )
    .expect("op");
    t.app.store.transact(vec![op]).await.expect("queued");
    let runs = run_to_end(&t, &job, 7).await;
    assert!(runs > 1, "the deadline cut the erasure ({runs} runs)");
    assert_eq!(t.held(&p, &target).await, (false, 0, false, false));
    for o in &others {
        assert_eq!(t.held(&p, o).await, (true, 2, true, true));
    }
    let receipt =
        erase_lead::Receipt::parse(&t.jobs().receipt(&job).await.expect("read").expect("kept"))
            .expect("a receipt");
    assert_eq!(
        receipt.erased,
        erase_lead::Counts {
            leads: 1,
            consent_records: 3,
            unsubscribe_links: 1,
            pending_replies: 1,
            ..erase_lead::Counts::default()
        }
    );
    // The receipt alone is kept: the job names neither the page nor the lead any more.
    let item = t
        .app
        .store
        .get(&qchat_shared::store::ItemKey::new(
            format!("JOB#{job}"),
            "JOB",
        ))
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(item.get_str("params"), Some("{}"));
}
