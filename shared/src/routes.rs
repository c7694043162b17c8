//! The route table: every HTTP route, the function and handler that serve it, and the body it takes.
//!
//! Declared once. Each function's router resolves requests through it and dispatches with an exhaustive
//! `match` on its own handler enum ([`AccountRoute`], [`WebhookRoute`], [`OptinRoute`],
//! [`BroadcastRoute`], [`EraseRoute`]), so a handler
//! without an arm does not compile; a test checks that every handler has exactly one route. The local
//! server mounts the same table, and a test checks that `template.yaml` declares exactly these routes on
//! exactly these functions.
//!
//! Before any handler runs, [`accept`] enforces what the table says of the body ([`Body`]): a JSON route
//! takes only `Content-Type: application/json` (415 otherwise, so a cross-site form post cannot reach it)
//! and only a JSON object (400 for an array or any other value). Every `GET` route also answers `HEAD`,
//! as the `GET` without its body. A path that exists with other methods answers 405 with `Allow`.

use crate::http::{ApiError, PathParams, Request, Response, StatusCode, finish};

/// The Lambda functions that serve HTTP routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    Account,
    Webhook,
    Optin,
    Broadcast,
    Erase,
}

impl Function {
    /// The function's name in `functions/` and its logical id stem in `template.yaml` (`AccountFunction`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Webhook => "webhook",
            Self::Optin => "optin",
            Self::Broadcast => "broadcast",
            Self::Erase => "erase",
        }
    }
}

/// Declares a function's handler enum and the list of all its handlers (for the coverage test).
macro_rules! handlers {
    ($(#[$doc:meta])* $name:ident { $($variant:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }
        impl $name {
            /// Every handler of the function.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];
        }
    };
}

handlers!(
    /// The account function's handlers.
    AccountRoute {
        Register,
        SignIn,
        SignOut,
        SignOutEverywhere,
        GetAccount,
        UpdateAccount,
        ChangePassword,
        SecurityLog,
        AcceptPolicy,
        ConnectPage,
        ListPages,
        DisconnectPage,
        UpdatePageToken,
        CurrentPolicies,
        PublishPolicy,
        BreachNotice,
        PrivacyNotice,
        ProcessingRecord,
        VerifyEmailPage,
        VerifyEmail,
        RequestPasswordReset,
        ResetPasswordPage,
        ResetPassword,
        AuditLog,
        Console,
        ConsoleAsset,
    }
);

handlers!(
    /// The webhook function's handlers.
    WebhookRoute { Verify, Events }
);

handlers!(
    /// The optin function's handlers.
    OptinRoute {
        UnsubscribePage,
        Unsubscribe,
        ListLeads,
        GetLead,
        UnsubscribeLead,
    }
);

handlers!(
    /// The broadcast function's handlers.
    BroadcastRoute {
        CreateBroadcast,
        ListBroadcasts,
        GetBroadcast,
        CancelBroadcast,
        PreviewBroadcast,
        PreviewDraft,
        SetPageRate,
    }
);

handlers!(
    /// The erase function's handlers.
    EraseRoute {
        DeletionStatus,
        MetaDataDeletion,
        EraseAccount,
        ExportAccount,
        ExportLead,
        EraseLead,
    }
);

/// Which function serves a route and which of its handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handler {
    Account(AccountRoute),
    Webhook(WebhookRoute),
    Optin(OptinRoute),
    Broadcast(BroadcastRoute),
    Erase(EraseRoute),
}

impl Handler {
    pub const fn function(self) -> Function {
        match self {
            Self::Account(_) => Function::Account,
            Self::Webhook(_) => Function::Webhook,
            Self::Optin(_) => Function::Optin,
            Self::Broadcast(_) => Function::Broadcast,
            Self::Erase(_) => Function::Erase,
        }
    }
}

/// A function's handler enum: how it is found in a [`Handler`].
pub trait Handlers: Copy + std::fmt::Debug {
    const FUNCTION: Function;
    fn of(handler: Handler) -> Option<Self>;
}

impl Handlers for AccountRoute {
    const FUNCTION: Function = Function::Account;
    fn of(handler: Handler) -> Option<Self> {
        match handler {
            Handler::Account(h) => Some(h),
            _ => None,
        }
    }
}

impl Handlers for WebhookRoute {
    const FUNCTION: Function = Function::Webhook;
    fn of(handler: Handler) -> Option<Self> {
        match handler {
            Handler::Webhook(h) => Some(h),
            _ => None,
        }
    }
}

impl Handlers for OptinRoute {
    const FUNCTION: Function = Function::Optin;
    fn of(handler: Handler) -> Option<Self> {
        match handler {
            Handler::Optin(h) => Some(h),
            _ => None,
        }
    }
}

impl Handlers for BroadcastRoute {
    const FUNCTION: Function = Function::Broadcast;
    fn of(handler: Handler) -> Option<Self> {
        match handler {
            Handler::Broadcast(h) => Some(h),
            _ => None,
        }
    }
}

impl Handlers for EraseRoute {
    const FUNCTION: Function = Function::Erase;
    fn of(handler: Handler) -> Option<Self> {
        match handler {
            Handler::Erase(h) => Some(h),
            _ => None,
        }
    }
}

/// What a route's request body must be. [`accept`] enforces it before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// The body is not read.
    None,
    /// A JSON object: `Content-Type: application/json`, at most
    /// [`MAX_JSON_BODY`](crate::http::MAX_JSON_BODY) bytes.
    JsonObject,
    /// An HTML form's post (`application/x-www-form-urlencoded`), or nothing at all.
    Form,
    /// The raw bytes, judged by the handler (the webhook checks Meta's signature over them).
    Raw,
}

/// One route. `path` uses API Gateway's syntax: `{name}` matches one non-empty segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub handler: Handler,
    pub body: Body,
}

impl Route {
    pub const fn function(&self) -> Function {
        self.handler.function()
    }
}

const fn account(method: &'static str, path: &'static str, h: AccountRoute, body: Body) -> Route {
    Route {
        method,
        path,
        handler: Handler::Account(h),
        body,
    }
}

const fn webhook(method: &'static str, path: &'static str, h: WebhookRoute, body: Body) -> Route {
    Route {
        method,
        path,
        handler: Handler::Webhook(h),
        body,
    }
}

const fn optin(method: &'static str, path: &'static str, h: OptinRoute, body: Body) -> Route {
    Route {
        method,
        path,
        handler: Handler::Optin(h),
        body,
    }
}

const fn broadcast(
    method: &'static str,
    path: &'static str,
    h: BroadcastRoute,
    body: Body,
) -> Route {
    Route {
        method,
        path,
        handler: Handler::Broadcast(h),
        body,
    }
}

const fn erase(method: &'static str, path: &'static str, h: EraseRoute, body: Body) -> Route {
    Route {
        method,
        path,
        handler: Handler::Erase(h),
        body,
    }
}

use Body::{Form, JsonObject, Raw};

/// Every route of the product.
#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    account("POST", "/api/accounts", AccountRoute::Register, JsonObject),
    account("POST", "/api/sessions", AccountRoute::SignIn, JsonObject),
    account("DELETE", "/api/sessions/current", AccountRoute::SignOut, Body::None),
    account("DELETE", "/api/sessions", AccountRoute::SignOutEverywhere, Body::None),
    account("GET", "/api/account", AccountRoute::GetAccount, Body::None),
    account("PATCH", "/api/account", AccountRoute::UpdateAccount, JsonObject),
    account("POST", "/api/account/password", AccountRoute::ChangePassword, JsonObject),
    account("GET", "/api/account/security-log", AccountRoute::SecurityLog, Body::None),
    account("POST", "/api/account/policy-acceptance", AccountRoute::AcceptPolicy, JsonObject),
    account("POST", "/api/pages", AccountRoute::ConnectPage, JsonObject),
    account("GET", "/api/pages", AccountRoute::ListPages, Body::None),
    account("DELETE", "/api/pages/{page_id}", AccountRoute::DisconnectPage, Body::None),
    account("PUT", "/api/pages/{page_id}/access-token", AccountRoute::UpdatePageToken, JsonObject),
    account("GET", "/api/policies/current", AccountRoute::CurrentPolicies, Body::None),
    account("POST", "/api/policies", AccountRoute::PublishPolicy, JsonObject),
    account("POST", "/api/breach-notices", AccountRoute::BreachNotice, JsonObject),
    account("GET", "/privacy", AccountRoute::PrivacyNotice, Body::None),
    account("GET", "/privacy/record", AccountRoute::ProcessingRecord, Body::None),
    account("GET", "/verify-email/{token}", AccountRoute::VerifyEmailPage, Body::None),
    account("POST", "/verify-email/{token}", AccountRoute::VerifyEmail, Form),
    account("POST", "/api/password-resets", AccountRoute::RequestPasswordReset, JsonObject),
    account("GET", "/reset-password/{token}", AccountRoute::ResetPasswordPage, Body::None),
    account("POST", "/reset-password/{token}", AccountRoute::ResetPassword, Form),
    account("GET", "/api/operator/audit-log", AccountRoute::AuditLog, Body::None),
    account("GET", "/app", AccountRoute::Console, Body::None),
    account("GET", "/app/assets/{file}", AccountRoute::ConsoleAsset, Body::None),
    webhook("GET", "/webhook", WebhookRoute::Verify, Body::None),
    webhook("POST", "/webhook", WebhookRoute::Events, Raw),
    optin("GET", "/u/{token}", OptinRoute::UnsubscribePage, Body::None),
    optin("POST", "/u/{token}", OptinRoute::Unsubscribe, Form),
    optin("GET", "/api/pages/{page_id}/leads", OptinRoute::ListLeads, Body::None),
    optin("GET", "/api/pages/{page_id}/leads/{lead_id}", OptinRoute::GetLead, Body::None),
    optin("POST", "/api/pages/{page_id}/leads/{lead_id}/unsubscribe", OptinRoute::UnsubscribeLead, Body::None),
    broadcast("POST", "/api/pages/{page_id}/broadcasts", BroadcastRoute::CreateBroadcast, JsonObject),
    broadcast("GET", "/api/pages/{page_id}/broadcasts", BroadcastRoute::ListBroadcasts, Body::None),
    broadcast("GET", "/api/pages/{page_id}/broadcasts/{broadcast_id}", BroadcastRoute::GetBroadcast, Body::None),
    broadcast("POST", "/api/pages/{page_id}/broadcasts/{broadcast_id}/cancel", BroadcastRoute::CancelBroadcast, Body::None),
    broadcast("GET", "/api/pages/{page_id}/broadcasts/{broadcast_id}/preview", BroadcastRoute::PreviewBroadcast, Body::None),
    broadcast("POST", "/api/pages/{page_id}/broadcasts/preview", BroadcastRoute::PreviewDraft, JsonObject),
    broadcast("PATCH", "/api/pages/{page_id}", BroadcastRoute::SetPageRate, JsonObject),
    erase("GET", "/deletion/{code}", EraseRoute::DeletionStatus, Body::None),
    erase("POST", "/facebook/data-deletion", EraseRoute::MetaDataDeletion, Form),
    erase("DELETE", "/api/account", EraseRoute::EraseAccount, JsonObject),
    erase("GET", "/api/account/export", EraseRoute::ExportAccount, Body::None),
    erase("GET", "/api/pages/{page_id}/leads/{lead_id}/export", EraseRoute::ExportLead, Body::None),
    erase("DELETE", "/api/pages/{page_id}/leads/{lead_id}", EraseRoute::EraseLead, Body::None),
];

/// The result of matching a request against the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Matched {
    Route(&'static Route, PathParams),
    /// The path exists but not with this method.
    WrongMethod,
    NotFound,
}

/// The method a route is looked up by: `HEAD` is served by the `GET` route.
fn routed_method(method: &str) -> &str {
    if method == "HEAD" { "GET" } else { method }
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
                    // Bytes that are not UTF-8 become U+FFFD: the route still matches, and the handler
                    // refuses the parameter as it refuses any other malformed one (a token page answers
                    // "Link not valid", an id 404) rather than the request missing its route.
                    let decoded = percent_encoding::percent_decode_str(g).decode_utf8_lossy();
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
/// Gateway. `HEAD` finds the `GET` route.
pub fn find(routes: &'static [Route], method: &str, path: &str) -> Matched {
    let method = routed_method(method);
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

/// The methods `routes` accept for `path` (`HEAD` wherever `GET` is), sorted and each once (empty if no
/// route has that path).
pub fn allowed_methods(routes: &'static [Route], path: &str) -> Vec<&'static str> {
    let mut methods: Vec<&'static str> = routes
        .iter()
        .filter(|r| match_path(r.path, path).is_some())
        .flat_map(|r| {
            let head = (r.method == "GET").then_some("HEAD");
            std::iter::once(r.method).chain(head)
        })
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

/// The answer to a request no route of this function serves: 405 (with `Allow`) or 404.
pub fn not_routed(req: &Request) -> ApiError {
    match find(ROUTES, req.method().as_str(), req.uri().path()) {
        Matched::WrongMethod => method_not_allowed(req.uri().path()),
        _ => ApiError::route_not_found(),
    }
}

/// A request the table accepted for a function: its handler and path parameters.
#[derive(Debug)]
pub struct Accepted<R> {
    pub handler: R,
    pub params: PathParams,
}

/// Resolves `req` to a handler of `R`'s function and checks its body against the route's [`Body`]:
/// the 404, 405, 413, 415 or 400 answer otherwise. Every function's router starts here.
pub fn accept<R: Handlers>(req: &Request) -> Result<Accepted<R>, ApiError> {
    let (route, params) = match find(ROUTES, req.method().as_str(), req.uri().path()) {
        Matched::Route(route, params) => (route, params),
        Matched::WrongMethod => return Err(method_not_allowed(req.uri().path())),
        Matched::NotFound => return Err(ApiError::route_not_found()),
    };
    let handler = R::of(route.handler).ok_or_else(ApiError::route_not_found)?;
    check_body(route.body, req)?;
    Ok(Accepted { handler, params })
}

/// The media type of `Content-Type`, lowercased, without parameters; `None` when absent or unreadable.
fn media_type(req: &Request) -> Option<String> {
    let value = req
        .headers()
        .get(http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    let essence = value.split(';').next().unwrap_or_default().trim();
    Some(essence.to_ascii_lowercase())
}

fn unsupported(expected: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        expected,
    )
}

fn check_body(body: Body, req: &Request) -> Result<(), ApiError> {
    match body {
        Body::None | Body::Raw => Ok(()),
        Body::JsonObject => {
            if media_type(req).as_deref() != Some("application/json") {
                return Err(unsupported(
                    "send the body as JSON with Content-Type: application/json",
                ));
            }
            crate::http::check_json_object(req.body())
        }
        Body::Form => match media_type(req).as_deref() {
            Some("application/x-www-form-urlencoded") => Ok(()),
            None if req.body().is_empty() => Ok(()),
            _ => Err(unsupported(
                "send the form as application/x-www-form-urlencoded",
            )),
        },
    }
}

/// Serves `req` with the function of `R`: resolves it ([`accept`]), runs `dispatch` on the handler, and
/// finishes the answer (security headers; a `HEAD` request gets the `GET` answer's headers without its
/// body).
pub async fn serve<R, F, Fut>(req: Request, dispatch: F) -> Response
where
    R: Handlers,
    F: FnOnce(R, Request, PathParams) -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    let head = req.method() == http::Method::HEAD;
    let result = match accept::<R>(&req) {
        Ok(Accepted { handler, params }) => dispatch(handler, req, params).await,
        Err(e) => Err(e),
    };
    let response = finish(result.unwrap_or_else(ApiError::into_response));
    if head {
        without_body(response)
    } else {
        response
    }
}

/// The answer to a `HEAD`: the `GET` answer's status and headers, its length, and no body.
fn without_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    parts.headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(body.len()),
    );
    Response::from_parts(parts, bytes::Bytes::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::MAX_JSON_BODY;

    fn request(method: &str, path: &str, content_type: Option<&str>, body: &str) -> Request {
        let mut b = http::Request::builder().method(method).uri(path);
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        b.body(bytes::Bytes::from(body.to_owned()))
            .expect("a test request")
    }

    #[test]
    fn literal_segments_win_and_parameters_are_decoded() {
        match find(ROUTES, "DELETE", "/api/sessions/current") {
            Matched::Route(r, _) => assert_eq!(r.handler, Handler::Account(AccountRoute::SignOut)),
            other => panic!("{other:?}"),
        }
        match find(ROUTES, "DELETE", "/api/pages/12%33") {
            Matched::Route(r, p) => {
                assert_eq!(r.handler, Handler::Account(AccountRoute::DisconnectPage));
                assert_eq!(p.get("page_id"), Some("123"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(find(ROUTES, "PUT", "/api/pages"), Matched::WrongMethod);
        assert_eq!(find(ROUTES, "GET", "/api/nothing"), Matched::NotFound);
        assert_eq!(find(ROUTES, "DELETE", "/api/pages/"), Matched::NotFound);
    }

    #[test]
    fn a_draft_preview_is_its_own_route_and_a_page_path_is_served_by_two_functions() {
        let handler = |method, path| match find(ROUTES, method, path) {
            Matched::Route(r, _) => r.handler,
            other => panic!("{method} {path}: {other:?}"),
        };
        assert_eq!(
            handler("POST", "/api/pages/1/broadcasts/preview"),
            Handler::Broadcast(BroadcastRoute::PreviewDraft)
        );
        // A GET of that path names a broadcast called "preview" (none is: 404 from the handler).
        assert_eq!(
            handler("GET", "/api/pages/1/broadcasts/preview"),
            Handler::Broadcast(BroadcastRoute::GetBroadcast)
        );
        assert_eq!(
            handler("PATCH", "/api/pages/1"),
            Handler::Broadcast(BroadcastRoute::SetPageRate)
        );
        assert_eq!(
            handler("DELETE", "/api/pages/1"),
            Handler::Account(AccountRoute::DisconnectPage)
        );
        assert_eq!(
            allowed_methods(ROUTES, "/api/pages/1/broadcasts/b1"),
            ["GET", "HEAD"]
        );
    }

    #[test]
    fn a_parameter_that_is_not_utf8_still_finds_its_route() {
        match find(ROUTES, "GET", "/u/%ff%fe%fd") {
            Matched::Route(r, p) => {
                assert_eq!(r.handler, Handler::Optin(OptinRoute::UnsubscribePage));
                assert_eq!(p.get("token"), Some("\u{fffd}\u{fffd}\u{fffd}"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn head_is_served_by_the_get_route_and_listed_beside_it() {
        match find(ROUTES, "HEAD", "/privacy") {
            Matched::Route(r, _) => {
                assert_eq!(r.handler, Handler::Account(AccountRoute::PrivacyNotice));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(find(ROUTES, "HEAD", "/api/sessions"), Matched::WrongMethod);
        assert_eq!(
            allowed_methods(ROUTES, "/api/account"),
            ["DELETE", "GET", "HEAD", "PATCH"]
        );
    }

    #[test]
    fn a_known_route_with_another_method_is_405_with_allow_listing_the_routes_methods() {
        for (method, path, allow) in [
            ("PUT", "/api/account", "DELETE, GET, HEAD, PATCH"),
            ("GET", "/api/sessions", "DELETE, POST"),
            ("GET", "/api/sessions/current", "DELETE"),
            ("PUT", "/api/pages", "GET, HEAD, POST"),
            ("GET", "/api/pages/123", "DELETE, PATCH"),
            ("DELETE", "/webhook", "GET, HEAD, POST"),
            ("PUT", "/u/some-token", "GET, HEAD, POST"),
            ("POST", "/api/pages/1/leads", "GET, HEAD"),
            // Asked of another function, the answer is the same: the method is what is wrong.
            ("OPTIONS", "/api/policies/current", "GET, HEAD"),
        ] {
            let e = accept::<OptinRoute>(&request(method, path, None, "")).expect_err("not routed");
            assert_eq!(e.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
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
                .replace("{broadcast_id}", "b1")
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
        let e =
            accept::<AccountRoute>(&request("GET", "/api/nothing", None, "")).expect_err("unknown");
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.allow(), None);
        assert!(
            !e.into_response()
                .headers()
                .contains_key(http::header::ALLOW)
        );
        // Another function's route is not found here, whatever its methods.
        let e = accept::<OptinRoute>(&request("GET", "/api/account", None, ""))
            .expect_err("not optin's");
        assert_eq!((e.status, e.allow()), (StatusCode::NOT_FOUND, None));
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

    #[test]
    fn every_handler_has_exactly_one_route() {
        let handlers = AccountRoute::ALL
            .iter()
            .map(|h| Handler::Account(*h))
            .chain(WebhookRoute::ALL.iter().map(|h| Handler::Webhook(*h)))
            .chain(OptinRoute::ALL.iter().map(|h| Handler::Optin(*h)))
            .chain(BroadcastRoute::ALL.iter().map(|h| Handler::Broadcast(*h)))
            .chain(EraseRoute::ALL.iter().map(|h| Handler::Erase(*h)));
        let mut count = 0;
        for handler in handlers {
            count += 1;
            let routes = ROUTES.iter().filter(|r| r.handler == handler).count();
            assert_eq!(routes, 1, "{handler:?} has {routes} routes");
        }
        assert_eq!(count, ROUTES.len(), "every route names a listed handler");
    }

    #[test]
    fn a_json_route_takes_only_a_json_object_sent_as_json() {
        let sign_in = |ct: Option<&str>, body: &str| {
            accept::<AccountRoute>(&request("POST", "/api/sessions", ct, body)).map(|a| a.handler)
        };
        assert_eq!(
            sign_in(Some("application/json"), r#"{"a":1}"#),
            Ok(AccountRoute::SignIn)
        );
        assert_eq!(
            sign_in(Some("Application/JSON; charset=utf-8"), " \n{}"),
            Ok(AccountRoute::SignIn)
        );
        for ct in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonx"),
        ] {
            let e = sign_in(ct, r#"{"a":1}"#).expect_err("refused");
            assert_eq!(
                (e.status, e.code),
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
                "{ct:?}"
            );
        }
        for body in [r#"["a@b.example","x"]"#, "1", r#""text""#, "null", "", "  "] {
            let e = sign_in(Some("application/json"), body).expect_err("not an object");
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "invalid_json"),
                "{body}"
            );
        }
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_JSON_BODY));
        let e = sign_in(Some("application/json"), &big).expect_err("too large");
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn a_form_route_takes_a_form_or_nothing() {
        let post = |ct: Option<&str>, body: &str| {
            accept::<OptinRoute>(&request("POST", "/u/t", ct, body)).map(|a| a.handler)
        };
        assert_eq!(
            post(Some("application/x-www-form-urlencoded"), ""),
            Ok(OptinRoute::Unsubscribe)
        );
        assert_eq!(post(None, ""), Ok(OptinRoute::Unsubscribe));
        assert!(post(Some("application/json"), "{}").is_err());
        assert!(post(None, "x=1").is_err());
    }

    #[tokio::test]
    async fn a_head_request_gets_the_get_answers_headers_and_length_without_a_body() {
        let req = request("HEAD", "/privacy", None, "");
        let response = serve::<AccountRoute, _, _>(req, |h, _, _| async move {
            assert_eq!(h, AccountRoute::PrivacyNotice);
            Ok(crate::http::html(StatusCode::OK, "<p>hello</p>".to_owned()))
        })
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.body().is_empty());
        assert_eq!(
            response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .map(|v| v.as_bytes()),
            Some(&b"12"[..])
        );
        assert!(
            response
                .headers()
                .contains_key(http::header::CONTENT_SECURITY_POLICY)
        );
    }
}
