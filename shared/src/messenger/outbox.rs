//! The local messenger: appends one JSON line per message to an outbox file, the local stand-in for the
//! wire to Meta.
//!
//! Invariants: a message is validated exactly as the Graph client validates it (same function), so local
//! runs refuse what Meta would refuse; each line is written with one `write_all` on a file opened with
//! `O_APPEND`, so lines from concurrent processes never interleave; the `messaging_type` recorded is the
//! one the Graph client would send. The file holds personal data (recipients, texts): local use only.
//!
//! Without Meta there is nobody to tell which page a real token belongs to, so this backend vouches only
//! for its sample tokens, `sample-page-token-<page id>` (optionally followed by `-<anything>`, to tell
//! several tokens of one page apart), which let a newcomer connect sample pages without a Facebook app.
//! Every other token is refused as not verifiable: set `QCHAT_GRAPH_URL` to check real tokens with Meta.
//!
//! Nor is there a Meta to map an app-scoped id to page-scoped ids: [`Messenger::ids_for_pages`] reads a
//! mapping file beside the outbox, [`IDS_FOR_PAGES_FILE`] (`{"<app-scoped id>": {"<page id>":
//! "<page-scoped id>"}}`), which tests and local tools write with [`add_ids_for_pages`]; no file, or no
//! entry, means no ids. It answers only for a sample token of the page asked about.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::graph::{WireRecipient, recipient_kind, wire_messaging_type};
use super::{
    Messenger, OutgoingMessage, PageCheckError, PageProfile, SendError, SentMessage, validate,
};
use crate::clock::Clock;
use crate::domain::{AppScopedUserId, PageAccessToken, PageId, Psid};
use crate::ids::IdGenerator;

/// What every local sample token starts with; the page id follows (see the module documentation).
pub const SAMPLE_TOKEN_PREFIX: &str = "sample-page-token-";

/// The sample token this backend verifies as `page`.
pub fn sample_token(page: &PageId) -> String {
    format!("{SAMPLE_TOKEN_PREFIX}{page}")
}

/// The page a sample token names: `sample-page-token-<canonical page id>[-<suffix>]`.
fn sample_page(token: &PageAccessToken) -> Option<PageId> {
    let rest = token.expose().strip_prefix(SAMPLE_TOKEN_PREFIX)?;
    let id = match rest.split_once('-') {
        Some((id, suffix)) if !suffix.is_empty() => id,
        Some(_) => return None,
        None => rest,
    };
    PageId::parse(id).ok()
}

/// The local stand-in for Graph's `ids_for_pages`, in the outbox file's folder.
pub const IDS_FOR_PAGES_FILE: &str = "ids-for-pages.json";

/// app-scoped id → page id → page-scoped id.
type IdsForPages = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>;

fn read_ids_for_pages(path: &Path) -> std::io::Result<IdsForPages> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IdsForPages::new()),
        Err(e) => Err(e),
    }
}

/// Records, in the mapping file of the outbox at `outbox`, that the person `user` is `psid` on `page`
/// (tests and local tools: what Meta would know).
///
/// # Errors
/// The file's read or write failure.
pub fn add_ids_for_pages(
    outbox: &Path,
    user: &AppScopedUserId,
    page: &PageId,
    psid: &Psid,
) -> std::io::Result<()> {
    let path = ids_for_pages_path(outbox);
    let mut all = read_ids_for_pages(&path)?;
    all.entry(user.expose().to_owned())
        .or_default()
        .insert(page.as_str().to_owned(), psid.expose().to_owned());
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        &path,
        serde_json::to_vec(&all).map_err(std::io::Error::other)?,
    )
}

/// The mapping file that goes with the outbox file at `outbox`.
pub fn ids_for_pages_path(outbox: &Path) -> PathBuf {
    outbox.with_file_name(IDS_FOR_PAGES_FILE)
}

/// One line of the outbox file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxLine {
    /// `m_<id>`, like Meta's message ids.
    pub message_id: String,
    /// When it was "sent", RFC 3339 UTC.
    pub time: String,
    pub page_id: String,
    /// As on the wire: `{"id"}`, `{"user_ref"}` or `{"notification_messages_token"}`.
    pub recipient: WireRecipient<'static>,
    /// `RESPONSE` / `UPDATE`; absent for a marketing-messages token, as on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_type: Option<String>,
    pub text: String,
    /// The button template's `web_url` buttons, if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<OutboxButton>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<OutboxQuickReply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxButton {
    pub title: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxQuickReply {
    pub title: String,
    pub payload: String,
}

/// Appends messages to a JSON-lines file (created, with its folder, on first send).
#[derive(Debug, Clone)]
pub struct OutboxMessenger {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl OutboxMessenger {
    pub fn new(path: PathBuf, clock: Arc<dyn Clock>, ids: Arc<dyn IdGenerator>) -> Self {
        Self { path, clock, ids }
    }

    /// The JSON-lines file messages are appended to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every line of an outbox file (for tests and local tooling). A missing file has no lines.
pub fn read_lines(path: &Path) -> std::io::Result<Vec<OutboxLine>> {
    let content = match std::fs::read_to_string(path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    content
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
        .collect()
}

/// Appends `line` to the file at `path`, creating the file and its folder when missing. Inline on the
/// calling thread, like the SQLite store's reads: a line of a few hundred bytes goes to the kernel's page
/// cache in microseconds, less than handing it to a blocking thread and back (under load that hand-off
/// took a sixth of the reply sender's time).
fn append(path: &Path, line: &[u8]) -> std::io::Result<()> {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    };
    let mut file = match open() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            open()?
        }
        opened => opened?,
    };
    // One write of the whole line: with O_APPEND the kernel places it at the end atomically.
    file.write_all(line)
}

#[async_trait::async_trait]
impl Messenger for OutboxMessenger {
    #[instrument(
        name = "messenger.outbox.send",
        skip_all,
        fields(page = %page, recipient_kind = recipient_kind(&message.recipient))
    )]
    async fn send(
        &self,
        page: &PageId,
        _token: &PageAccessToken,
        message: &OutgoingMessage,
    ) -> Result<SentMessage, SendError> {
        validate(message)?;
        let message_id = format!("m_{}", self.ids.new_id());
        let line = OutboxLine {
            message_id: message_id.clone(),
            time: self.clock.now().to_rfc3339(),
            page_id: page.as_str().to_owned(),
            recipient: WireRecipient::of(&message.recipient).into_owned(),
            messaging_type: wire_messaging_type(message).map(str::to_owned),
            text: message.text.clone(),
            buttons: message
                .buttons
                .iter()
                .map(|b| OutboxButton {
                    title: b.title.clone(),
                    url: b.url.clone(),
                })
                .collect(),
            quick_replies: message
                .quick_replies
                .iter()
                .map(|q| OutboxQuickReply {
                    title: q.title.clone(),
                    payload: q.payload.clone(),
                })
                .collect(),
            metadata: message.metadata.clone(),
        };
        let mut bytes = serde_json::to_vec(&line).map_err(|_| SendError::Transport {
            reason: "the outbox line could not be encoded",
        })?;
        bytes.push(b'\n');
        match append(&self.path, &bytes) {
            Ok(()) => {
                tracing::debug!(outcome = "written", "message appended to the outbox file");
                Ok(SentMessage { message_id })
            }
            Err(e) => {
                tracing::warn!(error_kind = %e.kind(), "the outbox file could not be appended to");
                Err(SendError::Transport {
                    reason: "the outbox file could not be appended to",
                })
            }
        }
    }

    #[instrument(name = "messenger.outbox.ids_for_pages", skip_all, fields(page = %page, found, outcome))]
    async fn ids_for_pages(
        &self,
        user: &AppScopedUserId,
        page: &PageId,
        token: &PageAccessToken,
    ) -> Result<Vec<Psid>, PageCheckError> {
        let span = tracing::Span::current();
        if sample_page(token).as_ref() != Some(page) {
            span.record("outcome", "not_verifiable");
            return Err(PageCheckError::NotVerifiable);
        }
        let path = ids_for_pages_path(&self.path);
        let read = tokio::task::spawn_blocking(move || read_ids_for_pages(&path)).await;
        let all = match read {
            Ok(Ok(all)) => all,
            Ok(Err(e)) => {
                tracing::warn!(error_kind = %e.kind(), "the ids-for-pages file could not be read");
                return Err(PageCheckError::Unavailable {
                    reason: "the ids-for-pages file could not be read",
                });
            }
            Err(_) => {
                return Err(PageCheckError::Unavailable {
                    reason: "the ids-for-pages read was interrupted",
                });
            }
        };
        let ids: Vec<Psid> = all
            .get(user.expose())
            .and_then(|pages| pages.get(page.as_str()))
            .and_then(|psid| Psid::parse(psid).ok())
            .into_iter()
            .collect();
        span.record("found", ids.len());
        span.record("outcome", "answered");
        Ok(ids)
    }

    #[instrument(name = "messenger.outbox.page_of_token", skip_all, fields(outcome))]
    async fn page_of_token(&self, token: &PageAccessToken) -> Result<PageProfile, PageCheckError> {
        let span = tracing::Span::current();
        match sample_page(token) {
            Some(id) => {
                span.record("outcome", "sample_token");
                Ok(PageProfile { id, name: None })
            }
            None => {
                span.record("outcome", "not_verifiable");
                Err(PageCheckError::NotVerifiable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, Timestamp};
    use crate::domain::{NotificationToken, Psid};
    use crate::ids::SequentialIds;
    use crate::messenger::{MessagingType, QuickReply, Recipient};

    fn messenger(path: PathBuf) -> OutboxMessenger {
        OutboxMessenger::new(
            path,
            Arc::new(ManualClock::at(Timestamp::from_millis(1_796_000_000_123))),
            Arc::new(SequentialIds::default()),
        )
    }

    fn page() -> PageId {
        PageId::parse("1000").unwrap_or_else(|e| panic!("{e}"))
    }

    fn token() -> PageAccessToken {
        PageAccessToken::parse("EAAlocaltoken0123456789").unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn writes_one_json_line_per_message_in_the_wire_shape() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("nested").join("messenger.jsonl");
        let m = messenger(path.clone());
        let psid = OutgoingMessage {
            recipient: Recipient::Psid(Psid::parse("42").unwrap_or_else(|e| panic!("{e}"))),
            messaging_type: MessagingType::Update,
            text: "Hallo 👋".to_owned(),
            buttons: Vec::new(),
            quick_replies: vec![QuickReply {
                title: "Ja".to_owned(),
                payload: "YES".to_owned(),
            }],
            metadata: Some("lead_1".to_owned()),
        };
        let token_message = OutgoingMessage {
            recipient: Recipient::NotificationToken(
                NotificationToken::parse("nmt-1").unwrap_or_else(|e| panic!("{e}")),
            ),
            buttons: Vec::new(),
            quick_replies: vec![],
            metadata: None,
            ..psid.clone()
        };
        let a = m.send(&page(), &token(), &psid).await;
        let b = m.send(&page(), &token(), &token_message).await;
        assert_eq!(
            a.map(|s| s.message_id),
            Ok("m_id000000000000000000000001".to_owned())
        );
        assert!(b.is_ok());

        let raw = std::fs::read_to_string(&path).unwrap_or_default();
        let mut lines = raw.lines();
        let first: serde_json::Value =
            serde_json::from_str(lines.next().unwrap_or_default()).unwrap_or_default();
        assert_eq!(first["recipient"], serde_json::json!({"id": "42"}));
        assert_eq!(first["messaging_type"], "UPDATE");
        assert_eq!(first["time"], "2026-11-30T00:53:20.123Z");
        assert_eq!(
            first["quick_replies"],
            serde_json::json!([{"title": "Ja", "payload": "YES"}])
        );
        let second: serde_json::Value =
            serde_json::from_str(lines.next().unwrap_or_default()).unwrap_or_default();
        assert_eq!(
            second["recipient"],
            serde_json::json!({"notification_messages_token": "nmt-1"})
        );
        assert!(second.get("messaging_type").is_none(), "none for a token");
        assert_eq!(lines.next(), None);
        assert_eq!(read_lines(&path).map(|l| l.len()).unwrap_or(0), 2);
    }

    #[test]
    fn only_the_documented_sample_form_names_a_page() {
        let parse = |t: &str| PageAccessToken::parse(t).unwrap_or_else(|e| panic!("{e}"));
        let page = |t: &str| sample_page(&parse(t)).map(|p| p.as_str().to_owned());
        assert_eq!(
            page("sample-page-token-1234567890"),
            Some("1234567890".into())
        );
        assert_eq!(
            page("sample-page-token-1234567890-v2"),
            Some("1234567890".into())
        );
        assert_eq!(page("sample-page-token-12-a-b"), Some("12".into()));
        assert_eq!(
            sample_token(&PageId::parse("77").unwrap_or_else(|e| panic!("{e}"))),
            "sample-page-token-77"
        );
        for refused in [
            "sample-page-token-0123",
            "sample-page-token-12a",
            "sample-page-token-123-",
            "sample-page-token--123",
            "Sample-Page-Token-123",
            "xsample-page-token-123",
            "sample-page-token-+123",
            "EAAGrealtokenfrommeta0123",
        ] {
            assert_eq!(page(refused), None, "{refused}");
        }
    }

    #[tokio::test]
    async fn concurrent_writers_never_interleave_lines() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("messenger.jsonl");
        // Separate messengers stand for separate processes: each opens the file itself.
        let mut tasks = Vec::new();
        for w in 0..8 {
            let m = messenger(path.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    let msg = OutgoingMessage {
                        recipient: Recipient::Psid(
                            Psid::parse("7").unwrap_or_else(|e| panic!("{e}")),
                        ),
                        messaging_type: MessagingType::Response,
                        text: format!("writer {w} message {i} {}", "x".repeat(1500)),
                        buttons: Vec::new(),
                        quick_replies: vec![],
                        metadata: None,
                    };
                    assert!(m.send(&page(), &token(), &msg).await.is_ok());
                }
            }));
        }
        for t in tasks {
            assert!(t.await.is_ok());
        }
        let lines = read_lines(&path).unwrap_or_else(|e| panic!("every line parses: {e}"));
        assert_eq!(lines.len(), 200);
    }
}
