//! What EventBridge schedules and the table's stream do in AWS, done locally on timers: notify's tick
//! (fan-out jobs, then the due outbox) and the broadcast runner (due broadcasts), each every two seconds,
//! side by side so a long broadcast never holds up notices.

use std::time::Duration;

use qchat_shared::app::App;

const TICK: Duration = Duration::from_secs(2);
/// Each tick may work this long, like a Lambda invocation with a deadline.
const TICK_BUDGET_SECS: i64 = 20;

pub async fn run(app: App) {
    tokio::join!(notify(app.clone()), broadcasts(app));
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

async fn notify(app: App) {
    let runner = format!("local-{}", app.ids.new_id());
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let deadline = app.clock.now().plus_secs(TICK_BUDGET_SECS);
        if let Err(e) = qchat_notify::tick(&app, &runner, deadline).await {
            tracing::warn!(error = %e, "notify tick failed; retrying next tick");
        }
    }
}
