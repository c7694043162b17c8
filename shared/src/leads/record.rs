//! The lead item: where it lives, how it is read, and its status.

use crate::clock::Timestamp;
use crate::domain::{LeadId, PageId, Psid, UserRef};
use crate::store::{Item, ItemKey};

/// Who the lead is, as Meta identifies them.
#[derive(Debug, Clone)]
pub enum Subject {
    Psid(Psid),
    /// The checkbox plugin's reference, until the person writes and a PSID is known.
    UserRef(UserRef),
}

impl Subject {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Psid(_) => "psid",
            Self::UserRef(_) => "user_ref",
        }
    }
    /// The raw value, for sealing and for the Send API. Never log it.
    pub fn expose(&self) -> &str {
        match self {
            Self::Psid(p) => p.expose(),
            Self::UserRef(u) => u.expose(),
        }
    }
}

/// Where a lead stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    /// Asked for consent (confirmed mode), no answer yet.
    Pending,
    Subscribed,
    Unsubscribed,
    /// Meta says the person cannot be reached.
    Unreachable,
    /// Closed: the lead (a checkbox-plugin `user_ref`) was merged into the lead of the same person's PSID
    /// once they wrote from Messenger (`merged_into` names it). Its consent chain stays as the proof and
    /// continues on that lead; a merged lead is never sent to, counted or changed again.
    Merged,
}

impl LeadStatus {
    /// Every status, in lifecycle order (for messages and checks that must name them all).
    pub const ALL: [Self; 5] = [
        Self::Pending,
        Self::Subscribed,
        Self::Unsubscribed,
        Self::Unreachable,
        Self::Merged,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Subscribed => "subscribed",
            Self::Unsubscribed => "unsubscribed",
            Self::Unreachable => "unreachable",
            Self::Merged => "merged",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.name() == s)
    }
}

/// A page's leads partition.
pub fn page_leads_partition(page: &PageId) -> String {
    format!("PAGE#{page}")
}

pub fn lead_key(page: &PageId, lead: &LeadId) -> ItemKey {
    ItemKey::new(page_leads_partition(page), format!("LEAD#{lead}"))
}

/// The index partition listing a page's leads of one status.
pub fn status_partition(page: &PageId, status: LeadStatus) -> String {
    format!("LEADS#{page}#{}", status.name())
}

/// A lead's sort key in its status partition: creation time (zero-padded milliseconds), then id. A
/// filtered list shows leads in the order they came, and a new lead's index entry lands at the end of
/// its partition: one hot index page shared by a whole webhook batch rather than a random page each
/// (lead ids are random), measured by the webhook benchmark.
pub fn status_sort_key(created: Timestamp, lead: &LeadId) -> String {
    format!("{}#{lead}", created.sort_key())
}

/// `marketing_status` while the page may send with the person's marketing-messages token.
pub const MARKETING_ACTIVE: &str = "active";
/// `marketing_status` once the person stopped marketing messages, or opted out of the page's messages.
pub const MARKETING_STOPPED: &str = "stopped";

/// A lead as read from the store (sealed values stay sealed until a caller opens them).
#[derive(Debug, Clone)]
pub struct Lead {
    pub page: PageId,
    pub id: LeadId,
    pub status: LeadStatus,
    pub created: Timestamp,
    pub last_message_at: Option<Timestamp>,
    pub consent_seq: u64,
    pub consent_head: String,
    pub marketing_status: Option<String>,
    pub item: Item,
}

impl Lead {
    /// Reads the lead fields from its item; `None` if the item is not a well-formed lead.
    pub fn from_item(page: &PageId, item: Item) -> Option<Self> {
        let id = LeadId::parse(item.key().sk.strip_prefix("LEAD#")?).ok()?;
        Some(Self {
            page: page.clone(),
            id,
            status: LeadStatus::parse(item.get_str("status")?)?,
            created: Timestamp::from_millis(item.get_i64("created").unwrap_or(0)),
            last_message_at: item.get_i64("last_message_at").map(Timestamp::from_millis),
            consent_seq: u64::try_from(item.get_i64("consent_seq").unwrap_or(0)).unwrap_or(0),
            consent_head: item
                .get_str("consent_head")
                .unwrap_or(super::GENESIS_HASH)
                .to_owned(),
            marketing_status: item.get_str("marketing_status").map(str::to_owned),
            item,
        })
    }

    /// Whether the page may send with the lead's marketing-messages token (it holds one, not stopped).
    pub fn marketing_active(&self) -> bool {
        self.marketing_status.as_deref() == Some(MARKETING_ACTIVE)
    }

    /// The lead this one was merged into (status [`LeadStatus::Merged`]), if it was.
    pub fn merged_into(&self) -> Option<LeadId> {
        self.item
            .get_str("merged_into")
            .and_then(|l| LeadId::parse(l).ok())
    }

    /// The checkbox-plugin lead that was merged into this one, if any (erasure and export follow it).
    pub fn linked_from(&self) -> Option<LeadId> {
        self.item
            .get_str("linked_from")
            .and_then(|l| LeadId::parse(l).ok())
    }
}
