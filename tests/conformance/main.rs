//! One test binary running every port conformance suite against every backend.
//! Test names read `<port>::<backend>::<case>`, so the output shows which backends ran.

mod crypto;
mod mail;
mod messenger;
mod store;
