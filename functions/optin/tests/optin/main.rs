//! Black-box tests of the optin function, one binary: unsubscribe links, lead lists, consent proof,
//! the account holder's unsubscribe, and tenant isolation. Every answer is checked to hold no PSID.
//!
//! Every case runs once on the embedded backends (SQLite store, local keyring) and once on the AWS
//! backends (DynamoDB and KMS on the moto emulator); the mailer and the messenger are the outboxes on
//! both (no case here reads mail or messages). Each case is a plain `async fn(Backend)` in its module,
//! listed once below; test names read `sqlite::<case>` and `moto::<case>`, so the output shows which
//! backends ran.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step should fail the test loudly

mod detail;
mod helpers;
mod holder;
mod isolation;
mod link;
mod list;

/// Instantiates every case for one backend.
macro_rules! cases {
    ($backend:ident, $variant:expr) => {
        mod $backend {
            cases!(@cases $variant;
                link::the_link_page_shows_the_page_name_and_a_form_and_does_not_unsubscribe,
                link::a_page_without_a_name_is_called_this_page,
                link::posting_unsubscribes_once_with_an_opt_out_record_and_a_second_post_changes_nothing,
                link::unknown_or_malformed_links_get_a_plain_not_found_page,
                link::the_link_pages_answer_in_the_browsers_language_and_the_record_keeps_that_wording,
                list::leads_are_listed_by_page_and_by_status_across_pages_of_fifty,
                list::an_unknown_status_or_a_bad_cursor_is_a_400,
                list::leads_added_while_the_list_is_read_never_repeat_or_hide_a_lead,
                detail::a_lead_comes_with_its_whole_consent_history_and_an_intact_chain,
                detail::an_edited_record_breaks_the_chain_where_it_was_edited,
                detail::a_removed_record_breaks_the_chain_where_it_was_removed,
                detail::a_removed_last_record_is_detected_against_the_lead_head,
                detail::an_unknown_or_malformed_lead_id_is_a_404,
                holder::the_account_holder_unsubscribes_a_lead_once_and_the_record_says_so,
                isolation::another_accounts_pages_and_leads_are_not_found_on_every_route,
                isolation::no_answer_of_any_route_contains_the_psid,
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
