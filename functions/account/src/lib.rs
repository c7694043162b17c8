//! The account function: registration and address changes (proven by a link mailed to the address),
//! password reset, sessions, the account profile and security log, connected pages, policies (current,
//! publish, accept), breach notices, the operator's audit trail, the public privacy notice and the web
//! console (`/app`) that drives all of it from a browser.
//!
//! Every state change that the account holder must hear about is written in the same transaction as its
//! notice in the outbox; notify sends it.

mod audit;
mod auth;
mod console;
mod network;
mod pages;
mod policies;
mod privacy;
mod profile;
mod register;
mod reset;
mod seclog;
mod sessions;
mod verify;

use qchat_shared::app::App;
use qchat_shared::http::{ApiError, PathParams, Request, Response};
use qchat_shared::routes::{self, AccountRoute};

pub use policies::{CurrentPolicy, PolicyKind, current_policy};

/// Serves one request of the account function's routes.
pub async fn handle(app: &App, req: Request) -> Response {
    routes::serve(req, |handler, req, params| async move {
        dispatch(app, handler, &req, &params).await
    })
    .await
}

async fn dispatch(
    app: &App,
    handler: AccountRoute,
    req: &Request,
    params: &PathParams,
) -> Result<Response, ApiError> {
    match handler {
        AccountRoute::Register => register::register(app, req).await,
        AccountRoute::SignIn => sessions::sign_in(app, req).await,
        AccountRoute::SignOut => sessions::sign_out(app, req).await,
        AccountRoute::SignOutEverywhere => sessions::sign_out_everywhere(app, req).await,
        AccountRoute::GetAccount => profile::get(app, req).await,
        AccountRoute::UpdateAccount => profile::update(app, req).await,
        AccountRoute::ChangePassword => profile::change_password(app, req).await,
        AccountRoute::SecurityLog => profile::security_log(app, req).await,
        AccountRoute::AcceptPolicy => policies::accept(app, req).await,
        AccountRoute::ConnectPage => pages::connect(app, req).await,
        AccountRoute::ListPages => pages::list(app, req).await,
        AccountRoute::DisconnectPage => pages::disconnect(app, req, params).await,
        AccountRoute::UpdatePageToken => pages::update_token(app, req, params).await,
        AccountRoute::CurrentPolicies => policies::current(app).await,
        AccountRoute::PublishPolicy => policies::publish(app, req).await,
        AccountRoute::BreachNotice => policies::breach_notice(app, req).await,
        AccountRoute::PrivacyNotice => privacy::notice(app, req).await,
        AccountRoute::ProcessingRecord => privacy::record(app, req).await,
        // The link pages answer in HTML whatever happens: a person follows them from a mail.
        AccountRoute::VerifyEmailPage => Ok(verify::page(app, params).await),
        AccountRoute::VerifyEmail => Ok(verify::confirm(app, req, params).await),
        AccountRoute::RequestPasswordReset => reset::request(app, req).await,
        AccountRoute::ResetPasswordPage => Ok(reset::page(app, params).await),
        AccountRoute::ResetPassword => Ok(reset::reset(app, req, params).await),
        AccountRoute::AuditLog => audit::list(app, req).await,
        AccountRoute::Console => Ok(console::shell()),
        AccountRoute::ConsoleAsset => console::asset_file(params),
    }
}
