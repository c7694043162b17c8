//! Lambda entry point of the account function; the logic lives in the library.

use qchat_shared::app::Clients;

/// Graph (page token checks) and Meta's secrets; no mail: notices go through the outbox to notify.
const CLIENTS: Clients = Clients::BASE.with_graph().with_secrets_manager();

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = qchat_shared::lambda::start(CLIENTS).await?;
    qchat_shared::lambda::run_http(app, |app, req| async move {
        qchat_account::handle(&app, req).await
    })
    .await
}
