//! HTTP plumbing shared by every function: request and response types independent of Lambda (so the local
//! server mounts the very same handlers), JSON errors, security headers, cookies and bearer tokens.
//!
//! Every response leaves through [`finish`], which adds the security headers SPEC §4 asks for.

mod body;
mod cookie;
mod error;
pub mod page;
mod response;

pub use body::{MAX_JSON_BODY, check_json_object, form_field, parse_json, query_param, wants_json};
pub use cookie::{SESSION_COOKIE, clear_session_cookie, session_cookie, session_token};
pub use error::ApiError;
pub use response::{escape_html, finish, html, json, no_content, redirect};

pub use bytes::Bytes;
pub use http::{Method, StatusCode};

/// A request as every handler sees it (Lambda and the local server both convert to this).
pub type Request = http::Request<Bytes>;
/// A response as every handler makes it.
pub type Response = http::Response<Bytes>;

/// The caller's network address, put into the request's extensions by the Lambda adapter (from the API
/// Gateway request context) or by the local server (from the socket). Personal: never logged, only sealed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

impl std::fmt::Debug for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientAddr(<redacted>)")
    }
}

/// Path parameters of the matched route, put into the request's extensions by the router.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParams(pub Vec<(&'static str, String)>);

impl PathParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}
