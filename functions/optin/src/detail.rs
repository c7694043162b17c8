//! `GET /api/pages/{page_id}/leads/{lead_id}`: a lead with its whole consent history and the result of
//! checking the hash chain against the lead's head, so an edited, removed or truncated record shows up
//! as `"intact": false` with where the chain breaks.

use qchat_shared::app::App;
use qchat_shared::domain::{LeadId, PageId};
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json};
use qchat_shared::leads::consent::history_partition;
use qchat_shared::leads::{ConsentRecord, ops, verify_chain};
use qchat_shared::store::{ItemStore, KeyRange, MAX_PAGE_LIMIT, Query, StoreError};

use crate::{access, view};

/// Every readable record of a lead's chain, in sequence order. A record that no longer reads as one is
/// left out; the chain check then reports the gap where it was.
async fn history(
    store: &dyn ItemStore,
    page: &PageId,
    lead: &LeadId,
) -> Result<Vec<ConsentRecord>, StoreError> {
    let mut records = Vec::new();
    let mut query = Query::partition(history_partition(page, lead), MAX_PAGE_LIMIT);
    query.range = KeyRange::Prefix("SEQ#".to_owned());
    loop {
        let found = store.query(&query).await?;
        records.extend(found.items.iter().filter_map(ConsentRecord::from_item));
        match found.next {
            Some(next) => query.cursor = Some(next),
            None => return Ok(records),
        }
    }
}

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
