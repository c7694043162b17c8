//! An account holder's rights over the whole account: its erasure ([`account`]: a resumable job that
//! removes every item of the account and finally destroys its data key) and its export ([`export`]:
//! everything held about it, decrypted, one bounded section page per call).

pub mod account;
pub mod export;
