//! Building responses, and the security headers every response carries.

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use super::Response;

/// The content security policy of qchat's own HTML pages: nothing but inline styles and same-origin forms.
const HTML_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn with_body(status: StatusCode, content_type: &'static str, body: Bytes) -> Response {
    let mut r = http::Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A JSON response.
pub fn json<T: serde::Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(v) => with_body(status, "application/json", Bytes::from(v)),
        Err(_) => with_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            Bytes::from_static(
                br#"{"error":{"code":"internal","message":"response could not be encoded"}}"#,
            ),
        ),
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// An HTML page (qchat's own, escaped by its caller with [`escape_html`]).
pub fn html(status: StatusCode, page: String) -> Response {
    with_body(status, "text/html; charset=utf-8", Bytes::from(page))
}

/// 204 No Content.
pub fn no_content() -> Response {
    let mut r = http::Response::new(Bytes::new());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// 303 See Other to a qchat path.
pub fn redirect(location: &str) -> Response {
    let mut r = http::Response::new(Bytes::new());
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Adds the headers every response carries: HSTS, `nosniff`, `no-referrer`, `no-store` (responses of an
/// API about people are never cached), and the strict CSP on HTML unless the page set its own (the
/// console's allows its same-origin script).
pub fn finish(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=63072000; includeSubDomains"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    let is_html = h
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_html {
        h.entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(HeaderValue::from_static(HTML_CSP));
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    r
}
