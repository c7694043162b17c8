//! The Graph API messenger: `POST {base}/{version}/{page_id}/messages` (MESSENGER.md §3), and
//! `GET {base}/{version}/me?fields=id,name` to learn which page a page access token belongs to, and
//! `GET {base}/{version}/{app-scoped id}/ids_for_pages?page={page}` to map a person's app-scoped id to
//! their id on a page (MESSENGER.md §4).
//!
//! Invariants: the page token travels only in a sensitive `Authorization` header, never in the URL (HTTP
//! client errors print URLs); the URL holds only the page id (or `me` and the fields asked for) and, with
//! an app secret configured, the `appsecret_proof` (an HMAC of the token, not secret). The one
//! exception, `ids_for_pages`, has the app-scoped id in its path as Graph requires: that URL is never
//! logged, and a transport error is reduced to a fixed reason before anyone sees it. Every Graph error
//! is classified by [`classify`] into a [`SendError`] (a token check's into a [`PageCheckError`]);
//! nothing that reaches an error or a log names the person, the text, the token or Meta's message.

use std::sync::Arc;
use std::time::Duration;

use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tracing::instrument;
use url::Url;

use super::{
    MessagingType, Messenger, OutgoingMessage, PageCheckError, PageProfile, Recipient, SendError,
    SentMessage, page_name, validate,
};
use crate::domain::{AppScopedUserId, PageAccessToken, PageId, Psid};
use crate::https::{self, Https};
use crate::meta_secrets::{MetaSecretCache, MetaSecrets};

/// Meta's answer to a call whose `appsecret_proof` does not match the app's secret: code 100
/// (`GraphMethodException`, "Invalid appsecret_proof provided in the API argument"), no subcode.
const PROOF_REFUSED_CODE: i64 = 100;

/// Whether an error is Meta refusing the call's `appsecret_proof`.
trait ProofRefusal {
    fn is_proof_refusal(&self) -> bool;
}

impl ProofRefusal for SendError {
    fn is_proof_refusal(&self) -> bool {
        matches!(
            self,
            Self::InvalidRequest {
                code: PROOF_REFUSED_CODE,
                subcode: None
            }
        )
    }
}

impl ProofRefusal for PageCheckError {
    fn is_proof_refusal(&self) -> bool {
        matches!(
            self,
            Self::Refused {
                code: PROOF_REFUSED_CODE,
                subcode: None
            }
        )
    }
}

/// Meta's Graph API.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com";
/// How long one call may take in total, answer included; well inside a Lambda's time budget. (A
/// connection is given up after [`https::CONNECT_TIMEOUT`].)
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest answer read: Graph's are a few hundred bytes; a larger one is not Graph's.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Why the Graph messenger's configuration was refused (at start-up, not at the first send).
#[derive(Debug, thiserror::Error)]
pub enum GraphConfigError {
    #[error("the Graph API base URL must be an absolute http(s) URL without query or fragment")]
    BaseUrl(#[source] Option<Box<dyn std::error::Error + Send + Sync>>),
    #[error("the Graph API version must look like v21.0")]
    Version,
}

/// Where the app secret for `appsecret_proof` comes from.
#[derive(Clone)]
enum AppSecret {
    Fixed(SecretString),
    /// Read at run time, so a rotated secret is used within the cache's lifetime.
    Cached(Arc<MetaSecretCache>),
}

/// Sends through the Send API over HTTPS.
#[derive(Clone)]
pub struct GraphMessenger {
    /// The HTTP client: given, or (`None`) the process's one ([`https::shared`]) at the first call,
    /// so a process that never calls Meta never reads the CA store.
    http: Option<Https>,
    /// `{base}/{version}`, without a trailing slash.
    versioned_base: String,
    app_secret: Option<AppSecret>,
    /// Per request: overrides whatever the given client was built with, so no send can hang.
    timeout: Duration,
}

impl std::fmt::Debug for GraphMessenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphMessenger")
            .field("versioned_base", &self.versioned_base)
            .field(
                "app_secret",
                &self.app_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The process's HTTPS client, for [`GraphMessenger::new`].
///
/// # Errors
/// As [`https::shared`].
pub fn http_client() -> Result<Https, https::HttpsUnavailable> {
    https::shared()
}

impl GraphMessenger {
    /// `base_url` is normally [`DEFAULT_BASE_URL`] (a fake on 127.0.0.1 in tests); `version` like `v21.0`.
    /// With `app_secret`, every call carries `appsecret_proof`, which apps that require it need.
    pub fn new(
        http: Https,
        base_url: String,
        version: String,
        app_secret: Option<SecretString>,
    ) -> Result<Self, GraphConfigError> {
        Self::with_http(Some(http), &base_url, &version, app_secret)
    }

    fn with_http(
        http: Option<Https>,
        base_url: &str,
        version: &str,
        app_secret: Option<SecretString>,
    ) -> Result<Self, GraphConfigError> {
        let base = base_url.trim_end_matches('/');
        let parsed = Url::parse(base).map_err(|e| GraphConfigError::BaseUrl(Some(Box::new(e))))?;
        if !matches!(parsed.scheme(), "http" | "https")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
            || parsed.cannot_be_a_base()
        {
            return Err(GraphConfigError::BaseUrl(None));
        }
        let version_ok = version.strip_prefix('v').is_some_and(|v| {
            !v.is_empty()
                && v.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        if !version_ok {
            return Err(GraphConfigError::Version);
        }
        Ok(Self {
            http,
            versioned_base: format!("{base}/{version}"),
            app_secret: app_secret.map(AppSecret::Fixed),
            timeout: TOTAL_TIMEOUT,
        })
    }

    /// Like [`Self::new`], with the process's client ([`http_client`]) taken at the first call.
    ///
    /// # Errors
    /// As [`Self::new`].
    pub fn with_client_at_first_call(
        base_url: String,
        version: String,
        app_secret: Option<SecretString>,
    ) -> Result<Self, GraphConfigError> {
        Self::with_http(None, &base_url, &version, app_secret)
    }

    fn http(&self) -> Result<Https, SendError> {
        match &self.http {
            Some(client) => Ok(client.clone()),
            None => https::shared().map_err(|_| SendError::Transport {
                reason: "the HTTP client could not be built",
            }),
        }
    }

    /// One Graph call: its answer's status, headers and body, within the messenger's timeout.
    async fn call(
        &self,
        method: Method,
        url: &Url,
        authorization: HeaderValue,
        json: Option<Vec<u8>>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), SendError> {
        let https = self.http()?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .header(AUTHORIZATION, authorization);
        if json.is_some() {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let request = request
            .body(json.map_or_else(SdkBody::empty, SdkBody::from))
            .map_err(|_| SendError::Transport {
                reason: "the request to the Send API failed",
            })?;
        let exchange = async {
            let response = https.send(request).await.map_err(|e| transport(&e))?;
            let (head, body) = response.into_parts();
            let body = http_body_util::Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|_| SendError::Transport {
                    reason: "the Send API's answer could not be read",
                })?;
            Ok((head.status, head.headers, body.to_bytes()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| SendError::Transport {
                reason: "the Send API did not answer in time",
            })?
    }

    /// Signs every call with the app secret `secrets` holds at the time of the call.
    pub fn with_app_secret_from(mut self, secrets: Arc<MetaSecretCache>) -> Self {
        self.app_secret = Some(AppSecret::Cached(secrets));
        self
    }

    /// The app secret to sign this call with, if any, and the cached secrets it came from.
    async fn app_secret(
        &self,
    ) -> Result<(Option<SecretString>, Option<Arc<MetaSecrets>>), SendError> {
        match &self.app_secret {
            None => Ok((None, None)),
            Some(AppSecret::Fixed(secret)) => Ok((Some(secret.clone()), None)),
            Some(AppSecret::Cached(cache)) => match cache.current().await {
                Ok(secrets) => Ok((Some(secrets.app_secret().clone()), Some(secrets))),
                Err(e) => {
                    tracing::error!(error = %e, "no app secret to sign the Graph API call with");
                    Err(SendError::Transport {
                        reason: "the app secret could not be read",
                    })
                }
            },
        }
    }

    /// Makes `call` with the app secret of the moment; when Meta refuses its `appsecret_proof` (the
    /// secret was rotated since the cache read it), re-reads the secret (at most once per the cache's
    /// refresh interval) and, if it changed, makes the call once more with the new one. Without this, a
    /// warm sandbox's Graph calls would fail until its cached copy expired.
    async fn with_app_secret<T, E, F, Fut>(&self, call: F) -> Result<T, E>
    where
        F: Fn(Option<SecretString>) -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
        E: From<SendError> + ProofRefusal,
    {
        let (secret, used) = self.app_secret().await.map_err(E::from)?;
        let first = call(secret).await;
        if let Err(e) = &first
            && e.is_proof_refusal()
            && let (Some(AppSecret::Cached(cache)), Some(used)) = (&self.app_secret, used)
            && let Some(newer) = cache.newer_than(&used).await
        {
            tracing::info!(
                "Meta refused the appsecret_proof; calling once more with the re-read app secret"
            );
            return call(Some(newer.app_secret().clone())).await;
        }
        first
    }

    /// Replaces [`TOTAL_TIMEOUT`] for every send (tests use a short one).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `{base}/{version}/{path}?{query}[&appsecret_proof=…]`: every Graph URL, with the proof of the
    /// token when an app secret is configured. `what` names the API in the error.
    fn graph_url(
        &self,
        path: &str,
        query: &[(&str, &str)],
        token: &PageAccessToken,
        app_secret: Option<&SecretString>,
        what: &'static str,
    ) -> Result<Url, SendError> {
        let mut url = Url::parse(&format!("{}/{path}", self.versioned_base))
            .map_err(|_| SendError::Transport { reason: what })?;
        {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in query {
                pairs.append_pair(name, value);
            }
            if let Some(secret) = app_secret {
                pairs.append_pair("appsecret_proof", &appsecret_proof(secret, token));
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        Ok(url)
    }

    /// `{base}/{version}/{page}/messages[?appsecret_proof=…]`.
    fn url(
        &self,
        page: &PageId,
        token: &PageAccessToken,
        app_secret: Option<&SecretString>,
    ) -> Result<Url, SendError> {
        self.graph_url(
            &format!("{}/messages", page.as_str()),
            &[],
            token,
            app_secret,
            "the Send API URL could not be built",
        )
    }

    /// `{base}/{version}/me?fields=id,name[&appsecret_proof=…]`.
    fn me_url(
        &self,
        token: &PageAccessToken,
        app_secret: Option<&SecretString>,
    ) -> Result<Url, SendError> {
        self.graph_url(
            "me",
            &[("fields", "id,name")],
            token,
            app_secret,
            "the Graph API URL could not be built",
        )
    }

    /// `{base}/{version}/{user}/ids_for_pages?page={page}[&appsecret_proof=…]`.
    fn ids_url(
        &self,
        user: &AppScopedUserId,
        page: &PageId,
        token: &PageAccessToken,
        app_secret: Option<&SecretString>,
    ) -> Result<Url, SendError> {
        self.graph_url(
            &format!("{}/ids_for_pages", user.expose()),
            &[("page", page.as_str())],
            token,
            app_secret,
            "the Graph API URL could not be built",
        )
    }
}

/// The token as a sensitive `Authorization: Bearer` value (never printed by the HTTP client).
fn bearer(token: &PageAccessToken) -> Result<HeaderValue, SendError> {
    let bearer = Zeroizing::new(format!("Bearer {}", token.expose()));
    // PageAccessToken is printable ASCII, so this only fails for a token that can never work.
    let mut authorization =
        HeaderValue::from_str(&bearer).map_err(|_| SendError::TokenInvalid {
            code: 0,
            subcode: None,
        })?;
    authorization.set_sensitive(true);
    Ok(authorization)
}

/// `appsecret_proof`: lowercase hex of HMAC-SHA256 keyed with the app secret over the access token.
pub fn appsecret_proof(app_secret: &SecretString, token: &PageAccessToken) -> String {
    hmac_sha256_hex(
        app_secret.expose_secret().as_bytes(),
        token.expose().as_bytes(),
    )
}

fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    hex::encode(tag)
}

// ---- wire types ----

/// The request body. Borrowed from the message: nothing is copied into long-lived state.
#[derive(Debug, Serialize)]
pub(crate) struct SendBody<'a> {
    pub recipient: WireRecipient<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messaging_type: Option<&'static str>,
    pub message: WireMessage<'a>,
}

/// `{"id"}` | `{"user_ref"}` | `{"notification_messages_token"}`.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WireRecipient<'a> {
    Id(std::borrow::Cow<'a, str>),
    UserRef(std::borrow::Cow<'a, str>),
    NotificationMessagesToken(std::borrow::Cow<'a, str>),
}

#[derive(Debug, Serialize)]
pub(crate) struct WireMessage<'a> {
    /// A plain text message's text (none with buttons: the template carries it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<WireAttachment<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<WireQuickReply<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<&'a str>,
}

/// `{"type": "template", "payload": {"template_type": "button", "text", "buttons"}}`.
#[derive(Debug, Serialize)]
pub(crate) struct WireAttachment<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub payload: WireTemplate<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct WireTemplate<'a> {
    pub template_type: &'static str,
    pub text: &'a str,
    pub buttons: Vec<WireButton<'a>>,
}

#[derive(Debug, Serialize)]
pub(crate) struct WireButton<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub url: &'a str,
    pub title: &'a str,
}

#[derive(Debug, Serialize)]
pub(crate) struct WireQuickReply<'a> {
    pub content_type: &'static str,
    pub title: &'a str,
    pub payload: &'a str,
}

impl<'a> WireRecipient<'a> {
    pub(crate) fn of(recipient: &'a Recipient) -> Self {
        use std::borrow::Cow::Borrowed;
        match recipient {
            Recipient::Psid(p) => Self::Id(Borrowed(p.expose())),
            Recipient::UserRef(u) => Self::UserRef(Borrowed(u.expose())),
            Recipient::NotificationToken(t) => {
                Self::NotificationMessagesToken(Borrowed(t.expose()))
            }
        }
    }

    /// An owned copy, for records that outlive the message.
    pub fn into_owned(self) -> WireRecipient<'static> {
        use std::borrow::Cow::Owned;
        match self {
            Self::Id(v) => WireRecipient::Id(Owned(v.into_owned())),
            Self::UserRef(v) => WireRecipient::UserRef(Owned(v.into_owned())),
            Self::NotificationMessagesToken(v) => {
                WireRecipient::NotificationMessagesToken(Owned(v.into_owned()))
            }
        }
    }
}

/// The `messaging_type` sent for a message: none for a marketing-messages token, whose sends Meta's own
/// samples make without one (the type describes the 24-hour window, which such a send is outside of).
pub(crate) fn wire_messaging_type(message: &OutgoingMessage) -> Option<&'static str> {
    match (&message.recipient, message.messaging_type) {
        (Recipient::NotificationToken(_), _) => None,
        (_, MessagingType::Response) => Some("RESPONSE"),
        (_, MessagingType::Update) => Some("UPDATE"),
    }
}

/// The recipient kind for logs: says which kind, never which person.
pub(crate) fn recipient_kind(recipient: &Recipient) -> &'static str {
    match recipient {
        Recipient::Psid(_) => "psid",
        Recipient::UserRef(_) => "user_ref",
        Recipient::NotificationToken(_) => "notification_messages_token",
    }
}

pub(crate) fn body(message: &OutgoingMessage) -> SendBody<'_> {
    SendBody {
        recipient: WireRecipient::of(&message.recipient),
        messaging_type: wire_messaging_type(message),
        message: WireMessage {
            text: message.buttons.is_empty().then_some(message.text.as_str()),
            attachment: (!message.buttons.is_empty()).then(|| WireAttachment {
                kind: "template",
                payload: WireTemplate {
                    template_type: "button",
                    text: &message.text,
                    buttons: message
                        .buttons
                        .iter()
                        .map(|b| WireButton {
                            kind: "web_url",
                            url: &b.url,
                            title: &b.title,
                        })
                        .collect(),
                },
            }),
            quick_replies: message
                .quick_replies
                .iter()
                .map(|q| WireQuickReply {
                    content_type: "text",
                    title: &q.title,
                    payload: &q.payload,
                })
                .collect(),
            metadata: message.metadata.as_deref(),
        },
    }
}

/// `/me`'s answer. `id` is read as a string or a number; `name` may be absent.
#[derive(Debug, Deserialize)]
struct MeAnswer {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    name: Option<String>,
    error: Option<GraphError>,
}

/// `ids_for_pages`' answer: `{"data": [{"id": <page-scoped id>, "page": {"id", "name"}}], "paging"}`.
#[derive(Deserialize)]
struct IdsAnswer {
    data: Option<Vec<IdsEntry>>,
    error: Option<GraphError>,
}

#[derive(Deserialize)]
struct IdsEntry {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    page: Option<IdsPage>,
}

#[derive(Deserialize)]
struct IdsPage {
    #[serde(default)]
    id: Option<serde_json::Value>,
}

/// A Graph id written as a string or a number, as digits.
fn graph_id(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        _ => None,
    }
}

#[derive(Debug, Deserialize)]
struct SendAnswer {
    message_id: Option<String>,
    error: Option<GraphError>,
}

/// Graph's `{"error": {...}}`. The `message` is deliberately not read: it is free text from Meta that may
/// quote the request.
#[derive(Debug, Deserialize)]
struct GraphError {
    #[serde(default, deserialize_with = "lenient_i64")]
    code: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    error_subcode: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    fbtrace_id: Option<String>,
}

impl GraphError {
    /// Logs Meta's refusal by its codes and trace id only: Meta's message text can quote what was sent.
    fn log_refusal(&self, code: i64, status: StatusCode, what: &'static str) {
        tracing::warn!(
            code,
            subcode = self.error_subcode,
            error_type = self.kind.as_deref(),
            fbtrace_id = self.fbtrace_id.as_deref(),
            http_status = status.as_u16(),
            "{what}"
        );
    }
}

/// Graph sends codes as numbers; some proxies and old versions send them as strings.
fn lenient_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

// ---- classification ----

/// Classifies a Graph error (MESSENGER.md §3). Subcode-specific rows come before code-only rows, because
/// Meta reuses broad codes (4, 10, 100, 200) for specific situations told apart by the subcode. An
/// unknown code is the request's fault on a 4xx answer and Meta's on a 5xx.
pub fn classify(code: i64, subcode: Option<i64>, http_status: u16) -> SendError {
    match (code, subcode) {
        (4, Some(2_018_354)) | (9, Some(2_018_352)) => SendError::FrequencyCapped { code, subcode },
        (10, Some(2_018_108)) | (200, Some(1_545_041)) | (100, Some(2_018_001)) => {
            SendError::Unreachable { code, subcode }
        }
        (10, Some(2_018_278 | 2_018_065)) => SendError::OutsideWindow { code, subcode },
        (190, _) => SendError::TokenInvalid { code, subcode },
        (10 | 200..=299, _) => SendError::Permission { code, subcode },
        (4 | 17 | 32 | 613, _) => SendError::RateLimited {
            code,
            retry_after: None,
        },
        (1 | 2 | 1200, _) => SendError::Temporary { code },
        (551, _) => SendError::Unreachable { code, subcode },
        _ if http_status >= 500 => SendError::Temporary { code },
        _ => SendError::InvalidRequest { code, subcode },
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds))
}

fn transport(e: &hyper_util::client::legacy::Error) -> SendError {
    // The error itself is not kept: `SendError` is plain data the caller compares and stores.
    let reason = if e.is_connect() {
        "the Send API could not be reached"
    } else if https::is_io(e) {
        "the connection to the Send API failed"
    } else {
        "the request to the Send API failed"
    };
    SendError::Transport { reason }
}

fn outcome(e: &SendError) -> &'static str {
    match e {
        SendError::RateLimited { .. } => "rate_limited",
        SendError::Unreachable { .. } => "unreachable",
        SendError::OutsideWindow { .. } => "outside_window",
        SendError::FrequencyCapped { .. } => "frequency_capped",
        SendError::TokenInvalid { .. } => "token_invalid",
        SendError::Permission { .. } => "permission",
        SendError::Temporary { .. } => "temporary",
        SendError::InvalidRequest { .. } => "invalid_request",
        SendError::Transport { .. } => "transport",
    }
}

#[async_trait::async_trait]
impl Messenger for GraphMessenger {
    #[instrument(
        name = "messenger.graph.send",
        skip_all,
        fields(page = %page, recipient_kind = recipient_kind(&message.recipient), outcome)
    )]
    async fn send(
        &self,
        page: &PageId,
        token: &PageAccessToken,
        message: &OutgoingMessage,
    ) -> Result<SentMessage, SendError> {
        let result = self
            .with_app_secret(|secret| self.send_checked(page, token, message, secret))
            .await;
        let span = tracing::Span::current();
        match &result {
            Ok(_) => span.record("outcome", "sent"),
            Err(e) => span.record("outcome", outcome(e)),
        };
        result
    }

    // The id Meta answers is not recorded: for a user's token it is a person's id, not a page's.
    #[instrument(name = "messenger.graph.page_of_token", skip_all, fields(outcome))]
    async fn page_of_token(&self, token: &PageAccessToken) -> Result<PageProfile, PageCheckError> {
        let result = self
            .with_app_secret(|secret| self.page_of_token_checked(token, secret))
            .await;
        let outcome = result.as_ref().map_or_else(check_outcome, |_| "answered");
        tracing::Span::current().record("outcome", outcome);
        result
    }

    #[instrument(
        name = "messenger.graph.ids_for_pages",
        skip_all,
        fields(page = %page, found, outcome)
    )]
    async fn ids_for_pages(
        &self,
        user: &AppScopedUserId,
        page: &PageId,
        token: &PageAccessToken,
    ) -> Result<Vec<Psid>, PageCheckError> {
        let result = self
            .with_app_secret(|secret| self.ids_for_pages_checked(user, page, token, secret))
            .await;
        let span = tracing::Span::current();
        match &result {
            Ok(ids) => {
                span.record("found", ids.len());
                span.record("outcome", "answered");
            }
            Err(e) => {
                span.record("outcome", check_outcome(e));
            }
        }
        result
    }
}

impl GraphMessenger {
    async fn ids_for_pages_checked(
        &self,
        user: &AppScopedUserId,
        page: &PageId,
        token: &PageAccessToken,
        app_secret: Option<SecretString>,
    ) -> Result<Vec<Psid>, PageCheckError> {
        let url = self.ids_url(user, page, token, app_secret.as_ref())?;
        let authorization = bearer(token)?;
        let (status, _, bytes) = self.call(Method::GET, &url, authorization, None).await?;
        let malformed = |why: &'static str| {
            tracing::warn!(
                http_status = status.as_u16(),
                why,
                "the Graph API's answer to ids_for_pages was not the expected JSON"
            );
            PageCheckError::Unavailable {
                reason: "the Graph API's answer was not the expected Graph JSON",
            }
        };
        let answer: IdsAnswer =
            serde_json::from_slice(&bytes).map_err(|_| malformed("not JSON"))?;
        if let Some(error) = answer.error {
            let Some(code) = error.code else {
                return Err(malformed("an error without a code"));
            };
            let classified =
                PageCheckError::from(classify(code, error.error_subcode, status.as_u16()));
            error.log_refusal(code, status, "the Graph API refused ids_for_pages");
            return Err(classified);
        }
        let (Some(data), true) = (answer.data, status.is_success()) else {
            return Err(malformed("no data"));
        };
        // Only ids on the page asked about: Graph may list the person's ids on other pages of the
        // business too, and those are not this page's to erase.
        Ok(data
            .iter()
            .filter(|entry| {
                entry
                    .page
                    .as_ref()
                    .and_then(|p| p.id.as_ref())
                    .and_then(graph_id)
                    .is_none_or(|id| id == page.as_str())
            })
            .filter_map(|entry| entry.id.as_ref().and_then(graph_id))
            .filter_map(|id| Psid::parse(&id).ok())
            .collect())
    }
}

fn check_outcome(e: &PageCheckError) -> &'static str {
    match e {
        PageCheckError::TokenInvalid { .. } => "token_invalid",
        PageCheckError::Permission { .. } => "permission",
        PageCheckError::Refused { .. } => "refused",
        PageCheckError::Unavailable { .. } => "unavailable",
        PageCheckError::NotVerifiable => "not_verifiable",
    }
}

impl GraphMessenger {
    async fn page_of_token_checked(
        &self,
        token: &PageAccessToken,
        app_secret: Option<SecretString>,
    ) -> Result<PageProfile, PageCheckError> {
        let url = self.me_url(token, app_secret.as_ref())?;
        let authorization = bearer(token)?;
        let (status, _, bytes) = self.call(Method::GET, &url, authorization, None).await?;
        let answer: Option<MeAnswer> = serde_json::from_slice(&bytes).ok();
        let malformed = |why: &'static str| {
            tracing::warn!(
                http_status = status.as_u16(),
                why,
                "the Graph API's answer to a token check was not the expected JSON"
            );
            PageCheckError::Unavailable {
                reason: "the Graph API's answer was not the expected Graph JSON",
            }
        };
        match answer {
            Some(MeAnswer {
                error: Some(error), ..
            }) => {
                let Some(code) = error.code else {
                    return Err(malformed("an error without a code"));
                };
                let classified =
                    PageCheckError::from(classify(code, error.error_subcode, status.as_u16()));
                error.log_refusal(code, status, "the Graph API refused the token check");
                Err(classified)
            }
            Some(MeAnswer {
                id: Some(id),
                name,
                error: None,
            }) if status.is_success() => {
                let id = match id {
                    serde_json::Value::String(s) => PageId::parse(&s).ok(),
                    serde_json::Value::Number(n) => PageId::parse(&n.to_string()).ok(),
                    _ => None,
                }
                .ok_or_else(|| malformed("an id that is not a page id"))?;
                Ok(PageProfile {
                    id,
                    name: name.as_deref().and_then(page_name),
                })
            }
            Some(_) => Err(malformed("no id")),
            None => Err(malformed("not JSON")),
        }
    }
}

impl GraphMessenger {
    async fn send_checked(
        &self,
        page: &PageId,
        token: &PageAccessToken,
        message: &OutgoingMessage,
        app_secret: Option<SecretString>,
    ) -> Result<SentMessage, SendError> {
        validate(message)?;
        let url = self.url(page, token, app_secret.as_ref())?;
        let authorization = bearer(token)?;

        let json = serde_json::to_vec(&body(message)).map_err(|_| SendError::Transport {
            reason: "the request to the Send API failed",
        })?;
        let (status, headers, bytes) = self
            .call(Method::POST, &url, authorization, Some(json))
            .await?;
        let answer: Option<SendAnswer> = serde_json::from_slice(&bytes).ok();

        match answer {
            Some(SendAnswer {
                error: Some(error), ..
            }) => {
                let Some(code) = error.code else {
                    return Err(SendError::Transport {
                        reason: "the Send API's error had no code",
                    });
                };
                let mut classified = classify(code, error.error_subcode, status.as_u16());
                if let SendError::RateLimited { retry_after: r, .. } = &mut classified {
                    *r = retry_after(&headers);
                }
                error.log_refusal(code, status, "the Send API refused the message");
                Err(classified)
            }
            Some(SendAnswer {
                message_id: Some(message_id),
                error: None,
            }) if status.is_success() => Ok(SentMessage { message_id }),
            _ => {
                tracing::warn!(
                    http_status = status.as_u16(),
                    "the Send API's answer was not the expected Graph JSON"
                );
                Err(SendError::Transport {
                    reason: "the Send API's answer was not the expected Graph JSON",
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of MESSENGER.md §3, plus the precedence between subcode rows and code-only rows.
    #[test]
    fn classifies_every_row_of_the_error_table() {
        use SendError::*;
        let rl = |code| RateLimited {
            code,
            retry_after: None,
        };
        let rows: Vec<(i64, Option<i64>, u16, SendError)> = vec![
            // temporary / service error
            (1, None, 500, Temporary { code: 1 }),
            (2, None, 503, Temporary { code: 2 }),
            (1200, None, 500, Temporary { code: 1200 }),
            (2, Some(99), 400, Temporary { code: 2 }),
            // rate limited
            (4, None, 400, rl(4)),
            (17, None, 400, rl(17)),
            (32, None, 400, rl(32)),
            (613, None, 400, rl(613)),
            (4, Some(1), 400, rl(4)),
            // marketing-message frequency: before code 4 as rate limit
            (
                4,
                Some(2_018_354),
                400,
                FrequencyCapped {
                    code: 4,
                    subcode: Some(2_018_354),
                },
            ),
            (
                9,
                Some(2_018_352),
                400,
                FrequencyCapped {
                    code: 9,
                    subcode: Some(2_018_352),
                },
            ),
            // unreachable
            (
                551,
                None,
                400,
                Unreachable {
                    code: 551,
                    subcode: None,
                },
            ),
            (
                551,
                Some(1_545_041),
                400,
                Unreachable {
                    code: 551,
                    subcode: Some(1_545_041),
                },
            ),
            (
                200,
                Some(1_545_041),
                403,
                Unreachable {
                    code: 200,
                    subcode: Some(1_545_041),
                },
            ),
            (
                10,
                Some(2_018_108),
                403,
                Unreachable {
                    code: 10,
                    subcode: Some(2_018_108),
                },
            ),
            (
                100,
                Some(2_018_001),
                400,
                Unreachable {
                    code: 100,
                    subcode: Some(2_018_001),
                },
            ),
            // outside the window: before code 10 as permission
            (
                10,
                Some(2_018_278),
                400,
                OutsideWindow {
                    code: 10,
                    subcode: Some(2_018_278),
                },
            ),
            (
                10,
                Some(2_018_065),
                400,
                OutsideWindow {
                    code: 10,
                    subcode: Some(2_018_065),
                },
            ),
            // permission
            (
                10,
                None,
                403,
                Permission {
                    code: 10,
                    subcode: None,
                },
            ),
            (
                10,
                Some(1),
                403,
                Permission {
                    code: 10,
                    subcode: Some(1),
                },
            ),
            (
                200,
                None,
                403,
                Permission {
                    code: 200,
                    subcode: None,
                },
            ),
            (
                230,
                None,
                403,
                Permission {
                    code: 230,
                    subcode: None,
                },
            ),
            (
                299,
                Some(5),
                403,
                Permission {
                    code: 299,
                    subcode: Some(5),
                },
            ),
            // token
            (
                190,
                None,
                401,
                TokenInvalid {
                    code: 190,
                    subcode: None,
                },
            ),
            (
                190,
                Some(460),
                400,
                TokenInvalid {
                    code: 190,
                    subcode: Some(460),
                },
            ),
            (
                190,
                Some(463),
                400,
                TokenInvalid {
                    code: 190,
                    subcode: Some(463),
                },
            ),
            // 9 and 100 without their subcodes are not frequency caps or unreachable persons
            (
                9,
                None,
                400,
                InvalidRequest {
                    code: 9,
                    subcode: None,
                },
            ),
            (
                100,
                None,
                400,
                InvalidRequest {
                    code: 100,
                    subcode: None,
                },
            ),
            (
                100,
                Some(2_018_109),
                400,
                InvalidRequest {
                    code: 100,
                    subcode: Some(2_018_109),
                },
            ),
            // unknown: the request's fault on 4xx, Meta's on 5xx
            (
                300,
                None,
                400,
                InvalidRequest {
                    code: 300,
                    subcode: None,
                },
            ),
            (
                368,
                Some(1_390_008),
                400,
                InvalidRequest {
                    code: 368,
                    subcode: Some(1_390_008),
                },
            ),
            (12345, None, 500, Temporary { code: 12345 }),
            (12345, None, 502, Temporary { code: 12345 }),
        ];
        for (code, subcode, status, expected) in rows {
            assert_eq!(
                classify(code, subcode, status),
                expected,
                "{code}/{subcode:?} on {status}"
            );
        }
    }

    #[test]
    fn proof_is_lowercase_hex_hmac_sha256_of_the_token() {
        // The published vector HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            hmac_sha256_hex(b"key", b"The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        let token = PageAccessToken::parse("EAAtokenvalue0123456789")
            .unwrap_or_else(|e| panic!("test token: {e}"));
        let secret = SecretString::from("app-secret");
        assert_eq!(
            appsecret_proof(&secret, &token),
            hmac_sha256_hex(b"app-secret", b"EAAtokenvalue0123456789")
        );
    }

    #[test]
    fn refuses_bad_configuration() {
        let http = http_client().unwrap_or_else(|e| panic!("{e}"));
        let new = |base: &str, version: &str| {
            GraphMessenger::new(http.clone(), base.to_owned(), version.to_owned(), None).is_ok()
        };
        assert!(new(DEFAULT_BASE_URL, "v21.0"));
        assert!(new("http://127.0.0.1:1234/", "v25.0"));
        assert!(!new("graph.facebook.com", "v21.0"));
        assert!(!new("ftp://graph.facebook.com", "v21.0"));
        assert!(!new("https://graph.facebook.com?x=1", "v21.0"));
        assert!(!new(DEFAULT_BASE_URL, "21.0"));
        assert!(!new(DEFAULT_BASE_URL, "v21."));
        assert!(!new(DEFAULT_BASE_URL, "v21.0/../x"));
    }

    #[test]
    fn debug_hides_the_app_secret() {
        let m = GraphMessenger::new(
            http_client().unwrap_or_else(|e| panic!("{e}")),
            DEFAULT_BASE_URL.to_owned(),
            "v21.0".to_owned(),
            Some(SecretString::from("very-secret-app-secret")),
        )
        .map(|m| format!("{m:?}"))
        .unwrap_or_default();
        assert!(m.contains("<redacted>") && !m.contains("very-secret"));
    }
}

/// A rotated app secret: Meta refuses the proof made with the cached copy, and the messenger re-reads
/// the secret and calls once more, instead of failing until the cache expires.
#[cfg(all(test, feature = "test-support"))]
mod rotation_tests {
    #![allow(clippy::expect_used)]

    use std::sync::Mutex;

    use wiremock::matchers::{method, path_regex, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::clock::{ManualClock, Timestamp};
    use crate::meta_secrets::{MetaSecretSource, SecretCachePolicy, SecretsError};

    #[derive(Debug)]
    struct Rotating(Mutex<String>);

    #[async_trait::async_trait]
    impl MetaSecretSource for Rotating {
        async fn fetch(&self) -> Result<MetaSecrets, SecretsError> {
            let secret = self.0.lock().map(|s| s.clone()).unwrap_or_default();
            MetaSecrets::new(SecretString::from(secret), SecretString::from("verify"))
        }
    }

    fn refused() -> ResponseTemplate {
        ResponseTemplate::new(400).set_body_json(serde_json::json!({ "error": {
            "message": "Invalid appsecret_proof provided in the API argument",
            "type": "GraphMethodException", "code": 100, "fbtrace_id": "x" } }))
    }

    struct Setup {
        server: MockServer,
        source: Arc<Rotating>,
        clock: Arc<ManualClock>,
        messenger: GraphMessenger,
        token: PageAccessToken,
        page: PageId,
    }

    /// A fake Graph that accepts only proofs made with `accepted`, and a messenger whose cache has
    /// read `old`.
    async fn setup(accepted: &str) -> Setup {
        let server = MockServer::start().await;
        let token = PageAccessToken::parse("EAAB-rotation-test-token").expect("token");
        let page = PageId::parse("1234567890").expect("page");
        let proof = appsecret_proof(&SecretString::from(accepted.to_owned()), &token);
        Mock::given(method("POST"))
            .and(path_regex(r"/messages$"))
            .and(query_param("appsecret_proof", proof.as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({ "recipient_id": "1", "message_id": "m_1" })),
            )
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"/me$"))
            .and(query_param("appsecret_proof", proof.as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(serde_json::json!({ "id": "1234567890", "name": "Page" })),
            )
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(wiremock::matchers::any())
            .respond_with(refused())
            .with_priority(5)
            .mount(&server)
            .await;
        let source = Arc::new(Rotating(Mutex::new("old-secret".to_owned())));
        let clock = Arc::new(ManualClock::at(Timestamp::from_secs(1_000)));
        let cache = Arc::new(MetaSecretCache::new(
            source.clone(),
            clock.clone(),
            SecretCachePolicy::default(),
        ));
        let messenger =
            GraphMessenger::with_client_at_first_call(server.uri(), "v21.0".to_owned(), None)
                .expect("config")
                .with_app_secret_from(cache);
        Setup {
            server,
            source,
            clock,
            messenger,
            token,
            page,
        }
    }

    fn message() -> OutgoingMessage {
        OutgoingMessage {
            recipient: Recipient::Psid(Psid::parse("24000000000000001").expect("psid")),
            messaging_type: MessagingType::Response,
            text: "Hello".to_owned(),
            buttons: Vec::new(),
            quick_replies: Vec::new(),
            metadata: None,
        }
    }

    #[tokio::test]
    async fn a_refused_proof_after_a_rotation_re_reads_the_secret_and_calls_once_more() {
        let s = setup("new-secret").await;
        // The cache reads the old secret; then the secret is rotated.
        assert!(matches!(
            s.messenger.send(&s.page, &s.token, &message()).await,
            Err(SendError::InvalidRequest {
                code: 100,
                subcode: None
            })
        ));
        *s.source.0.lock().expect("lock") = "new-secret".to_owned();
        s.clock.advance_secs(31);
        let sent = s.messenger.send(&s.page, &s.token, &message()).await;
        assert_eq!(sent.expect("sent with the new secret").message_id, "m_1");
        let profile = s.messenger.page_of_token(&s.token).await;
        assert_eq!(profile.expect("checked").id.as_str(), "1234567890");
        // 1 refused, then 1 refused + 1 accepted, then the token check accepted at once.
        assert_eq!(s.server.received_requests().await.map(|r| r.len()), Some(4));
    }

    #[tokio::test]
    async fn a_refused_proof_with_an_unchanged_secret_is_not_retried() {
        let s = setup("some-other-secret").await;
        s.clock.advance_secs(31);
        let first = s.messenger.send(&s.page, &s.token, &message()).await;
        assert!(matches!(
            first,
            Err(SendError::InvalidRequest {
                code: 100,
                subcode: None
            })
        ));
        // The re-read found the same secret: no second call.
        s.clock.advance_secs(31);
        assert!(s.messenger.page_of_token(&s.token).await.is_err());
        assert_eq!(s.server.received_requests().await.map(|r| r.len()), Some(2));
    }
}
