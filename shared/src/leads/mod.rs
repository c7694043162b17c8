//! Leads: one person on one page, with the proof of their consent.
//!
//! A lead holds only what SPEC §3 "minimal collection" allows: the person's page-scoped id (sealed, and
//! blind-indexed into the lead id), the page, the status, when the person last wrote (for Meta's 24-hour
//! window), the marketing-messages token (sealed) and its status, and the head of the consent chain.
//! Nothing from message text is kept.
//!
//! Marketing messages (`notification_messages`) follow the lead's consent, never the other way round:
//! - an opt-out of any kind (STOP, the unsubscribe link, the account holder, "No", DELETE MY DATA)
//!   withdraws everything: the lead becomes `unsubscribed` and an active marketing token `stopped` in
//!   the same write ([`ops::transition_ops`]), the opt-out record being the proof of both;
//! - the person's marketing STOP (in Messenger) withdraws consent to the page's messages altogether, the
//!   24-hour window's broadcasts included, as Meta's policy says to honour every opt-out: `unsubscribed`
//!   and the token `stopped`, recorded as `marketing_stop`;
//! - a marketing opt-in, and the person's RESUME, are explicit consent: the token is active and the lead
//!   `subscribed` (with a fresh unsubscribe link, as every subscription gets). START or Yes after an
//!   opt-out subscribes again but leaves a stopped token stopped: only the person's own RESUME (or a
//!   new opt-in) turns marketing messages back on.
//!
//! Meta allows one marketing message per person per 48 hours. Nothing sends with a marketing token yet,
//! so no mark of the last one is stored: the broadcast sender, when it is built, records it on the lead
//! (and declares it in the inventory).
//!
//! The lead id is random: the blind index of the page and the person's id finds it through a lookup in
//! the key store ([`lookup`]), which backups do not copy, so a restored main store holds no value
//! computable from a person's id. Ids of different pages cannot be linked.

pub mod consent;
pub mod erase;
pub mod erase_lead;
pub mod lookup;
pub mod ops;
pub mod record;
pub mod unsubscribe;

pub use consent::{Action, ConsentEvent, ConsentRecord, GENESIS_HASH, verify_chain};
pub use lookup::{find_lead, subject_index};
pub use record::{Lead, LeadStatus, MARKETING_ACTIVE, MARKETING_STOPPED, Subject, lead_key};
pub use unsubscribe::{UnsubscribeToken, unsubscribe_key};
