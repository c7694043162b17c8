//! The console at `/app`: one HTML shell, one script and one style sheet, compiled into the binary and
//! served by the account function, on the same origin as the API it calls with the session cookie.
//!
//! The asset URLs carry a hash of their content (`/app/assets/console-<hash>.js`), so they may be cached
//! for a year: a new build changes the hash and so the URL. Any other asset name is 404, never an old
//! file. The shell itself is never cached (it names the current hashes). Its CSP lets scripts, styles and
//! requests come from this origin only, with no inline script or style at all.

use std::sync::LazyLock;

use qchat_shared::crypto::OneWayHash;
use qchat_shared::http::{ApiError, Bytes, PathParams, Response, StatusCode};

const SHELL: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/console.js");
const STYLE: &str = include_str!("../console/console.css");

/// The console's content security policy: same-origin script, style and fetch; nothing inline.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

struct Asset {
    name: String,
    body: &'static str,
    content_type: &'static str,
}

fn asset(stem: &str, ext: &str, body: &'static str, content_type: &'static str) -> Asset {
    let digest = OneWayHash::sha256_of(body.as_bytes());
    let hash = digest.as_str().get(..16).unwrap_or_default();
    Asset {
        name: format!("{stem}-{hash}.{ext}"),
        body,
        content_type,
    }
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        asset("console", "js", SCRIPT, "text/javascript; charset=utf-8"),
        asset("console", "css", STYLE, "text/css; charset=utf-8"),
    ]
});

static PAGE: LazyLock<String> = LazyLock::new(|| {
    let [script, style] = &*ASSETS;
    SHELL
        .replace("{{script}}", &format!("/app/assets/{}", script.name))
        .replace("{{style}}", &format!("/app/assets/{}", style.name))
});

fn with_headers(
    mut r: Response,
    csp: Option<&'static str>,
    cache: Option<&'static str>,
) -> Response {
    let h = r.headers_mut();
    if let Some(csp) = csp {
        h.insert(
            http::header::CONTENT_SECURITY_POLICY,
            http::HeaderValue::from_static(csp),
        );
    }
    if let Some(cache) = cache {
        h.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static(cache),
        );
    }
    r
}

/// `GET /app`: the shell.
pub fn shell() -> Response {
    let r = qchat_shared::http::html(StatusCode::OK, PAGE.clone());
    with_headers(r, Some(CONSOLE_CSP), None)
}

/// `GET /app/assets/{file}`: the script or style sheet of this build, by its hashed name.
pub fn asset_file(params: &PathParams) -> Result<Response, ApiError> {
    let name = params.get("file").unwrap_or_default();
    let found = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(ApiError::route_not_found)?;
    let mut r = http::Response::new(Bytes::from_static(found.body.as_bytes()));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(found.content_type),
    );
    Ok(with_headers(r, None, Some(IMMUTABLE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shell_names_each_asset_by_its_content_hash_and_nothing_inline() {
        let page = &*PAGE;
        for a in ASSETS.iter() {
            assert!(
                page.contains(&format!("/app/assets/{}", a.name)),
                "{}",
                a.name
            );
        }
        assert!(!page.contains("{{"), "every placeholder is filled");
        assert!(
            !page.contains("<script>") && !page.contains("style="),
            "nothing inline"
        );
        assert!(!CONSOLE_CSP.contains("unsafe"));
    }

    #[test]
    fn only_the_current_asset_names_are_served_and_they_are_cached_for_a_year() {
        let params = |f: &str| PathParams(vec![("file", f.to_owned())]);
        let js = &ASSETS[0].name;
        let r = asset_file(&params(js)).expect("served");
        assert_eq!(r.headers()[http::header::CACHE_CONTROL], IMMUTABLE);
        for other in ["console.js", "console-0000000000000000.js", "../Cargo.toml"] {
            assert_eq!(
                asset_file(&params(other)).expect_err("404").status,
                StatusCode::NOT_FOUND
            );
        }
    }
}
