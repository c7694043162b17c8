//! Broadcasts: a message an account holder sends to a page's leads, within Meta's rules and each person's
//! own choices (SPEC §4 "broadcast", MESSENGER.md §3).

pub mod draft;

pub use draft::{Audience, Draft, UrlButton};
