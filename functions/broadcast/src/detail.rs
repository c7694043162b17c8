//! One broadcast: `GET .../broadcasts/{broadcast_id}` (state and counts, updated while it runs),
//! `POST .../{broadcast_id}/cancel` (nothing more is sent after the sender's current batch; a finished
//! broadcast answers 409) and `GET .../{broadcast_id}/preview` (who its audience would reach now).

use qchat_shared::app::App;
use qchat_shared::broadcast::{Broadcasts, CancelOutcome};
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json};

use crate::{access, view};

#[tracing::instrument(name = "broadcast.get", skip_all)]
pub async fn get(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let page = access::page(app, req, params).await?;
    let id = access::broadcast_id(params)?;
    let found = Broadcasts::new(app)
        .get(&page.account, &page.id, &id)
        .await?
        .ok_or_else(access::not_found)?;
    Ok(json(StatusCode::OK, &view::broadcast(&found)))
}

#[tracing::instrument(name = "broadcast.cancel_route", skip_all)]
pub async fn cancel(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let page = access::page(app, req, params).await?;
    let id = access::broadcast_id(params)?;
    match Broadcasts::new(app)
        .cancel(&page.account, &page.id, &id)
        .await?
    {
        CancelOutcome::Cancelled(b) => Ok(json(StatusCode::OK, &view::broadcast(&b))),
        CancelOutcome::AlreadyFinished(state) => Err(ApiError::conflict(
            "broadcast_finished",
            format!(
                "this broadcast has already finished (state {}); nothing is left to cancel",
                state.name()
            ),
        )),
        CancelOutcome::NotFound => Err(access::not_found()),
    }
}

#[tracing::instrument(name = "broadcast.preview_route", skip_all)]
pub async fn preview(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let page = access::page(app, req, params).await?;
    let id = access::broadcast_id(params)?;
    let broadcasts = Broadcasts::new(app);
    let found = broadcasts
        .get(&page.account, &page.id, &id)
        .await?
        .ok_or_else(access::not_found)?;
    let preview = broadcasts
        .preview(&page.account, &page.id, &found.draft.audience)
        .await?;
    Ok(json(StatusCode::OK, &view::preview(&preview)))
}
