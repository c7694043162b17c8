//! The optin function: one-click unsubscribe links (`/u/{token}`), and the account holder's view of a
//! page's leads with the proof of their consent (the hash-chained consent history, verified on read).
//!
//! Every lead route is scoped to a page the caller owns: another account's page or lead is answered
//! exactly like a missing one (404). No route ever returns a lead's PSID or other sealed value.

mod access;
mod detail;
mod events;
mod holder;
mod html;
mod link;
mod list;
mod view;

use qchat_shared::app::App;
use qchat_shared::http::{ApiError, PathParams, Request, Response, finish};
use qchat_shared::routes::{self, Function};

/// Serves one request of the optin function's routes.
pub async fn handle(app: &App, req: Request) -> Response {
    let result = match routes::resolve(Function::Optin, req.method().as_str(), req.uri().path()) {
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
        // The link pages answer in HTML whatever happens: a person follows them in a browser.
        "unsubscribe_page" => Ok(link::page(app, params).await),
        "unsubscribe" => Ok(link::unsubscribe(app, params).await),
        "list_leads" => list::list(app, req, params).await,
        "get_lead" => detail::get(app, req, params).await,
        "unsubscribe_lead" => holder::unsubscribe(app, req, params).await,
        _ => Err(ApiError::route_not_found()),
    }
}
