//! The messenger conformance suite (feature `test-support`): plain `pub async fn` cases over
//! `&dyn Messenger`, run against every backend by `tests/conformance/messenger.rs`.
//!
//! A case sends through the port, then asks a backend-specific [`ReadBack`] what went out: the requests a
//! fake Graph API on 127.0.0.1 received ([`FakeGraph`]), or the lines of the outbox file. Graph-only
//! cases (error mapping end to end, headers, timeouts) take the [`FakeGraph`] itself.
//!
//! The token check ([`Messenger::page_of_token`]) has its own cases ([`tokens`], and
//! [`graph_only_tokens`] for Meta's answers end to end): a backend-specific [`PageTokens`] hands out a
//! token the backend vouches for (the fake Graph learns it; the outbox backend's is a sample token) and
//! one it cannot vouch for, with the answer each backend must give.
//!
//! The app-scoped → page-scoped id mapping ([`Messenger::ids_for_pages`]) has its cases in [`people`]
//! (every backend: a [`KnowsPeople`] teaches the backend who is who, as Meta would know it) and
//! [`graph_only_people`] (the request on the wire and Meta's errors).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::graph::{self, GraphMessenger, WireRecipient};
use super::outbox::{OutboxMessenger, read_lines};
use super::{
    MessagingType, Messenger, OutgoingMessage, PageCheckError, PageProfile, QuickReply, Recipient,
    SendError,
};
use crate::domain::{AppScopedUserId, NotificationToken, PageAccessToken, PageId, Psid, UserRef};
use crate::meta_secrets::{FixedSource, MetaSecretCache, MetaSecrets, SecretCachePolicy};
use crate::test_support::unique_name;

/// What a backend recorded as sent, in wire terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub page_id: String,
    pub recipient: WireRecipient<'static>,
    pub messaging_type: Option<String>,
    pub text: String,
    pub quick_replies: Vec<QuickReply>,
    pub metadata: Option<String>,
}

/// Reads back what a backend sent.
#[async_trait::async_trait]
pub trait ReadBack: Send + Sync + std::fmt::Debug {
    /// The message sent with this Meta message id.
    async fn read_back(&self, message_id: &str) -> Option<Delivered>;
    /// How many sends reached the wire (or the file) so far, refused ones included.
    async fn count(&self) -> usize;
}

/// Hands out page access tokens a backend's token check answers for.
#[async_trait::async_trait]
pub trait PageTokens: Send + Sync + std::fmt::Debug {
    /// A fresh token the backend verifies as `page`, and the profile it must report for it (with
    /// `name` where the backend learns names from Meta).
    async fn token_of(&self, page: &PageId, name: &str) -> (PageAccessToken, PageProfile);
    /// A well-formed token the backend cannot vouch for, and the error it must answer.
    fn unknown_token(&self) -> (PageAccessToken, PageCheckError);
}

/// Teaches a backend, as Meta would know it, that a person (app-scoped id) is a PSID on a page.
#[async_trait::async_trait]
pub trait KnowsPeople: PageTokens {
    async fn know(&self, user: &AppScopedUserId, page: &PageId, psid: &Psid);
}

// ---- test values ----

fn page() -> PageId {
    PageId::parse("104000000000001").unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh page token per call, so a leak of one case's token is that case's.
pub fn token() -> PageAccessToken {
    PageAccessToken::parse(&format!("EAAG{}", unique_name("tok").replace('-', "")))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn psid() -> Psid {
    Psid::parse("2811223344556677").unwrap_or_else(|e| panic!("{e}"))
}

fn rich(recipient: Recipient, messaging_type: MessagingType) -> OutgoingMessage {
    OutgoingMessage {
        recipient,
        messaging_type,
        text: "Grüß dich! Möchtest du unseren Newsletter? 📬".to_owned(),
        buttons: Vec::new(),
        quick_replies: vec![
            QuickReply {
                title: "Ja, gerne".to_owned(),
                payload: "OPTIN_YES".to_owned(),
            },
            QuickReply {
                title: "Nein 🙅".to_owned(),
                payload: "OPTIN_NO".to_owned(),
            },
        ],
        metadata: Some("lead_01hx;broadcast_7".to_owned()),
    }
}

fn plain(text: &str) -> OutgoingMessage {
    OutgoingMessage {
        recipient: Recipient::Psid(psid()),
        messaging_type: MessagingType::Response,
        text: text.to_owned(),
        buttons: Vec::new(),
        quick_replies: vec![],
        metadata: None,
    }
}

fn wire(recipient: &Recipient) -> WireRecipient<'static> {
    WireRecipient::of(recipient).into_owned()
}

async fn send_and_read(
    messenger: &dyn Messenger,
    read: &dyn ReadBack,
    message: &OutgoingMessage,
) -> Delivered {
    let sent = match messenger.send(&page(), &token(), message).await {
        Ok(sent) => sent,
        Err(e) => panic!("send must succeed: {e}"),
    };
    assert!(!sent.message_id.is_empty(), "a message id is returned");
    match read.read_back(&sent.message_id).await {
        Some(d) => d,
        None => panic!("the sent message must be readable back"),
    }
}

fn assert_delivered(message: &OutgoingMessage, d: &Delivered, messaging_type: Option<&str>) {
    assert_eq!(d.page_id, page().as_str(), "page");
    assert_eq!(d.recipient, wire(&message.recipient), "recipient");
    assert_eq!(
        d.messaging_type.as_deref(),
        messaging_type,
        "messaging_type"
    );
    assert_eq!(d.text, message.text, "text");
    assert_eq!(d.quick_replies, message.quick_replies, "quick replies");
    assert_eq!(d.metadata, message.metadata, "metadata");
}

// ---- cases for every backend ----

/// To a PSID, as a RESPONSE: text, quick replies and metadata arrive as sent.
pub async fn a_rich_message_to_a_psid_arrives_as_sent(m: &dyn Messenger, read: &dyn ReadBack) {
    let message = rich(Recipient::Psid(psid()), MessagingType::Response);
    let d = send_and_read(m, read, &message).await;
    assert_delivered(&message, &d, Some("RESPONSE"));
}

/// To a plugin `user_ref`, as an UPDATE.
pub async fn a_rich_message_to_a_user_ref_arrives_as_sent(m: &dyn Messenger, read: &dyn ReadBack) {
    let user_ref = UserRef::parse("cb_ref-4f2a9c").unwrap_or_else(|e| panic!("{e}"));
    let message = rich(Recipient::UserRef(user_ref), MessagingType::Update);
    let d = send_and_read(m, read, &message).await;
    assert_delivered(&message, &d, Some("UPDATE"));
}

/// To a marketing-messages token: no `messaging_type` goes with it.
pub async fn a_rich_message_to_a_notification_token_arrives_without_messaging_type(
    m: &dyn Messenger,
    read: &dyn ReadBack,
) {
    let token = NotificationToken::parse("6617291848420938114").unwrap_or_else(|e| panic!("{e}"));
    let message = rich(Recipient::NotificationToken(token), MessagingType::Update);
    let d = send_and_read(m, read, &message).await;
    assert_delivered(&message, &d, None);
}

/// A bare text carries no quick replies and no metadata.
pub async fn a_plain_text_arrives_without_extras(m: &dyn Messenger, read: &dyn ReadBack) {
    let message = plain("Thanks, you are subscribed.");
    let d = send_and_read(m, read, &message).await;
    assert_delivered(&message, &d, Some("RESPONSE"));
}

/// A message at every limit (1999 characters, 13 replies of 20-character titles) is accepted.
pub async fn a_message_at_every_limit_is_sent(m: &dyn Messenger, read: &dyn ReadBack) {
    let mut message = plain(&"ä".repeat(super::TEXT_MAX));
    message.quick_replies = (0..super::QUICK_REPLIES_MAX)
        .map(|i| QuickReply {
            title: format!("{i:0>20}"),
            payload: "p".repeat(super::PAYLOAD_MAX),
        })
        .collect();
    message.metadata = Some("m".repeat(super::METADATA_MAX));
    let d = send_and_read(m, read, &message).await;
    assert_delivered(&message, &d, Some("RESPONSE"));
}

/// Two sends get two different message ids, each reading back its own text.
pub async fn each_send_gets_its_own_message_id(m: &dyn Messenger, read: &dyn ReadBack) {
    let (one, two) = (plain("one"), plain("two"));
    let (Ok(a), Ok(b)) = (
        m.send(&page(), &token(), &one).await,
        m.send(&page(), &token(), &two).await,
    ) else {
        panic!("both sends must succeed");
    };
    assert_ne!(a.message_id, b.message_id);
    let texts = (
        read.read_back(&a.message_id).await.map(|d| d.text),
        read.read_back(&b.message_id).await.map(|d| d.text),
    );
    assert_eq!(texts, (Some("one".to_owned()), Some("two".to_owned())));
}

/// Messages Meta would refuse are refused as `InvalidRequest` (code 0), and nothing is sent.
pub async fn invalid_messages_are_refused_without_sending(m: &dyn Messenger, read: &dyn ReadBack) {
    let too_long = plain(&"a".repeat(2000));
    let mut too_many = plain("hi");
    too_many.quick_replies = (0..14)
        .map(|i| QuickReply {
            title: format!("Option {i}"),
            payload: format!("P{i}"),
        })
        .collect();
    let mut long_title = plain("hi");
    long_title.quick_replies = vec![QuickReply {
        title: "This title is far too long".to_owned(),
        payload: "P".to_owned(),
    }];
    let mut long_metadata = plain("hi");
    long_metadata.metadata = Some("m".repeat(1000));
    let empty = plain("  ");

    let before = read.count().await;
    for (name, message) in [
        ("text of 2000 characters", too_long),
        ("14 quick replies", too_many),
        ("a 26-character title", long_title),
        ("metadata of 1000 characters", long_metadata),
        ("empty text", empty),
    ] {
        assert_eq!(
            m.send(&page(), &token(), &message).await,
            Err(SendError::InvalidRequest {
                code: 0,
                subcode: None
            }),
            "{name}"
        );
    }
    assert_eq!(read.count().await, before, "nothing was sent");
}

/// Neither logs nor errors carry the PSID, the text, the metadata or the page token.
pub async fn nothing_personal_or_secret_is_logged(m: &dyn Messenger, read: &dyn ReadBack) {
    let logs = crate::test_support::logs::capture();
    let token = token();
    let message = OutgoingMessage {
        text: "Very private message text".to_owned(),
        metadata: Some("private-metadata-value".to_owned()),
        ..plain("")
    };
    let sent = m.send(&page(), &token, &message).await;
    let Ok(sent) = sent else {
        panic!("send must succeed: {sent:?}");
    };
    assert!(read.read_back(&sent.message_id).await.is_some());
    let refused = m.send(&page(), &token, &plain(&"x".repeat(3000))).await;
    let shown = format!("{refused:?}");
    assert!(!shown.contains(psid().expose()) && !shown.contains(token.expose()));
    logs.assert_absent(&[
        psid().expose(),
        "Very private message text",
        "private-metadata-value",
        token.expose(),
    ]);
}

// ---- the fake Graph API ----

/// One request the fake received, with the id it answered.
#[derive(Debug, Clone)]
struct Recorded {
    message_id: String,
    page_id: String,
    body: serde_json::Value,
}

/// Answers every send with `{recipient_id, message_id}` and remembers the request under that id.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Recorded>>);

impl Respond for Recorder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(mut seen) = self.0.lock() else {
            return ResponseTemplate::new(500);
        };
        let message_id = format!("m_fake{:06}", seen.len() + 1);
        let page_id = request
            .url
            .path_segments()
            .and_then(|mut s| s.nth(1))
            .unwrap_or_default()
            .to_owned();
        seen.push(Recorded {
            message_id: message_id.clone(),
            page_id,
            body: request.body_json().unwrap_or(serde_json::Value::Null),
        });
        ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "recipient_id": "1254477777772919",
            "message_id": message_id,
        }))
    }
}

/// The pages of the tokens the fake Graph knows: token → (page id, name).
#[derive(Debug, Default)]
struct Directory(Mutex<HashMap<String, (String, Option<String>)>>);

/// Answers `GET /{version}/me` like Graph does for a page token: `{"id", "name"}` for a token it issued,
/// error 190 for any other (Meta's "Invalid OAuth access token").
impl Respond for Directory {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let token = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let known = self.0.lock().ok().and_then(|d| d.get(token).cloned());
        match known {
            Some((id, name)) => {
                let mut body = serde_json::json!({ "id": id });
                if let Some(n) = name {
                    body["name"] = serde_json::json!(n);
                }
                ResponseTemplate::new(200).set_body_json(body)
            }
            None => ResponseTemplate::new(400).set_body_json(graph_error(190, None)),
        }
    }
}

struct SharedDirectory(Arc<Directory>);

impl Respond for SharedDirectory {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request)
    }
}

/// Graph's error body for `code`/`subcode`, with a free-text message that must never be read.
pub fn graph_error(code: i64, subcode: Option<i64>) -> serde_json::Value {
    let mut error = serde_json::json!({
        "message": "(#100) Meta's explanation, which may quote the request",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEfGhIjK",
    });
    if let Some(s) = subcode {
        error["error_subcode"] = serde_json::json!(s);
    }
    serde_json::json!({ "error": error })
}

/// A fake Graph API on 127.0.0.1: `POST /{version}/{page}/messages` succeeds unless a test queued an
/// error answer with [`FakeGraph::answer_next`]; `GET /{version}/me` names the page of every token
/// issued with [`FakeGraph::issue_token`] and refuses others (190), unless a test queued another answer
/// with [`FakeGraph::answer_next_check`].
#[derive(Debug)]
pub struct FakeGraph {
    server: MockServer,
    recorder: Arc<Recorder>,
    directory: Arc<Directory>,
    people: Arc<People>,
}

/// Who is who: (app-scoped id, page id) → PSID, and the token directory to check the caller's token.
#[derive(Debug)]
struct People {
    known: Mutex<Vec<(String, String, String)>>,
    directory: Arc<Directory>,
}

/// Answers `GET /{version}/{app-scoped id}/ids_for_pages` like Graph: the person's ids on every page of
/// the business (not only the page asked about, which the client must filter), for a token Graph knows;
/// error 190 for any other.
impl Respond for People {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let token = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let known_token = self
            .directory
            .0
            .lock()
            .ok()
            .is_some_and(|d| d.contains_key(token));
        if !known_token {
            return ResponseTemplate::new(400).set_body_json(graph_error(190, None));
        }
        let user = request
            .url
            .path_segments()
            .and_then(|mut s| s.nth(1))
            .unwrap_or_default()
            .to_owned();
        let data: Vec<serde_json::Value> = self
            .known
            .lock()
            .map(|k| {
                k.iter()
                    .filter(|(u, _, _)| *u == user)
                    .map(|(_, page, psid)| {
                        serde_json::json!({ "id": psid, "page": { "id": page, "name": "A Page" } })
                    })
                    .collect()
            })
            .unwrap_or_default();
        ResponseTemplate::new(200).set_body_json(serde_json::json!({ "data": data }))
    }
}

struct SharedPeople(Arc<People>);

impl Respond for SharedPeople {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request)
    }
}

/// The API version the fake is called with.
pub const FAKE_VERSION: &str = "v21.0";
/// The app secret of [`FakeGraph::messenger`].
pub const FAKE_APP_SECRET: &str = "fake-app-secret-0123456789";

struct Shared(Arc<Recorder>);

impl Respond for Shared {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.0.respond(request)
    }
}

impl FakeGraph {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let recorder = Arc::new(Recorder::default());
        Mock::given(method("POST"))
            .and(path_regex(r"^/v[0-9.]+/[0-9]+/messages$"))
            .respond_with(Shared(recorder.clone()))
            .mount(&server)
            .await;
        let directory = Arc::new(Directory::default());
        Mock::given(method("GET"))
            .and(path_regex(r"^/v[0-9.]+/me$"))
            .respond_with(SharedDirectory(directory.clone()))
            .mount(&server)
            .await;
        let people = Arc::new(People {
            known: Mutex::new(Vec::new()),
            directory: directory.clone(),
        });
        Mock::given(method("GET"))
            .and(path_regex(r"^/v[0-9.]+/[0-9]+/ids_for_pages$"))
            .respond_with(SharedPeople(people.clone()))
            .mount(&server)
            .await;
        Self {
            server,
            recorder,
            directory,
            people,
        }
    }

    /// Answers the next `ids_for_pages` with `template` instead of what the fake knows.
    pub async fn answer_next_ids(&self, template: ResponseTemplate) {
        Mock::given(method("GET"))
            .and(path_regex(r"/ids_for_pages$"))
            .respond_with(template)
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// [`FakeGraph::answer_next_ids`] with a JSON body, for callers without wiremock.
    pub async fn answer_next_ids_json(&self, status: u16, body: serde_json::Value) {
        self.answer_next_ids(ResponseTemplate::new(status).set_body_json(body))
            .await;
    }

    /// Makes Graph know `user` as `psid` on `page` (what `ids_for_pages` answers).
    pub fn know_person(&self, user: &AppScopedUserId, page: &PageId, psid: &Psid) {
        if let Ok(mut k) = self.people.known.lock() {
            k.push((
                user.expose().to_owned(),
                page.as_str().to_owned(),
                psid.expose().to_owned(),
            ));
        }
    }

    /// A fresh token that `GET /me` answers as `page`, named `name` (as Meta reports a page's name).
    pub fn issue_token(&self, page: &PageId, name: Option<&str>) -> PageAccessToken {
        let token = token();
        if let Ok(mut d) = self.directory.0.lock() {
            d.insert(
                token.expose().to_owned(),
                (page.as_str().to_owned(), name.map(str::to_owned)),
            );
        }
        token
    }

    /// Answers the next token check (`GET /me`) with `template` instead of the directory's answer.
    pub async fn answer_next_check(&self, template: ResponseTemplate) {
        Mock::given(method("GET"))
            .and(path_regex(r"/me$"))
            .respond_with(template)
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// [`FakeGraph::answer_next_check`] with a JSON body, for callers without wiremock.
    pub async fn answer_next_check_json(&self, status: u16, body: serde_json::Value) {
        self.answer_next_check(ResponseTemplate::new(status).set_body_json(body))
            .await;
    }

    /// A messenger pointed at the fake, with [`FAKE_APP_SECRET`] (so `appsecret_proof` is sent) and a
    /// short timeout so the timeout case runs quickly.
    pub fn messenger(&self) -> GraphMessenger {
        self.messenger_with(Some(FAKE_APP_SECRET))
    }

    /// Built as the functions build it: the HTTP client made at the first call, the app secret read
    /// through a [`MetaSecretCache`].
    pub fn messenger_with(&self, app_secret: Option<&str>) -> GraphMessenger {
        let messenger = GraphMessenger::with_client_at_first_call(
            self.server.uri(),
            FAKE_VERSION.to_owned(),
            None,
        )
        .unwrap_or_else(|e| panic!("fake Graph config: {e}"))
        .with_timeout(Duration::from_millis(500));
        match app_secret {
            None => messenger,
            Some(secret) => {
                let secrets = MetaSecrets::new(
                    SecretString::from(secret),
                    SecretString::from("fake-verify-token"),
                )
                .unwrap_or_else(|e| panic!("fake secrets: {e}"));
                messenger.with_app_secret_from(Arc::new(MetaSecretCache::new(
                    Arc::new(FixedSource::new(Some(secrets))),
                    Arc::new(crate::clock::SystemClock),
                    SecretCachePolicy::default(),
                )))
            }
        }
    }

    /// Answers the next send with `template` instead of success.
    pub async fn answer_next(&self, template: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path_regex(r"/messages$"))
            .respond_with(template)
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&self.server)
            .await;
    }

    /// [`FakeGraph::answer_next`] with a JSON body, for callers without wiremock.
    pub async fn answer_next_json(&self, status: u16, body: serde_json::Value) {
        self.answer_next(ResponseTemplate::new(status).set_body_json(body))
            .await;
    }

    /// Every request received so far, refused ones included.
    pub async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl ReadBack for FakeGraph {
    async fn read_back(&self, message_id: &str) -> Option<Delivered> {
        let recorded = self
            .recorder
            .0
            .lock()
            .ok()?
            .iter()
            .find(|r| r.message_id == message_id)?
            .clone();
        let body = recorded.body;
        let message = body.get("message")?;
        let quick_replies = match message.get("quick_replies") {
            None => Vec::new(),
            Some(list) => list
                .as_array()?
                .iter()
                .map(|q| {
                    assert_eq!(q.get("content_type")?.as_str()?, "text");
                    Some(QuickReply {
                        title: q.get("title")?.as_str()?.to_owned(),
                        payload: q.get("payload")?.as_str()?.to_owned(),
                    })
                })
                .collect::<Option<Vec<_>>>()?,
        };
        Some(Delivered {
            page_id: recorded.page_id,
            recipient: serde_json::from_value(body.get("recipient")?.clone()).ok()?,
            messaging_type: body
                .get("messaging_type")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            text: message.get("text")?.as_str()?.to_owned(),
            quick_replies,
            metadata: message
                .get("metadata")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        })
    }

    async fn count(&self) -> usize {
        self.requests()
            .await
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .count()
    }
}

#[async_trait::async_trait]
impl PageTokens for FakeGraph {
    async fn token_of(&self, page: &PageId, name: &str) -> (PageAccessToken, PageProfile) {
        let token = self.issue_token(page, Some(name));
        let profile = PageProfile {
            id: page.clone(),
            name: Some(name.to_owned()),
        };
        (token, profile)
    }

    fn unknown_token(&self) -> (PageAccessToken, PageCheckError) {
        (
            token(),
            PageCheckError::TokenInvalid {
                code: 190,
                subcode: None,
            },
        )
    }
}

#[async_trait::async_trait]
impl KnowsPeople for FakeGraph {
    async fn know(&self, user: &AppScopedUserId, page: &PageId, psid: &Psid) {
        self.know_person(user, page, psid);
    }
}

// ---- the outbox backend ----

/// Reads the outbox file's lines.
#[derive(Debug, Clone)]
pub struct OutboxReadBack {
    pub path: PathBuf,
}

#[async_trait::async_trait]
impl ReadBack for OutboxReadBack {
    async fn read_back(&self, message_id: &str) -> Option<Delivered> {
        let line = read_lines(&self.path)
            .ok()?
            .into_iter()
            .find(|l| l.message_id == message_id)?;
        Some(Delivered {
            page_id: line.page_id,
            recipient: line.recipient,
            messaging_type: line.messaging_type,
            text: line.text,
            quick_replies: line
                .quick_replies
                .into_iter()
                .map(|q| QuickReply {
                    title: q.title,
                    payload: q.payload,
                })
                .collect(),
            metadata: line.metadata,
        })
    }

    async fn count(&self) -> usize {
        read_lines(&self.path).map(|l| l.len()).unwrap_or(0)
    }
}

/// The outbox backend vouches for its sample tokens only; it learns no names.
#[async_trait::async_trait]
impl PageTokens for OutboxReadBack {
    async fn token_of(&self, page: &PageId, _name: &str) -> (PageAccessToken, PageProfile) {
        let raw = format!(
            "{}-{}",
            super::outbox::sample_token(page),
            unique_name("t").replace('-', "")
        );
        let token = PageAccessToken::parse(&raw).unwrap_or_else(|e| panic!("{e}"));
        let profile = PageProfile {
            id: page.clone(),
            name: None,
        };
        (token, profile)
    }

    fn unknown_token(&self) -> (PageAccessToken, PageCheckError) {
        (token(), PageCheckError::NotVerifiable)
    }
}

#[async_trait::async_trait]
impl KnowsPeople for OutboxReadBack {
    async fn know(&self, user: &AppScopedUserId, page: &PageId, psid: &Psid) {
        super::outbox::add_ids_for_pages(&self.path, user, page, psid)
            .unwrap_or_else(|e| panic!("the ids-for-pages file: {e}"));
    }
}

/// A fresh outbox messenger writing to a file in a temporary folder. Keep the `TempDir` alive.
pub fn outbox_in_temp_dir() -> (OutboxMessenger, OutboxReadBack, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let path = dir.path().join("messenger-outbox.jsonl");
    let messenger = OutboxMessenger::new(
        path.clone(),
        Arc::new(crate::clock::SystemClock),
        Arc::new(crate::ids::RandomIds),
    );
    (messenger, OutboxReadBack { path }, dir)
}

/// Cases only the Graph client has: the wire details and error mapping, end to end against [`FakeGraph`].
pub mod graph_only {
    use std::time::Duration;

    use secrecy::SecretString;
    use wiremock::ResponseTemplate;

    use super::{FAKE_APP_SECRET, FAKE_VERSION, FakeGraph, graph_error, page, plain, token};
    use crate::domain::Psid;
    use crate::messenger::graph::{self, GraphMessenger};
    use crate::messenger::{Messenger, Recipient, SendError};

    /// Every row of MESSENGER.md §3, as Meta answers it over HTTP, maps to its `SendError`.
    pub async fn every_documented_error_maps_to_its_send_error(fake: &FakeGraph) {
        use SendError::*;
        let rl = |code| RateLimited {
            code,
            retry_after: None,
        };
        let rows: Vec<(u16, i64, Option<i64>, SendError)> = vec![
            (500, 1, None, Temporary { code: 1 }),
            (503, 2, None, Temporary { code: 2 }),
            (500, 1200, None, Temporary { code: 1200 }),
            (400, 4, None, rl(4)),
            (400, 17, None, rl(17)),
            (400, 32, None, rl(32)),
            (400, 613, None, rl(613)),
            (
                400,
                4,
                Some(2_018_354),
                FrequencyCapped {
                    code: 4,
                    subcode: Some(2_018_354),
                },
            ),
            (
                400,
                9,
                Some(2_018_352),
                FrequencyCapped {
                    code: 9,
                    subcode: Some(2_018_352),
                },
            ),
            (
                400,
                551,
                Some(1_545_041),
                Unreachable {
                    code: 551,
                    subcode: Some(1_545_041),
                },
            ),
            (
                403,
                200,
                Some(1_545_041),
                Unreachable {
                    code: 200,
                    subcode: Some(1_545_041),
                },
            ),
            (
                400,
                10,
                Some(2_018_108),
                Unreachable {
                    code: 10,
                    subcode: Some(2_018_108),
                },
            ),
            (
                400,
                10,
                Some(2_018_278),
                OutsideWindow {
                    code: 10,
                    subcode: Some(2_018_278),
                },
            ),
            (
                400,
                10,
                Some(2_018_065),
                OutsideWindow {
                    code: 10,
                    subcode: Some(2_018_065),
                },
            ),
            (
                400,
                100,
                Some(2_018_001),
                Unreachable {
                    code: 100,
                    subcode: Some(2_018_001),
                },
            ),
            (
                403,
                10,
                None,
                Permission {
                    code: 10,
                    subcode: None,
                },
            ),
            (
                403,
                230,
                None,
                Permission {
                    code: 230,
                    subcode: None,
                },
            ),
            (
                400,
                190,
                Some(460),
                TokenInvalid {
                    code: 190,
                    subcode: Some(460),
                },
            ),
            (
                401,
                190,
                Some(463),
                TokenInvalid {
                    code: 190,
                    subcode: Some(463),
                },
            ),
            (
                400,
                100,
                None,
                InvalidRequest {
                    code: 100,
                    subcode: None,
                },
            ),
            (500, 424_242, None, Temporary { code: 424_242 }),
        ];
        let m = fake.messenger();
        for (status, code, subcode, expected) in rows {
            fake.answer_next(
                ResponseTemplate::new(status).set_body_json(graph_error(code, subcode)),
            )
            .await;
            let result = m.send(&page(), &token(), &plain("hello")).await;
            assert_eq!(result, Err(expected), "{code}/{subcode:?} on HTTP {status}");
        }
    }

    /// A rate-limit answer with `Retry-After` carries the hint.
    pub async fn rate_limit_carries_retry_after(fake: &FakeGraph) {
        fake.answer_next(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "30")
                .set_body_json(graph_error(32, None)),
        )
        .await;
        let result = fake.messenger().send(&page(), &token(), &plain("hi")).await;
        assert_eq!(
            result,
            Err(SendError::RateLimited {
                code: 32,
                retry_after: Some(Duration::from_secs(30))
            })
        );
    }

    /// The token goes as `Authorization: Bearer`, never in the URL; `appsecret_proof` is its HMAC under the
    /// app secret; the body is JSON.
    pub async fn sends_the_token_as_bearer_with_appsecret_proof(fake: &FakeGraph) {
        let token = token();
        let sent = fake.messenger().send(&page(), &token, &plain("hi")).await;
        assert!(sent.is_ok(), "{sent:?}");
        let requests = fake.requests().await;
        let Some(request) = requests.last() else {
            panic!("the fake received the request");
        };
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            header("authorization"),
            Some(format!("Bearer {}", token.expose()))
        );
        assert!(
            header("content-type").is_some_and(|c| c.starts_with("application/json")),
            "JSON body"
        );
        assert_eq!(
            request.url.path(),
            format!("/{FAKE_VERSION}/{}/messages", page().as_str())
        );
        assert!(
            !request.url.as_str().contains(token.expose()),
            "no token in the URL"
        );
        let proof: Vec<String> = request
            .url
            .query_pairs()
            .filter(|(k, _)| k == "appsecret_proof")
            .map(|(_, v)| v.into_owned())
            .collect();
        let expected = graph::appsecret_proof(&SecretString::from(FAKE_APP_SECRET), &token);
        assert_eq!(proof, vec![expected]);
        assert_eq!(
            request.url.query_pairs().count(),
            1,
            "nothing else in the query"
        );
    }

    /// Without an app secret, no `appsecret_proof` and no query at all.
    pub async fn without_app_secret_sends_no_proof(fake: &FakeGraph) {
        let sent = fake
            .messenger_with(None)
            .send(&page(), &token(), &plain("hi"))
            .await;
        assert!(sent.is_ok(), "{sent:?}");
        let requests = fake.requests().await;
        assert_eq!(requests.last().and_then(|r| r.url.query()), None);
    }

    /// A 200 answer yields Meta's `message_id`.
    pub async fn a_success_answer_yields_the_message_id(fake: &FakeGraph) {
        fake.answer_next(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "recipient_id": "1254477777772919",
            "message_id": "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
        })))
        .await;
        let sent = fake.messenger().send(&page(), &token(), &plain("hi")).await;
        assert_eq!(
            sent.map(|s| s.message_id),
            Ok("m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P".to_owned())
        );
    }

    /// No answer in time is a (retryable) transport error.
    pub async fn a_timeout_is_a_transport_error(fake: &FakeGraph) {
        fake.answer_next(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"message_id": "m_late"}))
                .set_delay(Duration::from_secs(3)),
        )
        .await;
        let result = fake.messenger().send(&page(), &token(), &plain("hi")).await;
        assert!(
            matches!(result, Err(SendError::Transport { .. })),
            "{result:?}"
        );
        assert!(result.is_err_and(|e| e.is_retryable()));
    }

    /// An answer that is not Graph JSON (a proxy's HTML page, a 200 without a message id) is a transport
    /// error, whatever its status.
    pub async fn a_non_json_answer_is_a_transport_error(fake: &FakeGraph) {
        let answers = [
            ResponseTemplate::new(502).set_body_raw("<html>Bad Gateway</html>", "text/html"),
            ResponseTemplate::new(400).set_body_raw("not json", "text/plain"),
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"recipient_id": "1"})),
            ResponseTemplate::new(200).set_body_raw("", "application/json"),
        ];
        let m = fake.messenger();
        for (i, answer) in answers.into_iter().enumerate() {
            fake.answer_next(answer).await;
            let result = m.send(&page(), &token(), &plain("hi")).await;
            assert!(
                matches!(result, Err(SendError::Transport { .. })),
                "answer {i}: {result:?}"
            );
        }
    }

    /// Nothing listening is a transport error.
    pub async fn an_unreachable_api_is_a_transport_error(_fake: &FakeGraph) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9);
        let m = GraphMessenger::new(
            graph::http_client().unwrap_or_else(|e| panic!("{e}")),
            format!("http://127.0.0.1:{port}"),
            FAKE_VERSION.to_owned(),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let result = m.send(&page(), &token(), &plain("hi")).await;
        assert!(
            matches!(result, Err(SendError::Transport { .. })),
            "{result:?}"
        );
    }

    /// Error answers log Meta's code and trace id, never Meta's free-text message or anything personal.
    pub async fn errors_log_no_personal_data(fake: &FakeGraph) {
        let logs = crate::test_support::logs::capture();
        let token = token();
        let mut message = plain("Private words for Graph");
        message.recipient =
            Recipient::Psid(Psid::parse("9988776655443322").unwrap_or_else(|e| panic!("{e}")));
        let mut body = graph_error(551, Some(1_545_041));
        body["error"]["message"] = serde_json::json!("user 9988776655443322 is unavailable");
        fake.answer_next(ResponseTemplate::new(400).set_body_json(body))
            .await;
        let result = fake.messenger().send(&page(), &token, &message).await;
        assert!(matches!(result, Err(SendError::Unreachable { .. })));
        logs.assert_absent(&[
            "9988776655443322",
            "Private words for Graph",
            token.expose(),
        ]);
    }
}

/// The token check's cases for every backend: over the port and the backend's [`PageTokens`].
pub mod tokens {
    use super::{Messenger, PageId, PageTokens};

    fn page_a() -> PageId {
        PageId::parse("104000000000001").unwrap_or_else(|e| panic!("{e}"))
    }

    fn page_b() -> PageId {
        PageId::parse("104000000000002").unwrap_or_else(|e| panic!("{e}"))
    }

    /// A token of a page names that page (and, where the backend learns it, the page's name).
    pub async fn a_token_of_a_page_names_that_page(m: &dyn Messenger, tokens: &dyn PageTokens) {
        let (token, expected) = tokens.token_of(&page_a(), "Corner Bakery").await;
        assert_eq!(m.page_of_token(&token).await, Ok(expected));
    }

    /// Tokens of two pages each name their own page: a token of another page names the other page, so
    /// the caller's comparison refuses it.
    pub async fn a_token_of_another_page_names_the_other_page(
        m: &dyn Messenger,
        tokens: &dyn PageTokens,
    ) {
        let (of_a, profile_a) = tokens.token_of(&page_a(), "Corner Bakery").await;
        let (of_b, profile_b) = tokens.token_of(&page_b(), "Harbour Books").await;
        let (a, b) = (m.page_of_token(&of_a).await, m.page_of_token(&of_b).await);
        assert_eq!(a.as_ref().map(|p| &p.id), Ok(&page_a()));
        assert_eq!(b.as_ref().map(|p| &p.id), Ok(&page_b()));
        assert_eq!((a, b), (Ok(profile_a), Ok(profile_b)));
    }

    /// A token the backend cannot vouch for is refused with the backend's answer (Graph: 190 from Meta;
    /// the outbox backend: not verifiable locally), not as a passing failure.
    pub async fn a_token_the_backend_cannot_vouch_for_is_refused(
        m: &dyn Messenger,
        tokens: &dyn PageTokens,
    ) {
        let (token, expected) = tokens.unknown_token();
        let result = m.page_of_token(&token).await;
        assert_eq!(result, Err(expected));
        assert!(result.is_err_and(|e| !e.is_retryable()));
    }

    /// Neither the logs nor the answer's `Debug` carry the token.
    pub async fn checking_a_token_logs_nothing_secret(m: &dyn Messenger, tokens: &dyn PageTokens) {
        let logs = crate::test_support::logs::capture();
        let (token, _) = tokens.token_of(&page_a(), "Corner Bakery").await;
        let (unknown, _) = tokens.unknown_token();
        let answers = format!(
            "{:?} {:?}",
            m.page_of_token(&token).await,
            m.page_of_token(&unknown).await
        );
        for secret in [token.expose(), unknown.expose()] {
            assert!(!answers.contains(secret), "a token in an answer");
        }
        logs.assert_absent(&[token.expose(), unknown.expose()]);
    }
}

/// The token check against the fake Graph API: the request on the wire and every kind of answer Meta
/// gives, end to end.
pub mod graph_only_tokens {
    use std::time::Duration;

    use secrecy::SecretString;
    use wiremock::ResponseTemplate;

    use super::{
        FAKE_APP_SECRET, FAKE_VERSION, FakeGraph, PageCheckError, PageId, PageProfile, graph,
        graph_error, token,
    };
    use crate::messenger::{GraphMessenger, Messenger};

    fn page() -> PageId {
        PageId::parse("104000000000001").unwrap_or_else(|e| panic!("{e}"))
    }

    /// `GET /{version}/me?fields=id,name&appsecret_proof=…` with the token as `Authorization: Bearer`,
    /// never in the URL; without an app secret, no proof.
    pub async fn the_check_asks_me_with_the_token_as_bearer_and_appsecret_proof(fake: &FakeGraph) {
        let token = fake.issue_token(&page(), Some("Corner Bakery"));
        let answer = fake.messenger().page_of_token(&token).await;
        assert!(answer.is_ok(), "{answer:?}");
        let requests = fake.requests().await;
        let Some(request) = requests.last() else {
            panic!("the fake received the request");
        };
        assert_eq!(request.method.as_str(), "GET");
        assert_eq!(request.url.path(), format!("/{FAKE_VERSION}/me"));
        assert_eq!(
            request
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some(format!("Bearer {}", token.expose()).as_str())
        );
        assert!(
            !request.url.as_str().contains(token.expose()),
            "no token in the URL"
        );
        let query: Vec<(String, String)> = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let proof = graph::appsecret_proof(&SecretString::from(FAKE_APP_SECRET), &token);
        assert_eq!(
            query,
            vec![
                ("fields".to_owned(), "id,name".to_owned()),
                ("appsecret_proof".to_owned(), proof)
            ]
        );

        let answer = fake.messenger_with(None).page_of_token(&token).await;
        assert!(answer.is_ok(), "{answer:?}");
        let requests = fake.requests().await;
        let query = requests
            .last()
            .and_then(|r| r.url.query().map(str::to_owned));
        assert_eq!(query.as_deref(), Some("fields=id%2Cname"));
    }

    /// Meta's answers for a dead token (190: invalid, password changed 460, expired 463) are
    /// `TokenInvalid`, with Meta's code and subcode.
    pub async fn an_invalid_or_expired_token_is_token_invalid(fake: &FakeGraph) {
        let m = fake.messenger();
        for (status, subcode) in [(400, None), (400, Some(460)), (401, Some(463))] {
            fake.answer_next_check(
                ResponseTemplate::new(status).set_body_json(graph_error(190, subcode)),
            )
            .await;
            let result = m.page_of_token(&token()).await;
            assert_eq!(
                result,
                Err(PageCheckError::TokenInvalid { code: 190, subcode }),
                "190/{subcode:?}"
            );
            assert!(result.is_err_and(|e| !e.is_retryable()));
        }
    }

    /// Permission errors (10, 200–299) are `Permission`; other refusals (100 without a known subcode)
    /// are `Refused`; neither is worth asking again.
    pub async fn a_permission_error_or_another_refusal_is_not_retryable(fake: &FakeGraph) {
        let m = fake.messenger();
        for (status, code, subcode, expected) in [
            (
                403,
                10,
                None,
                PageCheckError::Permission {
                    code: 10,
                    subcode: None,
                },
            ),
            (
                403,
                200,
                None,
                PageCheckError::Permission {
                    code: 200,
                    subcode: None,
                },
            ),
            (
                403,
                283,
                Some(1),
                PageCheckError::Permission {
                    code: 283,
                    subcode: Some(1),
                },
            ),
            (
                400,
                100,
                Some(33),
                PageCheckError::Refused {
                    code: 100,
                    subcode: Some(33),
                },
            ),
        ] {
            fake.answer_next_check(
                ResponseTemplate::new(status).set_body_json(graph_error(code, subcode)),
            )
            .await;
            let result = m.page_of_token(&fake.issue_token(&page(), None)).await;
            assert_eq!(result, Err(expected), "{code}/{subcode:?}");
            assert!(result.is_err_and(|e| !e.is_retryable()));
        }
    }

    /// Meta's temporary errors, rate limits and 5xx answers, no answer in time and nothing listening are
    /// all `Unavailable`: retryable.
    pub async fn graph_down_slow_or_busy_is_retryable(fake: &FakeGraph) {
        let m = fake.messenger();
        let answers = [
            ResponseTemplate::new(500).set_body_json(graph_error(1, None)),
            ResponseTemplate::new(503).set_body_json(graph_error(2, None)),
            ResponseTemplate::new(500).set_body_json(graph_error(424_242, None)),
            ResponseTemplate::new(400).set_body_json(graph_error(4, None)),
            ResponseTemplate::new(429).set_body_json(graph_error(32, None)),
            ResponseTemplate::new(400).set_body_json(graph_error(613, None)),
            ResponseTemplate::new(502).set_body_raw("<html>Bad Gateway</html>", "text/html"),
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"id": page().as_str()}))
                .set_delay(Duration::from_secs(3)),
        ];
        for (i, answer) in answers.into_iter().enumerate() {
            fake.answer_next_check(answer).await;
            let result = m.page_of_token(&fake.issue_token(&page(), None)).await;
            assert!(
                matches!(result, Err(PageCheckError::Unavailable { .. })),
                "answer {i}: {result:?}"
            );
            assert!(result.is_err_and(|e| e.is_retryable()), "answer {i}");
        }

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9);
        let nowhere = GraphMessenger::new(
            graph::http_client().unwrap_or_else(|e| panic!("{e}")),
            format!("http://127.0.0.1:{port}"),
            FAKE_VERSION.to_owned(),
            None,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let result = nowhere.page_of_token(&token()).await;
        assert!(
            matches!(result, Err(PageCheckError::Unavailable { .. })),
            "{result:?}"
        );
    }

    /// An answer that is not what Graph gives for a page (not JSON, no id, an id that is not a canonical
    /// page id, an error without a code) names no page: `Unavailable`, never a page.
    pub async fn a_malformed_answer_names_no_page(fake: &FakeGraph) {
        let m = fake.messenger();
        let answers = [
            ResponseTemplate::new(200).set_body_raw("not json", "text/plain"),
            ResponseTemplate::new(200).set_body_raw("", "application/json"),
            ResponseTemplate::new(200).set_body_json(serde_json::json!({})),
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"name": "Corner Bakery"})),
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": "0104000000000001"})),
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": "10400x"})),
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"id": true})),
            ResponseTemplate::new(200).set_body_json(serde_json::json!([page().as_str()])),
            ResponseTemplate::new(400)
                .set_body_json(serde_json::json!({"error": {"message": "no code"}})),
        ];
        for (i, answer) in answers.into_iter().enumerate() {
            fake.answer_next_check(answer).await;
            let result = m.page_of_token(&fake.issue_token(&page(), None)).await;
            assert!(
                matches!(result, Err(PageCheckError::Unavailable { .. })),
                "answer {i}: {result:?}"
            );
        }
    }

    /// A numeric id is read as the page id; a name qchat cannot show (control characters, over 100
    /// characters, blank) is dropped rather than failing the check.
    pub async fn a_numeric_id_is_read_and_an_unusable_name_is_dropped(fake: &FakeGraph) {
        let m = fake.messenger();
        let long = "n".repeat(101);
        for (body, name) in [
            (
                serde_json::json!({"id": 104_000_000_000_001_u64, "name": "  Corner Bakery "}),
                Some("Corner Bakery"),
            ),
            (
                serde_json::json!({"id": page().as_str(), "name": "Bell\u{7}Shop"}),
                None,
            ),
            (
                serde_json::json!({"id": page().as_str(), "name": long}),
                None,
            ),
            (
                serde_json::json!({"id": page().as_str(), "name": "   "}),
                None,
            ),
            (serde_json::json!({"id": page().as_str()}), None),
        ] {
            fake.answer_next_check(ResponseTemplate::new(200).set_body_json(body.clone()))
                .await;
            let result = m.page_of_token(&token()).await;
            assert_eq!(
                result,
                Ok(PageProfile {
                    id: page(),
                    name: name.map(str::to_owned),
                }),
                "{body}"
            );
        }
    }

    /// Refusals log Meta's code and trace id, never Meta's free-text message, the token, or the name
    /// `/me` reports (which is a person's name when the token is a user's).
    pub async fn token_check_errors_log_nothing_personal_or_secret(fake: &FakeGraph) {
        let logs = crate::test_support::logs::capture();
        let m = fake.messenger();
        let dead = token();
        let mut body = graph_error(190, Some(463));
        body["error"]["message"] = serde_json::json!(format!(
            "Error validating access token {}: Session has expired",
            dead.expose()
        ));
        fake.answer_next_check(ResponseTemplate::new(400).set_body_json(body))
            .await;
        let refused = m.page_of_token(&dead).await;
        assert!(matches!(refused, Err(PageCheckError::TokenInvalid { .. })));

        let user = token();
        fake.answer_next_check(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"id": "2899887766554433", "name": "Quintessa Vandersloot"}),
        ))
        .await;
        let person = m.page_of_token(&user).await;
        let shown = format!("{refused:?} {person:?}");
        assert!(!shown.contains("Quintessa") && !shown.contains(dead.expose()));
        logs.assert_absent(&[
            dead.expose(),
            user.expose(),
            "Session has expired",
            "Quintessa",
            "2899887766554433",
        ]);
    }
}

/// The app-scoped → page-scoped id mapping, for every backend: over the port and the backend's
/// [`KnowsPeople`].
pub mod people {
    use super::{AppScopedUserId, KnowsPeople, Messenger, PageId, Psid};

    fn page_a() -> PageId {
        PageId::parse("104000000000001").unwrap_or_else(|e| panic!("{e}"))
    }

    fn page_b() -> PageId {
        PageId::parse("104000000000002").unwrap_or_else(|e| panic!("{e}"))
    }

    fn user(n: u64) -> AppScopedUserId {
        AppScopedUserId::parse(&(10_158_000_000_000_000 + n).to_string())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn psid(n: u64) -> Psid {
        Psid::parse(&(2_811_000_000_000_000 + n).to_string()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A person known on two pages maps, on each, to their id there and only that one.
    pub async fn a_person_maps_to_their_page_scoped_id_on_each_page(
        m: &dyn Messenger,
        people: &dyn KnowsPeople,
    ) {
        people.know(&user(1), &page_a(), &psid(1)).await;
        people.know(&user(1), &page_b(), &psid(2)).await;
        let (token_a, _) = people.token_of(&page_a(), "Corner Bakery").await;
        let (token_b, _) = people.token_of(&page_b(), "Harbour Books").await;
        assert_eq!(
            m.ids_for_pages(&user(1), &page_a(), &token_a).await,
            Ok(vec![psid(1)])
        );
        assert_eq!(
            m.ids_for_pages(&user(1), &page_b(), &token_b).await,
            Ok(vec![psid(2)])
        );
    }

    /// Someone never seen, or seen on another page only, maps to nothing: an empty answer, not an error.
    pub async fn a_person_unknown_on_a_page_maps_to_nothing(
        m: &dyn Messenger,
        people: &dyn KnowsPeople,
    ) {
        people.know(&user(2), &page_b(), &psid(3)).await;
        let (token_a, _) = people.token_of(&page_a(), "Corner Bakery").await;
        assert_eq!(
            m.ids_for_pages(&user(2), &page_a(), &token_a).await,
            Ok(vec![])
        );
        assert_eq!(
            m.ids_for_pages(&user(9), &page_a(), &token_a).await,
            Ok(vec![])
        );
    }

    /// A token the backend cannot vouch for is an error the caller can skip the page on, never an
    /// empty answer that would read as "nothing held there".
    pub async fn a_token_the_backend_cannot_vouch_for_is_an_error(
        m: &dyn Messenger,
        people: &dyn KnowsPeople,
    ) {
        people.know(&user(3), &page_a(), &psid(4)).await;
        let (token, expected) = people.unknown_token();
        let result = m.ids_for_pages(&user(3), &page_a(), &token).await;
        assert_eq!(result, Err(expected));
        assert!(result.is_err_and(|e| !e.is_retryable()));
    }

    /// Neither the logs nor the answer's `Debug` carry the person's ids or the token.
    pub async fn mapping_logs_no_personal_id_or_token(m: &dyn Messenger, people: &dyn KnowsPeople) {
        let logs = crate::test_support::logs::capture();
        people.know(&user(4), &page_a(), &psid(5)).await;
        let (token, _) = people.token_of(&page_a(), "Corner Bakery").await;
        let (unknown, _) = people.unknown_token();
        let answers = format!(
            "{:?} {:?}",
            m.ids_for_pages(&user(4), &page_a(), &token).await,
            m.ids_for_pages(&user(4), &page_a(), &unknown).await
        );
        let secrets = [user(4).expose().to_owned(), psid(5).expose().to_owned()];
        for secret in &secrets {
            assert!(
                !answers.contains(secret.as_str()),
                "a personal id in an answer"
            );
        }
        logs.assert_absent(&[
            secrets[0].as_str(),
            secrets[1].as_str(),
            token.expose(),
            unknown.expose(),
        ]);
    }
}

/// `ids_for_pages` against the fake Graph API: the request on the wire and Meta's answers, end to end.
pub mod graph_only_people {
    use secrecy::SecretString;
    use wiremock::ResponseTemplate;

    use super::{
        AppScopedUserId, FAKE_APP_SECRET, FAKE_VERSION, FakeGraph, PageCheckError, PageId, Psid,
        graph, graph_error,
    };
    use crate::messenger::Messenger;

    fn page() -> PageId {
        PageId::parse("104000000000001").unwrap_or_else(|e| panic!("{e}"))
    }

    fn user() -> AppScopedUserId {
        AppScopedUserId::parse("10158000000000077").unwrap_or_else(|e| panic!("{e}"))
    }

    /// `GET /{version}/{user}/ids_for_pages?page={page}&appsecret_proof=…`, the token as `Bearer`.
    pub async fn ids_for_pages_asks_with_the_page_the_token_as_bearer_and_appsecret_proof(
        fake: &FakeGraph,
    ) {
        let psid = Psid::parse("2811000000000077").unwrap_or_else(|e| panic!("{e}"));
        fake.know_person(&user(), &page(), &psid);
        let token = fake.issue_token(&page(), None);
        let answer = fake
            .messenger()
            .ids_for_pages(&user(), &page(), &token)
            .await;
        assert_eq!(answer, Ok(vec![psid]));
        let requests = fake.requests().await;
        let Some(request) = requests.last() else {
            panic!("the fake received the request");
        };
        assert_eq!(request.method.as_str(), "GET");
        assert_eq!(
            request.url.path(),
            format!("/{FAKE_VERSION}/{}/ids_for_pages", user().expose())
        );
        assert_eq!(
            request
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some(format!("Bearer {}", token.expose()).as_str())
        );
        let query: Vec<(String, String)> = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let proof = graph::appsecret_proof(&SecretString::from(FAKE_APP_SECRET), &token);
        assert_eq!(
            query,
            vec![
                ("page".to_owned(), page().as_str().to_owned()),
                ("appsecret_proof".to_owned(), proof)
            ]
        );
    }

    /// Meta's refusals and failures are classified like a token check's: a dead token or a missing
    /// permission is final for that page; Meta down, busy or answering nonsense may work later.
    pub async fn ids_for_pages_errors_are_classified(fake: &FakeGraph) {
        let m = fake.messenger();
        let token = fake.issue_token(&page(), None);
        let rows = [
            (
                400,
                graph_error(190, Some(463)),
                PageCheckError::TokenInvalid {
                    code: 190,
                    subcode: Some(463),
                },
            ),
            (
                403,
                graph_error(10, None),
                PageCheckError::Permission {
                    code: 10,
                    subcode: None,
                },
            ),
            (
                400,
                graph_error(100, Some(33)),
                PageCheckError::Refused {
                    code: 100,
                    subcode: Some(33),
                },
            ),
        ];
        for (status, body, expected) in rows {
            fake.answer_next_ids_json(status, body).await;
            let result = m.ids_for_pages(&user(), &page(), &token).await;
            assert_eq!(result, Err(expected.clone()), "{expected:?}");
            assert!(!expected.is_retryable());
        }
        for (status, body) in [
            (500, graph_error(2, None)),
            (400, graph_error(4, None)),
            (200, serde_json::json!({ "nothing": [] })),
        ] {
            fake.answer_next_ids_json(status, body).await;
            let result = m.ids_for_pages(&user(), &page(), &token).await;
            assert!(
                result.as_ref().is_err_and(PageCheckError::is_retryable),
                "{result:?}"
            );
        }
        fake.answer_next_ids(
            ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"),
        )
        .await;
        let result = m.ids_for_pages(&user(), &page(), &token).await;
        assert!(
            result.as_ref().is_err_and(PageCheckError::is_retryable),
            "{result:?}"
        );
    }
}
