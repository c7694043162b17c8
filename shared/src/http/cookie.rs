//! The session cookie and bearer tokens.
//!
//! Cookie attributes (SPEC §4): `HttpOnly; Secure; SameSite=Strict; Path=/`; a remembered session adds
//! `Max-Age` (30 days); an unremembered one has neither `Max-Age` nor `Expires`, so it ends with the browser.

use crate::domain::SessionToken;

use super::Request;

pub const SESSION_COOKIE: &str = "qchat_session";

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(token: &SessionToken, max_age_secs: Option<i64>) -> String {
    let mut c = format!(
        "{SESSION_COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/",
        token.expose()
    );
    if let Some(age) = max_age_secs {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

/// The session token from `Authorization: Bearer …` or else from the session cookie.
/// `None` when neither is present; `Some(Err)` when one is present but malformed.
pub fn session_token(req: &Request) -> Option<Result<SessionToken, crate::domain::ParseError>> {
    if let Some(v) = req.headers().get(http::header::AUTHORIZATION) {
        let v = v.to_str().unwrap_or_default();
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or_default();
        return Some(SessionToken::parse(token.trim()));
    }
    for header in req.headers().get_all(http::header::COOKIE) {
        let Ok(s) = header.to_str() else { continue };
        for pair in s.split(';') {
            if let Some((name, value)) = pair.trim().split_once('=')
                && name == SESSION_COOKIE
                && !value.is_empty()
            {
                return Some(SessionToken::parse(value));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unremembered_cookies_have_no_lifetime_and_remembered_ones_do() {
        let t = SessionToken::generate();
        let c = session_cookie(&t, None);
        assert!(c.contains("HttpOnly; Secure; SameSite=Strict; Path=/"));
        assert!(!c.contains("Max-Age") && !c.contains("Expires"));
        assert!(session_cookie(&t, Some(2_592_000)).ends_with("; Max-Age=2592000"));
    }

    #[test]
    fn reads_bearer_before_cookie() {
        let t = SessionToken::generate();
        let req = http::Request::builder()
            .header(
                "cookie",
                format!("other=1; {SESSION_COOKIE}={}", t.expose()),
            )
            .body(bytes::Bytes::new())
            .expect("request");
        let got = session_token(&req)
            .and_then(Result::ok)
            .map(|t| t.expose().to_owned());
        assert_eq!(got.as_deref(), Some(t.expose()));
        let req = http::Request::builder()
            .header("authorization", "Bearer nope")
            .body(bytes::Bytes::new())
            .expect("r");
        assert!(matches!(session_token(&req), Some(Err(_))));
    }
}
