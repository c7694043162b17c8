//! The messenger conformance suite (feature `test-support`): plain `pub async fn` cases over
//! `&dyn Messenger`, run against every backend by `tests/conformance/messenger.rs`.
//!
//! A case sends through the port, then asks a backend-specific [`ReadBack`] what went out: the requests a
//! fake Graph API on 127.0.0.1 received ([`FakeGraph`]), or the lines of the outbox file. Graph-only
//! cases (error mapping end to end, headers, timeouts) take the [`FakeGraph`] itself.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::graph::{self, GraphMessenger, WireRecipient};
use super::outbox::{OutboxMessenger, read_lines};
use super::{MessagingType, Messenger, OutgoingMessage, QuickReply, Recipient, SendError};
use crate::domain::{NotificationToken, PageAccessToken, PageId, Psid, UserRef};
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

/// A fake Graph API on 127.0.0.1: `POST /{version}/{page}/messages` succeeds unless a test queued an
/// error answer with [`FakeGraph::answer_next`].
#[derive(Debug)]
pub struct FakeGraph {
    server: MockServer,
    recorder: Arc<Recorder>,
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
        Self { server, recorder }
    }

    /// A messenger pointed at the fake, with [`FAKE_APP_SECRET`] (so `appsecret_proof` is sent) and a
    /// short timeout so the timeout case runs quickly.
    pub fn messenger(&self) -> GraphMessenger {
        self.messenger_with(Some(FAKE_APP_SECRET))
    }

    pub fn messenger_with(&self, app_secret: Option<&str>) -> GraphMessenger {
        let http = graph::http_client().unwrap_or_else(|e| panic!("HTTP client: {e}"));
        GraphMessenger::new(
            http,
            self.server.uri(),
            FAKE_VERSION.to_owned(),
            app_secret.map(SecretString::from),
        )
        .unwrap_or_else(|e| panic!("fake Graph config: {e}"))
        .with_timeout(Duration::from_millis(500))
    }

    /// Answers the next send with `template` instead of success.
    pub async fn answer_next(&self, template: ResponseTemplate) {
        Mock::given(method("POST"))
            .respond_with(template)
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&self.server)
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
        self.requests().await.len()
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

    use super::{FAKE_APP_SECRET, FAKE_VERSION, FakeGraph, page, plain, token};
    use crate::domain::Psid;
    use crate::messenger::graph::{self, GraphMessenger};
    use crate::messenger::{Messenger, Recipient, SendError};

    fn graph_error(code: i64, subcode: Option<i64>) -> serde_json::Value {
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
