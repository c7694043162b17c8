//! Benchmarks of the per-item crypto costs: sealing and opening a 64-byte field with a cached data
//! key (target: seal + open ≤ 1 µs), a cache hit of `KeyManager::cipher`, the blind index of an
//! e-mail address, and one put + get on the SQLite store for scale.
//!
//! Run with `cargo bench -p qchat-shared --bench crypto`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use qchat_shared::clock::{Clock, SystemClock};
use qchat_shared::crypto::{
    BlindIndexer, DataKey, FieldCipher, KeyCachePolicy, KeyManager, Keyring, LocalKeyring,
    random_bytes,
};
use qchat_shared::inventory::DATA_KEY;
use qchat_shared::store::sqlite::SqliteStore;
use qchat_shared::store::{Condition, Item, ItemKey, ItemStore, Value};

/// Set-up failures end the bench run with the reason; there is nothing to measure without them.
fn or_die<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("bench set-up failed: {what}: {e}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    or_die(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        "tokio runtime",
    )
}

fn field(c: &mut Criterion) {
    let cipher = or_die(
        FieldCipher::new(1, &DataKey::from_bytes(random_bytes::<32>())),
        "field cipher",
    );
    let key = ItemKey::new("LEAD#01jd7x2k9f8m3q4r5s6t7v8w9y", "PROFILE");
    let plaintext = [0x5Au8; 64];
    let sealed = or_die(cipher.seal(&key, "email", &plaintext), "seal");

    let mut group = c.benchmark_group("field_64B");
    group.bench_function("seal", |b| {
        b.iter(|| cipher.seal(black_box(&key), "email", black_box(&plaintext)))
    });
    group.bench_function("open", |b| {
        b.iter(|| cipher.open(black_box(&key), "email", black_box(&sealed)))
    });
    group.bench_function("seal+open", |b| {
        b.iter(|| {
            let s = or_die(
                cipher.seal(black_box(&key), "email", black_box(&plaintext)),
                "seal",
            );
            cipher.open(&key, "email", &s)
        })
    });
    group.finish();
}

fn blind_index(c: &mut Criterion) {
    let indexer = BlindIndexer::new(&DataKey::from_bytes(random_bytes::<32>()));
    c.bench_function("blind_index/email", |b| {
        b.iter(|| indexer.index("email", black_box(b"alice.example@example.com")))
    });
}

fn key_manager_and_store(c: &mut Criterion) {
    let rt = runtime();
    let dir = or_die(tempfile::tempdir(), "temp dir");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(or_die(
        SqliteStore::open(&dir.path().join("bench.sqlite"), Arc::clone(&clock)),
        "sqlite store",
    ));
    or_die(rt.block_on(store.ensure_schema()), "schema");
    let keyring: Arc<dyn Keyring> = Arc::new(or_die(
        LocalKeyring::open(&dir.path().join("master.key")),
        "local keyring",
    ));
    let manager = KeyManager::new(
        Arc::clone(&store) as Arc<dyn ItemStore>,
        keyring,
        clock,
        KeyCachePolicy {
            // One cache lifetime for the whole run, so every iteration measures a hit.
            max_uses: u64::MAX,
            ..KeyCachePolicy::default()
        },
    );
    let owner = "account:bench";
    or_die(rt.block_on(manager.create(owner)), "create data key");
    let key = ItemKey::new("LEAD#01jd7x2k9f8m3q4r5s6t7v8w9y", "PROFILE");
    let plaintext = [0x5Au8; 64];

    c.bench_function("key_manager/cipher_hit+seal+open_64B", |b| {
        b.iter(|| {
            rt.block_on(async {
                let cipher = or_die(manager.cipher(owner).await, "cipher");
                let s = or_die(cipher.seal(&key, "email", black_box(&plaintext)), "seal");
                cipher.open(&key, "email", &s)
            })
        })
    });

    let item_key = ItemKey::new("DATAKEY#account:bench-store", "V#0000000001");
    let item = or_die(
        Item::new(&DATA_KEY, item_key.clone())
            .plain("wrapped", Value::B(vec![7; 61]))
            .and_then(|i| i.plain("created", Value::N(1))),
        "item",
    );
    c.bench_function("sqlite/put+get", |b| {
        b.iter(|| {
            rt.block_on(async {
                or_die(store.put(item.clone(), Condition::Always).await, "put");
                or_die(store.get(black_box(&item_key)).await, "get")
            })
        })
    });
}

criterion_group!(benches, field, blind_index, key_manager_and_store);
criterion_main!(benches);
