//! `GET /deletion/{code}`: where an erasure stands, for the person or account holder who holds its
//! confirmation code (Meta's data-deletion callback gives this page's address to the person). HTML for a
//! browser (in its language, [`qchat_shared::i18n`]), JSON with `Accept: application/json`.
//!
//! The code is the erasure job's id: 128 random bits, so it cannot be guessed, and the page shows only
//! the state, the finish time and what was erased as counts — nothing personal, nothing naming the page
//! or account. A code that is malformed, unknown, expired (receipts are kept one year) or names a job that
//! is not an erasure gets the same 404 page; every well-formed code costs exactly one store read.

use qchat_shared::app::App;
use qchat_shared::clock::Timestamp;
use qchat_shared::erasure::account::ACCOUNT_ERASURE_JOB;
use qchat_shared::http::page::{self as html, escape};
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json, wants_json};
use qchat_shared::i18n::Lang;
use qchat_shared::jobs::{JobState, JobStatus, Jobs};
use qchat_shared::leads::erase::PAGE_LEADS_ERASURE_JOB;
use qchat_shared::leads::erase_lead::LEAD_ERASURE_JOB;
use qchat_shared::meta_deletion::META_DELETION_JOB;
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

/// What the page says of one erasure.
struct Shown {
    state: &'static str,
    finished_at: Option<Timestamp>,
    erased: Map<String, Value>,
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
    let lang = Lang::of_request(req);
    let t = lang.texts();
    Ok(match (shown, code) {
        (Some(shown), Some(code)) if wants_json(req) => {
            json(StatusCode::OK, &as_json(code, &shown))
        }
        (Some(shown), Some(code)) => html::page_in(
            lang,
            StatusCode::OK,
            t.deletion_title,
            &as_html(lang, code, &shown),
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
        },
        JobState::Failed => Shown {
            state: "stalled",
            finished_at: None,
            erased: Map::new(),
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
            }
        }
    }
}

fn as_json(code: &str, shown: &Shown) -> Value {
    json!({
        "confirmation_code": code,
        "status": shown.state,
        "finished_at": shown.finished_at.map(Timestamp::to_rfc3339),
        "erased": shown.erased,
    })
}

fn as_html(lang: Lang, code: &str, shown: &Shown) -> String {
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
