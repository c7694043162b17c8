//! Reading requests: JSON bodies with a size limit and errors that never echo what was sent.

use serde::de::DeserializeOwned;

use super::{ApiError, Request};

/// The largest JSON body any API route accepts (the webhook reads its body itself).
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// Checks that `body` can be a JSON object: at most [`MAX_JSON_BODY`] bytes, and `{` is its first
/// non-whitespace byte (serde would otherwise read a struct from an array, field by position).
pub fn check_json_object(body: &[u8]) -> Result<(), ApiError> {
    if body.len() > MAX_JSON_BODY {
        return Err(ApiError::new(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than 64 KiB",
        ));
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the request body must be a JSON object",
        ));
    }
    Ok(())
}

/// Parses the body, which must be a JSON object ([`check_json_object`]), into `T`.
pub fn parse_json<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let body = req.body();
    check_json_object(body)?;
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => {
                // serde names a missing field without its value; any other data error could quote the value.
                let text = e.to_string();
                match text
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split_once('`'))
                {
                    Some((field, _)) => ApiError::bad_request(
                        "missing_field",
                        format!("the field {field} is required"),
                    ),
                    None => ApiError::bad_request(
                        "invalid_field",
                        "a field has the wrong type or an invalid value",
                    ),
                }
            }
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::bad_request("invalid_json", "the request body is not valid JSON")
            }
        }
    })
}

/// The first value of field `name` of a form-encoded body (`application/x-www-form-urlencoded`).
pub fn form_field(req: &Request, name: &str) -> Option<String> {
    form_urlencoded::parse(req.body())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The first value of query parameter `name`, percent-decoded.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Whether the client asked for JSON (`Accept: application/json`) rather than the HTML a browser gets.
pub fn wants_json(req: &super::Request) -> bool {
    req.headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        remember: bool,
    }

    fn req(body: &str) -> Request {
        http::Request::new(bytes::Bytes::from(body.to_owned()))
    }

    #[test]
    fn errors_name_the_field_but_never_the_value() {
        let e = parse_json::<Login>(&req(r#"{"email":"secret@example.com"}"#)).err();
        assert_eq!(
            e.map(|e| (e.code, e.message.into_owned())),
            Some(("missing_field", "the field remember is required".into()))
        );
        let e = parse_json::<Login>(&req(
            r#"{"email":"secret@example.com","remember":"yes-secret"}"#,
        ))
        .err();
        assert!(e.is_some_and(|e| e.code == "invalid_field" && !e.message.contains("secret")));
        let e = parse_json::<Login>(&req("{not json")).err();
        assert_eq!(e.map(|e| e.code), Some("invalid_json"));
        // A struct is never read from an array by position.
        let e = parse_json::<Login>(&req(r#"["secret@example.com", true]"#)).err();
        assert_eq!(e.map(|e| e.code), Some("invalid_json"));
    }
}
