//! The data inventory: every item type the store holds and every attribute of each, declared once.
//!
//! The item-encoding layer ([`crate::store::Item`]) refuses any attribute not declared here, and refuses a
//! value whose protection does not match the declaration (a personal attribute can only be given a sealed
//! ciphertext, a blind index or a one-way hash). The privacy notice is rendered from this table, so the
//! notice cannot drift from what the code stores.

/// What kind of data an attribute holds (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Identifier,
    Contact,
    Content,
    Credential,
    Security,
    Technical,
}

/// How an attribute is protected at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    /// AES-256-GCM under the owner's data key ([`crate::crypto::Sealed`]).
    Encrypted,
    /// Keyed HMAC-SHA256 ([`crate::crypto::BlindIndex`]): equality lookups without the value.
    BlindIndex,
    /// SHA-256 of a random token, or an argon2id password hash ([`crate::crypto::OneWayHash`]).
    OneWayHash,
    /// Stored as is, because it is not personal.
    Plain,
}

/// How long an item is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Retention {
    /// Kept while its owner (account, page or lead) exists; erased with it.
    WhileOwnerExists,
    /// Expires this many seconds after it is written (or after the event named in the purpose); the item
    /// carries the TTL attribute and is treated as absent once expired.
    Expires { seconds: i64 },
    /// Has a TTL attribute whose time the writer chooses (for example "48 h after last use").
    ExpiresAtWriterChosenTime,
}

impl Retention {
    pub const fn needs_ttl(self) -> bool {
        !matches!(self, Self::WhileOwnerExists)
    }
}

/// One declared attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Attribute {
    pub name: &'static str,
    pub category: Category,
    pub personal: bool,
    pub protection: Protection,
    pub purpose: &'static str,
}

/// One declared item type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ItemType {
    pub name: &'static str,
    pub description: &'static str,
    /// The shape of the partition and sort keys, for readers (ids and blind indexes only, never plaintext).
    pub key_shape: &'static str,
    pub retention: Retention,
    pub attributes: &'static [Attribute],
}

impl ItemType {
    pub fn attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

/// Attributes every item has or may have, managed by the store layer itself.
pub const STRUCTURAL: &[Attribute] = &[
    Attribute {
        name: "pk",
        category: Category::Identifier,
        personal: false,
        protection: Protection::BlindIndex,
        purpose: "partition key: opaque ids and blind indexes only",
    },
    Attribute {
        name: "sk",
        category: Category::Identifier,
        personal: false,
        protection: Protection::BlindIndex,
        purpose: "sort key: opaque ids, times and blind indexes only",
    },
    Attribute {
        name: "t",
        category: Category::Technical,
        personal: false,
        protection: Protection::Plain,
        purpose: "the item type, naming its entry in this inventory",
    },
    Attribute {
        name: "v",
        category: Category::Technical,
        personal: false,
        protection: Protection::Plain,
        purpose: "version number for optimistic concurrency",
    },
    Attribute {
        name: "ttl",
        category: Category::Technical,
        personal: false,
        protection: Protection::Plain,
        purpose: "expiry time (epoch seconds); the item is treated as absent from then on",
    },
    Attribute {
        name: "gsi1pk",
        category: Category::Identifier,
        personal: false,
        protection: Protection::BlindIndex,
        purpose: "secondary index partition: opaque ids and blind indexes only",
    },
    Attribute {
        name: "gsi1sk",
        category: Category::Identifier,
        personal: false,
        protection: Protection::BlindIndex,
        purpose: "secondary index sort key: opaque ids, times and blind indexes only",
    },
];

/// Wrapped per-owner data keys (envelope encryption).
pub const DATA_KEY: ItemType = ItemType {
    name: "data_key",
    description: "An owner's data key, wrapped by KMS (or the local master key). Destroying it makes the \
                  owner's ciphertexts, including those in backups, unreadable.",
    key_shape: "pk = DATAKEY#<owner>, sk = V#<version, 10 digits>",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        Attribute {
            name: "wrapped",
            category: Category::Security,
            personal: false,
            protection: Protection::Plain,
            purpose: "the data key encrypted by the key-encryption key; useless without KMS",
        },
        Attribute {
            name: "created",
            category: Category::Technical,
            personal: false,
            protection: Protection::Plain,
            purpose: "when the key version was created (ms), for rotation",
        },
    ],
};

/// Every item type the product stores. Add a type here before writing it.
pub const ITEM_TYPES: &[&ItemType] = &[&DATA_KEY];

/// Item types that exist only so the conformance suites can exercise the store; never in production data.
#[cfg(feature = "test-support")]
pub const TEST_ITEM_TYPES: &[&ItemType] = &[
    &crate::test_support::PROBE,
    &crate::test_support::PROBE_EXPIRING,
];

/// Looks up a declared item type by its stored name.
pub fn item_type(name: &str) -> Option<&'static ItemType> {
    let found = ITEM_TYPES.iter().copied().find(|t| t.name == name);
    #[cfg(feature = "test-support")]
    let found = found.or_else(|| TEST_ITEM_TYPES.iter().copied().find(|t| t.name == name));
    found
}

/// Whether `attribute` may be stored on an item of type `type_name`.
pub fn is_declared(type_name: &str, attribute: &str) -> bool {
    STRUCTURAL.iter().any(|a| a.name == attribute)
        || item_type(type_name).is_some_and(|t| t.attribute(attribute).is_some())
}

/// The inventory as a plain-text table: item type, attribute, category, personal, protection, purpose,
/// retention. Printed by the inventory test and used in the README.
pub fn as_table() -> String {
    let mut out = String::from(
        "item type | attribute | category | personal | protection | retention | purpose\n",
    );
    for t in ITEM_TYPES {
        let retention = match t.retention {
            Retention::WhileOwnerExists => "while owner exists".to_owned(),
            Retention::Expires { seconds } => format!("{} h (TTL)", seconds / 3600),
            Retention::ExpiresAtWriterChosenTime => "TTL set per item".to_owned(),
        };
        for a in t.attributes {
            out.push_str(&format!(
                "{} | {} | {:?} | {} | {:?} | {} | {}\n",
                t.name,
                a.name,
                a.category,
                if a.personal { "yes" } else { "no" },
                a.protection,
                retention,
                a.purpose
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_personal_attribute_is_protected_and_every_expiring_type_is_consistent() {
        for t in ITEM_TYPES {
            for a in t.attributes {
                assert!(
                    !(a.personal && a.protection == Protection::Plain),
                    "{}.{} is personal but stored plain",
                    t.name,
                    a.name
                );
                assert!(
                    !a.purpose.is_empty(),
                    "{}.{} has no purpose",
                    t.name,
                    a.name
                );
                assert!(
                    !STRUCTURAL.iter().any(|s| s.name == a.name),
                    "{}.{} shadows a structural attribute",
                    t.name,
                    a.name
                );
            }
        }
    }

    #[test]
    fn item_type_names_are_unique() {
        let mut names: Vec<_> = ITEM_TYPES.iter().map(|t| t.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
