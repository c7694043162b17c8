//! One-click unsubscribe links, `/u/{token}`. The GET only shows a confirm button (link scanners and
//! previews follow GETs, so a GET never unsubscribes); the POST of that button unsubscribes, idempotently.
//!
//! The token is looked up by its SHA-256 only. The pages show nothing about the person, only the page's
//! public name, and answer in HTML even on failure: a person reads them in a browser.

use qchat_shared::app::App;
use qchat_shared::domain::{LeadId, PageId};
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode};
use qchat_shared::i18n::Lang;
use qchat_shared::leads::ops::{self, OptOut};
use qchat_shared::leads::{Lead, LeadStatus, UnsubscribeToken, unsubscribe_key};
use qchat_shared::pages::page_key;
use qchat_shared::store::Item;

use crate::events::{self, Actor};
use qchat_shared::http::page::{self as html, escape};

/// What a link leads to.
#[derive(Debug)]
struct Target {
    page_id: PageId,
    page: Item,
    lead: Lead,
}

/// The page and lead a token names, or `None` when the link is not (or no longer) valid: a malformed or
/// unknown token, or a page or lead that is gone.
async fn resolve(app: &App, params: &PathParams) -> Result<Option<Target>, ApiError> {
    let Some(token) = params.get("token").and_then(UnsubscribeToken::parse) else {
        return Ok(None);
    };
    let Some(link) = app.store.get(&unsubscribe_key(&token.hash())).await? else {
        return Ok(None);
    };
    let ids = link
        .get_str("page_id")
        .and_then(|p| PageId::parse(p).ok())
        .zip(link.get_str("lead_id").and_then(|l| LeadId::parse(l).ok()));
    let Some((page_id, lead_id)) = ids else {
        return Ok(None);
    };
    let Some(page) = app.store.get(&page_key(&page_id)).await? else {
        return Ok(None);
    };
    let Some(lead) = ops::load(app.store.as_ref(), &page_id, &lead_id).await? else {
        return Ok(None);
    };
    Ok(Some(Target {
        page_id,
        page,
        lead,
    }))
}

fn unsubscribed_page(lang: Lang, page: &Item) -> Response {
    let t = lang.texts();
    let name = escape(events::page_name(page, lang));
    html::page_in(
        lang,
        StatusCode::OK,
        t.unsubscribed_title,
        &format!(
            "<p>{}</p>",
            escape(t.unsubscribed_body).replace("{page}", &name)
        ),
    )
}

fn confirm_page(lang: Lang, page: &Item) -> Response {
    let t = lang.texts();
    let name = escape(events::page_name(page, lang));
    // No `action`: the form posts back to this very URL, token included.
    html::page_in(
        lang,
        StatusCode::OK,
        t.unsubscribe,
        &format!(
            "<p>{}</p><form method=\"post\"><button type=\"submit\">{}</button></form>",
            escape(t.unsubscribe_question).replace("{page}", &name),
            escape(t.unsubscribe)
        ),
    )
}

fn failed(lang: Lang, e: &ApiError) -> Response {
    html::failure(lang, e.status)
}

/// `GET /u/{token}`: the confirm page (or "already unsubscribed"), in the browser's language; changes
/// nothing.
#[tracing::instrument(skip_all)]
pub async fn page(app: &App, req: &Request, params: &PathParams) -> Response {
    let lang = Lang::of_request(req);
    match resolve(app, params).await {
        Ok(Some(t)) if t.lead.status == LeadStatus::Unsubscribed => {
            unsubscribed_page(lang, &t.page)
        }
        Ok(Some(t)) => confirm_page(lang, &t.page),
        Ok(None) => html::invalid_link(lang),
        Err(e) => failed(lang, &e),
    }
}

/// `POST /u/{token}`: unsubscribes the lead; a second POST changes nothing and shows the same page. The
/// consent record keeps the question and button in the language they were shown in.
#[tracing::instrument(skip_all)]
pub async fn unsubscribe(app: &App, req: &Request, params: &PathParams) -> Response {
    let lang = Lang::of_request(req);
    let target = match resolve(app, params).await {
        Ok(Some(t)) => t,
        Ok(None) => return html::invalid_link(lang),
        Err(e) => return failed(lang, &e),
    };
    let event = match events::opt_out(app, &target.page, Actor::Person(lang)).await {
        Ok(event) => event,
        Err(e) => return failed(lang, &e),
    };
    let outcome = ops::opt_out(
        app.store.as_ref(),
        &target.page_id,
        &target.lead.id,
        event,
        app.clock.now(),
        Vec::new(),
    )
    .await;
    match outcome {
        Ok(OptOut::Unsubscribed | OptOut::AlreadyUnsubscribed) => {
            tracing::info!(page = %target.page_id, lead = %target.lead.id, outcome = ?outcome, "unsubscribe link used");
            unsubscribed_page(lang, &target.page)
        }
        // Erased between the read and the write.
        Ok(OptOut::NoSuchLead) => html::invalid_link(lang),
        Err(e) => failed(lang, &ApiError::from(e)),
    }
}
