//! Black-box tests of the optin function, one binary: unsubscribe links, lead lists, consent proof,
//! the account holder's unsubscribe, and tenant isolation. Every answer is checked to hold no PSID.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step should fail the test loudly

mod detail;
mod helpers;
mod holder;
mod isolation;
mod link;
mod list;
