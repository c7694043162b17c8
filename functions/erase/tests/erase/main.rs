//! The erase function's black-box tests, one binary, each case on the embedded backends (SQLite, local
//! keyring) and on the AWS backends (DynamoDB and KMS in the moto emulator): the erasure runner
//! ([`qchat_erase::run_due`]) runs page and lead erasures, and a run's deadline cuts an erasure that the
//! next run resumes. (The routes are followed through whole flows in `tests/flows/lead_erasure.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step should fail the test loudly

mod helpers;
mod runner;

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    crate::runner::$case(crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test]
                async fn $case() {
                    crate::runner::$case(crate::helpers::Backend::Moto).await;
                }
            )*
        }
    };
}

on_both_backends!(
    the_runner_erases_a_disconnected_pages_leads_so_none_of_their_replies_is_sent,
    a_page_erasure_cut_by_the_runs_deadline_resumes_at_the_next_run,
    a_lead_erasure_cut_by_the_runs_deadline_resumes_at_the_next_run_and_touches_no_other_lead,
);
