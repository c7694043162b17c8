//! The privacy policy and terms in force: the latest published version of each, or the shipped version
//! "1" on a fresh install. Shared so that every function records the version in force the same way (the
//! account function for registration and acceptance, consent records in webhook and optin).

use crate::app::App;
use crate::clock::Timestamp;
use crate::store::{Index, KeyRange, Order, Query, StoreError};

/// The shipped version of both documents.
pub const SHIPPED_VERSION: &str = "1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    Privacy,
    Terms,
}

impl PolicyKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Privacy => "privacy",
            Self::Terms => "terms",
        }
    }
}

/// A policy version in force.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CurrentPolicy {
    pub kind: PolicyKind,
    pub version: String,
    pub url: String,
    pub summary: String,
    pub published_at: String,
}

fn shipped(app: &App, kind: PolicyKind) -> CurrentPolicy {
    let base = &app.config.public_url;
    let (url, summary) = match kind {
        PolicyKind::Privacy => (
            format!("{base}/privacy"),
            "What qchat stores about account holders and the people who message their pages, why, for how \
             long, and how to get a copy or have it erased.",
        ),
        PolicyKind::Terms => (
            format!("{base}/privacy#terms"),
            "Use qchat only to message people who chose to hear from your page, within Meta's rules.",
        ),
    };
    CurrentPolicy {
        kind,
        version: SHIPPED_VERSION.to_owned(),
        url,
        summary: summary.to_owned(),
        published_at: Timestamp::from_millis(0).to_rfc3339(),
    }
}

/// The index partition of a kind's published versions, sorted by publication time.
pub fn index_partition(kind: PolicyKind) -> String {
    format!("POLICIES#{}", kind.name())
}

/// The version in force: the latest published, or the shipped one.
pub async fn current_policy(app: &App, kind: PolicyKind) -> Result<CurrentPolicy, StoreError> {
    let page = app
        .store
        .query(&Query {
            index: Index::Gsi1,
            partition: index_partition(kind),
            range: KeyRange::All,
            order: Order::Descending,
            limit: 1,
            cursor: None,
        })
        .await?;
    let Some(item) = page.items.first() else {
        return Ok(shipped(app, kind));
    };
    Ok(CurrentPolicy {
        kind,
        version: item
            .get_str("version")
            .unwrap_or(SHIPPED_VERSION)
            .to_owned(),
        url: item.get_str("url").unwrap_or_default().to_owned(),
        summary: item.get_str("summary").unwrap_or_default().to_owned(),
        published_at: Timestamp::from_millis(item.get_i64("published_at").unwrap_or(0))
            .to_rfc3339(),
    })
}

/// Just the version in force, as consent records hold it.
pub async fn current_policy_version(app: &App, kind: PolicyKind) -> Result<String, StoreError> {
    Ok(current_policy(app, kind).await?.version)
}
