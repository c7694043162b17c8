//! The HTML pages people reach from a link (unsubscribe, confirm an address, reset a password): one small
//! self-contained document (inline style only, as the CSP that `finish` adds allows), every inserted value
//! escaped. They answer in HTML whatever happens: a person reads them in a browser.

pub use super::escape_html as escape;
use super::{Response, StatusCode, html};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;\
line-height:1.5;color:#222}button{font-size:1rem;padding:.6rem 1.4rem;cursor:pointer}\
input{font-size:1rem;padding:.5rem;width:100%;max-width:20rem;box-sizing:border-box}";

/// A page with `title` as heading and `body_html` (already escaped) below it.
pub fn page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let title = escape(title);
    html(
        status,
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"robots\" content=\"noindex\">\
             <title>{title}</title><style>{STYLE}</style></head>\
             <body><h1>{title}</h1>{body_html}</body></html>\n"
        ),
    )
}

/// The answer to a link that names nothing (malformed, unknown, or whose lead or page is gone).
pub fn invalid_link() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<p>This link is not valid or has expired.</p>",
    )
}

/// The answer when a backend failed: no detail, just a request to try again.
pub fn failure(status: StatusCode) -> Response {
    page(
        status,
        "Something went wrong",
        "<p>Something went wrong on our side. Please try again in a moment.</p>",
    )
}
