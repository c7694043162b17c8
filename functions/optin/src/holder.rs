//! `POST /api/pages/{page_id}/leads/{lead_id}/unsubscribe`: the account holder stops messages to a lead
//! (for instance on the person's request by another channel). Idempotent: a lead already unsubscribed is
//! left as it is, with no second record.

use qchat_shared::app::App;
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json};
use qchat_shared::leads::ops::{self, OptOut};

use crate::events::{self, Actor};
use crate::{access, view};

#[tracing::instrument(skip_all)]
pub async fn unsubscribe(
    app: &App,
    req: &Request,
    params: &PathParams,
) -> Result<Response, ApiError> {
    let page = access::page(app, req, params).await?;
    let lead_id = access::lead_id(params)?;
    let event = events::opt_out(app, &page.item, Actor::AccountHolder).await?;
    let store = app.store.as_ref();
    let outcome = ops::opt_out(
        store,
        &page.id,
        &lead_id,
        event,
        app.clock.now(),
        Vec::new(),
    )
    .await?;
    if outcome == OptOut::NoSuchLead {
        return Err(ApiError::not_found("lead"));
    }
    tracing::info!(page = %page.id, lead = %lead_id, outcome = ?outcome, "lead unsubscribed by account holder");
    let lead = ops::load(store, &page.id, &lead_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lead"))?;
    Ok(json(StatusCode::OK, &view::lead(&lead)))
}
