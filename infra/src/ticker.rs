//! What EventBridge schedules and the table's stream do in AWS, done locally on timers: notify's tick
//! (fan-out jobs, then the due outbox), the broadcast runner (due broadcasts) and the erasure runner
//! (due lead, account and page erasures), each every two seconds, a Messenger reply sender that runs
//! continuously, as the stream does in AWS, and the retention sweep at start-up and then once a day.
//!
//! Each runs in a loop of its own, so a long run of one (a large fan-out or broadcast) never delays
//! another; one more handler is one more loop joined in [`run`].

use std::time::Duration;

use qchat_shared::app::App;

const TICK: Duration = Duration::from_secs(2);
/// Each tick may work this long, like a Lambda invocation with a deadline.
const TICK_BUDGET_SECS: i64 = 20;
/// How soon the reply sender looks again after finding nothing due: a reply waits at most this long
/// before its first attempt (an empty look is one index query).
const REPLY_POLL: Duration = Duration::from_millis(50);
/// Replies sent at once. Meta's 24-hour window makes a late reply a lost one, so the sender must keep up
/// with the webhook: one at a time it sent ~500 a second while a busy webhook queued ~2 700; several at
/// once share the store's commits and use every core. Each reply waits for two commits (its claim, its
/// outcome), so the sender's rate is about this many over two commits' time: at 256 it sent ~4 300 a
/// second while ~6 700 new people a second arrived (`./infra/load.sh --per-body 10 --seconds 60`), at
/// 512 it kept up, at the same events/s.
pub const REPLY_CONCURRENCY: usize = 512;

/// How often the retention sweep is called (a pass runs when one is due: see `qchat_shared::retention`).
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 3600);

pub async fn run(app: App) {
    tokio::join!(
        notify_tick(app.clone()),
        broadcasts(app.clone()),
        retention(app.clone()),
        erasures(app.clone()),
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
/// [`REPLY_POLL`] when nothing was due, after a tick's length when the store failed.
async fn replies(app: App) {
    loop {
        let deadline = app.clock.now().plus_secs(TICK_BUDGET_SECS);
        let pause =
            match qchat_notify::drain_due_replies_with(&app, deadline, REPLY_CONCURRENCY).await {
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
