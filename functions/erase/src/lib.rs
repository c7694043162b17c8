//! The erase function (SPEC §4 "erase"): access and erasure. It serves the status page of every
//! erasure's receipt, `GET /deletion/{code}` (the code is the erasure job's id, given to whoever asked
//! for the erasure), an account holder's erasure of their account (`DELETE /api/account`) and the export
//! of everything held about it (`GET /api/account/export`).

mod account;
mod export;
mod status;

use qchat_shared::app::App;
use qchat_shared::http::{ApiError, PathParams, Request, Response};
use qchat_shared::routes::{self, EraseRoute};

/// Serves one request of the erase function's routes.
pub async fn handle(app: &App, req: Request) -> Response {
    routes::serve(req, |handler, req, params| async move {
        dispatch(app, handler, &req, &params).await
    })
    .await
}

async fn dispatch(
    app: &App,
    handler: EraseRoute,
    req: &Request,
    params: &PathParams,
) -> Result<Response, ApiError> {
    match handler {
        EraseRoute::DeletionStatus => status::show(app, req, params).await,
        EraseRoute::EraseAccount => account::erase(app, req).await,
        EraseRoute::ExportAccount => export::show(app, req).await,
    }
}
