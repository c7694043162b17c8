//! The mail conformance suite, instantiated for every backend: SES on the moto emulator, and the `.eml`
//! outbox folder. Cases live in `qchat_shared::mail::conformance`; this file only wires backends to them.

use qchat_shared::mail::conformance as suite;

/// One `#[tokio::test]` per case, named after it, each with a fresh backend from `$setup`, which yields
/// `(mailer, read_back, guard)`; the guard (a temporary folder, or `()`) lives until the case ends.
macro_rules! cases {
    ($setup:expr => $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (mailer, read, _guard) = $setup;
                suite::$case(&mailer, &read).await;
            }
        )+
    };
}

mod ses_moto {
    use super::suite;

    cases!((suite::ses_on_moto().await, suite::MotoSesReadBack, ()) =>
        a_sent_message_reads_back_unchanged,
        a_non_ascii_subject_and_body_read_back_unchanged,
        a_body_with_very_long_lines_reads_back_unchanged,
        two_messages_are_two_records,
        the_recipient_appears_in_no_log_or_error,
    );

    #[tokio::test]
    async fn a_subject_with_a_line_break_is_refused_permanently() {
        suite::a_subject_with_a_line_break_is_refused_permanently(&suite::ses_on_moto().await)
            .await;
    }

    #[tokio::test]
    async fn an_unverified_sender_is_refused_permanently() {
        suite::an_unverified_sender_is_refused_permanently(&suite::ses_on_moto_unverified().await)
            .await;
    }
}

mod outbox {
    use super::suite;

    cases!(suite::outbox_in_temp_dir() =>
        a_sent_message_reads_back_unchanged,
        a_non_ascii_subject_and_body_read_back_unchanged,
        a_body_with_very_long_lines_reads_back_unchanged,
        two_messages_are_two_records,
        the_recipient_appears_in_no_log_or_error,
    );

    #[tokio::test]
    async fn a_subject_with_a_line_break_is_refused_permanently() {
        let (mailer, _read, _dir) = suite::outbox_in_temp_dir();
        suite::a_subject_with_a_line_break_is_refused_permanently(&mailer).await;
    }

    #[tokio::test]
    async fn an_unwritable_folder_is_a_transient_failure() {
        let (mailer, _dir) = suite::outbox_in_unwritable_place();
        suite::an_unwritable_folder_is_a_transient_failure(&mailer).await;
    }

    #[tokio::test]
    async fn the_same_reference_sent_twice_is_one_file() {
        let (mailer, read, _dir) = suite::outbox_in_temp_dir();
        suite::the_same_reference_sent_twice_is_one_file(&mailer, &read, &read.dir).await;
    }
}
