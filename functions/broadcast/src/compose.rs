//! `POST /api/pages/{page_id}/broadcasts` (compose: 201 and the broadcast, scheduled for its `send_at`)
//! and `POST /api/pages/{page_id}/broadcasts/preview` (who a draft's audience would reach now). The
//! request is parsed by `qchat_shared::broadcast::draft`, which refuses it naming the rule it broke.

use qchat_shared::app::App;
use qchat_shared::broadcast::Broadcasts;
use qchat_shared::broadcast::draft::{parse_draft, parse_preview};
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json};

use crate::{access, view};

#[tracing::instrument(name = "broadcast.compose", skip_all)]
pub async fn create(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let page = access::page(app, req, params).await?;
    let draft = parse_draft(req.body(), app.clock.now())?;
    let created = Broadcasts::new(app)
        .create(&page.account, &page.id, draft)
        .await?;
    tracing::info!(page = %page.id, broadcast = %created.id, "broadcast composed");
    Ok(json(StatusCode::CREATED, &view::broadcast(&created)))
}

#[tracing::instrument(name = "broadcast.preview_draft", skip_all)]
pub async fn preview(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let page = access::page(app, req, params).await?;
    let audience = parse_preview(req.body())?;
    let preview = Broadcasts::new(app)
        .preview(&page.account, &page.id, &audience)
        .await?;
    tracing::info!(page = %page.id, eligible = preview.eligible, "draft previewed");
    Ok(json(StatusCode::OK, &view::preview(&preview)))
}
