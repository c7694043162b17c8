//! `PATCH /api/pages/{page_id}` `{"broadcast_rate": n, "language": "de"}` (either or both): the page's
//! settings. `broadcast_rate` is how many messages per second the page's broadcasts may send together
//! (1 to 250; a page that set none sends 20): Meta's Page Inbox stops keeping up above about 40 a
//! second, so the default stays below it; the Send API allows 300. `language` is the language of
//! everything qchat sends in Messenger for the page (one of en, de, fr, es, it, nl, pl, pt; English
//! until set).

use qchat_shared::app::App;
use qchat_shared::broadcast::{MAX_RATE, set_page_settings};
use qchat_shared::http::{ApiError, PathParams, Request, Response, StatusCode, json};
use qchat_shared::i18n::Lang;
use serde_json::Value;

use crate::access;

fn out_of_range() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_broadcast_rate",
        format!("broadcast_rate must be from 1 to {MAX_RATE} messages per second"),
    )
}

fn unknown_language() -> ApiError {
    let codes: Vec<_> = Lang::ALL.iter().map(|l| l.code()).collect();
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_language",
        format!("language must be one of {}", codes.join(", ")),
    )
}

/// The settings a request changes.
#[derive(Debug, PartialEq, Eq)]
struct Settings {
    rate: Option<u32>,
    language: Option<Lang>,
}

/// `{"broadcast_rate": <whole number>, "language": "<code>"}`, at least one, and nothing else.
fn parse(body: &[u8]) -> Result<Settings, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request("invalid_json", "the request body is not valid JSON"))?;
    let map = value.as_object().ok_or_else(|| {
        ApiError::bad_request("invalid_json", "the request body must be a JSON object")
    })?;
    if map.keys().any(|k| k != "broadcast_rate" && k != "language") {
        return Err(ApiError::bad_request(
            "unknown_field",
            "the request body may hold only broadcast_rate and language",
        ));
    }
    if map.is_empty() {
        return Err(ApiError::bad_request(
            "missing_field",
            "the field broadcast_rate or language is required",
        ));
    }
    let rate = map
        .get("broadcast_rate")
        .map(|raw| {
            if !raw.is_i64() && !raw.is_u64() {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    "broadcast_rate must be a whole number",
                ));
            }
            raw.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=MAX_RATE).contains(n))
                .ok_or_else(out_of_range)
        })
        .transpose()?;
    let language = map
        .get("language")
        .map(|raw| {
            let code = raw.as_str().ok_or_else(|| {
                ApiError::bad_request("invalid_field", "language must be a string")
            })?;
            Lang::of_code(code).ok_or_else(unknown_language)
        })
        .transpose()?;
    Ok(Settings { rate, language })
}

#[tracing::instrument(name = "broadcast.set_page_settings", skip_all)]
pub async fn set(app: &App, req: &Request, params: &PathParams) -> Result<Response, ApiError> {
    let page = access::page(app, req, params).await?;
    let settings = parse(req.body())?;
    let (rate, lang) = set_page_settings(
        app,
        &page.account,
        &page.id,
        settings.rate,
        settings.language,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("page"))?;
    tracing::info!(page = %page.id, rate, language = lang.code(), "page settings set");
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "page_id": page.id.as_str(),
            "broadcast_rate": rate,
            "language": lang.code(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_setting_or_both_are_accepted_and_nothing_else() {
        assert_eq!(
            parse(br#"{"language":"de"}"#).ok(),
            Some(Settings {
                rate: None,
                language: Some(Lang::De)
            })
        );
        assert_eq!(
            parse(br#"{"language":"pt","broadcast_rate":40}"#).ok(),
            Some(Settings {
                rate: Some(40),
                language: Some(Lang::Pt)
            })
        );
        for (body, code) in [
            (r#"{"language":"ja"}"#, "invalid_language"),
            (r#"{"language":"DE"}"#, "invalid_language"),
            (r#"{"language":7}"#, "invalid_field"),
            (r#"{"language":null}"#, "invalid_field"),
            (r#"{}"#, "missing_field"),
            (r#"{"lang":"de"}"#, "unknown_field"),
        ] {
            assert_eq!(
                parse(body.as_bytes()).err().map(|e| e.code),
                Some(code),
                "{body}"
            );
        }
    }
}
