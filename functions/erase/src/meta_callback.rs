//! `POST /facebook/data-deletion`: Meta's data-deletion request callback (MESSENGER.md §4). Meta posts
//! the form field `signed_request` when a person removes the app and asks for their data to be deleted.
//!
//! The request is verified ([`qchat_shared::meta_deletion::signed_request`]), then ONE job is queued that
//! looks the person up on every connected page and erases what it finds
//! ([`qchat_shared::meta_deletion`]); the answer comes at once, as Meta requires:
//! `{"url": "<public URL>/deletion/<code>", "confirmation_code": "<code>"}`, the code being the job's id
//! (26 characters of `[a-z2-7]`: alphanumeric, as Meta asks). A person qchat holds nothing of gets the
//! same answer. Every refusal is a 400 naming the broken rule and queues nothing; nothing of the request
//! is logged.

use qchat_shared::app::App;
use qchat_shared::http::{ApiError, Request, Response, StatusCode, form_field, json};
use qchat_shared::meta_deletion::{self, CallbackError, SignedRequestError};
use serde_json::json;

/// The largest form body read: a `signed_request` of the longest accepted length, percent-encoded.
const MAX_BODY: usize = 3 * meta_deletion::signed_request::MAX_LEN;

fn refused(e: SignedRequestError) -> ApiError {
    tracing::info!(rule = e.rule(), "a data-deletion request was refused");
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_signed_request",
        e.to_string(),
    )
}

pub async fn callback(app: &App, req: &Request) -> Result<Response, ApiError> {
    if req.body().len() > MAX_BODY {
        return Err(refused(SignedRequestError::TooLong));
    }
    let raw =
        form_field(req, "signed_request").ok_or_else(|| refused(SignedRequestError::Missing))?;
    let request = match meta_deletion::verify(&app.meta_secrets, &raw, app.clock.now()).await {
        Ok(request) => request,
        Err(CallbackError::Refused(e)) => return Err(refused(e)),
        Err(e) => return Err(failure(&e)),
    };
    let code = meta_deletion::enqueue(app, &request)
        .await
        .map_err(|e| failure(&e))?;
    tracing::info!(job = %code, "data-deletion request queued");
    let url = format!(
        "{}/deletion/{code}",
        app.config.public_url.trim_end_matches('/')
    );
    Ok(json(
        StatusCode::OK,
        &json!({ "url": url, "confirmation_code": code }),
    ))
}

/// Meta does not retry a failed callback the way it retries webhooks, so a backend failure says so
/// plainly: 503 when trying again may work.
fn failure(e: &CallbackError) -> ApiError {
    tracing::error!(error = %e, "a data-deletion request could not be taken");
    match e {
        CallbackError::NoSecret(_) => ApiError::unavailable(),
        CallbackError::Store(s) if s.is_retryable() => ApiError::unavailable(),
        _ => ApiError::internal(),
    }
}
