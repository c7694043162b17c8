//! `GET /deletion/{code}`: where an erasure stands, for the person or account holder who holds its
//! confirmation code (Meta's data-deletion callback gives this page's address to the person). HTML for a
//! browser (in its language, [`qchat_shared::i18n`]), JSON with `Accept: application/json`.
//!
//! The code is the erasure job's id: 128 random bits, so it cannot be guessed, and the page shows only
//! the state, the finish time, what was erased as counts and, once done, the name of each page the
//! receipt names — nothing personal, nothing naming the account. A page's name is read when the page is
//! shown (the receipt keeps only the page id), so a page disconnected since, or one without a public
//! name, is shown as a neutral phrase; an account erasure names no page (it is the account holder's
//! own, and its pages are gone). Meta's callback can cover several pages: each is named, in the order
//! the person was found on them, at most [`MAX_PAGES_NAMED`] (then "+n"). A code that is malformed,
//! unknown, expired (receipts are kept one year) or names a job that is not an erasure gets the same
//! 404 page; every such code costs exactly one store read.

use qchat_shared::app::App;
use qchat_shared::clock::Timestamp;
use qchat_shared::domain::PageId;
use qchat_shared::erasure::account::ACCOUNT_ERASURE_JOB;
use qchat_shared::http::page::{self as html, escape};
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json, wants_json};
use qchat_shared::i18n::Lang;
use qchat_shared::jobs::{JobState, JobStatus, Jobs};
use qchat_shared::leads::erase::PAGE_LEADS_ERASURE_JOB;
use qchat_shared::leads::erase_lead::LEAD_ERASURE_JOB;
use qchat_shared::meta_deletion::META_DELETION_JOB;
use qchat_shared::pages::page_key;
use serde_json::{Map, Value, json};

/// The job kinds whose ids are erasure confirmation codes.
const ERASURE_KINDS: &[&str] = &[
    PAGE_LEADS_ERASURE_JOB,
    ACCOUNT_ERASURE_JOB,
    LEAD_ERASURE_JOB,
    META_DELETION_JOB,
];
/// Job ids are 26 base32 characters; anything longer or of other characters names no job.
const MAX_CODE_LEN: usize = 64;
/// The most pages one status page names (one store read each); more are counted as "+n".
const MAX_PAGES_NAMED: usize = 20;

/// What the page says of one erasure.
struct Shown {
    state: &'static str,
    finished_at: Option<Timestamp>,
    erased: Map<String, Value>,
    /// The pages the receipt names, in its order.
    pages: Vec<PageId>,
}

/// A page of a receipt as the status page shows it.
enum PageShown {
    Named(String),
    Unnamed,
    Gone,
}

/// The pages' names now, for the first [`MAX_PAGES_NAMED`] of `pages`.
async fn page_names(app: &App, pages: &[PageId]) -> Result<Vec<PageShown>, ApiError> {
    let mut out = Vec::new();
    for page in pages.iter().take(MAX_PAGES_NAMED) {
        let shown = match app.store.get(&page_key(page)).await? {
            None => PageShown::Gone,
            Some(item) => match item.get_str("name").filter(|n| !n.trim().is_empty()) {
                Some(name) => PageShown::Named(name.to_owned()),
                None => PageShown::Unnamed,
            },
        };
        out.push(shown);
    }
    Ok(out)
}

pub async fn show(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let code = params.get("code").filter(|c| well_formed(c));
    let status = match code {
        Some(code) => jobs(app).status(code).await?,
        None => None,
    };
    let shown = status
        .filter(|s| ERASURE_KINDS.contains(&s.kind.as_str()))
        .map(shown);
    let names = match &shown {
        Some(shown) => page_names(app, &shown.pages).await?,
        None => Vec::new(),
    };
    let lang = Lang::of_request(req);
    let t = lang.texts();
    Ok(match (shown, code) {
        (Some(shown), Some(code)) if wants_json(req) => {
            json(StatusCode::OK, &as_json(code, &shown, &names))
        }
        (Some(shown), Some(code)) => html::page_in(
            lang,
            StatusCode::OK,
            t.deletion_title,
            &as_html(lang, code, &shown, &names),
        ),
        _ if wants_json(req) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no deletion request has this confirmation code",
            ));
        }
        _ => html::page_in(
            lang,
            StatusCode::NOT_FOUND,
            t.deletion_not_found_title,
            &format!("<p>{}</p>", escape(t.deletion_not_found_body)),
        ),
    })
}

fn jobs(app: &App) -> Jobs {
    // Only read here, so the lease is never used.
    Jobs::new(app.store.clone(), app.clock.clone(), app.ids.clone(), 0)
}

fn well_formed(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Reads a receipt of the shape every erasure writes: `{"erased": {<what>: <count>}, "finished_at": ms}`.
fn shown(status: JobStatus) -> Shown {
    match status.state {
        JobState::Queued => Shown {
            state: "in_progress",
            finished_at: None,
            erased: Map::new(),
            pages: Vec::new(),
        },
        JobState::Failed => Shown {
            state: "stalled",
            finished_at: None,
            erased: Map::new(),
            pages: Vec::new(),
        },
        JobState::Done => {
            let receipt: Value = status
                .receipt
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or(Value::Null);
            Shown {
                state: "completed",
                finished_at: receipt
                    .get("finished_at")
                    .and_then(Value::as_i64)
                    .map(Timestamp::from_millis),
                erased: receipt
                    .get("erased")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .filter(|(_, v)| v.is_u64())
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                pages: receipt
                    .get("pages")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .filter_map(|p| PageId::parse(p).ok())
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        }
    }
}

/// `pages`: each as `{"name": <name or null>, "connected": <bool>}`, and `more_pages`, how many more the
/// receipt names than are shown.
fn as_json(code: &str, shown: &Shown, names: &[PageShown]) -> Value {
    let pages: Vec<Value> = names
        .iter()
        .map(|p| match p {
            PageShown::Named(name) => json!({ "name": name, "connected": true }),
            PageShown::Unnamed => json!({ "name": null, "connected": true }),
            PageShown::Gone => json!({ "name": null, "connected": false }),
        })
        .collect();
    json!({
        "confirmation_code": code,
        "status": shown.state,
        "finished_at": shown.finished_at.map(Timestamp::to_rfc3339),
        "erased": shown.erased,
        "pages": pages,
        "more_pages": shown.pages.len().saturating_sub(names.len()),
    })
}

fn as_html(lang: Lang, code: &str, shown: &Shown, names: &[PageShown]) -> String {
    let t = lang.texts();
    // The state sentences hold their own <strong> markup and no inserted value.
    let said = match shown.state {
        "completed" => t.deletion_completed,
        "in_progress" => t.deletion_in_progress,
        _ => t.deletion_stalled,
    };
    let mut out = format!(
        "<p>{} <code>{}</code></p><p>{said}</p>",
        escape(t.deletion_code),
        escape(code)
    );
    let name = |p: &PageShown| match p {
        PageShown::Named(name) => format!("<strong>{}</strong>", escape(name)),
        PageShown::Unnamed => escape(t.deletion_page_unnamed),
        PageShown::Gone => escape(t.deletion_page_gone),
    };
    let more = shown.pages.len().saturating_sub(names.len());
    match names {
        [] => {}
        [one] if more == 0 => {
            out.push_str(&format!("<p>{} {}</p>", escape(t.deletion_page), name(one)));
        }
        several => {
            out.push_str(&format!("<p>{}</p><ul>", escape(t.deletion_pages)));
            for p in several {
                out.push_str(&format!("<li>{}</li>", name(p)));
            }
            if more > 0 {
                out.push_str(&format!("<li>+{more}</li>"));
            }
            out.push_str("</ul>");
        }
    }
    if let Some(at) = shown.finished_at {
        out.push_str(&format!(
            "<p>{} {}</p>",
            escape(t.deletion_finished),
            escape(&at.to_rfc3339())
        ));
    }
    if !shown.erased.is_empty() {
        out.push_str(&format!("<p>{}</p><ul>", escape(t.deletion_erased)));
        for (what, count) in &shown.erased {
            out.push_str(&format!(
                "<li>{}: {}</li>",
                escape(&t.erased_kind(what)),
                count
            ));
        }
        out.push_str("</ul>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use qchat_shared::erasure::account::Counts as AccountCounts;
    use qchat_shared::leads::erase::Counts as PageCounts;
    use qchat_shared::leads::erase_lead::Counts as LeadCounts;
    use qchat_shared::meta_deletion::Erased as MetaCounts;

    /// The keys of a receipt's `erased` counts.
    fn keys(counts: impl serde::Serialize) -> Vec<String> {
        match serde_json::to_value(counts) {
            Ok(Value::Object(m)) => m.keys().cloned().collect(),
            other => panic!("counts are an object: {other:?}"),
        }
    }

    #[test]
    fn every_count_any_erasure_keeps_is_named_in_every_language() {
        let all = [
            keys(LeadCounts::default()),
            keys(PageCounts::default()),
            keys(AccountCounts::default()),
            keys(MetaCounts { leads: 0 }),
        ]
        .concat();
        assert!(all.len() > 15, "{all:?}");
        for lang in Lang::ALL {
            let t = lang.texts();
            for key in &all {
                assert!(
                    t.erased_kinds.iter().any(|(k, _)| k == key),
                    "{lang:?} names {key} (no fallback to the key itself)"
                );
            }
        }
    }
}
