//! The store's errors: meaningful variants the callers branch on, backend causes kept as sources.

/// What went wrong with a store call. Never holds item contents.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The condition of a single put or delete did not hold.
    #[error("the write's condition did not hold")]
    ConditionFailed,
    /// A transaction was cancelled because the condition of operation `index` did not hold.
    #[error("transaction cancelled: condition of operation {index} did not hold")]
    TransactionConditionFailed { index: usize },
    /// A transaction collided with a concurrent one; nothing was written. Retrying may succeed.
    #[error("transaction conflicted with a concurrent write")]
    TransactionConflict,
    /// The request was malformed (too many operations, one key twice, a bad limit …).
    #[error("invalid store request: {0}")]
    InvalidRequest(&'static str),
    /// A cursor that this store did not issue.
    #[error("invalid cursor")]
    InvalidCursor,
    /// An attribute or value the data inventory does not allow.
    #[error(transparent)]
    Inventory(#[from] crate::store::item::InventoryError),
    /// A stored item could not be decoded.
    #[error("stored item is malformed: {0}")]
    Corrupt(&'static str),
    /// The backend failed (network, throttling, disk …).
    #[error("store backend failed: {operation}")]
    Backend {
        operation: &'static str,
        retryable: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::TransactionConflict => true,
            Self::Backend { retryable, .. } => *retryable,
            _ => false,
        }
    }
}

/// Why [`super::ItemStore::transact_each`] stopped: the first `applied` groups are durably applied, the
/// group at index `applied` was not, because of `error`, and no later group was tried.
#[derive(Debug, thiserror::Error)]
#[error("transaction group {applied} was not applied")]
pub struct GroupFailed {
    pub applied: usize,
    #[source]
    pub error: StoreError,
}

impl GroupFailed {
    /// A failure before any group was applied (an invalid request, a backend that failed at once).
    pub fn before_any(error: StoreError) -> Self {
        Self { applied: 0, error }
    }
}
