//! The erasure of a disconnected page's leads as notify's tick runs it (the job itself is tested in
//! `qchat_shared::leads::erase`; the flows drive it through `DELETE /api/pages`): erasures run before the
//! drains, so a reply the erasure removes is never sent, and a tick's deadline cuts an erasure that the
//! next tick resumes.

use std::collections::HashMap;
use std::sync::Mutex;

use qchat_notify::tick;
use qchat_shared::clock::Clock as _;
use qchat_shared::domain::{AccountId, LeadId, PageId, Psid};
use qchat_shared::leads::consent::history_partition;
use qchat_shared::leads::erase::{Counts, Receipt, SETTLE_SECS, enqueue_op};
use qchat_shared::leads::record::page_leads_partition;
use qchat_shared::replies::DUE_PARTITION;
use qchat_shared::store::{Index, KeyRange, Order, Query};

use crate::helpers::{TestApp, local_app, unique_email};

struct Fixture {
    t: TestApp,
    account: AccountId,
    /// The lead id of each seeded name.
    leads: Mutex<HashMap<String, LeadId>>,
}

/// The embedded backends with one account; every batch delete takes `delete_secs` of clock time. No page
/// is connected: an erasure runs after its page is gone.
async fn fixture(delete_secs: i64) -> Fixture {
    let t = local_app().await;
    t.store.set_delete_many_cost_secs(delete_secs);
    let account = t.create_account(&unique_email("erasure")).await;
    Fixture {
        t,
        account,
        leads: Mutex::new(HashMap::new()),
    }
}

/// A lead named `name` (a distinct PSID per name) with its record, link and pending reply.
async fn seed(f: &Fixture, page: &PageId, name: &str) {
    let n = f.leads.lock().expect("lock").len();
    let psid = Psid::parse(&format!("{}", 7_000_000_000_000u64 + n as u64)).expect("psid");
    let lead = f.t.seed_erasable_lead(&f.account, page, &psid).await;
    f.leads.lock().expect("lock").insert(name.to_owned(), lead);
}

fn lead_of(f: &Fixture, name: &str) -> LeadId {
    f.leads.lock().expect("lock")[name].clone()
}

async fn count(f: &Fixture, index: Index, partition: String) -> usize {
    f.t.app
        .store
        .query(&Query {
            index,
            partition,
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

async fn queue_erasure(f: &Fixture, page: &PageId) -> String {
    let (id, op) = enqueue_op(&f.t.jobs(), page, None, f.t.clock.now()).expect("op");
    f.t.app.store.transact(vec![op]).await.expect("queued");
    id
}

#[tokio::test]
async fn the_tick_erases_a_disconnected_pages_leads_before_draining_their_replies() {
    let f = fixture(0).await;
    let (gone, kept) = (
        PageId::parse("1001").expect("page"),
        PageId::parse("2002").expect("page"),
    );
    for name in ["ada", "bob", "cy"] {
        seed(&f, &gone, name).await;
    }
    seed(&f, &kept, "dee").await;
    let job = queue_erasure(&f, &gone).await;

    let report = tick(&f.t.app, "runner", f.t.clock.now().plus_secs(60))
        .await
        .expect("tick");
    assert_eq!((report.jobs.claimed, report.jobs.paused), (1, 1));
    assert_eq!(
        count(&f, Index::Table, page_leads_partition(&gone)).await,
        0
    );
    for name in ["ada", "bob", "cy"] {
        let lead = lead_of(&f, name);
        assert_eq!(
            count(&f, Index::Table, history_partition(&gone, &lead)).await,
            0
        );
    }
    // Only the other page's reply was left for the drain (it fails there: no page item in this test).
    assert_eq!(report.replies.sent, 0);
    assert_eq!(
        report.replies.failed + report.replies.retrying + report.replies.skipped,
        1
    );
    assert_eq!(
        count(&f, Index::Table, page_leads_partition(&kept)).await,
        1
    );

    // The second pass, after the settle time, finishes with the receipt.
    f.t.clock.advance_secs(SETTLE_SECS);
    let report = tick(&f.t.app, "runner", f.t.clock.now().plus_secs(60))
        .await
        .expect("tick");
    assert_eq!(report.jobs.finished, 1);
    let receipt =
        f.t.jobs()
            .receipt(&job)
            .await
            .expect("read")
            .and_then(|r| Receipt::parse(&r))
            .expect("a receipt");
    assert_eq!(
        receipt.erased,
        Counts {
            leads: 3,
            consent_records: 3,
            unsubscribe_links: 3,
            pending_replies: 3,
            ..Counts::default()
        }
    );
    assert_eq!(receipt.finished_at, f.t.clock.now().millis());
}

#[tokio::test]
async fn an_erasure_cut_by_the_ticks_deadline_resumes_at_the_next_tick() {
    // Every batch delete takes 2 s; a tick may work 9 s (it stops 3 s early).
    let f = fixture(2).await;
    let gone = PageId::parse("1001").expect("page");
    for i in 0..60 {
        seed(&f, &gone, &format!("lead{i:02}")).await;
    }
    let job = queue_erasure(&f, &gone).await;
    let first = tick(&f.t.app, "runner", f.t.clock.now().plus_secs(9))
        .await
        .expect("tick");
    assert_eq!(first.jobs.paused, 1);
    let left = count(&f, Index::Table, page_leads_partition(&gone)).await;
    assert!(
        0 < left && left < 60,
        "the deadline cut the erasure: {left} left"
    );
    assert!(f.t.jobs().is_pending(&job).await.expect("read"));

    for _ in 0..10 {
        if !f.t.jobs().is_pending(&job).await.expect("read") {
            break;
        }
        f.t.clock.advance_secs(60);
        tick(&f.t.app, "runner", f.t.clock.now().plus_secs(9))
            .await
            .expect("tick");
    }
    assert!(!f.t.jobs().is_pending(&job).await.expect("read"));
    assert_eq!(
        count(&f, Index::Table, page_leads_partition(&gone)).await,
        0
    );
    assert_eq!(count(&f, Index::Gsi1, DUE_PARTITION.to_owned()).await, 0);
    let receipt =
        f.t.jobs()
            .receipt(&job)
            .await
            .expect("read")
            .and_then(|r| Receipt::parse(&r))
            .expect("a receipt");
    assert_eq!(
        receipt.erased,
        Counts {
            leads: 60,
            consent_records: 60,
            unsubscribe_links: 60,
            pending_replies: 60,
            ..Counts::default()
        }
    );
}
