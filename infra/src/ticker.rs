//! What EventBridge schedules and the table's stream do in AWS, done locally on timers: notify's tick
//! (fan-out jobs, then the due outbox), the broadcast runner (due broadcasts) and the erasure runner
//! (due lead, account and page erasures), each every two seconds, a Messenger reply sender that runs
//! continuously, as the stream does in AWS (the replies the webhook hands over as they come, the due
//! index's in a loop), and the retention sweep at start-up and then once a day.
//!
//! Each runs in a loop of its own, so a long run of one (a large fan-out or broadcast) never delays
//! another; one more handler is one more loop joined in [`run`].

use std::time::Duration;

use qchat_notify::DrainReport;
use qchat_shared::app::App;
use qchat_shared::clock::Timestamp;
use qchat_shared::replies::handoff::ClaimedReply;
use tokio::sync::mpsc;

const TICK: Duration = Duration::from_secs(2);
/// Each tick may work this long, like a Lambda invocation with a deadline.
const TICK_BUDGET_SECS: i64 = 20;
/// How soon the reply sender looks again after finding nothing due: a reply waits at most this long
/// before its first attempt (an empty look is one index query).
const REPLY_POLL: Duration = Duration::from_millis(50);
/// Replies sent at once from the due index (the hand-off's have their own slots: [`HANDOFF_SLOTS`]).
/// Meta's 24-hour window makes a late reply a lost one, so the sender must keep up
/// with the webhook: one at a time it sent ~500 a second while a busy webhook queued ~2 700; several at
/// once share the store's commits and use every core. Each reply waits for two commits (its claim, its
/// outcome), so the sender's rate is about this many over two commits' time: at 256 it sent ~4 300 a
/// second while ~6 700 new people a second arrived (`./infra/load.sh --per-body 10 --seconds 60`), at
/// 512 it kept up, at the same events/s.
pub const REPLY_CONCURRENCY: usize = 512;

/// A reply found due in the index this long (ms) makes the webhook queue its new replies there, behind
/// it, rather than hand them to the sender at once: the index's replies are closer to the end of their
/// window. Shorter waits are the normal path of replies the hand-off had no slot for, sent within a
/// poll or two.
const BACKLOG_MS: i64 = 1_000;

/// Replies handed from the webhook to the sender and not yet recorded, at most: at 10 000 new people a
/// second a reply is in flight ~60 ms from its event's planning to its outcome's commit (~600 at once).
pub const HANDOFF_SLOTS: usize = 2_048;

/// How often the retention sweep is called (a pass runs when one is due: see `qchat_shared::retention`).
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 3600);

pub async fn run(app: App, handed_replies: mpsc::UnboundedReceiver<ClaimedReply>) {
    tokio::join!(
        notify_tick(app.clone()),
        broadcasts(app.clone()),
        retention(app.clone()),
        erasures(app.clone()),
        qchat_notify::replies::send_handed_off(app.clone(), handed_replies),
        replies(app)
    );
}

/// The retention sweep at once, then daily; a pass its deadline cut short continues on the next tick.
async fn retention(app: App) {
    loop {
        let deadline = app.clock.now().plus_secs(TICK_BUDGET_SECS);
        let pause = match qchat_shared::retention::sweep(&app, deadline).await {
            Ok(report) if report.paused => TICK,
            Ok(_) => RETENTION_EVERY,
            Err(e) => {
                tracing::warn!(error = %e, "retention sweep failed; retrying in a minute");
                Duration::from_secs(60)
            }
        };
        tokio::time::sleep(pause).await;
    }
}

async fn broadcasts(app: App) {
    let runner = format!("local-{}", app.ids.new_id());
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let deadline = app.clock.now().plus_secs(TICK_BUDGET_SECS);
        if let Err(e) = qchat_broadcast::run_due(&app, &runner, deadline).await {
            tracing::warn!(error = %e, "broadcast run failed; retrying next tick");
        }
    }
}

async fn erasures(app: App) {
    let runner = format!("local-{}", app.ids.new_id());
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let deadline = app.clock.now().plus_secs(TICK_BUDGET_SECS);
        if let Err(e) = qchat_erase::run_due(&app, &runner, deadline).await {
            tracing::warn!(error = %e, "erasure run failed; retrying next tick");
        }
    }
}

async fn notify_tick(app: App) {
    let runner = format!("local-{}", app.ids.new_id());
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let deadline = app.clock.now().plus_secs(TICK_BUDGET_SECS);
        if let Err(e) = qchat_notify::tick_except_replies(&app, &runner, deadline).await {
            tracing::warn!(error = %e, "notify tick failed; retrying next tick");
        }
    }
}

/// Drains the due replies again and again: at once after a drain that did something, after
/// [`REPLY_POLL`] when nothing was due, after a tick's length when the store failed. A drain that found
/// replies due tells the webhook's hand-off there is a backlog (new replies queue behind it, in the
/// index); one that found none, that there is none.
async fn replies(app: App) {
    loop {
        let deadline = app.clock.now().plus_secs(TICK_BUDGET_SECS);
        let drained = qchat_notify::drain_due_replies_with(&app, deadline, REPLY_CONCURRENCY).await;
        if let (Some(handoff), Ok(report)) = (&app.reply_handoff, &drained) {
            handoff.set_backlog(backlog(report, app.clock.now()));
        }
        let pause = match drained {
            Ok(report) if report.sent + report.retrying + report.failed > 0 => None,
            Ok(_) => Some(REPLY_POLL),
            Err(e) => {
                tracing::warn!(error = %e, "reply sending failed; retrying shortly");
                Some(TICK)
            }
        };
        if let Some(pause) = pause {
            tokio::time::sleep(pause).await;
        }
    }
}

/// Whether a drain found a reply due for more than [`BACKLOG_MS`] at `now`.
fn backlog(report: &DrainReport, now: Timestamp) -> bool {
    report
        .oldest_due
        .is_some_and(|due| now.millis() - due.millis() > BACKLOG_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_reply_due_for_more_than_a_second_is_a_backlog() {
        let now = Timestamp::from_millis(1_800_000_000_000);
        let found = |waited_ms: i64| DrainReport {
            sent: 1,
            oldest_due: Some(now.plus_millis(-waited_ms)),
            ..DrainReport::default()
        };
        assert!(!backlog(&DrainReport::default(), now), "nothing due");
        assert!(!backlog(&found(0), now));
        assert!(!backlog(&found(BACKLOG_MS), now));
        assert!(backlog(&found(BACKLOG_MS + 1), now));
    }
}
