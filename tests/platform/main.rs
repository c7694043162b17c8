//! Checks that tie the platform together: `template.yaml` agrees with the code, and the data inventory
//! is complete and printed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step should fail the test loudly

mod inventory;
mod template;
