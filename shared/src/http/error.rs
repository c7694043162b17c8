//! The one error shape of every route: `{"error": {"code": "<snake_case>", "message": "<text>"}}` with a
//! fitting status. Messages are written by qchat and never contain request values or personal data.
//! A 405 also carries `Allow` (RFC 9110 §15.5.6), listing the methods the route accepts.

use std::borrow::Cow;

use http::{HeaderValue, StatusCode, header};

use super::Response;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: Cow<'static, str>,
    /// The `Allow` header's value (a 405's accepted methods), set with [`ApiError::with_allow`].
    allow: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in to use this route",
        )
    }
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(what: &'static str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }
    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub fn too_many_requests(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message)
    }
    /// A 405. RFC 9110 requires its `Allow` header: add the route's methods with
    /// [`ApiError::with_allow`] (or build it with `routes::method_not_allowed`).
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take that method",
        )
    }
    /// Sets the `Allow` header to `methods`, comma-separated in the order given (RFC 9110 §10.2.1).
    pub fn with_allow<'a>(mut self, methods: impl IntoIterator<Item = &'a str>) -> Self {
        self.allow = Some(methods.into_iter().collect::<Vec<_>>().join(", "));
        self
    }
    /// The `Allow` header this answer carries, if any.
    pub fn allow(&self) -> Option<&str> {
        self.allow.as_deref()
    }
    pub fn route_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }
    /// A failure of qchat or its backends. The cause is logged (without personal data) by the caller.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side; try again",
        )
    }
    /// A backend that is temporarily unavailable: the client (or Meta) should retry.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "temporarily unavailable; try again shortly",
        )
    }

    pub fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = super::json(self.status, &body);
        // Method names are tokens (visible ASCII), so the value is always a valid header value.
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.code)
    }
}

impl std::error::Error for ApiError {}

/// Logs a backend failure (its message names the operation, never data) and answers 503 when retrying may
/// help, 500 otherwise.
fn backend_failure(error: &dyn std::error::Error, retryable: bool) -> ApiError {
    tracing::error!(error = %error, retryable, "request failed in a backend");
    if retryable {
        ApiError::unavailable()
    } else {
        ApiError::internal()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        backend_failure(&e, e.is_retryable())
    }
}

impl From<crate::crypto::CryptoError> for ApiError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        backend_failure(&e, false)
    }
}

impl From<crate::accounts::ProfileError> for ApiError {
    fn from(e: crate::accounts::ProfileError) -> Self {
        match e {
            crate::accounts::ProfileError::Store(s) => s.into(),
            other => backend_failure(&other, false),
        }
    }
}
