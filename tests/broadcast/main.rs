//! Black-box tests of the broadcast engine (issue 12's sending rules), once on the embedded backends
//! (SQLite, local keyring) and once on the AWS backends (DynamoDB and KMS on moto), against a fake Send
//! API on 127.0.0.1. The runner is driven through `Jobs::run_due` with the test's manual clock, as the
//! scheduled entry point drives it.
//!
//! Each case is a plain `async fn(Backend)` in `cases`, listed once below; test names read
//! `sqlite::<case>` and `moto::<case>`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step should fail the test loudly

#[allow(dead_code)]
#[path = "../flows/helpers.rs"]
mod helpers;

mod cases;
mod harness;
mod io_clock;

macro_rules! cases {
    ($backend:ident, $variant:expr) => {
        mod $backend {
            cases!(@cases $variant;
                eligibility_is_decided_per_lead_at_send_time_and_preview_agrees,
                a_lead_who_unsubscribes_between_scheduling_and_sending_gets_nothing,
                a_lead_who_unsubscribes_between_the_batch_read_and_the_claim_gets_nothing,
                every_message_carries_the_unsubscribe_quick_reply_and_never_a_tag,
                a_runner_killed_mid_batch_is_resumed_and_no_lead_gets_the_message_twice,
                a_batch_re_run_after_a_store_failure_counts_each_lead_once,
                two_runners_at_once_send_each_message_once,
                rate_limits_and_temporary_errors_are_retried_then_counted_by_class,
                error_551_marks_the_lead_unreachable,
                a_token_error_stops_the_page_pauses_its_broadcasts_and_queues_one_notice,
                a_cancelled_broadcast_sends_nothing_more_and_a_finished_one_cannot_be_cancelled,
                two_broadcasts_of_one_page_keep_to_the_page_rate_together,
                broadcasts_are_listed_newest_first_and_only_to_their_own_account,
                a_large_broadcast_completes_across_deadline_bounded_runs,
                a_campaign_broadcast_reaches_the_leads_of_its_ref_with_a_working_unsubscribe_link,
            );
        }
    };
    (@cases $variant:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                crate::cases::$case($variant).await;
            }
        )*
    };
}

cases!(sqlite, crate::helpers::Backend::Sqlite);
cases!(moto, crate::helpers::Backend::Moto);
