//! The console's shell and assets as the account function serves them: its own CSP (same-origin script,
//! nothing inline), the security headers, asset URLs named by their content hash and cached for a year,
//! and no other asset name served.

use http::Method;

use crate::helpers::{Backend, TestApp};

pub async fn the_console_is_served_under_its_csp_with_hashed_assets_cached_for_a_year(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let shell = app.request(Method::GET, "/app", None, &[]).await;
    shell.assert_status(200);
    assert_eq!(
        shell.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = shell.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(
        csp.contains("connect-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(shell.header("cache-control"), Some("no-store"));
    assert_eq!(shell.header("x-frame-options"), Some("DENY"));

    let html = shell.text();
    let assets: Vec<&str> = html
        .split('"')
        .filter(|s| s.starts_with("/app/assets/"))
        .collect();
    assert_eq!(
        assets.len(),
        2,
        "one script and one style sheet: {assets:?}"
    );
    for path in &assets {
        let a = app.request(Method::GET, path, None, &[]).await;
        a.assert_status(200);
        assert_eq!(
            a.header("cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        let kind = a.header("content-type").unwrap();
        assert!(
            kind.starts_with("text/javascript") || kind.starts_with("text/css"),
            "{kind}"
        );
        assert!(!a.body.is_empty());
    }

    for other in [
        "/app/assets/console.js",
        "/app/assets/console-0000000000000000.js",
    ] {
        app.request(Method::GET, other, None, &[])
            .await
            .assert_error(404, "not_found");
    }
    // The public pages keep their own, stricter policy: no script at all.
    let privacy = app.request(Method::GET, "/privacy", None, &[]).await;
    assert!(
        !privacy
            .header("content-security-policy")
            .unwrap()
            .contains("script-src")
    );
}
