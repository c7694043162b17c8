//! The process's copy of Meta's secrets: read from the source on first use, kept for a bounded lifetime,
//! and refreshed early — at most once per interval — when a signature or verify token was refused, so a
//! rotation is picked up at the first delivery signed with the new secret.
//!
//! Invariants: one read at a time (concurrent callers wait for it instead of each reading); a failed read
//! keeps the copy in hand, if any, and is not tried again within the interval, so neither an outage of
//! the source nor a stream of forged requests turns into a stream of reads.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use super::{MetaSecretSource, MetaSecrets, SecretsError};
use crate::clock::{Clock, Timestamp};

/// How long a copy is used, and how often a refused request may cause a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretCachePolicy {
    pub lifetime: Duration,
    pub min_refresh_interval: Duration,
}

impl Default for SecretCachePolicy {
    /// A 5-minute lifetime, refreshes at least 30 seconds apart.
    ///
    /// The lifetime bounds how long a warm sandbox signs Graph calls with a secret that was rotated (the
    /// webhook does not wait for it: a refused signature refreshes at once) and how long a value removed
    /// from the secret stays in memory; 5 minutes is the default of AWS's own Parameters and Secrets
    /// Lambda Extension, and costs at most 12 `GetSecretValue` calls per hour per sandbox. The interval
    /// bounds what forged deliveries can cost: at most 2 reads a minute per sandbox, however many arrive,
    /// while a genuine delivery refused just after a forged one's refresh is retried by Meta.
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(5 * 60),
            min_refresh_interval: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    held: Option<Arc<MetaSecrets>>,
    /// When `held` was read.
    read_at: Option<Timestamp>,
    /// When a read was last tried, successful or not.
    tried_at: Option<Timestamp>,
}

/// Meta's secrets, cached. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct MetaSecretCache {
    source: Arc<dyn MetaSecretSource>,
    clock: Arc<dyn Clock>,
    policy: SecretCachePolicy,
    state: Mutex<State>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn older_than(at: Option<Timestamp>, now: Timestamp, age: Duration) -> bool {
    at.is_none_or(|at| now.millis().saturating_sub(at.millis()) >= millis(age))
}

impl MetaSecretCache {
    pub fn new(
        source: Arc<dyn MetaSecretSource>,
        clock: Arc<dyn Clock>,
        policy: SecretCachePolicy,
    ) -> Self {
        Self {
            source,
            clock,
            policy,
            state: Mutex::new(State::default()),
        }
    }

    /// The secrets: the copy in hand while it is younger than the lifetime, else a fresh read. A failed
    /// read serves the copy in hand (and is retried after the interval); without one it is the error.
    ///
    /// # Errors
    /// The source's, when no copy is in hand.
    pub async fn current(&self) -> Result<Arc<MetaSecrets>, SecretsError> {
        let mut state = self.state.lock().await;
        let now = self.clock.now();
        if let Some(held) = &state.held {
            let fresh = !older_than(state.read_at, now, self.policy.lifetime);
            let recently_tried = !older_than(state.tried_at, now, self.policy.min_refresh_interval);
            if fresh || recently_tried {
                return Ok(held.clone());
            }
        }
        match self.read(&mut state, now).await {
            Ok(read) => Ok(read),
            Err(e) => match &state.held {
                Some(held) => {
                    tracing::warn!(error = %e, "the Meta secrets could not be re-read; keeping the copy in hand");
                    Ok(held.clone())
                }
                None => Err(e),
            },
        }
    }

    /// After `used` was refused (a signature or verify token that did not match): newer secrets, if the
    /// source holds different ones, for one more check. Reads at most once per interval; `None` when
    /// nothing newer is known (the refusal stands).
    pub async fn newer_than(&self, used: &MetaSecrets) -> Option<Arc<MetaSecrets>> {
        let mut state = self.state.lock().await;
        // Another request may have refreshed meanwhile.
        if let Some(held) = &state.held
            && !held.same_as(used)
        {
            return Some(held.clone());
        }
        let now = self.clock.now();
        if !older_than(state.tried_at, now, self.policy.min_refresh_interval) {
            return None;
        }
        match self.read(&mut state, now).await {
            Ok(read) => {
                let changed = !read.same_as(used);
                tracing::info!(changed, "Meta secrets re-read after a refusal");
                changed.then_some(read)
            }
            Err(e) => {
                tracing::warn!(error = %e, "the Meta secrets could not be re-read after a refusal");
                None
            }
        }
    }

    async fn read(
        &self,
        state: &mut State,
        now: Timestamp,
    ) -> Result<Arc<MetaSecrets>, SecretsError> {
        state.tried_at = Some(now);
        let read = Arc::new(self.source.fetch().await?);
        state.held = Some(read.clone());
        state.read_at = Some(now);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use secrecy::{ExposeSecret as _, SecretString};

    use super::*;
    use crate::clock::ManualClock;

    /// A source whose value a test sets, counting reads; `None` fails the read.
    #[derive(Debug, Default)]
    struct Settable {
        value: std::sync::Mutex<Option<MetaSecrets>>,
        reads: AtomicUsize,
    }

    impl Settable {
        fn set(&self, app_secret: Option<&str>) {
            let value = app_secret.map(|a| {
                MetaSecrets::new(SecretString::from(a), SecretString::from("verify"))
                    .expect("valid secrets")
            });
            *self.value.lock().expect("lock") = value;
        }
        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    #[async_trait::async_trait]
    impl MetaSecretSource for Settable {
        async fn fetch(&self) -> Result<MetaSecrets, SecretsError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.value
                .lock()
                .expect("lock")
                .clone()
                .ok_or_else(|| SecretsError::Unavailable("down".into()))
        }
    }

    fn cache() -> (Arc<Settable>, Arc<ManualClock>, MetaSecretCache) {
        let source = Arc::new(Settable::default());
        source.set(Some("one"));
        let clock = Arc::new(ManualClock::at(Timestamp::from_secs(1_000)));
        let cache =
            MetaSecretCache::new(source.clone(), clock.clone(), SecretCachePolicy::default());
        (source, clock, cache)
    }

    fn app_secret(s: &MetaSecrets) -> String {
        s.app_secret().expose_secret().to_owned()
    }

    #[tokio::test]
    async fn a_copy_is_read_once_and_again_after_its_lifetime() {
        let (source, clock, cache) = cache();
        assert_eq!(app_secret(&cache.current().await.expect("read")), "one");
        source.set(Some("two"));
        clock.advance_millis(299_999);
        assert_eq!(app_secret(&cache.current().await.expect("held")), "one");
        assert_eq!(source.reads(), 1);
        clock.advance_millis(1);
        assert_eq!(app_secret(&cache.current().await.expect("re-read")), "two");
        assert_eq!(source.reads(), 2);
    }

    #[tokio::test]
    async fn a_failed_re_read_keeps_the_copy_and_waits_the_interval_before_trying_again() {
        let (source, clock, cache) = cache();
        cache.current().await.expect("read");
        source.set(None);
        clock.advance_millis(300_000);
        assert_eq!(app_secret(&cache.current().await.expect("kept")), "one");
        assert_eq!(app_secret(&cache.current().await.expect("kept")), "one");
        assert_eq!(source.reads(), 2, "one failed try, not one per call");
        clock.advance_millis(30_000);
        source.set(Some("two"));
        assert_eq!(app_secret(&cache.current().await.expect("re-read")), "two");
        assert_eq!(source.reads(), 3);
    }

    #[tokio::test]
    async fn without_a_copy_a_failed_read_is_the_error() {
        let (source, _clock, cache) = cache();
        source.set(None);
        assert!(matches!(
            cache.current().await,
            Err(SecretsError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn a_refusal_reads_again_at_most_once_per_interval_and_finds_a_rotation() {
        let (source, clock, cache) = cache();
        let used = cache.current().await.expect("read");
        // A copy read just now is not read again.
        assert!(cache.newer_than(&used).await.is_none());
        assert_eq!(source.reads(), 1);
        // A forged request: the source holds the same value, so nothing newer; further refusals within
        // the interval read nothing.
        clock.advance_millis(30_000);
        assert!(cache.newer_than(&used).await.is_none());
        for _ in 0..50 {
            assert!(cache.newer_than(&used).await.is_none());
        }
        assert_eq!(source.reads(), 2);
        // A rotation within the interval is found once it has passed.
        source.set(Some("two"));
        clock.advance_millis(29_999);
        assert!(cache.newer_than(&used).await.is_none());
        clock.advance_millis(1);
        let newer = cache.newer_than(&used).await.expect("rotation found");
        assert_eq!(app_secret(&newer), "two");
        assert_eq!(source.reads(), 3);
        // A request still holding the old copy gets the new one without another read.
        assert_eq!(
            app_secret(&cache.newer_than(&used).await.expect("held")),
            "two"
        );
        assert_eq!(app_secret(&cache.current().await.expect("held")), "two");
        assert_eq!(source.reads(), 3);
    }
}
