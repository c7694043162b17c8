//! qchat's shared library: domain types, the ports every function talks through, and their AWS and
//! embedded backends. Functions are thin: they parse at the edge, call into here, and map errors to HTTP.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod aws_env;
pub mod bot_texts;
pub mod broadcast;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod erasure;
pub mod http;
pub mod https;
pub mod i18n;
pub mod ids;
pub mod inventory;
pub mod jobs;
pub mod lambda;
pub mod leads;
pub mod limits;
pub mod mail;
pub mod messenger;
pub mod meta_deletion;
pub mod meta_secrets;
pub mod outbox;
pub mod pages;
pub mod password;
pub mod policies;
pub mod processing;
pub mod replies;
pub mod retention;
pub mod routes;
pub mod store;
pub mod telemetry;
pub mod text;

#[cfg(feature = "test-support")]
pub mod test_support;
