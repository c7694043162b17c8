//! The optin function: one-click unsubscribe links (`/u/{token}`), and the account holder's view of a
//! page's leads with the proof of their consent (the hash-chained consent history, verified on read).
//!
//! Every lead route is scoped to a page the caller owns: another account's page or lead is answered
//! exactly like a missing one (404). No route ever returns a lead's PSID or other sealed value.

mod access;
mod detail;
mod events;
mod holder;
mod link;
mod list;
mod view;

use qchat_shared::app::App;
use qchat_shared::http::{ApiError, PathParams, Request, Response};
use qchat_shared::routes::{self, OptinRoute};

/// Serves one request of the optin function's routes.
pub async fn handle(app: &App, req: Request) -> Response {
    routes::serve(req, |handler, req, params| async move {
        dispatch(app, handler, &req, &params).await
    })
    .await
}

async fn dispatch(
    app: &App,
    handler: OptinRoute,
    req: &Request,
    params: &PathParams,
) -> Result<Response, ApiError> {
    match handler {
        // The link pages answer in HTML whatever happens: a person follows them in a browser.
        OptinRoute::UnsubscribePage => Ok(link::page(app, req, params).await),
        OptinRoute::Unsubscribe => Ok(link::unsubscribe(app, req, params).await),
        OptinRoute::ListLeads => list::list(app, req, params).await,
        OptinRoute::GetLead => detail::get(app, req, params).await,
        OptinRoute::UnsubscribeLead => holder::unsubscribe(app, req, params).await,
    }
}
