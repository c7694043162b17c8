//! Test support (feature `test-support`): the moto emulator harness, probe item types for the store suite,
//! and log capture. Never used by production code.

pub mod counting;
pub mod links;
pub mod logs;
pub mod moto;

use crate::inventory::{Attribute, Category, ItemType, Protection, Retention};

const fn probe_attr(name: &'static str, protection: Protection) -> Attribute {
    Attribute {
        name,
        category: Category::Technical,
        personal: false,
        protection,
        purpose: "conformance tests",
    }
}

const PROBE_ATTRIBUTES: &[Attribute] = &[
    probe_attr("label", Protection::Plain),
    probe_attr("count", Protection::Plain),
    probe_attr("flag", Protection::Plain),
    probe_attr("blob", Protection::Plain),
    probe_attr("secret", Protection::Encrypted),
    probe_attr("lookup", Protection::BlindIndex),
    probe_attr("digest", Protection::OneWayHash),
];

/// An item type for the store conformance suite; may carry a TTL.
pub const PROBE: ItemType = ItemType {
    name: "test_probe",
    description: "conformance-suite probe",
    key_shape: "any",
    retention: Retention::WhileOwnerExists,
    attributes: PROBE_ATTRIBUTES,
};

/// Like [`PROBE`], but an expiring type: writing it without a TTL is refused.
pub const PROBE_EXPIRING: ItemType = ItemType {
    name: "test_probe_expiring",
    description: "conformance-suite probe that must expire",
    key_shape: "any",
    retention: Retention::ExpiresAtWriterChosenTime,
    attributes: PROBE_ATTRIBUTES,
};

/// A name unique to this process and call, for tables, folders and keys that tests must not share.
pub fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        crate::ids::base32_lower(&crate::crypto::random_bytes::<8>())
    )
}

/// The two stores of an app in a data folder, as the local server opens them (main and key store files).
///
/// # Panics
/// If a file cannot be opened (a test set-up failure).
pub fn sqlite_stores(
    dir: &std::path::Path,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> crate::app::Stores {
    use crate::app::local_files;
    use crate::store::sqlite::SqliteStore;
    let open = |name: &str| {
        SqliteStore::open(&dir.join(name), clock.clone())
            .unwrap_or_else(|e| panic!("the SQLite store {name} opens: {e}"))
    };
    crate::app::Stores {
        main: std::sync::Arc::new(open(local_files::STORE)),
        keys: std::sync::Arc::new(open(local_files::KEY_STORE)),
    }
}

/// Two fresh tables on the moto emulator, `<label>-…` and `<label>-keys-…`, created as the template
/// creates them; the stores and the table names (main, key).
///
/// # Panics
/// If a table cannot be created (a test set-up failure).
pub async fn moto_stores(
    client: &aws_sdk_dynamodb::Client,
    label: &str,
    clock: std::sync::Arc<dyn crate::clock::Clock>,
) -> (crate::app::Stores, String, String) {
    use crate::store::ItemStore as _;
    use crate::store::dynamodb::DynamoStore;
    let table = unique_name(label);
    let key_table = unique_name(&format!("{label}-keys"));
    let main = DynamoStore::new(client.clone(), table.clone(), clock.clone());
    let keys = DynamoStore::new(client.clone(), key_table.clone(), clock);
    for store in [&main, &keys] {
        store
            .ensure_schema()
            .await
            .unwrap_or_else(|e| panic!("a moto table is created: {e}"));
    }
    (
        crate::app::Stores {
            main: std::sync::Arc::new(main),
            keys: std::sync::Arc::new(keys),
        },
        table,
        key_table,
    )
}
