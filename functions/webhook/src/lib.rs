//! The webhook function: Meta's verification handshake (`GET /webhook`) and signed events
//! (`POST /webhook`) — leads, consent records and Messenger replies.
//!
//! Invariants:
//! - the signature is checked over the raw body before anything parses it; a bad one stores nothing;
//! - one unreadable value (invalid UTF-8, a lone surrogate escape) costs no event of a signed batch: the
//!   body is repaired after the check and read ([`repair`]), and the repairs are counted;
//! - a 200 means every event of the batch is durably stored (or was a duplicate, or is ignored by
//!   design); any store or key failure answers 503, so Meta retries — and the retry applies only what
//!   was not applied, because each event's transaction carries its de-duplication key ([`consent`]);
//!   the batch's transactions are committed together at its end ([`process`]);
//! - nothing here calls the Graph API: replies are queued as REPLY items that notify sends;
//! - logs carry counts and opaque ids (page id, lead id) only — never a PSID, user_ref, text or token.
//!
//! "DELETE MY DATA" unsubscribes the lead and queues its erasure in the same transaction; the erase
//! function's runner erases it and releases the confirmation reply ([`consent`]).

pub mod consent;
pub mod envelope;
pub mod keywords;
pub mod page;
pub mod repair;
pub mod replies;
pub mod signature;

use std::collections::HashMap;
use std::sync::Arc;

use qchat_shared::app::App;
use qchat_shared::crypto::{CryptoError, constant_time_eq};
use qchat_shared::domain::PageId;
use qchat_shared::http::{ApiError, Request, Response, StatusCode, json, query_param};
use qchat_shared::meta_secrets::MetaSecrets;
use qchat_shared::routes::{self, WebhookRoute};
use qchat_shared::store::staged::{CommitFailed, Staged};
use qchat_shared::store::{ItemStore, StoreError};
use secrecy::ExposeSecret as _;
use tracing::instrument;

use crate::consent::Outcome;
use crate::envelope::Kind;

/// Why an event could not be stored. Every variant answers 503: Meta retries the batch.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("a data key was not available")]
    Crypto(#[from] CryptoError),
}

impl From<qchat_shared::store::InventoryError> for ProcessError {
    fn from(e: qchat_shared::store::InventoryError) -> Self {
        Self::Store(e.into())
    }
}

/// Serves one request of the webhook function's routes.
pub async fn handle(app: &App, req: Request) -> Response {
    routes::serve(req, |handler, req, _| async move {
        match handler {
            WebhookRoute::Verify => verify(app, &req).await,
            WebhookRoute::Events => events(app, &req).await,
        }
    })
    .await
}

/// Meta's secrets, or 503 when they cannot be read (Meta retries deliveries).
async fn meta_secrets(app: &App) -> Result<Arc<MetaSecrets>, ApiError> {
    app.meta_secrets.current().await.map_err(|e| {
        tracing::error!(error = %e, "no Meta secrets: webhook requests cannot be verified");
        ApiError::unavailable()
    })
}

/// `GET /webhook`: echoes `hub.challenge` (1–64 digits) when the mode is `subscribe` and the verify token
/// matches in constant time (after a mismatch, once more against a rotated token, if there is one).
async fn verify(app: &App, req: &Request) -> Result<Response, ApiError> {
    let forbidden = || ApiError::forbidden("the verification request was not accepted");
    if query_param(req, "hub.mode").as_deref() != Some("subscribe") {
        return Err(forbidden());
    }
    let token = query_param(req, "hub.verify_token").unwrap_or_default();
    let matches = |secrets: &MetaSecrets| {
        constant_time_eq(
            token.as_bytes(),
            secrets.verify_token().expose_secret().as_bytes(),
        )
    };
    let secrets = meta_secrets(app).await?;
    if !matches(&secrets) {
        let rotated = app.meta_secrets.newer_than(&secrets).await;
        if !rotated.is_some_and(|newer| matches(&newer)) {
            return Err(forbidden());
        }
    }
    let challenge = query_param(req, "hub.challenge").unwrap_or_default();
    if challenge.is_empty()
        || challenge.len() > 64
        || !challenge.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ApiError::bad_request(
            "invalid_challenge",
            "hub.challenge must be 1 to 64 digits",
        ));
    }
    let mut r = http::Response::new(qchat_shared::http::Bytes::from(challenge));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

/// What one batch did. Counts only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub applied: usize,
    pub duplicates: usize,
    pub no_effect: usize,
    pub echoes: usize,
    pub receipts: usize,
    pub unconnected: usize,
    pub standby: usize,
    pub unknown: usize,
    pub malformed: usize,
    /// Unreadable values replaced by U+FFFD so the body could be read (their events are kept).
    pub repaired: usize,
}

/// `POST /webhook`.
#[instrument(name = "webhook.events", skip_all)]
async fn events(app: &App, req: &Request) -> Result<Response, ApiError> {
    let header = req
        .headers()
        .get(signature::HEADER)
        .map(http::HeaderValue::as_bytes);
    let check = |secrets: &MetaSecrets| {
        signature::verify(
            secrets.app_secret().expose_secret().as_bytes(),
            header,
            req.body(),
        )
    };
    let secrets = meta_secrets(app).await?;
    let mut checked = check(&secrets);
    if checked == Err(signature::SignatureError::Mismatch) {
        // Perhaps the app secret was rotated since this copy was read: check once more against the
        // secret as stored now (re-read at most once per interval, so forgeries cost no more reads).
        if let Some(newer) = app.meta_secrets.newer_than(&secrets).await {
            checked = check(&newer);
        }
    }
    if let Err(e) = checked {
        tracing::warn!(problem = %e, "webhook signature refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "the X-Hub-Signature-256 header does not match the body",
        ));
    }
    let report = process(app, req.body()).await.map_err(|e| {
        tracing::error!(error = %e, "webhook batch not stored; Meta will retry");
        ApiError::unavailable()
    })?;
    tracing::info!(
        applied = report.applied,
        duplicates = report.duplicates,
        no_effect = report.no_effect,
        echoes = report.echoes,
        receipts = report.receipts,
        unconnected = report.unconnected,
        standby = report.standby,
        unknown = report.unknown,
        malformed = report.malformed,
        repaired = report.repaired,
        "webhook batch handled"
    );
    Ok(json(StatusCode::OK, &serde_json::json!({ "status": "ok" })))
}

/// What became of one event of a batch; the report counts these.
#[derive(Debug, Clone, Copy)]
enum Counted {
    Echo,
    Receipt,
    Unconnected,
    Handled(Outcome),
}

/// Parses a verified body and applies its events in time order, as one unit of work: the events read
/// and write through two [`Staged`] stores, one over the main store and one over the key store (the new
/// leads' claims), and commit together at the end, the key store first, so that a lead is never written
/// before its claim (on SQLite, one durable commit in each file for the batch; on DynamoDB, one
/// transaction per event in each table, as before). Each event keeps its own transactions, with its
/// de-duplication key, so the rules of [`consent`] hold event by event.
///
/// If a commit finds that something changed under the batch (a concurrent delivery of the same event,
/// the same new person's claim made elsewhere, another writer on a lead), the events before the one
/// that failed are durable, and the rest are applied again one by one on the stores themselves, each
/// re-planned on a fresh read. Any other failure answers an error: what was committed stays
/// committed, and Meta's retry skips it as duplicates.
///
/// With a sender in the same process (`App::reply_handoff`, the local server), the new replies of the
/// events that committed go to it once the batch is done, also when it answers an error. One written
/// claimed and not handed over (its event committed by a staged commit that an earlier direct call
/// forced, before an error that is not a commit's) is sent by the due-index drain when its lease ends.
///
/// # Errors
/// The store's or keyring's failure.
pub async fn process(app: &App, body: &[u8]) -> Result<Report, ProcessError> {
    let parsed = envelope::parse(body);
    let mut report = Report {
        standby: parsed.skipped.standby,
        unknown: parsed.skipped.unknown,
        malformed: parsed.skipped.malformed,
        repaired: parsed.repaired,
        ..Report::default()
    };
    if !parsed.is_page {
        return Ok(report);
    }
    let staged = Unit::new(app);
    let mut counted = Vec::with_capacity(parsed.events.len());
    let mut handed = Vec::new();
    let committed = match apply_events(
        app,
        Stores::Staged(&staged),
        &parsed.events,
        &mut counted,
        &mut handed,
    )
    .await
    {
        Ok(()) => staged.main.commit().await,
        Err(e) => match staged.take_failure().await {
            Some(failed) => Err(failed),
            None => return Err(e),
        },
    };
    if let Err(failed) = committed {
        // The replies of events whose transactions did not commit are not sent (those events are
        // planned again, below or by Meta's retry); the others are.
        handed.retain(|(event, _)| *event < failed.tag);
        if !matches!(
            failed.error,
            StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict
        ) {
            hand_off(app, &parsed.events, handed);
            return Err(failed.error.into());
        }
        tracing::info!(
            from = failed.tag,
            "webhook batch met a concurrent change; applying the rest event by event"
        );
        counted.truncate(failed.tag);
        let direct = apply_events(
            app,
            Stores::Direct,
            &parsed.events,
            &mut counted,
            &mut handed,
        )
        .await;
        hand_off(app, &parsed.events, handed);
        direct?;
    } else {
        hand_off(app, &parsed.events, handed);
    }
    for c in counted {
        match c {
            Counted::Echo => report.echoes += 1,
            Counted::Receipt => report.receipts += 1,
            Counted::Unconnected => report.unconnected += 1,
            Counted::Handled(Outcome::Applied) => report.applied += 1,
            Counted::Handled(Outcome::Duplicate) => report.duplicates += 1,
            Counted::Handled(Outcome::NoEffect) => report.no_effect += 1,
        }
    }
    Ok(report)
}

/// Gives the committed replies written claimed to the process's sender. A reply whose event shares its
/// page with a policy event of the batch goes without the page read for it: the batch may have stopped
/// the page's sending since.
fn hand_off(app: &App, events: &[envelope::Event], handed: Vec<(usize, consent::Handed)>) {
    let Some(handoff) = &app.reply_handoff else {
        return;
    };
    let policy_pages: Vec<&PageId> = events
        .iter()
        .filter(|ev| matches!(ev.kind, Kind::Policy { .. }))
        .map(|ev| &ev.page)
        .collect();
    for (event, reply) in handed {
        let page_changed = events
            .get(event)
            .is_none_or(|ev| policy_pages.contains(&&ev.page));
        reply.send(handoff, page_changed);
    }
}

/// A batch's unit of work: staged writes to the key store (the new leads' claims) and to the main store,
/// which commits the key store's first ([`Staged::after`]), tagged with the index of the event they
/// belong to.
struct Unit {
    keys: Arc<Staged>,
    main: Staged,
}

impl Unit {
    fn new(app: &App) -> Self {
        let keys = Arc::new(Staged::new(app.key_store.clone(), app.clock.clone()));
        Self {
            main: Staged::after(app.store.clone(), app.clock.clone(), keys.clone()),
            keys,
        }
    }

    /// A commit made on the handler's behalf that failed (see [`Staged::take_failure`]). When it was the
    /// key store's own, its groups from the failed tag on were dropped with it, so the main store's are
    /// too, and the groups before it are committed.
    async fn take_failure(&self) -> Option<CommitFailed> {
        if let Some(keys_failed) = self.keys.take_failure() {
            self.main.discard_from(keys_failed.tag);
            return Some(match self.main.commit().await {
                Err(main_failed) => main_failed,
                Ok(()) => keys_failed,
            });
        }
        self.main.take_failure()
    }
}

/// Where [`apply_events`] reads and writes.
#[derive(Clone, Copy)]
enum Stores<'a> {
    /// The batch's unit of work.
    Staged(&'a Unit),
    /// The stores themselves (after a staged commit failed).
    Direct,
}

/// Reads what the events of `page` among `events` read first, before they are applied: their
/// de-duplication keys in one `get_many`, then the lookups of the people whose events are not yet stored
/// in another, so a batch of new people costs two reads, not two per event, and a replayed batch costs
/// the key store nothing. The events then read these answers from the unit (see
/// [`Staged::read_ahead`]).
async fn read_ahead(
    unit: &Unit,
    indexer: &qchat_shared::crypto::BlindIndexer,
    page: &PageId,
    events: &[envelope::Event],
) -> Result<(), StoreError> {
    let firsts: Vec<_> = events
        .iter()
        .filter(|ev| &ev.page == page && !matches!(ev.kind, Kind::Echo | Kind::Receipt))
        .map(|ev| consent::first_reads(indexer, ev))
        .collect();
    let dedup: Vec<_> = firsts.iter().map(|(dedup, _)| dedup.clone()).collect();
    let stored = unit.main.read_ahead(&dedup).await?;
    let lookups: Vec<_> = firsts
        .into_iter()
        .filter(|(dedup, _)| !stored.contains(dedup))
        .filter_map(|(_, lookup)| lookup)
        .collect();
    unit.keys.read_ahead(&lookups).await?;
    Ok(())
}

/// Applies `events` from the first one not yet in `counted`, reading and writing through `stores`; a
/// staged unit tags each event's transactions with the event's index. The replies written claimed for
/// the process's own sender go to `handed`, with their event's index.
async fn apply_events(
    app: &App,
    stores: Stores<'_>,
    events: &[envelope::Event],
    counted: &mut Vec<Counted>,
    handed: &mut Vec<(usize, consent::Handed)>,
) -> Result<(), ProcessError> {
    let (store, key_store): (&dyn ItemStore, &dyn ItemStore) = match stores {
        Stores::Staged(unit) => (&unit.main, unit.keys.as_ref()),
        Stores::Direct => (app.store.as_ref(), app.key_store.as_ref()),
    };
    let mut pages: HashMap<PageId, Option<page::ConnectedPage>> = HashMap::new();
    let mut batch: Option<consent::Batch<'_>> = None;
    for (index, ev) in events.iter().enumerate().skip(counted.len()) {
        if let Stores::Staged(unit) = stores {
            unit.main.begin(index);
        }
        match ev.kind {
            Kind::Echo => {
                counted.push(Counted::Echo);
                continue;
            }
            Kind::Receipt => {
                counted.push(Counted::Receipt);
                continue;
            }
            _ => {}
        }
        let connected = match pages.get(&ev.page) {
            Some(p) => p.clone(),
            None => {
                let p = page::load(store, &ev.page).await?;
                pages.insert(ev.page.clone(), p.clone());
                p
            }
        };
        let Some(connected) = connected else {
            counted.push(Counted::Unconnected);
            continue;
        };
        let batch = match &mut batch {
            Some(b) => b,
            None => {
                let indexer = app.keys.blind_indexer().await?;
                if let Stores::Staged(unit) = stores {
                    read_ahead(
                        unit,
                        &indexer,
                        &ev.page,
                        events.get(index..).unwrap_or_default(),
                    )
                    .await?;
                }
                batch.insert(consent::Batch::new(app, store, key_store, indexer))
            }
        };
        let outcome = consent::apply(batch, &connected, ev).await;
        // Taken even when the event failed: a reply staged before the failure is sent only if the
        // commit the caller then makes includes its event.
        handed.extend(batch.take_handed().into_iter().map(|reply| (index, reply)));
        counted.push(Counted::Handled(outcome?));
        if matches!(ev.kind, Kind::Policy { .. }) {
            // The page item changed: later events read it afresh.
            pages.remove(&ev.page);
        }
    }
    Ok(())
}
