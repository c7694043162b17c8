//! The Send API's limits on a text message (MESSENGER.md §3), checked before anything is sent so that
//! every backend refuses the same messages and Meta never sees one it would reject.
//!
//! Lengths are counted in UTF-16 code units: it is never less than the count of characters, so a message
//! that passes here passes Meta whichever of the two it counts (emoji are one character, two units).

use super::{OutgoingMessage, SendError};

/// `message.text`: fewer than 2000 characters.
pub const TEXT_MAX: usize = 1999;
/// At most 13 quick replies.
pub const QUICK_REPLIES_MAX: usize = 13;
/// Quick-reply `title`: at most 20 characters.
pub const TITLE_MAX: usize = 20;
/// Quick-reply `payload`: at most 1000 characters.
pub const PAYLOAD_MAX: usize = 1000;
/// The button template's `text`: at most 640 characters.
pub const BUTTON_TEXT_MAX: usize = 640;
/// The button template: at most 3 buttons.
pub const BUTTONS_MAX: usize = 3;
/// A `web_url` button's URL: qchat's own bound, well within what Meta takes.
pub const URL_MAX: usize = 2000;
/// `metadata`: fewer than 1000 characters.
pub const METADATA_MAX: usize = 999;

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// The rule a message breaks, if any. Names the rule, never the content.
pub fn broken_rule(message: &OutgoingMessage) -> Option<&'static str> {
    if message.text.trim().is_empty() {
        return Some("text must not be empty");
    }
    if units(&message.text) > TEXT_MAX {
        return Some("text must be shorter than 2000 characters");
    }
    if !message.buttons.is_empty() && units(&message.text) > BUTTON_TEXT_MAX {
        return Some("text with buttons must be at most 640 characters");
    }
    if message.buttons.len() > BUTTONS_MAX {
        return Some("at most 3 buttons");
    }
    for button in &message.buttons {
        if button.title.trim().is_empty() || units(&button.title) > TITLE_MAX {
            return Some("a button title must be 1 to 20 characters");
        }
        let url_ok = (button.url.starts_with("https://") || button.url.starts_with("http://"))
            && button.url.len() <= URL_MAX
            && !button
                .url
                .chars()
                .any(|c| c.is_control() || c.is_whitespace());
        if !url_ok {
            return Some("a button URL must be an http(s) URL without spaces");
        }
    }
    if message.quick_replies.len() > QUICK_REPLIES_MAX {
        return Some("at most 13 quick replies");
    }
    for reply in &message.quick_replies {
        if reply.title.trim().is_empty() {
            return Some("a quick-reply title must not be empty");
        }
        if units(&reply.title) > TITLE_MAX {
            return Some("a quick-reply title must be at most 20 characters");
        }
        if reply.payload.is_empty() {
            return Some("a quick-reply payload must not be empty");
        }
        if units(&reply.payload) > PAYLOAD_MAX {
            return Some("a quick-reply payload must be at most 1000 characters");
        }
    }
    if let Some(metadata) = &message.metadata {
        if metadata.is_empty() {
            return Some("metadata must not be empty when present");
        }
        if units(metadata) > METADATA_MAX {
            return Some("metadata must be shorter than 1000 characters");
        }
    }
    None
}

/// Refuses a message Meta would reject, as [`SendError::InvalidRequest`] with code 0 (ours, not Meta's).
/// The broken rule goes to the log (it holds no content); the error stays comparable.
pub fn validate(message: &OutgoingMessage) -> Result<(), SendError> {
    match broken_rule(message) {
        None => Ok(()),
        Some(rule) => {
            tracing::info!(rule, "message refused before sending");
            Err(SendError::InvalidRequest {
                code: 0,
                subcode: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Psid;
    use crate::messenger::{MessagingType, QuickReply, Recipient};

    fn message(text: &str, replies: usize, title: &str, metadata: Option<&str>) -> OutgoingMessage {
        OutgoingMessage {
            recipient: Recipient::Psid(
                Psid::parse("123456").unwrap_or_else(|e| panic!("test psid: {e}")),
            ),
            messaging_type: MessagingType::Response,
            text: text.to_owned(),
            buttons: Vec::new(),
            quick_replies: (0..replies)
                .map(|i| QuickReply {
                    title: title.to_owned(),
                    payload: format!("P{i}"),
                })
                .collect(),
            metadata: metadata.map(str::to_owned),
        }
    }

    #[test]
    fn accepts_messages_at_every_limit() {
        let at_limits = message(
            &"a".repeat(TEXT_MAX),
            QUICK_REPLIES_MAX,
            &"t".repeat(TITLE_MAX),
            Some(&"m".repeat(METADATA_MAX)),
        );
        assert_eq!(broken_rule(&at_limits), None);
        assert_eq!(broken_rule(&message("Hi 👋", 0, "", None)), None);
    }

    #[test]
    fn refuses_each_limit_one_past_it() {
        let cases = [
            message("", 0, "t", None),
            message("   ", 0, "t", None),
            message(&"a".repeat(TEXT_MAX + 1), 0, "t", None),
            // 1000 emoji are 1000 characters but 2000 UTF-16 units: refused, to be safe either way.
            message(&"😀".repeat(1000), 0, "t", None),
            message("hi", QUICK_REPLIES_MAX + 1, "t", None),
            message("hi", 1, &"t".repeat(TITLE_MAX + 1), None),
            message("hi", 1, "", None),
            message("hi", 0, "t", Some(&"m".repeat(METADATA_MAX + 1))),
            message("hi", 0, "t", Some("")),
        ];
        for (i, m) in cases.iter().enumerate() {
            assert_eq!(
                validate(m),
                Err(SendError::InvalidRequest {
                    code: 0,
                    subcode: None
                }),
                "case {i}"
            );
        }
        let mut long_payload = message("hi", 1, "t", None);
        long_payload.quick_replies[0].payload = "p".repeat(PAYLOAD_MAX + 1);
        assert!(validate(&long_payload).is_err());
    }
}
