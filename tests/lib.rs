//! Shared helpers for the black-box test binaries of this crate.
