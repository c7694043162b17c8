//! Items and their encoding: the only way to build something the store will write.
//!
//! An [`Item`] is made for a declared [`ItemType`]; each setter checks the attribute against the data
//! inventory and takes the type its protection demands ([`Sealed`] for encrypted attributes,
//! [`BlindIndex`], [`OneWayHash`], or a plain [`Value`] only for non-personal attributes). So an undeclared
//! attribute, or a personal value in plaintext, cannot reach a backend.

use std::collections::BTreeMap;

use crate::clock::Timestamp;
use crate::crypto::{BlindIndex, OneWayHash, Sealed};
use crate::inventory::{self, ItemType, Protection};

/// Primary key of an item. Keys hold opaque ids, times and blind indexes only, never plaintext personal data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemKey {
    pub pk: String,
    pub sk: String,
}

impl ItemKey {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// A stored attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    S(String),
    N(i64),
    B(Vec<u8>),
    Bool(bool),
}

/// Why an item was refused by the inventory. Names the attribute, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    #[error("item type {0:?} is not declared in the data inventory")]
    UndeclaredType(String),
    #[error("attribute {attribute:?} is not declared for item type {item_type:?}")]
    UndeclaredAttribute {
        item_type: String,
        attribute: String,
    },
    #[error(
        "attribute {attribute:?} of {item_type:?} is declared {declared:?}, not written that way"
    )]
    WrongProtection {
        item_type: String,
        attribute: String,
        declared: Protection,
    },
    #[error("item type {0:?} expires and must be written with a TTL")]
    MissingTtl(String),
}

/// One item: keys, type, optional version, TTL and index keys, and declared attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    key: ItemKey,
    item_type: &'static ItemType,
    version: Option<u64>,
    expires: Option<Timestamp>,
    gsi1: Option<(String, String)>,
    attrs: BTreeMap<String, Value>,
}

impl Item {
    /// A new item of a declared type.
    pub fn new(item_type: &'static ItemType, key: ItemKey) -> Self {
        Self {
            key,
            item_type,
            version: None,
            expires: None,
            gsi1: None,
            attrs: BTreeMap::new(),
        }
    }

    fn check(&self, attribute: &str, written_as: Protection) -> Result<(), InventoryError> {
        let Some(declared) = self.item_type.attribute(attribute) else {
            return Err(InventoryError::UndeclaredAttribute {
                item_type: self.item_type.name.to_owned(),
                attribute: attribute.to_owned(),
            });
        };
        if declared.protection != written_as {
            return Err(InventoryError::WrongProtection {
                item_type: self.item_type.name.to_owned(),
                attribute: attribute.to_owned(),
                declared: declared.protection,
            });
        }
        Ok(())
    }

    /// Sets a non-personal attribute declared `Plain`.
    pub fn plain(mut self, attribute: &str, value: Value) -> Result<Self, InventoryError> {
        self.check(attribute, Protection::Plain)?;
        self.attrs.insert(attribute.to_owned(), value);
        Ok(self)
    }

    /// Sets an attribute declared `Encrypted` to a ciphertext sealed for this item key and attribute.
    pub fn sealed(mut self, attribute: &str, value: Sealed) -> Result<Self, InventoryError> {
        self.check(attribute, Protection::Encrypted)?;
        self.attrs
            .insert(attribute.to_owned(), Value::B(value.into_bytes()));
        Ok(self)
    }

    /// Sets an attribute declared `BlindIndex`.
    pub fn blind_index(
        mut self,
        attribute: &str,
        value: &BlindIndex,
    ) -> Result<Self, InventoryError> {
        self.check(attribute, Protection::BlindIndex)?;
        self.attrs
            .insert(attribute.to_owned(), Value::S(value.as_str().to_owned()));
        Ok(self)
    }

    /// Sets an attribute declared `OneWayHash`.
    pub fn hashed(mut self, attribute: &str, value: &OneWayHash) -> Result<Self, InventoryError> {
        self.check(attribute, Protection::OneWayHash)?;
        self.attrs
            .insert(attribute.to_owned(), Value::S(value.as_str().to_owned()));
        Ok(self)
    }

    /// Sets the version attribute `v` (compared by [`super::Condition::VersionIs`]).
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Sets the TTL: from `at` on the item is absent to every read.
    ///
    /// The TTL has whole-second precision (DynamoDB's TTL attribute is epoch seconds), so `at` is rounded
    /// down to its second here, and an item reads back exactly as it was written.
    pub fn expires_at(mut self, at: Timestamp) -> Self {
        self.expires = Some(Timestamp::from_secs(at.secs()));
        self
    }

    /// Puts the item in the sparse secondary index.
    pub fn with_gsi1(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi1 = Some((pk.into(), sk.into()));
        self
    }

    /// Takes the item out of the sparse secondary index.
    pub fn without_gsi1(mut self) -> Self {
        self.gsi1 = None;
        self
    }

    /// Removes an attribute (a value no longer needed, such as a link token once its mail is sent).
    pub fn without(mut self, attribute: &str) -> Self {
        self.attrs.remove(attribute);
        self
    }

    /// Checks the whole item before it is written: its type expires ⇒ it has a TTL.
    pub fn validate_for_write(&self) -> Result<(), InventoryError> {
        if self.item_type.retention.needs_ttl() && self.expires.is_none() {
            return Err(InventoryError::MissingTtl(self.item_type.name.to_owned()));
        }
        Ok(())
    }

    /// Rebuilds an item read from a backend. Checks the type and every attribute against the inventory.
    pub(crate) fn from_stored(
        type_name: &str,
        key: ItemKey,
        version: Option<u64>,
        expires: Option<Timestamp>,
        gsi1: Option<(String, String)>,
        attrs: BTreeMap<String, Value>,
    ) -> Result<Self, InventoryError> {
        let item_type = inventory::item_type(type_name)
            .ok_or_else(|| InventoryError::UndeclaredType(type_name.to_owned()))?;
        if let Some(name) = attrs
            .keys()
            .find(|name| item_type.attribute(name).is_none())
        {
            return Err(InventoryError::UndeclaredAttribute {
                item_type: type_name.to_owned(),
                attribute: name.clone(),
            });
        }
        Ok(Self {
            key,
            item_type,
            version,
            expires,
            gsi1,
            attrs,
        })
    }

    pub fn key(&self) -> &ItemKey {
        &self.key
    }
    pub fn item_type(&self) -> &'static ItemType {
        self.item_type
    }
    pub fn version(&self) -> Option<u64> {
        self.version
    }
    pub fn expires(&self) -> Option<Timestamp> {
        self.expires
    }
    pub fn gsi1(&self) -> Option<(&str, &str)> {
        self.gsi1.as_ref().map(|(p, s)| (p.as_str(), s.as_str()))
    }
    /// The declared (non-structural) attributes, by name.
    pub fn attributes(&self) -> &BTreeMap<String, Value> {
        &self.attrs
    }

    /// Whether the item is expired at `now` (TTL at or before now).
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|t| t.secs() <= now.secs())
    }

    pub fn get(&self, attribute: &str) -> Option<&Value> {
        self.attrs.get(attribute)
    }
    pub fn get_str(&self, attribute: &str) -> Option<&str> {
        match self.attrs.get(attribute) {
            Some(Value::S(s)) => Some(s),
            _ => None,
        }
    }
    pub fn get_i64(&self, attribute: &str) -> Option<i64> {
        match self.attrs.get(attribute) {
            Some(Value::N(n)) => Some(*n),
            _ => None,
        }
    }
    pub fn get_bool(&self, attribute: &str) -> Option<bool> {
        match self.attrs.get(attribute) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    pub fn get_bytes(&self, attribute: &str) -> Option<&[u8]> {
        match self.attrs.get(attribute) {
            Some(Value::B(b)) => Some(b),
            _ => None,
        }
    }
    /// An encrypted attribute's ciphertext, to open with the owner's [`crate::crypto::FieldCipher`].
    pub fn get_sealed(&self, attribute: &str) -> Option<Sealed> {
        self.get_bytes(attribute)
            .map(|b| Sealed::from_bytes(b.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::DATA_KEY;

    #[test]
    fn refuses_an_undeclared_attribute() {
        let item = Item::new(&DATA_KEY, ItemKey::new("DATAKEY#a", "V#1"))
            .plain("nickname", Value::S("x".into()));
        assert!(matches!(
            item,
            Err(InventoryError::UndeclaredAttribute { .. })
        ));
    }

    #[test]
    fn refuses_a_plain_value_for_a_hashed_attribute_and_the_reverse() {
        let key = ItemKey::new("DATAKEY#a", "V#1");
        let wrong = Item::new(&DATA_KEY, key).hashed("wrapped", &OneWayHash::sha256_of(b"x"));
        assert!(matches!(wrong, Err(InventoryError::WrongProtection { .. })));
    }
}
