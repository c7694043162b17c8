//! The account function: registration, sessions, the account profile and security log, connected pages,
//! policies (current, publish, accept), breach notices and the public privacy notice.
//!
//! Every state change that the account holder must hear about is written in the same transaction as its
//! notice in the outbox; notify sends it.

mod auth;
mod network;
mod pages;
mod policies;
mod privacy;
mod profile;
mod register;
mod seclog;
mod sessions;

use qchat_shared::app::App;
use qchat_shared::http::{ApiError, PathParams, Request, Response, finish};
use qchat_shared::routes::{self, Function};

pub use policies::{CurrentPolicy, PolicyKind, current_policy};

/// Serves one request of the account function's routes.
pub async fn handle(app: &App, req: Request) -> Response {
    let result = match routes::resolve(Function::Account, req.method().as_str(), req.uri().path()) {
        Ok((route, params)) => dispatch(app, route.handler, &req, &params).await,
        Err(e) => Err(e),
    };
    finish(result.unwrap_or_else(ApiError::into_response))
}

async fn dispatch(
    app: &App,
    handler: &str,
    req: &Request,
    params: &PathParams,
) -> Result<Response, ApiError> {
    match handler {
        "register" => register::register(app, req).await,
        "sign_in" => sessions::sign_in(app, req).await,
        "sign_out" => sessions::sign_out(app, req).await,
        "sign_out_everywhere" => sessions::sign_out_everywhere(app, req).await,
        "get_account" => profile::get(app, req).await,
        "update_account" => profile::update(app, req).await,
        "change_password" => profile::change_password(app, req).await,
        "security_log" => profile::security_log(app, req).await,
        "accept_policy" => policies::accept(app, req).await,
        "connect_page" => pages::connect(app, req).await,
        "list_pages" => pages::list(app, req).await,
        "disconnect_page" => pages::disconnect(app, req, params).await,
        "update_page_token" => pages::update_token(app, req, params).await,
        "current_policies" => policies::current(app).await,
        "publish_policy" => policies::publish(app, req).await,
        "breach_notice" => policies::breach_notice(app, req).await,
        "privacy_notice" => privacy::notice(app, req).await,
        _ => Err(ApiError::route_not_found()),
    }
}
