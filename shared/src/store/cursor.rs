//! The opaque continuation cursor: base64url of the last returned item's keys, identical for every backend.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{Index, Item, StoreError};

/// Where the next page starts. Opaque to callers; holds keys only (ids and blind indexes, never plaintext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

#[derive(serde::Serialize, serde::Deserialize)]
struct Position {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gpk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsk: Option<String>,
}

/// The decoded position of a cursor: the keys of the last item returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorPosition {
    pub pk: String,
    pub sk: String,
    /// Set for index queries.
    pub gsi1: Option<(String, String)>,
}

impl Cursor {
    /// Accepts a cursor string from a client; decoding is checked when it is used.
    pub fn parse(raw: &str) -> Result<Self, StoreError> {
        if raw.is_empty()
            || raw.len() > 2048
            || !raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(StoreError::InvalidCursor);
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The cursor after the item at `key` in a walk of the whole table (the retention sweep's scan).
    pub fn after_key(key: &super::ItemKey) -> Self {
        let pos = Position {
            pk: key.pk.clone(),
            sk: key.sk.clone(),
            gpk: None,
            gsk: None,
        };
        let json = serde_json::to_vec(&pos).unwrap_or_default();
        Self(URL_SAFE_NO_PAD.encode(json))
    }

    /// The cursor after `item` in a query of `index`.
    pub fn after(item: &Item, index: Index) -> Self {
        let key = item.key();
        let (gpk, gsk) = match (index, item.gsi1()) {
            (Index::Gsi1, Some((p, s))) => (Some(p.to_owned()), Some(s.to_owned())),
            _ => (None, None),
        };
        let pos = Position {
            pk: key.pk.clone(),
            sk: key.sk.clone(),
            gpk,
            gsk,
        };
        let json = serde_json::to_vec(&pos).unwrap_or_default();
        Self(URL_SAFE_NO_PAD.encode(json))
    }

    /// Decodes the position; `InvalidCursor` if it was not made by [`Cursor::after`] for this index.
    pub fn position(&self, index: Index) -> Result<CursorPosition, StoreError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.0)
            .map_err(|_| StoreError::InvalidCursor)?;
        let pos: Position =
            serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
        let gsi1 = match (index, pos.gpk, pos.gsk) {
            (Index::Table, None, None) => None,
            (Index::Gsi1, Some(p), Some(s)) => Some((p, s)),
            _ => return Err(StoreError::InvalidCursor),
        };
        Ok(CursorPosition {
            pk: pos.pk,
            sk: pos.sk,
            gsi1,
        })
    }
}
