//! Lambda entry point of the erase function; the logic lives in the library.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = qchat_shared::lambda::start().await?;
    qchat_shared::lambda::run_http(app, |app, req| async move {
        qchat_erase::handle(&app, req).await
    })
    .await
}
