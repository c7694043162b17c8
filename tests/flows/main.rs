//! Black-box flows of the account and broadcast functions: every route driven through
//! `qchat_local::dispatch`, which routes a request exactly like API Gateway, once on the embedded backends (SQLite, local keyring, file
//! outboxes) and once on the AWS backends (DynamoDB, KMS, SES on the moto emulator).
//!
//! Each case is a plain `async fn(Backend)` in its module, listed once below; test names read
//! `sqlite::<case>` and `moto::<case>`, so the output shows which backends ran. Every response of every
//! case is checked for the security headers (see `TestApp::request`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step should fail the test loudly

mod helpers;

mod backups;
mod broadcast;
mod claims;
mod console;
mod csrf;
mod deletion;
mod erasure;
mod input;
mod lead_erasure;
mod lead_keys;
mod lockout;
mod pages;
mod policies;
mod privacy;
mod profile;
mod registration;
mod retention;
mod sessions;
mod trust;
mod web;

/// Instantiates every flow case for one backend.
macro_rules! flows {
    ($backend:ident, $variant:expr) => {
        mod $backend {
            flows!(@cases $variant;
                registration::registering_answers_202_creates_nothing_and_the_mailed_link_creates_the_account,
                registration::a_registration_link_expires_after_24_hours_and_an_unknown_link_is_not_valid,
                registration::a_link_for_an_address_taken_meanwhile_creates_nothing,
                registration::a_body_that_is_not_json_is_refused_as_invalid_json,
                registration::a_missing_field_is_refused_naming_the_field_without_echoing_any_value,
                registration::an_invalid_email_is_refused_without_echoing_it,
                registration::a_short_a_common_or_an_email_based_password_is_refused_as_weak,
                registration::a_policy_version_other_than_the_current_one_is_refused,
                registration::registering_a_taken_address_answers_exactly_as_a_free_one_and_tells_the_owner,
                sessions::signing_in_without_remember_sets_a_browser_session_cookie_for_12_hours,
                sessions::signing_in_with_remember_sets_a_30_day_cookie_and_session,
                sessions::the_bearer_token_and_the_session_cookie_both_authenticate,
                sessions::requests_without_a_token_or_with_a_malformed_or_unknown_one_are_unauthenticated,
                sessions::an_unknown_email_and_a_wrong_password_get_the_identical_401,
                sessions::five_failures_lock_sign_in_for_15_minutes_even_with_the_right_password,
                lockout::wrong_passwords_sent_at_once_get_exactly_5_checked_and_the_rest_429_until_the_window_passes,
                lockout::an_unknown_address_gets_exactly_the_answers_a_known_one_gets,
                lockout::guesses_sprayed_over_many_addresses_from_one_network_hit_its_limit_alone,
                lockout::successful_sign_ins_do_not_count_against_the_limits,
                lockout::without_a_known_network_only_the_address_limit_applies,
                sessions::an_expired_session_is_refused_although_its_item_is_still_stored,
                sessions::a_signed_out_token_is_refused_and_the_cookie_is_cleared,
                sessions::signing_out_everywhere_ends_every_session_of_the_account_only,
                console::the_console_is_served_under_its_csp_with_hashed_assets_cached_for_a_year,
                csrf::a_cookie_request_that_changes_something_without_same_origin_proof_is_refused_and_changes_nothing,
                csrf::the_consoles_proof_lets_a_cookie_request_through_and_bearer_requests_need_none,
                profile::a_password_change_with_a_wrong_current_password_or_a_weak_new_one_is_refused,
                profile::a_password_change_ends_the_other_sessions_keeps_this_one_and_queues_a_notice,
                profile::the_name_changes_at_once_and_the_email_only_through_the_link_sent_to_the_new_address,
                profile::the_security_log_lists_sign_ins_newest_first_with_their_network_address,
                profile::the_security_log_pages_with_a_cursor_that_only_its_own_list_accepts,
                profile::a_sign_in_from_a_new_network_queues_one_notice_and_a_known_network_none,
                pages::a_connected_page_is_listed_for_its_own_account_only_and_never_shows_its_token,
                pages::a_page_connected_to_one_account_cannot_be_connected_by_another,
                pages::another_accounts_page_cannot_be_disconnected_and_ones_own_can,
                pages::a_malformed_page_id_or_token_is_refused,
                pages::another_account_cannot_connect_a_page_without_a_token_of_that_page,
                pages::with_meta_a_token_is_verified_before_anything_is_said_about_the_page,
                pages::a_page_id_is_only_ever_its_canonical_form,
                pages::the_owner_alone_replaces_a_dead_token_and_sending_resumes,
                pages::a_new_token_does_not_lift_metas_block_of_a_page,
                pages::disconnecting_a_page_erases_every_item_of_its_leads_and_no_other_pages,
                pages::a_page_erasure_cut_by_its_deadline_resumes_where_it_stopped_and_finishes,
                retention::a_sweep_removes_every_expired_item_from_the_store_and_keeps_every_live_one,
                retention::a_lead_past_its_retention_is_erased_completely_and_subscribed_or_recent_ones_stay,
                retention::a_sweep_cut_short_by_its_deadline_resumes_where_it_stopped_and_finishes,
                policies::a_fresh_install_has_privacy_policy_and_terms_version_1,
                policies::only_the_operator_may_publish_a_policy,
                policies::a_published_policy_queues_its_fanout_and_must_be_accepted_in_its_current_version,
                policies::only_the_operator_may_queue_a_breach_notice,
                web::the_privacy_notice_is_short_html_under_a_strict_csp_and_links_the_record,
                web::the_notice_says_for_every_personal_record_what_it_is_why_on_which_basis_and_how_long,
                web::the_notice_and_the_record_are_in_german_when_the_browser_asks_for_it,
                web::the_notice_and_the_record_are_written_in_each_of_the_eight_languages,
                web::the_record_of_processing_lists_every_inventory_attribute_and_the_breach_procedure,
                web::the_privacy_notice_is_json_when_asked_for_and_matches_the_inventory,
                web::the_privacy_notice_names_the_controller_and_how_to_reach_them,
                web::the_record_says_how_a_personal_data_breach_is_handled,
                web::the_rights_section_names_the_export_and_erasure_routes_and_says_what_delete_my_data_does,
                web::the_full_shipped_terms_are_shown_until_a_newer_version_is_published,
                web::every_route_the_privacy_notice_names_is_in_the_route_table,
                web::every_kind_of_response_carries_the_security_headers,
                web::an_unknown_route_is_404_and_a_known_route_with_another_method_405,
                privacy::after_a_whole_flow_no_personal_value_is_in_the_raw_store_or_the_logs,
                input::a_json_array_is_refused_where_an_object_is_expected_and_nothing_is_stored,
                input::a_json_route_refuses_a_body_sent_as_text_or_as_a_form_with_415,
                input::an_undecodable_unsubscribe_token_gets_the_html_link_not_valid_page,
                input::head_answers_like_get_without_a_body_and_is_listed_in_allow,
                input::names_with_direction_overrides_invisible_or_control_characters_are_refused,
                trust::a_password_reset_answers_alike_for_any_address_and_its_link_works_once_and_ends_every_session,
                trust::an_account_cannot_take_the_operator_role_by_typing_its_address,
                trust::the_proven_operator_acts_and_every_action_is_in_the_audit_trail,
                broadcast::a_composed_broadcast_is_scheduled_and_shown_with_its_content_and_zero_counts,
                broadcast::every_invalid_compose_request_is_refused_with_its_rule_and_without_echo,
                broadcast::another_account_gets_the_same_404_as_for_a_page_or_broadcast_that_does_not_exist,
                broadcast::the_list_is_newest_first_and_pages_with_a_cursor,
                broadcast::a_cancelled_broadcast_sends_nothing_and_cannot_be_cancelled_again,
                broadcast::a_preview_counts_who_would_get_it_now_and_why_the_others_would_not,
                broadcast::the_page_rate_is_20_until_set_and_only_1_to_250_is_accepted,
                broadcast::a_page_set_to_german_broadcasts_with_a_german_footer_and_unsubscribe_button,
                broadcast::a_scheduled_broadcast_is_sent_by_the_runner_to_each_subscribed_person_once,
                broadcast::a_lead_sealed_under_its_own_key_is_sent_after_one_key_store_read_per_batch_and_not_once_its_secret_is_gone,
                deletion::a_code_that_names_no_erasure_gets_the_same_404_whatever_it_is,
                deletion::metas_deletion_callback_answers_a_code_whose_status_page_completes_after_the_job,
                deletion::a_callback_about_nobody_is_answered_like_any_other_and_a_repeat_is_harmless,
                deletion::every_signed_request_attack_is_refused_with_the_rule_and_queues_nothing,
                deletion::a_status_page_names_the_erasures_page_while_it_is_connected_and_says_so_when_not,
                deletion::a_meta_deletion_status_page_names_every_page_the_person_was_found_on,
                erasure::erasing_an_account_leaves_no_item_or_value_of_it_and_the_address_can_register_again,
                erasure::a_wrong_password_erases_nothing_and_counts_toward_the_sign_in_lockout,
                erasure::the_operator_account_cannot_be_erased,
                erasure::an_account_erasure_cut_after_every_step_resumes_to_completion_and_never_counts_an_item_twice,
                erasure::the_receipt_mail_still_goes_out_after_the_account_and_its_key_are_gone,
                erasure::the_export_holds_every_personal_attribute_the_inventory_declares_for_the_account,
                erasure::a_large_export_is_paged_within_lambdas_response_limit,
                lead_erasure::erasing_a_lead_removes_every_item_and_byte_of_it_and_nothing_of_another_lead,
                lead_erasure::delete_my_data_in_messenger_erases_the_lead_and_confirms_with_the_status_page,
                lead_erasure::an_erasure_finished_after_metas_window_sends_no_confirmation_and_says_why,
                lead_erasure::the_export_holds_every_personal_attribute_the_inventory_declares_for_a_lead,
                lead_erasure::another_accounts_lead_a_missing_one_and_a_malformed_id_get_the_same_404,
                lead_erasure::a_lead_erasure_cut_at_every_step_or_repeated_after_a_lost_lease_finishes_once,
                backups::a_main_store_restored_from_before_an_erasure_neither_opens_nor_finds_the_account,
                backups::a_copy_holding_an_expired_registration_opens_nothing_once_the_sweep_retired_its_key,
                backups::a_main_store_restored_from_before_a_lead_erasure_holds_nothing_that_finds_the_person,
                lead_keys::a_new_leads_values_are_sealed_under_its_own_key_and_a_lead_from_before_still_works,
                lead_keys::a_lead_whose_secret_is_gone_reads_as_unreadable_and_is_sent_nothing,
                claims::a_claim_whose_account_never_appeared_finds_nothing_and_is_taken_over_after_its_grace,
                claims::a_change_of_address_that_crashed_after_its_claim_changes_nothing_and_can_be_done_again,
                claims::an_old_address_whose_release_crashed_finds_nothing_and_is_free_after_its_grace,
                claims::a_claim_is_refused_while_its_address_is_live_and_while_another_claim_is_in_flight,
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

flows!(sqlite, crate::helpers::Backend::Sqlite);
flows!(moto, crate::helpers::Backend::Moto);
