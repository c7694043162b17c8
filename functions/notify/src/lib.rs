//! The notify function: sends account notices from the transactional outbox and runs notice fan-out jobs.

use qchat_shared::app::App;
use qchat_shared::clock::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Store(#[from] qchat_shared::store::StoreError),
}

/// One scheduled run: fan-out jobs, then every due notice, until `deadline`.
pub async fn tick(_app: &App, _runner: &str, _deadline: Timestamp) -> Result<(), NotifyError> {
    Ok(())
}
