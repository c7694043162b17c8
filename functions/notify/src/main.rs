//! Lambda entry point of the notify function: set-up once, then each event (a stream batch of outbox
//! inserts, or the schedule) goes to the library.

use lambda_runtime::{LambdaEvent, service_fn};
use qchat_shared::app::Clients;
use qchat_shared::clock::Timestamp;

/// SES (notices), Graph (replies) and Meta's secrets.
const CLIENTS: Clients = Clients::BASE.with_ses().with_graph().with_secrets_manager();

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let app = qchat_shared::lambda::start(CLIENTS).await?;
    // Names this sandbox in job leases; opaque.
    let runner = format!("lambda-{}", app.ids.new_id());
    let (app, runner) = (&app, runner.as_str());
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline =
                Timestamp::from_millis(i64::try_from(event.context.deadline).unwrap_or(i64::MAX));
            qchat_notify::handle(app, runner, &event.payload, deadline).await
        },
    ))
    .await
}
