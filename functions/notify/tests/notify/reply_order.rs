//! The order replies go out in, on both backends: by the end of their 24-hour windows (the reply closest
//! to being lost first), not by when they became due; and a drain that sends many at once still sends
//! each due reply exactly once.

use qchat_notify::{drain_due_replies, drain_due_replies_with};
use qchat_shared::clock::Clock as _;
use qchat_shared::domain::{AccountId, LeadId, PageId, Psid};
use qchat_shared::messenger::SendError;

use crate::helpers::{TestApp, unique_email};

const PAGE_ID: &str = "1000000002";

struct Two {
    t: TestApp,
    page: PageId,
    first_lead: LeadId,
    first: String,
    second: String,
}

/// Two people write ten seconds apart; the reply to the first meets a Graph outage and is due again
/// 30 s later, after the reply to the second. A minute on, both are due: the second first by due time,
/// the first first by window end.
async fn a_retry_due_after_a_newer_reply(t: TestApp) -> Two {
    let account = t.create_account(&unique_email("order")).await;
    let page = PageId::parse(PAGE_ID).unwrap();
    t.connect_page(&account, &page).await;
    let (first_lead, first) = person(&t, &account, &page, "918273645500100001").await;
    t.messenger.fail_next(1, SendError::Temporary { code: 2 });
    let report = drain_due_replies(&t.app, t.roomy_deadline()).await.unwrap();
    assert_eq!(report.retrying, 1);
    t.clock.advance_secs(10);
    let (_, second) = person(&t, &account, &page, "918273645500100002").await;
    t.clock.advance_secs(60);
    Two {
        t,
        page,
        first_lead,
        first,
        second,
    }
}

/// A lead who wrote just now, and the reply queued for that message.
async fn person(t: &TestApp, account: &AccountId, page: &PageId, psid: &str) -> (LeadId, String) {
    let psid = Psid::parse(psid).unwrap();
    let lead = t.seed_lead(account, page, &psid, t.clock.now()).await;
    let reply = t
        .queue_reply(account, page, Some(&lead), &psid, "Thanks for writing")
        .await;
    (lead, reply)
}

/// The reply ids in the order the messenger got them.
fn sent_order(t: &TestApp) -> Vec<String> {
    t.messenger
        .sent()
        .into_iter()
        .filter_map(|line| {
            line.metadata?
                .strip_prefix("qchat.reply.")
                .map(str::to_owned)
        })
        .collect()
}

async fn the_reply_whose_window_ends_first_goes_first(t: TestApp) {
    let two = a_retry_due_after_a_newer_reply(t).await;
    let t = &two.t;
    let report = drain_due_replies(&t.app, t.roomy_deadline()).await.unwrap();
    assert_eq!(report.sent, 2);
    assert_eq!(sent_order(t), vec![two.first.clone(), two.second.clone()]);
}

async fn a_person_who_wrote_again_moves_their_reply_after_the_other(t: TestApp) {
    let two = a_retry_due_after_a_newer_reply(t).await;
    let t = &two.t;
    // The first person wrote again after the second: their window now ends last.
    t.lead_wrote(&two.page, &two.first_lead, t.clock.now())
        .await;
    let report = drain_due_replies(&t.app, t.roomy_deadline()).await.unwrap();
    assert_eq!(report.sent, 2);
    assert_eq!(sent_order(t), vec![two.second.clone(), two.first.clone()]);
}

async fn sending_many_at_once_sends_each_due_reply_exactly_once(t: TestApp) {
    let account = t.create_account(&unique_email("many")).await;
    let page = PageId::parse(PAGE_ID).unwrap();
    t.connect_page(&account, &page).await;
    let mut queued = Vec::new();
    // More than one chunk of the due index (64), so the drain pages through it while sending.
    for n in 0..150u64 {
        t.clock.advance_millis(1);
        let psid = format!("9182736455{:08}", 300_000 + n);
        queued.push(person(&t, &account, &page, &psid).await.1);
    }
    let (a, b) = tokio::join!(
        drain_due_replies_with(&t.app, t.roomy_deadline(), 16),
        drain_due_replies_with(&t.app, t.roomy_deadline(), 16),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 150, "{a:?} {b:?}");
    assert_eq!(a.failed + b.failed + a.retrying + b.retrying, 0);
    let mut sent = sent_order(&t);
    assert_eq!(t.messenger.calls(), 150);
    sent.sort();
    queued.sort();
    assert_eq!(sent, queued);
    for id in &queued {
        assert_eq!(t.reply_state(id).await.0, "sent");
    }
    let again = drain_due_replies_with(&t.app, t.roomy_deadline(), 16)
        .await
        .unwrap();
    assert_eq!(again, Default::default());
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(crate::helpers::local_app().await).await;
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(crate::helpers::aws_app(true).await).await;
                }
            )*
        }
    };
}

on_both_backends!(
    the_reply_whose_window_ends_first_goes_first,
    a_person_who_wrote_again_moves_their_reply_after_the_other,
    sending_many_at_once_sends_each_due_reply_exactly_once,
);
