//! The Meta-secrets conformance suite, instantiated for every backend: Secrets Manager on the moto
//! emulator, and the local `secrets.json`. Cases live in `qchat_shared::meta_secrets::conformance`.

use std::sync::Arc;

use qchat_shared::meta_secrets::conformance as suite;

/// One `#[tokio::test]` per case, each with a fresh backend from `$setup`, which yields
/// `(source, keeper, guard)`; the guard (a temporary folder, or `()`) lives until the case ends.
macro_rules! cases {
    ($setup:expr => $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (source, keeper, _guard) = $setup;
                suite::$case(&source, &keeper).await;
            }
        )+

        #[tokio::test]
        async fn the_cache_picks_up_a_rotation_with_one_read_per_interval() {
            let (source, keeper, _guard) = $setup;
            suite::the_cache_picks_up_a_rotation_with_one_read_per_interval(Arc::new(source), &keeper)
                .await;
        }
    };
}

mod secretsmanager_moto {
    use super::*;

    async fn setup() -> (
        qchat_shared::meta_secrets::manager::SecretsManagerSource,
        suite::MotoKeeper,
        (),
    ) {
        let (source, keeper) = suite::secretsmanager_on_moto("initial-app", "initial-verify").await;
        (source, keeper, ())
    }

    cases!(setup().await =>
        the_stored_secrets_are_read,
        a_rotation_is_read_by_the_next_fetch,
        an_incomplete_secret_is_refused_without_echoing_it,
        a_removed_secret_is_not_found,
    );
}

mod file {
    use super::*;

    cases!(suite::file_in_temp_dir("initial-app", "initial-verify") =>
        the_stored_secrets_are_read,
        a_rotation_is_read_by_the_next_fetch,
        an_incomplete_secret_is_refused_without_echoing_it,
        a_removed_secret_is_not_found,
    );
}
