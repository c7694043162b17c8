//! The stored broadcast: its key under its page, its sealed content and its plain state, and the reading
//! back into a [`BroadcastView`]. One item per broadcast; a list of a page's broadcasts is one Query of
//! its partition, newest first (ids begin with the creation time).
//!
//! The text, the buttons and the audience's opt-in refs are the account's content: they are sealed
//! together (one attribute, `content`) under the account's data key, bound to the item key. State,
//! times, counts and the sender's progress are plain: they name nobody.

use crate::app::account_key_owner;
use crate::clock::Timestamp;
use crate::crypto::{CryptoError, FieldCipher, KeyManager};
use crate::domain::{AccountId, PageId};
use crate::inventory::BROADCAST;
use crate::store::{Item, ItemKey, StoreError, Value};

use super::BroadcastError;
use super::draft::{Audience, Draft, UrlButton};
use super::model::{BroadcastId, BroadcastView, Counts, State};

pub(crate) fn partition(page: &PageId) -> String {
    format!("BCASTS#{page}")
}

/// The partition of a page's broadcasts (erased with the page).
pub fn page_broadcasts_partition(page: &PageId) -> String {
    partition(page)
}

pub(crate) const SORT_PREFIX: &str = "B#";

pub fn broadcast_key(page: &PageId, id: &BroadcastId) -> ItemKey {
    ItemKey::new(partition(page), format!("{SORT_PREFIX}{id}"))
}

/// The job parameters of a broadcast's sender: which page and broadcast (ids only).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct JobParams {
    pub page: String,
    pub broadcast: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Content {
    text: String,
    #[serde(default)]
    buttons: Vec<Button>,
    #[serde(default)]
    refs: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Button {
    title: String,
    url: String,
}

/// The sealed `content` of a draft.
pub(crate) fn seal_content(
    cipher: &FieldCipher,
    key: &ItemKey,
    draft: &Draft,
) -> Result<crate::crypto::Sealed, BroadcastError> {
    let content = Content {
        text: draft.text.clone(),
        buttons: draft
            .buttons
            .iter()
            .map(|b| Button {
                title: b.title.clone(),
                url: b.url.clone(),
            })
            .collect(),
        refs: draft.audience.refs.clone(),
    };
    let json = serde_json::to_vec(&content).map_err(|_| BroadcastError::Encoding)?;
    Ok(cipher.seal(key, "content", &json)?)
}

/// A stored broadcast, read.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub id: BroadcastId,
    pub account: AccountId,
    pub page: PageId,
    pub state: State,
    pub send_at: Timestamp,
    pub created: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub counts: Counts,
    pub progress: Option<String>,
    pub steps: i64,
    pub subscribed_since: Option<Timestamp>,
    pub pause_reason: Option<String>,
    pub paused_at: Option<Timestamp>,
    pub item: Item,
}

impl Stored {
    pub fn from_item(page: &PageId, item: Item) -> Option<Self> {
        let id = BroadcastId::parse(item.key().sk.strip_prefix(SORT_PREFIX)?)?;
        let time = |name: &str| item.get_i64(name).map(Timestamp::from_millis);
        Some(Self {
            account: AccountId::parse(item.get_str("account_id")?).ok()?,
            page: page.clone(),
            state: State::parse(item.get_str("state")?)?,
            send_at: time("send_at")?,
            created: time("created")?,
            started_at: time("started_at"),
            ended_at: time("ended_at"),
            counts: Counts::from_stored(item.get_str("counts")),
            progress: item.get_str("progress").map(str::to_owned),
            steps: item.get_i64("steps").unwrap_or(0),
            subscribed_since: time("subscribed_since"),
            pause_reason: item.get_str("pause_reason").map(str::to_owned),
            paused_at: time("paused_at"),
            id,
            item,
        })
    }

    /// The draft, opened with the account's key (cached: no KMS call per read once loaded).
    pub async fn draft(&self, keys: &KeyManager) -> Result<Draft, BroadcastError> {
        let sealed = self
            .item
            .get_sealed("content")
            .ok_or(CryptoError::UnknownFormat)?;
        let plain = keys
            .open(
                &account_key_owner(&self.account),
                self.item.key(),
                "content",
                &sealed,
            )
            .await?;
        let content: Content =
            serde_json::from_slice(plain.as_bytes()).map_err(|_| BroadcastError::Encoding)?;
        Ok(Draft {
            text: content.text,
            buttons: content
                .buttons
                .into_iter()
                .map(|b| UrlButton {
                    title: b.title,
                    url: b.url,
                })
                .collect(),
            send_at: self.send_at,
            audience: Audience {
                refs: content.refs,
                subscribed_since: self.subscribed_since,
            },
        })
    }

    pub async fn view(&self, keys: &KeyManager) -> Result<BroadcastView, BroadcastError> {
        let mut counts = self.counts.clone();
        if self.state.is_finished() {
            counts.pending = 0;
        }
        Ok(BroadcastView {
            id: self.id.clone(),
            account: self.account.clone(),
            page: self.page.clone(),
            state: self.state,
            draft: self.draft(keys).await?,
            created: self.created,
            started_at: self.started_at,
            ended_at: self.ended_at,
            counts,
            pause_reason: self.pause_reason.clone(),
        })
    }

    /// A copy of the item with the fields that change while it runs set from `self`, one version up.
    pub fn updated_item(&self) -> Result<Item, StoreError> {
        let version = self.item.version().unwrap_or(0);
        let mut item = self
            .item
            .clone()
            .plain("state", Value::S(self.state.name().to_owned()))?
            .plain("counts", Value::S(self.counts.to_stored()))?
            .plain("steps", Value::N(self.steps))?
            .with_version(version + 1);
        let times = [
            ("started_at", self.started_at),
            ("ended_at", self.ended_at),
            ("paused_at", self.paused_at),
        ];
        for (name, at) in times {
            item = match at {
                Some(at) => item.plain(name, Value::N(at.millis()))?,
                None => item.without(name),
            };
        }
        item = match &self.progress {
            Some(p) => item.plain("progress", Value::S(p.clone()))?,
            None => item.without("progress"),
        };
        item = match &self.pause_reason {
            Some(r) => item.plain("pause_reason", Value::S(r.clone()))?,
            None => item.without("pause_reason"),
        };
        Ok(item)
    }
}

/// A new broadcast's item.
pub(crate) fn new_item(
    key: ItemKey,
    account: &AccountId,
    draft: &Draft,
    content: crate::crypto::Sealed,
    created: Timestamp,
    job_id: &str,
) -> Result<Item, StoreError> {
    let mut item = Item::new(&BROADCAST, key)
        .plain("account_id", Value::S(account.as_str().to_owned()))?
        .sealed("content", content)?
        .plain("state", Value::S(State::Scheduled.name().to_owned()))?
        .plain("send_at", Value::N(draft.send_at.millis()))?
        .plain("created", Value::N(created.millis()))?
        .plain("counts", Value::S(Counts::default().to_stored()))?
        .plain("steps", Value::N(0))?
        .plain("job_id", Value::S(job_id.to_owned()))?
        .with_version(1);
    if let Some(since) = draft.audience.subscribed_since {
        item = item.plain("subscribed_since", Value::N(since.millis()))?;
    }
    Ok(item)
}
