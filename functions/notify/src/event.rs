//! The Lambda events notify receives, told apart and parsed: a DynamoDB stream batch (outbox and reply
//! inserts, so each notice or Messenger reply goes out at once), SES feedback delivered by SNS (bounces
//! and complaints), or anything else (the EventBridge schedule: jobs, then the due sweeps).
//!
//! Parsing never fails: a record that names neither an outbox nor a reply item is counted and ignored,
//! because the scheduled sweeps deliver every pending notice and reply anyway.

use serde_json::Value;

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// A stream batch: deliver these outbox ids.
    Stream {
        outbox_ids: Vec<String>,
        /// Messenger replies (`REPLY#<id>`) to send.
        reply_ids: Vec<String>,
        /// Records that were not outbox or reply inserts, or named no usable id.
        ignored: usize,
    },
    /// SNS notifications from the SES configuration set's event destination: the message texts.
    MailFeedback { messages: Vec<String> },
    /// A schedule (or any event without `Records`): run a tick.
    Schedule,
}

/// Outbox ids are minted by qchat: ids joined by `.`. Anything else is not ours.
fn is_outbox_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The item a stream record is about.
enum Target {
    Outbox(String),
    Reply(String),
}

/// The outbox or reply id a stream record is about, if it is an insert (or update) of such an item.
fn target(record: &Value) -> Option<Target> {
    // A removal (TTL expiry, erasure) is nothing to deliver.
    if record.get("eventName").and_then(Value::as_str) == Some("REMOVE") {
        return None;
    }
    let pk = record
        .get("dynamodb")?
        .get("Keys")?
        .get("pk")?
        .get("S")?
        .as_str()?;
    if let Some(id) = pk.strip_prefix("OUTBOX#") {
        return is_outbox_id(id).then(|| Target::Outbox(id.to_owned()));
    }
    let id = qchat_shared::replies::reply_id_of(pk)?;
    is_outbox_id(id).then(|| Target::Reply(id.to_owned()))
}

/// Tells a stream batch from a schedule.
pub fn parse(event: &Value) -> Invocation {
    let Some(records) = event.get("Records").and_then(Value::as_array) else {
        return Invocation::Schedule;
    };
    // SNS delivers one notification per invocation; its records say `EventSource`, DynamoDB's
    // `eventSource`.
    let from_sns = |r: &&Value| r.get("EventSource").and_then(Value::as_str) == Some("aws:sns");
    if records.iter().any(|r| from_sns(&r)) {
        let messages = records
            .iter()
            .filter(from_sns)
            .filter_map(|r| r.get("Sns")?.get("Message")?.as_str().map(str::to_owned))
            .collect();
        return Invocation::MailFeedback { messages };
    }
    let mut outbox_ids = Vec::with_capacity(records.len());
    let mut reply_ids = Vec::new();
    let mut ignored = 0;
    for record in records {
        match target(record) {
            Some(Target::Outbox(id)) if !outbox_ids.contains(&id) => outbox_ids.push(id),
            Some(Target::Reply(id)) if !reply_ids.contains(&id) => reply_ids.push(id),
            Some(_) => {}
            None => ignored += 1,
        }
    }
    Invocation::Stream {
        outbox_ids,
        reply_ids,
        ignored,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn record(event_name: &str, pk: &str) -> Value {
        json!({
            "eventID": "1",
            "eventName": event_name,
            "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1",
            "dynamodb": {
                "Keys": { "pk": { "S": pk }, "sk": { "S": "OUTBOX" } },
                "SequenceNumber": "111",
                "SizeBytes": 26,
                "StreamViewType": "KEYS_ONLY"
            },
            "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/qchat/stream/2026-01-01T00:00:00.000"
        })
    }

    #[test]
    fn a_stream_batch_yields_the_outbox_ids_of_its_inserts() {
        let event = json!({ "Records": [
            record("INSERT", "OUTBOX#abc"),
            record("INSERT", "OUTBOX#job1.acc2"),
        ]});
        assert_eq!(
            parse(&event),
            Invocation::Stream {
                outbox_ids: vec!["abc".into(), "job1.acc2".into()],
                reply_ids: vec![],
                ignored: 0
            }
        );
    }

    #[test]
    fn removals_other_items_and_malformed_records_are_ignored() {
        let event = json!({ "Records": [
            record("REMOVE", "OUTBOX#gone"),
            record("INSERT", "JOB#x"),
            record("INSERT", "OUTBOX#"),
            record("INSERT", "OUTBOX#../etc"),
            { "eventName": "INSERT" },
            "not an object",
            record("MODIFY", "OUTBOX#kept"),
        ]});
        assert_eq!(
            parse(&event),
            Invocation::Stream {
                outbox_ids: vec!["kept".into()],
                reply_ids: vec![],
                ignored: 6
            }
        );
    }

    #[test]
    fn a_record_repeated_in_one_batch_is_delivered_once() {
        let event =
            json!({ "Records": [record("INSERT", "OUTBOX#a"), record("MODIFY", "OUTBOX#a")] });
        assert_eq!(
            parse(&event),
            Invocation::Stream {
                outbox_ids: vec!["a".into()],
                reply_ids: vec![],
                ignored: 0
            }
        );
    }

    #[test]
    fn reply_inserts_are_told_from_outbox_inserts() {
        let event = json!({ "Records": [
            record("INSERT", "REPLY#r1"),
            record("INSERT", "OUTBOX#o1"),
            record("INSERT", "REPLY#DUE"),
            record("INSERT", "REPLY#r1"),
        ]});
        assert_eq!(
            parse(&event),
            Invocation::Stream {
                outbox_ids: vec!["o1".into()],
                reply_ids: vec!["r1".into()],
                ignored: 1
            }
        );
    }

    #[test]
    fn an_sns_notification_is_mail_feedback() {
        let event = json!({ "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:qchat-mail-feedback:1",
            "Sns": { "Type": "Notification", "Message": "{\"eventType\":\"Bounce\"}" }
        }]});
        assert_eq!(
            parse(&event),
            Invocation::MailFeedback {
                messages: vec![r#"{"eventType":"Bounce"}"#.to_owned()]
            }
        );
    }

    #[test]
    fn an_eventbridge_schedule_or_anything_else_is_a_tick() {
        let scheduled = json!({
            "version": "0",
            "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": "2026-01-01T00:00:00Z",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/notify"],
            "detail": {}
        });
        assert_eq!(parse(&scheduled), Invocation::Schedule);
        assert_eq!(parse(&json!({})), Invocation::Schedule);
        assert_eq!(parse(&Value::Null), Invocation::Schedule);
        assert_eq!(parse(&json!({ "Records": "x" })), Invocation::Schedule);
    }
}
