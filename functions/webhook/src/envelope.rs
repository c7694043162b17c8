//! Tolerant parsing of a verified webhook body into events, one per `messaging[]` item.
//!
//! Invariants: parsing never fails a batch — a malformed item, an unknown kind or a `standby[]` item is
//! counted and skipped; a body that is not JSON only because of unreadable values (invalid UTF-8, a lone
//! surrogate escape) is repaired ([`crate::repair`]) and read, so one bad value costs no other event; `timestamp` is accepted as a number or a string; events are returned in
//! `timestamp` order (stable, so same-time events keep Meta's order). Personal values (PSID, user_ref,
//! text, tokens) go straight into redacting domain types and are never logged.

use qchat_shared::domain::{NotificationToken, PageId, Psid, UserRef};
use qchat_shared::leads::Subject;
use serde_json::Value;

/// What a marketing-messages (`notification_messages`) opt-in event says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarketingChange {
    OptIn,
    Stop,
    Resume,
}

/// What Meta's `policy_enforcement` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyAction {
    Warning,
    Block,
    Unblock,
}

/// One event's kind and its fields.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A message from the person (never an echo).
    Message {
        mid: Option<String>,
        text: Option<Text>,
        quick_reply: Option<String>,
    },
    /// The page's own message coming back, a delivery or a read receipt: never consent.
    Echo,
    Receipt,
    Postback {
        mid: Option<String>,
        payload: Option<String>,
        referral: Option<String>,
    },
    Referral {
        referral: Option<String>,
    },
    /// Checkbox plugin (or another plugin) opt-in: explicit consent.
    PluginOptIn {
        referral: Option<String>,
    },
    Marketing {
        change: MarketingChange,
        token: Option<NotificationToken>,
    },
    Policy {
        action: PolicyAction,
    },
}

/// Message text: personal, so its `Debug` shows only its length.
#[derive(Clone)]
pub struct Text(pub String);

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Text({} chars)", self.0.chars().count())
    }
}

/// One event of the batch.
#[derive(Debug, Clone)]
pub struct Event {
    pub page: PageId,
    /// Who acted; `None` only for page-level events (policy enforcement).
    pub subject: Option<Subject>,
    /// Meta's event time (ms).
    pub timestamp: Option<i64>,
    pub kind: Kind,
    /// The checkbox plugin's `user_ref` of a person answering a message the page sent through the
    /// checkbox plugin (`prior_message: {source: "checkbox_plugin", identifier}` on a message or
    /// postback): links their PSID lead to the checkbox opt-in ([`crate::consent::link`]). Only ever
    /// hashed into a lead id; its `Debug` is redacted.
    pub checkbox_user_ref: Option<UserRef>,
}

impl Event {
    /// The short name of the kind, for de-duplication hashes and counts.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            Kind::Message { .. } => "message",
            Kind::Echo => "echo",
            Kind::Receipt => "receipt",
            Kind::Postback { .. } => "postback",
            Kind::Referral { .. } => "referral",
            Kind::PluginOptIn { .. } => "plugin_optin",
            Kind::Marketing { .. } => "marketing",
            Kind::Policy { .. } => "policy_enforcement",
        }
    }
    /// Meta's message id, when the event has one.
    pub fn mid(&self) -> Option<&str> {
        match &self.kind {
            Kind::Message { mid, .. } | Kind::Postback { mid, .. } => mid.as_deref(),
            _ => None,
        }
    }
}

/// What parsing skipped. Counts only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    pub standby: usize,
    pub unknown: usize,
    pub malformed: usize,
}

/// A parsed body.
#[derive(Debug, Default)]
pub struct Batch {
    /// `false` when `object` is not `page`: the whole body is ignored.
    pub is_page: bool,
    pub events: Vec<Event>,
    pub skipped: Skipped,
    /// Unreadable values (invalid UTF-8, lone surrogate or invalid escapes) replaced by U+FFFD so the
    /// body could be read; the events holding them are kept.
    pub repaired: usize,
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// A timestamp given as a number or as a string of digits.
fn timestamp(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Meta's ids sometimes arrive as numbers in hand-written test payloads; accept both.
fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn sender(item: &Value) -> Option<Subject> {
    let sender = item.get("sender")?;
    if let Some(id) = id_string(sender.get("id")) {
        return Psid::parse(&id).ok().map(Subject::Psid);
    }
    str_field(sender, "user_ref")
        .and_then(|r| UserRef::parse(r).ok())
        .map(Subject::UserRef)
}

/// `prior_message` of a checkbox-plugin conversation: on the messaging item (Meta's reference), or
/// inside the message or postback (accepted too). Other sources are not links to a lead of ours.
fn checkbox_user_ref(item: &Value, inner: Option<&Value>) -> Option<UserRef> {
    let prior = item
        .get("prior_message")
        .or_else(|| inner.and_then(|i| i.get("prior_message")))?;
    let source = str_field(prior, "source")?;
    if !source.eq_ignore_ascii_case("checkbox_plugin") {
        return None;
    }
    str_field(prior, "identifier").and_then(|r| UserRef::parse(r).ok())
}

fn referral_ref(v: Option<&Value>) -> Option<String> {
    v.and_then(|r| str_field(r, "ref")).map(str::to_owned)
}

/// One messaging item; `Err(true)` = unknown kind, `Err(false)` = malformed.
fn event(page: &PageId, item: &Value) -> Result<Event, bool> {
    let at = timestamp(item.get("timestamp"));
    let subject = sender(item);
    let with = |subject: Option<Subject>, kind| {
        Ok(Event {
            page: page.clone(),
            subject,
            timestamp: at,
            kind,
            checkbox_user_ref: None,
        })
    };
    if let Some(m) = item.get("message") {
        if m.get("is_echo").and_then(Value::as_bool) == Some(true) {
            return with(subject, Kind::Echo);
        }
        let subject = subject.ok_or(false)?;
        return with(
            Some(subject),
            Kind::Message {
                mid: str_field(m, "mid").map(str::to_owned),
                text: str_field(m, "text").map(|t| Text(t.to_owned())),
                quick_reply: m
                    .get("quick_reply")
                    .and_then(|q| str_field(q, "payload"))
                    .map(str::to_owned),
            },
        )
        .map(|e| Event {
            checkbox_user_ref: checkbox_user_ref(item, Some(m)),
            ..e
        });
    }
    if item.get("delivery").is_some() || item.get("read").is_some() {
        return with(subject, Kind::Receipt);
    }
    if let Some(p) = item.get("postback") {
        let subject = subject.ok_or(false)?;
        return with(
            Some(subject),
            Kind::Postback {
                mid: str_field(p, "mid").map(str::to_owned),
                payload: str_field(p, "payload").map(str::to_owned),
                referral: referral_ref(p.get("referral")),
            },
        )
        .map(|e| Event {
            checkbox_user_ref: checkbox_user_ref(item, Some(p)),
            ..e
        });
    }
    if let Some(o) = item.get("optin") {
        if str_field(o, "type") == Some("notification_messages") {
            let subject = subject.ok_or(false)?;
            let status = str_field(o, "notification_messages_status")
                .map(|s| s.trim().to_ascii_uppercase().replace(' ', "_"));
            let change = match status.as_deref() {
                None => MarketingChange::OptIn,
                Some("STOP_NOTIFICATIONS") => MarketingChange::Stop,
                Some("RESUME_NOTIFICATIONS") => MarketingChange::Resume,
                Some(_) => return Err(false),
            };
            let token = str_field(o, "notification_messages_token")
                .and_then(|t| NotificationToken::parse(t).ok());
            if change == MarketingChange::OptIn && token.is_none() {
                return Err(false);
            }
            return with(Some(subject), Kind::Marketing { change, token });
        }
        // The checkbox plugin names the person by `optin.user_ref` (no sender); Send-to-Messenger by sender.
        let subject = str_field(o, "user_ref")
            .and_then(|r| UserRef::parse(r).ok())
            .map(Subject::UserRef)
            .or(subject)
            .ok_or(false)?;
        return with(
            Some(subject),
            Kind::PluginOptIn {
                referral: str_field(o, "ref").map(str::to_owned),
            },
        );
    }
    if let Some(r) = item.get("referral") {
        let subject = subject.ok_or(false)?;
        return with(
            Some(subject),
            Kind::Referral {
                referral: str_field(r, "ref").map(str::to_owned),
            },
        );
    }
    if let Some(p) = item.get("policy_enforcement") {
        let action = match str_field(p, "action")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("block") => PolicyAction::Block,
            Some("unblock") => PolicyAction::Unblock,
            Some("warning") => PolicyAction::Warning,
            _ => return Err(false),
        };
        return with(None, Kind::Policy { action });
    }
    Err(true)
}

/// Parses a verified body. A body that does not parse is repaired and parsed again ([`crate::repair`]:
/// a well-formed body is never rewritten); one that is still not JSON is one malformed item (a 200 keeps
/// a broken sender from retrying forever).
pub fn parse(body: &[u8]) -> Batch {
    let mut batch = Batch::default();
    let root = match serde_json::from_slice::<Value>(body) {
        Ok(root) => root,
        Err(_) => {
            let repaired = crate::repair::repair(body);
            let root = (repaired.repairs > 0)
                .then(|| serde_json::from_str::<Value>(&repaired.text).ok())
                .flatten();
            let Some(root) = root else {
                batch.skipped.malformed += 1;
                return batch;
            };
            batch.repaired = repaired.repairs;
            root
        }
    };
    if str_field(&root, "object") != Some("page") {
        return batch;
    }
    batch.is_page = true;
    let entries = root.get("entry").and_then(Value::as_array);
    for entry in entries.into_iter().flatten() {
        let page = id_string(entry.get("id")).and_then(|id| PageId::parse(&id).ok());
        let messaging = entry.get("messaging").and_then(Value::as_array);
        let standby = entry.get("standby").and_then(Value::as_array);
        batch.skipped.standby += standby.map_or(0, Vec::len);
        let Some(page) = page else {
            batch.skipped.malformed += messaging.map_or(1, Vec::len);
            continue;
        };
        for item in messaging.into_iter().flatten() {
            match event(&page, item) {
                Ok(e) => batch.events.push(e),
                Err(true) => batch.skipped.unknown += 1,
                Err(false) => batch.skipped.malformed += 1,
            }
        }
    }
    // Meta's order is not guaranteed across entries: act in event-time order.
    batch
        .events
        .sort_by_key(|e| e.timestamp.unwrap_or(i64::MIN));
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_and_number_timestamps_standby_unknown_and_malformed_are_handled() {
        let body = br#"{"object":"page","entry":[
            {"id":"111","time":1,"messaging":[
                {"sender":{"id":"42"},"recipient":{"id":"111"},"timestamp":"20","message":{"mid":"m2","text":"hi"}},
                {"sender":{"id":"42"},"recipient":{"id":"111"},"timestamp":10,"message":{"mid":"m1","text":"hi"}},
                {"sender":{"id":"42"},"timestamp":30,"game_play":{}},
                {"timestamp":40,"message":{"mid":"m3"}}
            ],"standby":[{"sender":{"id":"42"}}]}
        ]}"#;
        let batch = parse(body);
        assert!(batch.is_page);
        let mids: Vec<_> = batch.events.iter().filter_map(Event::mid).collect();
        assert_eq!(mids, vec!["m1", "m2"]);
        assert_eq!(
            batch.skipped,
            Skipped {
                standby: 1,
                unknown: 1,
                malformed: 1
            }
        );
    }

    #[test]
    fn other_objects_and_non_json_are_not_events() {
        assert!(!parse(br#"{"object":"instagram","entry":[]}"#).is_page);
        assert_eq!(parse(b"not json").skipped.malformed, 1);
        // Still not JSON after a repair: as before, one malformed item and nothing else.
        let broken = parse(br#"{"object":"page","entry":[{"t":"\ud800"#);
        assert_eq!(
            (broken.is_page, broken.skipped.malformed, broken.repaired),
            (false, 1, 0)
        );
    }

    #[test]
    fn a_lone_surrogate_or_invalid_utf8_in_one_text_costs_no_event() {
        let mut body = br#"{"object":"page","entry":[{"id":"1","messaging":[
            {"sender":{"id":"5"},"timestamp":1,"message":{"mid":"m1","text":"hi \ud800"}},
            {"sender":{"id":"6"},"timestamp":2,"message":{"mid":"m2","text":"\udc00"}},
            {"sender":{"id":"7"},"timestamp":3,"message":{"mid":"m3","text":"a"#
            .to_vec();
        body.extend_from_slice(&[0xff, 0xfe]);
        body.extend_from_slice(
            br#""}},
            {"sender":{"id":"8"},"timestamp":4,"message":{"mid":"m4","text":"\\ud800 \ud83d\ude00"}}
        ]}]}"#,
        );
        let batch = parse(&body);
        // Two lone surrogates and two invalid bytes.
        assert_eq!(batch.repaired, 4);
        assert_eq!(batch.skipped, Skipped::default());
        let texts: Vec<_> = batch
            .events
            .iter()
            .map(|e| match &e.kind {
                Kind::Message { text: Some(t), .. } => t.0.clone(),
                other => panic!("not a message with text: {other:?}"),
            })
            .collect();
        assert_eq!(
            texts,
            vec![
                "hi \u{fffd}",
                "\u{fffd}",
                "a\u{fffd}\u{fffd}",
                "\\ud800 \u{1f600}"
            ]
        );
    }

    #[test]
    fn marketing_status_spellings_and_checkbox_user_ref() {
        let body = br#"{"object":"page","entry":[{"id":"1","messaging":[
            {"sender":{"id":"5"},"timestamp":1,"optin":{"type":"notification_messages","notification_messages_status":"STOP NOTIFICATIONS"}},
            {"recipient":{"id":"1"},"timestamp":2,"optin":{"ref":"r","user_ref":"ur-1"}}
        ]}]}"#;
        let batch = parse(body);
        assert!(matches!(
            batch.events[0].kind,
            Kind::Marketing {
                change: MarketingChange::Stop,
                ..
            }
        ));
        assert!(matches!(batch.events[1].subject, Some(Subject::UserRef(_))));
    }

    #[test]
    fn prior_message_of_the_checkbox_plugin_names_the_user_ref_and_stays_redacted() {
        let body = br#"{"object":"page","entry":[{"id":"1","messaging":[
            {"sender":{"id":"5"},"timestamp":1,"message":{"mid":"m1","text":"hi"},
             "prior_message":{"source":"checkbox_plugin","identifier":"ur-secret-1"}},
            {"sender":{"id":"6"},"timestamp":2,"message":{"mid":"m2","text":"hi",
             "prior_message":{"source":"checkbox_plugin","identifier":"ur-secret-2"}}},
            {"sender":{"id":"7"},"timestamp":3,"message":{"mid":"m3","text":"hi"},
             "prior_message":{"source":"customer_chat_plugin","identifier":"ur-3"}},
            {"sender":{"id":"8"},"timestamp":4,"postback":{"mid":"m4","payload":"P"},
             "prior_message":{"source":"checkbox_plugin","identifier":"ur-secret-4"}}
        ]}]}"#;
        let batch = parse(body);
        let refs: Vec<_> = batch
            .events
            .iter()
            .map(|e| e.checkbox_user_ref.as_ref().map(UserRef::expose))
            .collect();
        assert_eq!(
            refs,
            vec![
                Some("ur-secret-1"),
                Some("ur-secret-2"),
                None,
                Some("ur-secret-4")
            ]
        );
        let shown = format!("{:?}", batch.events);
        assert!(!shown.contains("ur-secret"));
    }
}
