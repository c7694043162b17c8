//! Leads: one person on one page, with the proof of their consent.
//!
//! A lead holds only what SPEC §3 "minimal collection" allows: the person's page-scoped id (sealed, and
//! blind-indexed into the lead id), the page, the status, when the person last wrote (for Meta's 24-hour
//! window), the marketing-messages token (sealed) and its status, and the head of the consent chain.
//! Nothing from message text is kept.
//!
//! The lead id is a keyed HMAC of the page and the person's id: the same person on the same page always
//! maps to the same lead without any lookup item, and ids of different pages cannot be linked.

pub mod consent;
pub mod erase;
pub mod ops;
pub mod record;
pub mod unsubscribe;

pub use consent::{Action, ConsentEvent, ConsentRecord, GENESIS_HASH, verify_chain};
pub use record::{Lead, LeadStatus, Subject, lead_id, lead_key};
pub use unsubscribe::{UnsubscribeToken, unsubscribe_key};
