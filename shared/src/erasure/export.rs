//! The export of everything held about an account (SPEC §4 `GET /api/account/export`), decrypted.
//!
//! An account with 100 000 leads holds far more than one response may carry (API Gateway: 10 MB and
//! 29 s; Lambda: 6 MB), so the export is a sequence of bounded pages fetched with a cursor: each call
//! answers one page of one section (`{"schema_version", "section", "items", "next_cursor", …}`), and the
//! client passes `next_cursor` back (`?cursor=`) until it is `null`. The sections, in order:
//! `account`, `sessions`, `security_log`, `notices`, `links`, `pages`; then for each page (by id) its
//! `leads` (each with its whole consent chain), its `broadcasts`, and for each broadcast its
//! `deliveries`. No page is larger than [`MAX_PAGE_BYTES`] nor reads more than one bounded slice of the
//! store, so each call stays far inside both limits whatever the account's size.
//!
//! Every item is rendered from the data inventory ([`crate::inventory`]), so a new attribute is exported
//! the day it is declared: `type` (the item type), then each stored attribute by its declared name —
//! encrypted ones decrypted; credentials (password hash, page token, link tokens) never, shown as
//! `{"withheld": "credential"}`; blind indexes and one-way hashes as `{"kept_as": "blind_index"}` or
//! `{"kept_as": "one_way_hash"}` (they cannot be reversed); plain ones as stored — and `expires_at` when
//! the item expires. A lead's values sealed under its own key open with its secret, read for a whole
//! page of leads in one key-store read; a lead whose secret is gone (erased, and this is a restored copy)
//! shows them as `{"unreadable": "lead_key_erased"}`. Store keys are not shown (a session's key is a hash of its token).
//!
//! The cursor is opaque to the client (base64url of JSON: section, page, broadcast, store cursor). It
//! grants nothing: every call reads only the caller's own partitions, and a page named in a cursor is
//! read only while the caller's account holds it (otherwise it is skipped, like a page disconnected
//! between two calls).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value as Json, json};

use crate::accounts::{links_partition, pages_partition, profile_key, sessions_partition};
use crate::app::{App, account_key_owner};
use crate::broadcast::page_broadcasts_partition;
use crate::broadcast::sender::deliveries_partition;
use crate::crypto::LeadSecret;
use crate::domain::{AccountId, LeadId, PageId};
use crate::http::ApiError;
use crate::inventory::{Category, Protection, STRUCTURAL};
use crate::leads::consent::history_partition;
use crate::leads::record::page_leads_partition;
use crate::outbox::account_notices_partition;
use crate::pages::page_key;
use crate::store::{Cursor, Index, Item, KeyRange, Order, Query, StoreError, Value, query_all};

/// The version of the export's shape; it changes when a section or a rendering rule changes.
pub const SCHEMA_VERSION: u32 = 1;
/// Leads per page (each with its consent chain).
pub const LEADS_PER_PAGE: usize = 100;
/// Items per page of the other sections.
pub const ITEMS_PER_PAGE: usize = 500;
/// Broadcasts per page (each holds a decrypted message of a few kB at most).
pub const BROADCASTS_PER_PAGE: usize = 50;
/// A page stops taking leads once its items reach this size: far below Lambda's 6 MB response.
pub const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;
/// Consent records read per lead (a chain longer than this is cut, and says so).
pub const MAX_CHAIN: usize = 1000;

/// The sections, in the order the export walks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    Account,
    Sessions,
    SecurityLog,
    Notices,
    Links,
    Pages,
    Leads,
    Broadcasts,
    Deliveries,
}

/// Item types the export shows, and in which section. A test checks this against the inventory: every
/// item type is here or in [`NOT_EXPORTED`], and every personal attribute of these types is exported.
pub const EXPORTED: &[(&str, Section)] = &[
    ("account", Section::Account),
    ("session", Section::Sessions),
    ("security_event", Section::SecurityLog),
    ("outbox", Section::Notices),
    ("email_verification", Section::Links),
    ("password_reset", Section::Links),
    ("page", Section::Pages),
    ("lead", Section::Leads),
    ("consent_record", Section::Leads),
    ("broadcast", Section::Broadcasts),
    ("delivery", Section::Deliveries),
];

/// Item types the export does not show, and why.
pub const NOT_EXPORTED: &[(&str, &str)] = &[
    (
        "data_key",
        "the account's wrapped encryption key: a credential",
    ),
    ("job", "background work; holds ids and counts only"),
    (
        "email_claim",
        "maps the address's blind index to the account id; no value of its own",
    ),
    (
        "lead_lookup",
        "maps the blind index of page and person to the lead id; no value of its own",
    ),
    (
        "lead_keys",
        "names the lead's lookup (a blind index) for its erasure; no value of its own",
    ),
    (
        "attempt_slot",
        "sign-in attempts keyed by blind index; only times",
    ),
    ("policy", "published policies: not the account's"),
    ("breach_notice", "the operator's notices: not the account's"),
    (
        "unsubscribe_link",
        "a hash of a lead's link token, page and lead ids: credentials of the lead",
    ),
    (
        "webhook_event",
        "de-duplication marks: a hash of a page and a message id",
    ),
    (
        "reply",
        "Messenger replies qchat sent to leads: kept 7 days and not filed under the account once sent",
    ),
    (
        "mail_throttle",
        "a marker keyed by the address's blind index; only a time",
    ),
    (
        "mail_suppression",
        "a marker keyed by the address's blind index; a reason and a time",
    ),
    ("audit_entry", "the operator's own actions"),
    ("pace", "a page's send pace: one time"),
    (
        "meta_deletion_subject",
        "a person's app-scoped id while Meta's deletion request is mapped to leads: not the account's, \
         deleted once mapped",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct ExportCursor {
    s: Section,
    /// The page whose leads, broadcasts or deliveries are being read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    /// The broadcast whose deliveries are being read (its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b: Option<String>,
    /// The store cursor within the section's partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    a: Option<String>,
}

impl ExportCursor {
    fn start(s: Section) -> Self {
        Self {
            s,
            p: None,
            b: None,
            a: None,
        }
    }

    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(raw: &str) -> Result<Self, ApiError> {
        if raw.len() > 4096 {
            return Err(invalid_cursor());
        }
        URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(invalid_cursor)
    }

    fn store_cursor(&self) -> Result<Option<Cursor>, ApiError> {
        self.a
            .as_deref()
            .map(Cursor::parse)
            .transpose()
            .map_err(|_| invalid_cursor())
    }
}

fn query_error(e: StoreError) -> ApiError {
    match e {
        StoreError::InvalidCursor => invalid_cursor(),
        other => other.into(),
    }
}

fn invalid_cursor() -> ApiError {
    ApiError::bad_request(
        "invalid_cursor",
        "the cursor is not one this export gave out",
    )
}

/// One page of the export.
#[derive(Debug)]
pub struct ExportPage {
    pub section: Section,
    pub page_id: Option<String>,
    pub broadcast_id: Option<String>,
    pub items: Vec<Json>,
    pub next_cursor: Option<String>,
}

impl ExportPage {
    pub fn to_json(&self) -> Json {
        let mut out = json!({
            "schema_version": SCHEMA_VERSION,
            "section": self.section,
            "items": self.items,
            "next_cursor": self.next_cursor,
        });
        if let Some(p) = &self.page_id {
            out["page_id"] = json!(p);
        }
        if let Some(b) = &self.broadcast_id {
            out["broadcast_id"] = json!(b);
        }
        out
    }
}

/// Reads one page of `account`'s export, from `cursor` (`None`: the start).
///
/// # Errors
/// 400 `invalid_cursor` for a cursor this export did not give out; the store's and keyring's failures.
pub async fn page(
    app: &App,
    account: &AccountId,
    cursor: Option<&str>,
) -> Result<ExportPage, ApiError> {
    let at = match cursor {
        None => ExportCursor::start(Section::Account),
        Some(raw) => ExportCursor::decode(raw)?,
    };
    let reader = Reader { app, account };
    reader.read(at).await
}

struct Reader<'a> {
    app: &'a App,
    account: &'a AccountId,
}

impl Reader<'_> {
    async fn read(&self, at: ExportCursor) -> Result<ExportPage, ApiError> {
        let store_cursor = at.store_cursor()?;
        let (partition, index, range, limit) = match at.s {
            Section::Account => {
                let items = match self.app.store.get(&profile_key(self.account)).await? {
                    Some(item) => vec![self.render(&item).await?],
                    None => Vec::new(),
                };
                return self.finish(&at, items, None).await;
            }
            Section::Sessions => (
                sessions_partition(self.account),
                Index::Gsi1,
                KeyRange::All,
                ITEMS_PER_PAGE,
            ),
            Section::SecurityLog => (
                format!("ACCOUNT#{}", self.account),
                Index::Table,
                KeyRange::Prefix("SEC#".to_owned()),
                ITEMS_PER_PAGE,
            ),
            Section::Notices => (
                account_notices_partition(self.account),
                Index::Gsi1,
                KeyRange::All,
                ITEMS_PER_PAGE,
            ),
            Section::Links => (
                links_partition(self.account),
                Index::Gsi1,
                KeyRange::All,
                ITEMS_PER_PAGE,
            ),
            Section::Pages => (
                pages_partition(self.account),
                Index::Gsi1,
                KeyRange::All,
                ITEMS_PER_PAGE,
            ),
            Section::Leads => return self.leads(at, store_cursor).await,
            Section::Broadcasts => {
                let page = self.owned_page(at.p.as_deref()).await?;
                match page {
                    Some(page) => (
                        page_broadcasts_partition(&page),
                        Index::Table,
                        KeyRange::Prefix("B#".to_owned()),
                        BROADCASTS_PER_PAGE,
                    ),
                    None => return self.finish(&at, Vec::new(), None).await,
                }
            }
            Section::Deliveries => return self.deliveries(at, store_cursor).await,
        };
        let found = self
            .app
            .store
            .query(&Query {
                index,
                partition,
                range,
                order: Order::Ascending,
                limit,
                cursor: store_cursor,
            })
            .await
            .map_err(query_error)?;
        let mut items = Vec::with_capacity(found.items.len());
        for item in &found.items {
            let mut rendered = self.render(item).await?;
            match at.s {
                Section::Pages => {
                    rendered["page_id"] = json!(item.key().pk.trim_start_matches("PAGE#"));
                }
                Section::Broadcasts => {
                    rendered["broadcast_id"] = json!(item.key().sk.trim_start_matches("B#"));
                }
                _ => {}
            }
            items.push(rendered);
        }
        self.finish(&at, items, found.next.map(|c| c.as_str().to_owned()))
            .await
    }

    /// The page named in a cursor, if the caller's account holds it.
    async fn owned_page(&self, raw: Option<&str>) -> Result<Option<PageId>, ApiError> {
        let Some(page) = raw.and_then(|p| PageId::parse(p).ok()) else {
            return Err(invalid_cursor());
        };
        let item = self.app.store.get(&page_key(&page)).await?;
        Ok(item
            .filter(|i| i.get_str("account_id") == Some(self.account.as_str()))
            .map(|_| page))
    }

    async fn leads(
        &self,
        at: ExportCursor,
        store_cursor: Option<Cursor>,
    ) -> Result<ExportPage, ApiError> {
        let Some(page) = self.owned_page(at.p.as_deref()).await? else {
            return self.finish(&at, Vec::new(), None).await;
        };
        let found = self
            .app
            .store
            .query(&Query {
                index: Index::Table,
                partition: page_leads_partition(&page),
                range: KeyRange::Prefix("LEAD#".to_owned()),
                order: Order::Ascending,
                limit: LEADS_PER_PAGE,
                cursor: store_cursor,
            })
            .await
            .map_err(query_error)?;
        let secrets = self.lead_secrets(&page, &found.items).await?;
        let mut items = Vec::with_capacity(found.items.len());
        let mut bytes = 0;
        let mut next = found.next.map(|c| c.as_str().to_owned());
        for (n, item) in found.items.iter().enumerate() {
            let raw = item.key().sk.trim_start_matches("LEAD#");
            let id = LeadId::parse(raw).ok();
            let mut lead = match &id {
                Some(id) => self.render_lead(item, id, secrets.get(id)).await?,
                None => self.render(item).await?,
            };
            lead["lead_id"] = json!(raw);
            let mut chain = Vec::new();
            let mut cut = false;
            if let Some(id) = id {
                let records = self
                    .app
                    .store
                    .query(&Query::partition(history_partition(&page, &id), MAX_CHAIN))
                    .await?;
                cut = records.next.is_some();
                for record in &records.items {
                    chain.push(self.render(record).await?);
                }
            }
            lead["consent"] = Json::Array(chain);
            if cut {
                lead["consent_cut_at"] = json!(MAX_CHAIN);
            }
            bytes += lead.to_string().len();
            items.push(lead);
            if bytes >= MAX_PAGE_BYTES && n + 1 < found.items.len() {
                next = Some(Cursor::after(item, Index::Table).as_str().to_owned());
                break;
            }
        }
        self.finish(&at, items, next).await
    }

    async fn deliveries(
        &self,
        at: ExportCursor,
        store_cursor: Option<Cursor>,
    ) -> Result<ExportPage, ApiError> {
        let Some(page) = self.owned_page(at.p.as_deref()).await? else {
            return self.finish(&at, Vec::new(), None).await;
        };
        // The broadcast being read; at the start of the section, the page's first one.
        let broadcast = match &at.b {
            Some(b) => crate::broadcast::BroadcastId::parse(b),
            None => self.next_broadcast(&page, None).await?,
        };
        let Some(broadcast) = broadcast else {
            return self.finish(&at, Vec::new(), None).await;
        };
        let found = self
            .app
            .store
            .query(&Query {
                cursor: store_cursor,
                ..Query::partition(deliveries_partition(&page, &broadcast), ITEMS_PER_PAGE)
            })
            .await
            .map_err(query_error)?;
        let mut items = Vec::with_capacity(found.items.len());
        for item in &found.items {
            let mut rendered = self.render(item).await?;
            rendered["lead_id"] = json!(item.key().sk.trim_start_matches("LEAD#"));
            items.push(rendered);
        }
        let here = ExportCursor {
            b: Some(broadcast.as_str().to_owned()),
            ..at.clone()
        };
        let next = match found.next {
            Some(c) => Some(ExportCursor {
                a: Some(c.as_str().to_owned()),
                ..here.clone()
            }),
            None => self
                .next_broadcast(&page, Some(&broadcast))
                .await?
                .map(|b| ExportCursor {
                    b: Some(b.as_str().to_owned()),
                    a: None,
                    ..here.clone()
                }),
        };
        let next = match next {
            Some(n) => Some(n.encode()),
            None => self.after_page(&page).await?,
        };
        Ok(ExportPage {
            section: Section::Deliveries,
            page_id: here.p.clone(),
            broadcast_id: here.b.clone(),
            items,
            next_cursor: next,
        })
    }

    /// The page's first broadcast after `after` (or its first one).
    async fn next_broadcast(
        &self,
        page: &PageId,
        after: Option<&crate::broadcast::BroadcastId>,
    ) -> Result<Option<crate::broadcast::BroadcastId>, ApiError> {
        let range = match after {
            Some(b) => KeyRange::AtLeast(format!("B#{}", b.as_str())),
            None => KeyRange::Prefix("B#".to_owned()),
        };
        let found = self
            .app
            .store
            .query(&Query {
                range,
                ..Query::partition(page_broadcasts_partition(page), 2)
            })
            .await?;
        Ok(found
            .items
            .iter()
            .filter_map(|i| i.key().sk.strip_prefix("B#"))
            .filter_map(crate::broadcast::BroadcastId::parse)
            .find(|b| after.is_none_or(|a| a.as_str() != b.as_str())))
    }

    /// The cursor of the section after `at`'s when `at`'s has no more items (`next` is `None`), or `at`
    /// with its store cursor moved on.
    async fn finish(
        &self,
        at: &ExportCursor,
        items: Vec<Json>,
        next: Option<String>,
    ) -> Result<ExportPage, ApiError> {
        let next_cursor = match next {
            Some(a) => Some(
                ExportCursor {
                    a: Some(a),
                    ..at.clone()
                }
                .encode(),
            ),
            None => self.after_section(at).await?,
        };
        Ok(ExportPage {
            section: at.s,
            page_id: at.p.clone(),
            broadcast_id: at.b.clone(),
            items,
            next_cursor,
        })
    }

    async fn after_section(&self, at: &ExportCursor) -> Result<Option<String>, ApiError> {
        let following = match at.s {
            Section::Account => Section::Sessions,
            Section::Sessions => Section::SecurityLog,
            Section::SecurityLog => Section::Notices,
            Section::Notices => Section::Links,
            Section::Links => Section::Pages,
            Section::Pages => {
                return Ok(self.first_page_after(None).await?.map(|p| {
                    ExportCursor {
                        p: Some(p),
                        ..ExportCursor::start(Section::Leads)
                    }
                    .encode()
                }));
            }
            Section::Leads => Section::Broadcasts,
            Section::Broadcasts => Section::Deliveries,
            Section::Deliveries => {
                let page = at.p.as_deref().and_then(|p| PageId::parse(p).ok());
                return match page {
                    Some(page) => self.after_page(&page).await,
                    None => Ok(None),
                };
            }
        };
        Ok(Some(
            ExportCursor {
                p: at.p.clone(),
                ..ExportCursor::start(following)
            }
            .encode(),
        ))
    }

    /// The cursor of the next page's leads, or `None` after the last page.
    async fn after_page(&self, page: &PageId) -> Result<Option<String>, ApiError> {
        Ok(self.first_page_after(Some(page.as_str())).await?.map(|p| {
            ExportCursor {
                p: Some(p),
                ..ExportCursor::start(Section::Leads)
            }
            .encode()
        }))
    }

    /// The account's first page (by id) after `after`.
    async fn first_page_after(&self, after: Option<&str>) -> Result<Option<String>, ApiError> {
        let pages = query_all(
            self.app.store.as_ref(),
            Query {
                index: Index::Gsi1,
                ..Query::partition(pages_partition(self.account), 100)
            },
        )
        .await?;
        let mut ids: Vec<String> = pages
            .iter()
            .map(|i| i.key().pk.trim_start_matches("PAGE#").to_owned())
            .collect();
        ids.sort();
        Ok(ids
            .into_iter()
            .find(|id| after.is_none_or(|a| id.as_str() > a)))
    }

    /// The secrets of the leads among `items` whose values are sealed under their own key: one key-store
    /// read ([`crate::leads::lookup::secrets`]) for a page of the export (at most [`LEADS_PER_PAGE`]
    /// leads), none when no value needs one.
    async fn lead_secrets(
        &self,
        page: &PageId,
        items: &[Item],
    ) -> Result<HashMap<LeadId, LeadSecret>, ApiError> {
        let needed: Vec<LeadId> = items
            .iter()
            .filter(|item| {
                item.item_type()
                    .attributes
                    .iter()
                    .filter(|a| a.protection == Protection::Encrypted)
                    .any(|a| item.get_sealed(a.name).is_some_and(|s| s.is_lead_sealed()))
            })
            .filter_map(|item| LeadId::parse(item.key().sk.trim_start_matches("LEAD#")).ok())
            .collect();
        if needed.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(crate::leads::lookup::secrets(self.app.key_store.as_ref(), page, &needed).await?)
    }

    /// An item as the export shows it, by the inventory's declarations.
    async fn render(&self, item: &Item) -> Result<Json, ApiError> {
        self.render_as(item, None).await
    }

    /// A lead's item: its values sealed under its own key open with `secret`; without it (the lead was
    /// erased, and this is a restored copy) each is shown as `{"unreadable": "lead_key_erased"}`.
    async fn render_lead(
        &self,
        item: &Item,
        lead: &LeadId,
        secret: Option<&LeadSecret>,
    ) -> Result<Json, ApiError> {
        self.render_as(item, Some((lead, secret))).await
    }

    async fn render_as(
        &self,
        item: &Item,
        lead: Option<(&LeadId, Option<&LeadSecret>)>,
    ) -> Result<Json, ApiError> {
        let kind = item.item_type();
        let mut out = Map::new();
        out.insert("type".to_owned(), json!(kind.name));
        let owner = account_key_owner(self.account);
        for (name, value) in item.attributes() {
            if STRUCTURAL.iter().any(|a| a.name == name.as_str()) {
                continue;
            }
            let Some(declared) = kind.attribute(name) else {
                continue;
            };
            let shown = if declared.category == Category::Credential {
                json!({ "withheld": "credential" })
            } else {
                match declared.protection {
                    Protection::BlindIndex => json!({ "kept_as": "blind_index" }),
                    Protection::OneWayHash => json!({ "kept_as": "one_way_hash" }),
                    Protection::Encrypted => match item.get_sealed(name) {
                        Some(sealed)
                            if sealed.is_lead_sealed() && lead.is_none_or(|l| l.1.is_none()) =>
                        {
                            json!({ "unreadable": "lead_key_erased" })
                        }
                        Some(sealed) => {
                            let plain = match lead {
                                Some((id, secret)) => {
                                    self.app
                                        .keys
                                        .open_lead(
                                            &owner,
                                            secret,
                                            id.as_str(),
                                            item.key(),
                                            name,
                                            &sealed,
                                        )
                                        .await?
                                }
                                None => {
                                    self.app
                                        .keys
                                        .open(&owner, item.key(), name, &sealed)
                                        .await?
                                }
                            };
                            match plain.as_str() {
                                Ok(text) => json!(text),
                                Err(_) => json!({ "base64": STANDARD.encode(plain.as_bytes()) }),
                            }
                        }
                        None => Json::Null,
                    },
                    Protection::Plain => plain(value),
                }
            };
            out.insert(name.clone(), shown);
        }
        if let Some(at) = item.expires() {
            out.insert("expires_at".to_owned(), json!(at.to_rfc3339()));
        }
        Ok(Json::Object(out))
    }
}

fn plain(value: &Value) -> Json {
    match value {
        Value::S(s) => json!(s),
        Value::N(n) => json!(n),
        Value::Bool(b) => json!(b),
        Value::B(bytes) => json!({ "base64": STANDARD.encode(bytes) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::ITEM_TYPES;

    #[test]
    fn every_item_type_is_exported_or_excluded_with_a_reason_and_never_both() {
        for t in ITEM_TYPES {
            let exported = EXPORTED.iter().filter(|(n, _)| *n == t.name).count();
            let excluded = NOT_EXPORTED.iter().filter(|(n, _)| *n == t.name).count();
            assert_eq!(
                exported + excluded,
                1,
                "{} must be listed exactly once in EXPORTED or NOT_EXPORTED",
                t.name
            );
        }
        for (name, _) in EXPORTED {
            assert!(
                ITEM_TYPES.iter().any(|t| t.name == *name),
                "{name} is not an item type"
            );
        }
        for (name, _) in NOT_EXPORTED {
            assert!(
                ITEM_TYPES.iter().any(|t| t.name == *name),
                "{name} is not an item type"
            );
        }
    }

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let c = ExportCursor {
            s: Section::Deliveries,
            p: Some("123".into()),
            b: Some("b".into()),
            a: Some("x".into()),
        };
        assert_eq!(ExportCursor::decode(&c.encode()).ok(), Some(c));
        assert!(ExportCursor::decode("not a cursor!").is_err());
        assert!(ExportCursor::decode(&URL_SAFE_NO_PAD.encode(b"{}")).is_err());
    }
}
