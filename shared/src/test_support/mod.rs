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
