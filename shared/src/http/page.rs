//! The HTML pages people reach from a link (unsubscribe, confirm an address, reset a password): one small
//! self-contained document (inline style only, as the CSP that `finish` adds allows), every inserted value
//! escaped. They answer in HTML whatever happens: a person reads them in a browser. The pages a person
//! from the public opens (unsubscribe, erasure status, "Link not valid") are in the browser's language
//! ([`crate::i18n`]); an account holder's pages are in English.

pub use super::escape_html as escape;
use super::{Response, StatusCode, html};
use crate::i18n::Lang;
use http::{HeaderValue, header};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;\
line-height:1.5;color:#222}button{font-size:1rem;padding:.6rem 1.4rem;cursor:pointer}\
input{font-size:1rem;padding:.5rem;width:100%;max-width:20rem;box-sizing:border-box}";

/// A page in English with `title` as heading and `body_html` (already escaped) below it.
pub fn page(status: StatusCode, title: &str, body_html: &str) -> Response {
    page_in(Lang::En, status, title, body_html)
}

/// A page in `lang` (declared in `<html lang>` and `Content-Language`; `Vary: Accept-Language`, as the
/// language was chosen from that header) with `title` as heading and `body_html` (already escaped) below.
pub fn page_in(lang: Lang, status: StatusCode, title: &str, body_html: &str) -> Response {
    let title = escape(title);
    let code = lang.code();
    let mut r = html(
        status,
        format!(
            "<!doctype html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <meta name=\"robots\" content=\"noindex\">\
             <title>{title}</title><style>{STYLE}</style></head>\
             <body><main><h1>{title}</h1>{body_html}</main></body></html>\n"
        ),
    );
    r.headers_mut()
        .insert(header::CONTENT_LANGUAGE, HeaderValue::from_static(code));
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    r
}

/// The answer to a link that names nothing (malformed, unknown, or whose lead or page is gone).
pub fn invalid_link(lang: Lang) -> Response {
    let t = lang.texts();
    page_in(
        lang,
        StatusCode::NOT_FOUND,
        t.invalid_link_title,
        &format!("<p>{}</p>", escape(t.invalid_link_body)),
    )
}

/// The answer when a backend failed: no detail, just a request to try again.
pub fn failure(lang: Lang, status: StatusCode) -> Response {
    let t = lang.texts();
    page_in(
        lang,
        status,
        t.failure_title,
        &format!("<p>{}</p>", escape(t.failure_body)),
    )
}
