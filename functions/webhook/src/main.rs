//! Lambda entry point of the webhook function; the logic lives in the library.

use qchat_shared::app::Clients;

/// Meta's secrets (the app secret and verify token); no mail, no Graph API calls.
const CLIENTS: Clients = Clients::BASE.with_secrets_manager();

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = qchat_shared::lambda::start(CLIENTS).await?;
    qchat_shared::lambda::run_http(app, |app, req| async move {
        qchat_webhook::handle(&app, req).await
    })
    .await
}
