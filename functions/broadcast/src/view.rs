//! The JSON of a broadcast, as every route returns it: ids, state, the composed message (the account's
//! own content, shown only to the account), times in RFC 3339 and the counts per outcome.

use qchat_shared::broadcast::{BroadcastView, Preview};
use qchat_shared::clock::Timestamp;
use serde_json::{Value, json};

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(t.to_rfc3339()))
}

pub fn broadcast(b: &BroadcastView) -> Value {
    let buttons: Vec<Value> = b
        .draft
        .buttons
        .iter()
        .map(|button| json!({ "title": button.title, "url": button.url }))
        .collect();
    json!({
        "id": b.id.as_str(),
        "page_id": b.page.as_str(),
        "state": b.state.name(),
        "text": b.draft.text,
        "buttons": buttons,
        "send_at": b.draft.send_at.to_rfc3339(),
        "audience": {
            "refs": b.draft.audience.refs,
            "subscribed_since": time(b.draft.audience.subscribed_since),
        },
        "created_at": b.created.to_rfc3339(),
        "started_at": time(b.started_at),
        "ended_at": time(b.ended_at),
        "pause_reason": b.pause_reason,
        "counts": b.counts,
    })
}

pub fn preview(p: &Preview) -> Value {
    json!({
        "eligible": p.eligible,
        "by_reason": p.by_reason,
        "via_update": p.via_update,
        "via_token": p.via_token,
    })
}
