//! The route table: every HTTP route, the function that serves it, and the handler within that function.
//!
//! Declared once. Each function's router dispatches through it, the local server mounts it, and a test
//! checks that `template.yaml` declares exactly these routes on exactly these functions. A path that
//! exists with other methods answers 405 with `Allow` listing them, derived from this table too.

use crate::http::{ApiError, PathParams};

/// The Lambda functions that serve HTTP routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    Account,
    Webhook,
    Optin,
}

impl Function {
    /// The function's name in `functions/` and its logical id stem in `template.yaml` (`AccountFunction`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Webhook => "webhook",
            Self::Optin => "optin",
        }
    }
}

/// One route. `path` uses API Gateway's syntax: `{name}` matches one non-empty segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub function: Function,
    pub method: &'static str,
    pub path: &'static str,
    /// The handler's name inside the function (what its router dispatches on).
    pub handler: &'static str,
}

const fn r(
    function: Function,
    method: &'static str,
    path: &'static str,
    handler: &'static str,
) -> Route {
    Route {
        function,
        method,
        path,
        handler,
    }
}

use Function::{Account, Optin, Webhook};

/// Every route of the product.
pub const ROUTES: &[Route] = &[
    r(Account, "POST", "/api/accounts", "register"),
    r(Account, "POST", "/api/sessions", "sign_in"),
    r(Account, "DELETE", "/api/sessions/current", "sign_out"),
    r(Account, "DELETE", "/api/sessions", "sign_out_everywhere"),
    r(Account, "GET", "/api/account", "get_account"),
    r(Account, "PATCH", "/api/account", "update_account"),
    r(Account, "POST", "/api/account/password", "change_password"),
    r(Account, "GET", "/api/account/security-log", "security_log"),
    r(
        Account,
        "POST",
        "/api/account/policy-acceptance",
        "accept_policy",
    ),
    r(Account, "POST", "/api/pages", "connect_page"),
    r(Account, "GET", "/api/pages", "list_pages"),
    r(Account, "DELETE", "/api/pages/{page_id}", "disconnect_page"),
    r(
        Account,
        "PUT",
        "/api/pages/{page_id}/access-token",
        "update_page_token",
    ),
    r(Account, "GET", "/api/policies/current", "current_policies"),
    r(Account, "POST", "/api/policies", "publish_policy"),
    r(Account, "POST", "/api/breach-notices", "breach_notice"),
    r(Account, "GET", "/privacy", "privacy_notice"),
    r(Webhook, "GET", "/webhook", "verify"),
    r(Webhook, "POST", "/webhook", "events"),
    r(Optin, "GET", "/u/{token}", "unsubscribe_page"),
    r(Optin, "POST", "/u/{token}", "unsubscribe"),
    r(Optin, "GET", "/api/pages/{page_id}/leads", "list_leads"),
    r(
        Optin,
        "GET",
        "/api/pages/{page_id}/leads/{lead_id}",
        "get_lead",
    ),
    r(
        Optin,
        "POST",
        "/api/pages/{page_id}/leads/{lead_id}/unsubscribe",
        "unsubscribe_lead",
    ),
];

/// The result of matching a request against the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Matched {
    Route(&'static Route, PathParams),
    /// The path exists but not with this method.
    WrongMethod,
    NotFound,
}

fn match_path(pattern: &'static str, path: &str) -> Option<(usize, PathParams)> {
    let mut params = Vec::new();
    let mut literals = 0;
    let mut pat = pattern.trim_start_matches('/').split('/');
    let mut got = path.trim_start_matches('/').split('/');
    loop {
        match (pat.next(), got.next()) {
            (None, None) => return Some((literals, PathParams(params))),
            (Some(p), Some(g)) => {
                if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    if g.is_empty() {
                        return None;
                    }
                    let decoded = percent_encoding::percent_decode_str(g).decode_utf8().ok()?;
                    params.push((name, decoded.into_owned()));
                } else if p == g {
                    literals += 1;
                } else {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// Finds the route for `method` and `path` among `routes`; literal segments win over parameters, as in API
/// Gateway.
pub fn find(routes: &'static [Route], method: &str, path: &str) -> Matched {
    let mut best: Option<(usize, &'static Route, PathParams)> = None;
    let mut path_exists = false;
    for route in routes {
        if let Some((literals, params)) = match_path(route.path, path) {
            path_exists = true;
            if route.method == method && best.as_ref().is_none_or(|(l, _, _)| literals > *l) {
                best = Some((literals, route, params));
            }
        }
    }
    match best {
        Some((_, route, params)) => Matched::Route(route, params),
        None if path_exists => Matched::WrongMethod,
        None => Matched::NotFound,
    }
}

/// The methods `routes` accept for `path`, sorted and each once (empty if no route has that path).
pub fn allowed_methods(routes: &'static [Route], path: &str) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = routes
        .iter()
        .filter(|r| match_path(r.path, path).is_some())
        .map(|r| r.method)
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

/// The 405 answer for `path`, with `Allow` listing the methods its routes accept (RFC 9110 §15.5.6: a
/// 405 must carry it).
pub fn method_not_allowed(path: &str) -> ApiError {
    ApiError::method_not_allowed().with_allow(allowed_methods(ROUTES, path))
}

/// The route of `method` and `path` when `function` serves it; otherwise the 405 (with `Allow`) or 404
/// answer. Every function's router starts here.
pub fn resolve(
    function: Function,
    method: &str,
    path: &str,
) -> Result<(&'static Route, PathParams), ApiError> {
    match find(ROUTES, method, path) {
        Matched::Route(route, params) if route.function == function => Ok((route, params)),
        Matched::WrongMethod => Err(method_not_allowed(path)),
        _ => Err(ApiError::route_not_found()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_win_and_parameters_are_decoded() {
        match find(ROUTES, "DELETE", "/api/sessions/current") {
            Matched::Route(r, _) => assert_eq!(r.handler, "sign_out"),
            other => panic!("{other:?}"),
        }
        match find(ROUTES, "DELETE", "/api/pages/12%33") {
            Matched::Route(r, p) => {
                assert_eq!(r.handler, "disconnect_page");
                assert_eq!(p.get("page_id"), Some("123"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(find(ROUTES, "PUT", "/api/pages"), Matched::WrongMethod);
        assert_eq!(find(ROUTES, "GET", "/api/nothing"), Matched::NotFound);
        assert_eq!(find(ROUTES, "DELETE", "/api/pages/"), Matched::NotFound);
    }

    #[test]
    fn a_known_route_with_another_method_is_405_with_allow_listing_the_routes_methods() {
        for (function, method, path, allow) in [
            (Function::Account, "PUT", "/api/account", "GET, PATCH"),
            (Function::Account, "GET", "/api/sessions", "DELETE, POST"),
            (Function::Account, "GET", "/api/sessions/current", "DELETE"),
            (Function::Account, "PUT", "/api/pages", "GET, POST"),
            (Function::Account, "GET", "/api/pages/123", "DELETE"),
            (Function::Webhook, "DELETE", "/webhook", "GET, POST"),
            (Function::Optin, "PUT", "/u/some-token", "GET, POST"),
            (Function::Optin, "POST", "/api/pages/1/leads", "GET"),
            // Asked of another function, the answer is the same: the method is what is wrong.
            (Function::Optin, "OPTIONS", "/api/policies/current", "GET"),
        ] {
            let e = resolve(function, method, path).expect_err("not routed");
            assert_eq!(
                e.status,
                http::StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(e.code, "method_not_allowed");
            assert_eq!(e.allow(), Some(allow), "{method} {path}");
            let response = e.into_response();
            assert_eq!(
                response
                    .headers()
                    .get(http::header::ALLOW)
                    .map(|v| v.as_bytes()),
                Some(allow.as_bytes()),
                "{method} {path}"
            );
        }
        // Every method in `Allow` is routed, and every route's method is in its path's `Allow`.
        for r in ROUTES {
            let sample = r
                .path
                .replace("{page_id}", "1")
                .replace("{lead_id}", "l1")
                .replace("{token}", "t");
            let allowed = allowed_methods(ROUTES, &sample);
            assert!(allowed.contains(&r.method), "{} {}", r.method, r.path);
            for m in allowed {
                assert!(
                    matches!(find(ROUTES, m, &sample), Matched::Route(..)),
                    "{m} {sample}"
                );
            }
        }
    }

    #[test]
    fn an_unknown_path_or_another_functions_route_is_404_without_allow() {
        let e = resolve(Function::Account, "GET", "/api/nothing").expect_err("unknown");
        assert_eq!(e.status, http::StatusCode::NOT_FOUND);
        assert_eq!(e.allow(), None);
        assert!(
            !e.into_response()
                .headers()
                .contains_key(http::header::ALLOW)
        );
        // Another function's route is not found here, whatever its methods.
        let e = resolve(Function::Optin, "GET", "/api/account").expect_err("not optin's");
        assert_eq!((e.status, e.allow()), (http::StatusCode::NOT_FOUND, None));
        assert!(allowed_methods(ROUTES, "/api/nothing").is_empty());
    }

    #[test]
    fn every_method_and_path_is_declared_once() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} declared twice",
                r.method,
                r.path
            );
        }
    }
}
