//! The messenger conformance suite, instantiated for every backend: the Graph client against a fake Graph
//! API on 127.0.0.1, and the JSON-lines outbox file. Cases live in `qchat_shared::messenger::conformance`.

use qchat_shared::messenger::conformance as suite;

/// One `#[tokio::test]` per case, named after it, each with a fresh backend. `$setup` yields
/// `(messenger, read_back, guard)`; the guard (the fake server's handle or a temporary folder) lives
/// until the case ends.
macro_rules! cases {
    ($setup:expr => $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (messenger, read, _guard) = $setup;
                suite::$case(&messenger, &read).await;
            }
        )+
    };
}

/// The token-check cases every backend must pass: `read` also hands out the backend's tokens.
macro_rules! token_cases {
    ($setup:expr => $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (messenger, tokens, _guard) = $setup;
                suite::tokens::$case(&messenger, &tokens).await;
            }
        )+
    };
}

/// The id-mapping cases every backend must pass: `read` also teaches the backend who is who.
macro_rules! people_cases {
    ($setup:expr => $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (messenger, people, _guard) = $setup;
                suite::people::$case(&messenger, &people).await;
            }
        )+
    };
}

/// The cases every backend must pass.
macro_rules! common_cases {
    ($setup:expr) => {
        people_cases!($setup =>
            a_person_maps_to_their_page_scoped_id_on_each_page,
            a_person_unknown_on_a_page_maps_to_nothing,
            a_token_the_backend_cannot_vouch_for_is_an_error,
            mapping_logs_no_personal_id_or_token,
        );
        token_cases!($setup =>
            a_token_of_a_page_names_that_page,
            a_token_of_another_page_names_the_other_page,
            a_token_the_backend_cannot_vouch_for_is_refused,
            checking_a_token_logs_nothing_secret,
        );
        cases!($setup =>
            a_rich_message_to_a_psid_arrives_as_sent,
            a_rich_message_to_a_user_ref_arrives_as_sent,
            a_rich_message_to_a_notification_token_arrives_without_messaging_type,
            a_plain_text_arrives_without_extras,
            a_message_at_every_limit_is_sent,
            each_send_gets_its_own_message_id,
            invalid_messages_are_refused_without_sending,
            nothing_personal_or_secret_is_logged,
        );
    };
}

mod graph {
    use super::suite;

    async fn fake() -> (
        qchat_shared::messenger::GraphMessenger,
        suite::FakeGraph,
        (),
    ) {
        let fake = suite::FakeGraph::start().await;
        (fake.messenger(), fake, ())
    }

    common_cases!(fake().await);

    /// Graph-only cases take the fake itself.
    macro_rules! graph_cases {
        ($($case:ident),+ $(,)?) => {
            $(
                #[tokio::test]
                async fn $case() {
                    suite::graph_only::$case(&suite::FakeGraph::start().await).await;
                }
            )+
        };
    }

    graph_cases!(
        every_documented_error_maps_to_its_send_error,
        rate_limit_carries_retry_after,
        sends_the_token_as_bearer_with_appsecret_proof,
        without_app_secret_sends_no_proof,
        a_success_answer_yields_the_message_id,
        a_timeout_is_a_transport_error,
        a_non_json_answer_is_a_transport_error,
        an_unreachable_api_is_a_transport_error,
        errors_log_no_personal_data,
    );

    /// Graph-only token-check cases take the fake itself.
    macro_rules! graph_token_cases {
        ($($case:ident),+ $(,)?) => {
            $(
                #[tokio::test]
                async fn $case() {
                    suite::graph_only_tokens::$case(&suite::FakeGraph::start().await).await;
                }
            )+
        };
    }

    graph_token_cases!(
        the_check_asks_me_with_the_token_as_bearer_and_appsecret_proof,
        an_invalid_or_expired_token_is_token_invalid,
        a_permission_error_or_another_refusal_is_not_retryable,
        graph_down_slow_or_busy_is_retryable,
        a_malformed_answer_names_no_page,
        a_numeric_id_is_read_and_an_unusable_name_is_dropped,
        token_check_errors_log_nothing_personal_or_secret,
    );

    /// Graph-only id-mapping cases take the fake itself.
    macro_rules! graph_people_cases {
        ($($case:ident),+ $(,)?) => {
            $(
                #[tokio::test]
                async fn $case() {
                    suite::graph_only_people::$case(&suite::FakeGraph::start().await).await;
                }
            )+
        };
    }

    graph_people_cases!(
        ids_for_pages_asks_with_the_page_the_token_as_bearer_and_appsecret_proof,
        ids_for_pages_errors_are_classified,
    );
}

mod outbox {
    use super::suite;

    common_cases!(suite::outbox_in_temp_dir());
}
