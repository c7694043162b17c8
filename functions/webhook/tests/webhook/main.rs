//! Black-box tests of the webhook function (one binary): signatures and the handshake, batches and
//! de-duplication, unreadable values in a signed batch, every opt-in and opt-out path with its consent chain, policy enforcement, storage
//! failures, privacy of stored bytes and logs, and notify sending the queued replies.
//!
//! Every case runs once on the embedded backends (SQLite store, local keyring) and once on the AWS
//! backends (DynamoDB and KMS on the moto emulator); the messenger and the mailer are the outboxes on
//! both (the Graph client has its own conformance suite, and no case here reads mail). Each case is a
//! plain `async fn(Backend)` in its module, listed once below; test names read `sqlite::<case>` and
//! `moto::<case>`, so the output shows which backends ran.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step should fail the test loudly

mod batches;
mod consent;
mod handoff;
mod helpers;
mod languages;
mod linking;
mod marketing;
mod privacy;
mod repair;
mod replies;
mod signature;

/// Instantiates every case for one backend.
macro_rules! cases {
    ($backend:ident, $variant:expr) => {
        mod $backend {
            cases!(@cases $variant;
                signature::a_valid_signature_is_accepted_and_the_batch_stored,
                signature::a_wrong_secret_a_changed_byte_a_missing_header_and_sha1_are_refused_and_store_nothing,
                signature::escaped_non_ascii_escaped_slashes_and_raw_emoji_verify_on_the_raw_bytes,
                signature::the_handshake_echoes_the_challenge_only_for_the_right_token,
                signature::a_rotated_app_secret_is_picked_up_at_once_and_forgeries_cannot_flood_the_secret_store,
                signature::a_rotated_verify_token_is_picked_up_by_the_next_handshake,
                batches::a_batch_of_several_entries_and_items_is_applied_in_full,
                batches::duplicates_and_replayed_batches_change_nothing,
                batches::echoes_deliveries_and_reads_never_touch_consent,
                batches::unknown_kinds_unconnected_pages_and_other_objects_are_ignored_with_200,
                batches::a_policy_block_stops_the_page_and_queues_a_notice_and_unblock_lifts_it,
                batches::a_storage_failure_mid_batch_answers_503_and_the_retry_completes_without_duplicates,
                batches::a_concurrent_delivery_found_at_commit_leaves_exactly_one_copy_of_every_event,
                batches::a_batch_commits_its_events_together,
                batches::first_events_of_one_new_person_delivered_at_once_make_one_lead,
                batches::a_batch_reads_its_lookups_in_one_call_and_claims_its_new_people_in_one_call,
                batches::a_claim_made_elsewhere_found_at_the_key_store_commit_joins_the_winning_lead,
                batches::a_key_store_failure_mid_batch_writes_no_lead_without_its_claim,
                repair::a_signed_batch_with_unreadable_values_stores_every_readable_event,
                repair::a_stop_in_a_batch_with_an_unreadable_value_is_honoured,
                repair::the_signature_is_checked_over_the_bytes_as_received_never_over_a_repaired_body,
                consent::implicit_mode_subscribes_on_the_first_message_and_confirms_with_a_stop_link,
                consent::confirmed_mode_asks_first_and_yes_subscribes_while_no_declines,
                consent::get_started_with_a_ref_referral_and_the_checkbox_plugin_opt_in,
                consent::marketing_messages_opt_in_stop_and_resume,
                consent::every_opt_out_path_unsubscribes_and_start_subscribes_again,
                marketing::a_marketing_stop_unsubscribes_at_once_and_stops_the_token,
                marketing::a_marketing_stop_after_start_unsubscribes_a_lead_whose_token_was_stopped,
                marketing::a_marketing_resume_subscribes_again_with_an_active_token_and_a_fresh_link,
                marketing::a_marketing_opt_in_subscribes_a_new_pending_unsubscribed_or_unreachable_lead_with_a_link,
                marketing::every_opt_out_stops_an_active_marketing_token,
                marketing::an_opt_out_of_an_unsubscribed_lead_whose_token_is_still_active_stops_it,
                marketing::the_webhook_never_sets_the_marketing_frequency_mark,
                marketing::a_linked_lead_inherits_the_consent_of_a_marketing_opt_in_or_stop,
                consent::my_data_replies_with_a_summary_and_delete_my_data_queues_the_erasure_and_freezes_the_lead,
                replies::notify_sends_each_queued_reply_once_through_the_messenger,
                handoff::committed_replies_are_handed_over_claimed_and_sent_once,
                handoff::a_handed_reply_never_recorded_is_sent_by_the_drain_when_its_lease_ends,
                handoff::without_a_free_slot_or_behind_a_backlog_replies_wait_in_the_index,
                handoff::a_failed_commit_hands_over_exactly_the_committed_replies,
                replies::a_stopped_page_sends_nothing_and_its_replies_fail,
                replies::a_token_error_stops_the_page_tells_its_account_once_and_fails_the_replies,
                replies::a_drain_reads_a_chunks_leads_pages_and_secrets_in_one_call_each,
                replies::a_token_error_met_by_concurrent_senders_stops_the_page_once,
                replies::a_token_error_about_a_page_reconnected_meanwhile_does_not_stop_it,
                replies::an_unreachable_person_becomes_unreachable_without_a_consent_record,
                replies::my_data_from_a_person_of_whom_nothing_is_held_is_answered_by_notify,
                linking::linking_carries_the_checkbox_opt_in_to_the_psid_lead_and_closes_the_user_ref_lead,
                linking::an_opt_out_naming_the_merged_lead_stops_the_psid_lead,
                linking::linking_after_the_user_ref_lead_opted_out_never_subscribes,
                linking::a_stop_as_the_first_answer_links_and_unsubscribes_in_one_event,
                linking::a_duplicated_or_retried_linking_event_links_once,
                linking::a_prior_message_whose_user_ref_lead_does_not_exist_makes_a_plain_new_lead,
                linking::a_repeated_stop_is_confirmed_again_once_per_event_without_a_new_record,
                linking::the_user_ref_is_never_stored_or_logged_in_plaintext,
                languages::a_german_page_asks_confirms_and_answers_stop_in_german_with_its_name,
                languages::my_data_and_delete_my_data_are_answered_in_the_pages_language,
                languages::a_page_without_a_language_or_with_an_unknown_one_speaks_english,
                privacy::the_raw_store_holds_no_psid_text_or_name_after_a_flow,
                privacy::logs_of_a_whole_flow_hold_no_psid_text_or_token,
            );
        }
    };
    (@cases $variant:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                crate::$module::$case($variant).await;
            }
        )*
    };
}

cases!(sqlite, crate::helpers::Backend::Sqlite);
cases!(moto, crate::helpers::Backend::Moto);
