//! One test binary running every port conformance suite against every backend.
//! Test names read `<port>::<backend>::<case>`, so the output shows which backends ran.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step should fail the test loudly

mod crypto;
mod mail;
mod messenger;
mod meta_secrets;
mod store;
