//! `GET /api/pages/{page_id}/leads/{lead_id}`: a lead with its whole consent history and the result of
//! checking the hash chain against the lead's head, so an edited, removed or truncated record shows up
//! as `"intact": false` with where the chain breaks.

use qchat_shared::app::App;
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json};
use qchat_shared::leads::consent::history;
use qchat_shared::leads::{ops, verify_chain};

use crate::{access, view};

#[tracing::instrument(skip_all)]
pub async fn get(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let page = access::page(app, req, params).await?;
    let lead_id = access::lead_id(params)?;
    let lead = ops::load(app.store.as_ref(), &page.id, &lead_id)
        .await?
        .ok_or_else(|| ApiError::not_found("lead"))?;
    let records = history(app.store.as_ref(), &page.id, &lead.id).await?;
    let chain = verify_chain(&lead.id, &records, lead.consent_seq, &lead.consent_head);
    if chain.is_err() {
        // Worth an alert: the proof of consent was changed outside qchat.
        tracing::warn!(page = %page.id, lead = %lead.id, "consent chain broken");
    }
    let mut body = view::lead(&lead);
    body["consent_history"] = records.iter().map(view::record).collect();
    body["chain"] = view::chain(&chain);
    Ok(json(StatusCode::OK, &body))
}
