//! The crypto conformance suite, instantiated for every backend: the local master-key keyring and KMS
//! (in the moto emulator). Test names read `crypto::<backend>::<case>`.

use qchat_shared::crypto::conformance::{self as suite, TestResult};

/// Every case of the suite, for one keyring backend made by `$make` (an async fn returning
/// `Result<KeyringUnderTest, _>`), plus that backend's own tests.
macro_rules! crypto_suite {
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() -> TestResult {
                let under_test = $make().await?;
                suite::$case(under_test.keyring()).await
            }
        )*
    };
    ($backend:ident, $make:path $(, { $($own:item)* })?) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $($($own)*)?

            crypto_suite!(@cases $make;
                keyring_round_trip,
                keyring_refuses_another_owners_context,
                keyring_refuses_a_tampered_wrapped_key,
                field_round_trip,
                tampered_values_are_rejected,
                moved_values_do_not_open,
                another_owners_cipher_does_not_open,
                nonces_never_repeat,
                sealed_bytes_do_not_contain_the_plaintext,
                destroyed_key_leaves_values_unreadable,
                rotation_keeps_old_values_readable,
                lead_values_open_with_their_secret_only,
                create_is_idempotent_and_owners_are_checked,
                keyring_is_called_once_per_cache_lifetime,
                concurrent_misses_unwrap_once,
                blind_index_properties,
            );
        }
    };
}

crypto_suite!(local_keyring, suite::local_keyring, {
    #[tokio::test]
    async fn the_master_key_file_is_created_with_mode_0600() -> TestResult {
        use std::os::unix::fs::PermissionsExt as _;
        let under_test = suite::local_keyring().await?;
        let path = under_test
            .key_file()
            .ok_or("the local keyring has no key file")?;
        let meta = std::fs::metadata(path)?;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(meta.len(), 32);
        Ok(())
    }
});
crypto_suite!(kms_moto, suite::kms_moto_keyring, {
    #[tokio::test]
    async fn a_kms_failure_keeps_the_sdk_error_as_source() -> TestResult {
        suite::kms_failure_keeps_the_sdk_error_as_source().await
    }
});
