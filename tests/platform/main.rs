//! Checks that tie the platform together: `template.yaml` agrees with the code and, translated by SAM,
//! is fit for production; each function's binary links only what it uses; the data inventory is
//! complete and printed; and the local server starts only on a data folder it can read.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step should fail the test loudly

mod binaries;
mod inventory;
mod startup;
mod synthesized;
mod template;
