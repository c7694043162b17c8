//! notify's black-box tests, one binary: delivery, fan-out jobs, Messenger replies and the
//! Lambda paths on the embedded backends, and the main flows on the AWS backends (DynamoDB, KMS, SES in the moto
//! emulator), one of them with every log line captured and checked for the email addresses used.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step should fail the test loudly

mod aws;
mod delivery;
mod fanout;
mod helpers;
mod lambda;
mod replies;
mod reply_order;
mod suppression;
