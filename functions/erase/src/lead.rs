//! One lead's export and erasure, for the account holder of its page:
//! `GET /api/pages/{page_id}/leads/{lead_id}/export` (everything held about the lead, decrypted) and
//! `DELETE /api/pages/{page_id}/leads/{lead_id}` (queues [`qchat_shared::leads::erase_lead`]; 202 with
//! the confirmation code, like a page disconnect).
//!
//! Tenant isolation: another account's page, a page nobody connected, a missing lead and a lead id that
//! cannot be one all answer the same 404 `not_found` ("no such lead"), after the same two reads (the page
//! item and a lead item; a malformed id reads a placeholder lead key), so an answer tells nothing about
//! other accounts' pages or leads.

use std::collections::HashMap;

use qchat_shared::app::{App, account_key_owner};
use qchat_shared::auth;
use qchat_shared::broadcast::lead_delivery_keys;
use qchat_shared::crypto::LeadSecret;
use qchat_shared::domain::{AccountId, LeadId, PageId};
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json};
use qchat_shared::jobs::Jobs;
use qchat_shared::leads::consent::history;
use qchat_shared::leads::erase_lead::{self, Origin};
use qchat_shared::leads::{Lead, lead_key, lookup, unsubscribe_key, verify_chain};
use qchat_shared::pages::page_key;
use qchat_shared::replies::DUE_PARTITION;
use qchat_shared::store::{Index, Item, ItemKey, KeyRange, Order, Query, StoreError, query_all};
use serde_json::{Value, json};

/// The version of the export's shape; raised when a field changes meaning or goes.
pub const SCHEMA_VERSION: u32 = 1;
/// Read in place of a lead id that cannot be one, so such a request costs the reads of a missing lead.
const PLACEHOLDER_LEAD: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaa";

fn not_found() -> ApiError {
    ApiError::not_found("lead")
}

/// The caller's lead named by the path, with its account, or the one 404.
async fn owned_lead(
    app: &App,
    req: &Request,
    params: &PathParams,
) -> Result<(AccountId, Lead), ApiError> {
    let caller = auth::caller(app, req).await?;
    let page = PageId::parse(params.get("page_id").unwrap_or_default()).map_err(|_| not_found())?;
    let lead = LeadId::parse(params.get("lead_id").unwrap_or_default()).ok();
    let page_item = app.store.get(&page_key(&page)).await?;
    let read_as = match &lead {
        Some(l) => l.clone(),
        None => LeadId::parse(PLACEHOLDER_LEAD).map_err(|_| not_found())?,
    };
    let item = app.store.get(&lead_key(&page, &read_as)).await?;
    let owned = page_item.is_some_and(|p| p.get_str("account_id") == Some(caller.account.as_str()));
    match (owned, lead, item) {
        (true, Some(_), Some(item)) => Lead::from_item(&page, item)
            .map(|l| (caller.account, l))
            .ok_or_else(not_found),
        _ => Err(not_found()),
    }
}

fn jobs(app: &App) -> Jobs {
    // Queuing only: the lease belongs to the runner.
    Jobs::new(app.store.clone(), app.clock.clone(), app.ids.clone(), 0)
}

/// `DELETE /api/pages/{page_id}/leads/{lead_id}`: freezes the lead and queues its erasure in one
/// transaction; 202 with the confirmation code and status page. A lead whose erasure is already queued
/// answers 202 with that erasure's code; an erased lead is gone, so 404.
#[tracing::instrument(skip_all)]
pub async fn erase(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    for _ in 0..5 {
        let (account, lead) = owned_lead(app, req, params).await?;
        let job = if let Some(job) = erase_lead::requested_job(&lead) {
            job.to_owned()
        } else {
            let (job, ops) =
                erase_lead::request_ops(&jobs(app), &lead, Origin::AccountHolder, app.clock.now())?;
            match app.store.transact(ops).await {
                Ok(()) => {}
                Err(
                    StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict,
                ) => continue,
                Err(e) => return Err(e.into()),
            }
            tracing::info!(account = %account, page = %lead.page, lead = %lead.id, job = %job, "lead erasure queued");
            job
        };
        return Ok(json(
            StatusCode::ACCEPTED,
            &json!({ "erasure": {
                "confirmation_code": job,
                "status_url": format!("{}/deletion/{job}", app.config.public_url),
            }}),
        ));
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "conflict",
        "the lead changed while its erasure was being queued; try again",
    ))
}

/// The secrets of the exported leads ([`lookup::secrets`]: one key-store read for all of them).
type Secrets = HashMap<LeadId, LeadSecret>;

/// Opens a sealed attribute of `item`, a value of the lead `lead` (under its own key, or the account's
/// for a value sealed before lead keys were used); `null` when absent. A value sealed under the lead's
/// key whose secret is gone (the lead was erased, and this is a restored copy) is shown as
/// `{"unreadable": "lead_key_erased"}`; any other value that does not open fails the export as
/// `unreadable`.
async fn open(
    app: &App,
    account: &AccountId,
    lead: (&LeadId, &Secrets),
    key: &ItemKey,
    item: &Item,
    attribute: &'static str,
) -> Result<Value, ApiError> {
    let Some(sealed) = item.get_sealed(attribute) else {
        return Ok(Value::Null);
    };
    let (id, secrets) = lead;
    let secret = secrets.get(id);
    if sealed.is_lead_sealed() && secret.is_none() {
        return Ok(json!({ "unreadable": "lead_key_erased" }));
    }
    let plain = app
        .keys
        .open_lead(
            &account_key_owner(account),
            secret,
            id.as_str(),
            key,
            attribute,
            &sealed,
        )
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unreadable",
                "a stored value of this lead could not be decrypted",
            )
        })?;
    Ok(json!(plain.as_str().unwrap_or_default()))
}

fn time(ms: Option<i64>) -> Value {
    ms.map(|m| qchat_shared::clock::Timestamp::from_millis(m).to_rfc3339())
        .map_or(Value::Null, Value::String)
}

/// Everything held about one lead item: its attributes decrypted, its consent chain with the chain
/// check's verdict, its unsubscribe link's state and its broadcast delivery outcomes.
async fn lead_export(
    app: &App,
    account: &AccountId,
    lead: &Lead,
    secrets: &Secrets,
) -> Result<Value, ApiError> {
    let store = app.store.as_ref();
    let key = lead_key(&lead.page, &lead.id);
    let item = &lead.item;
    let records = history(store, &lead.page, &lead.id).await?;
    let chain = verify_chain(&lead.id, &records, lead.consent_seq, &lead.consent_head);
    let link = match item.get_str("unsubscribe_hash") {
        None => json!({ "held": false }),
        Some(hash) => {
            let found = store
                .get(&unsubscribe_key(
                    &qchat_shared::crypto::OneWayHash::from_stored(hash),
                ))
                .await?;
            json!({
                "held": true,
                "active": found.as_ref().is_some_and(|l| l.get_str("lead_id") == Some(lead.id.as_str())),
                "created_at": time(found.as_ref().and_then(|l| l.get_i64("created"))),
                "stored_as": "the SHA-256 of the link's token; the link itself is not kept",
            })
        }
    };
    let mut deliveries = Vec::new();
    let prefix = format!("BDELIV#{}#", lead.page.as_str());
    for key in lead_delivery_keys(store, &lead.page, &lead.id).await? {
        if let Some(d) = store.get(&key).await? {
            deliveries.push(json!({
                "broadcast_id": key.pk.strip_prefix(&prefix),
                "state": d.get_str("state"),
                "outcome": d.get_str("outcome"),
                "via": d.get_str("via"),
                "claimed_at": time(d.get_i64("claimed_at")),
                "at": time(d.get_i64("at")),
            }));
        }
    }
    Ok(json!({
        "id": lead.id.as_str(),
        "page_id": lead.page.as_str(),
        "subject_kind": item.get_str("subject_kind"),
        "subject": open(app, account, (&lead.id, secrets), &key, item, "subject").await?,
        "status": lead.status.name(),
        "created_at": lead.created.to_rfc3339(),
        "last_message_at": lead.last_message_at.map(|t| t.to_rfc3339()),
        "marketing_status": lead.marketing_status,
        "marketing_token": open(app, account, (&lead.id, secrets), &key, item, "marketing_token").await?,
        "marketing_last_sent_at": time(item.get_i64("marketing_last_sent_at")),
        "optin_ref": if item.get("optin_ref").is_some() {
            json!({ "held": true, "stored_as": "a keyed hash (blind index) of the opt-in ref, which cannot be \
                     turned back; the ref itself is in the consent history's meta_ref" })
        } else {
            Value::Null
        },
        "erasure_requested_at": time(item.get_i64("erasure_requested_at")),
        "merged_into": item.get_str("merged_into"),
        "linked_from": item.get_str("linked_from"),
        "consent_history": records.iter().map(|r| {
            let e = &r.event;
            json!({
                "seq": r.seq, "action": e.action, "source": e.source, "meta_ref": e.meta_ref,
                "meta_timestamp": e.meta_timestamp, "received_at": e.received_at.to_rfc3339(),
                "policy_version": e.policy_version, "consent_mode": e.consent_mode,
                "wording": e.wording, "hash": r.hash, "prev_hash": r.prev_hash,
            })
        }).collect::<Vec<_>>(),
        "chain": match &chain {
            Ok(()) => json!({ "intact": true }),
            Err(b) => json!({ "intact": false, "broken_at": b.at_seq, "reason": b.reason }),
        },
        "unsubscribe_link": link,
        "deliveries": deliveries,
    }))
}

/// The lead's replies still waiting to be sent, decrypted.
async fn pending_replies(
    app: &App,
    account: &AccountId,
    leads: &[&Lead],
    secrets: &Secrets,
) -> Result<Vec<Value>, ApiError> {
    let query = Query {
        index: Index::Gsi1,
        partition: DUE_PARTITION.to_owned(),
        range: KeyRange::All,
        order: Order::Ascending,
        limit: qchat_shared::store::MAX_PAGE_LIMIT,
        cursor: None,
    };
    let mut out = Vec::new();
    for reply in query_all(app.store.as_ref(), query).await? {
        let Some(ours) = leads.iter().find(|l| {
            reply.get_str("page_id") == Some(l.page.as_str())
                && reply.get_str("lead_id") == Some(l.id.as_str())
        }) else {
            continue;
        };
        let lead = (&ours.id, secrets);
        // Items of the due index are read from the table: the index may project fewer attributes.
        let Some(item) = app.store.get(reply.key()).await? else {
            continue;
        };
        out.push(json!({
            "recipient": open(app, account, lead, item.key(), &item, "recipient").await?,
            "text": open(app, account, lead, item.key(), &item, "text").await?,
            "created_at": time(item.get_i64("created")),
            "state": item.get_str("state"),
        }));
    }
    Ok(out)
}

/// `GET /api/pages/{page_id}/leads/{lead_id}/export`: everything held about the lead (and a
/// checkbox-plugin lead of the same person merged into it, or it into), decrypted, as one document.
#[tracing::instrument(skip_all)]
pub async fn export(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let (account, lead) = owned_lead(app, req, params).await?;
    let mut linked = Vec::new();
    for other in [lead.linked_from(), lead.merged_into()]
        .into_iter()
        .flatten()
    {
        if let Some(item) = app.store.get(&lead_key(&lead.page, &other)).await?
            && let Some(l) = Lead::from_item(&lead.page, item)
        {
            linked.push(l);
        }
    }
    let mut all: Vec<&Lead> = vec![&lead];
    all.extend(linked.iter());
    let ids: Vec<LeadId> = all.iter().map(|l| l.id.clone()).collect();
    let secrets = lookup::secrets(app.key_store.as_ref(), &lead.page, &ids).await?;
    let mut linked_out = Vec::new();
    for l in &linked {
        linked_out.push(lead_export(app, &account, l, &secrets).await?);
    }
    let body = json!({
        "schema_version": SCHEMA_VERSION,
        "exported_at": app.clock.now().to_rfc3339(),
        "lead": lead_export(app, &account, &lead, &secrets).await?,
        "linked_leads": linked_out,
        "pending_replies": pending_replies(app, &account, &all, &secrets).await?,
    });
    tracing::info!(account = %account, page = %lead.page, lead = %lead.id, "lead exported");
    Ok(json(StatusCode::OK, &body))
}
