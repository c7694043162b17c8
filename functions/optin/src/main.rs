//! Lambda entry point of the optin function; the logic lives in the library.

use qchat_shared::app::Clients;

/// DynamoDB and KMS only.
const CLIENTS: Clients = Clients::BASE;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = qchat_shared::lambda::start(CLIENTS).await?;
    qchat_shared::lambda::run_http(app, |app, req| async move {
        qchat_optin::handle(&app, req).await
    })
    .await
}
