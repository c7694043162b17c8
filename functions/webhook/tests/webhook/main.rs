//! Black-box tests of the webhook function (one binary): signatures and the handshake, batches and
//! de-duplication, every opt-in and opt-out path with its consent chain, policy enforcement, storage
//! failures, privacy of stored bytes and logs, and notify sending the queued replies.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step should fail the test loudly

mod batches;
mod consent;
mod helpers;
mod privacy;
mod replies;
mod signature;
