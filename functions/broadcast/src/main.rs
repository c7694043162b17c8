//! Lambda entry point of the broadcast function: set-up once, then each invocation goes to the library —
//! an API Gateway request to the routes, the EventBridge schedule to the runner.

use qchat_shared::app::Clients;

/// Graph (the Send API) and Meta's secrets.
const CLIENTS: Clients = Clients::BASE.with_graph().with_secrets_manager();

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = qchat_shared::lambda::start(CLIENTS).await?;
    // Names this sandbox in job leases; opaque.
    let runner = format!("lambda-{}", app.ids.new_id());
    let runner = runner.as_str();
    qchat_shared::lambda::run_http_and_events(
        app,
        |app, req| async move { qchat_broadcast::handle(&app, req).await },
        |app, _event, deadline| async move {
            qchat_broadcast::scheduled(&app, runner, deadline).await
        },
    )
    .await
}
