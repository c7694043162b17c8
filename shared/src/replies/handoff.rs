//! Replies handed from the webhook straight to a sender in the same process (the local server), instead
//! of through the due index: the sender's claim is written with the reply, in the event's own
//! transaction, and the reply goes to the sender as soon as that transaction is durable.
//!
//! Why: the local server's sender otherwise finds each new reply by querying the due index, reads its
//! lead, page and lead secret, and claims it with a write of its own before it sends: under the load
//! bench at 10 messages a body that was a fifth of the process's CPU, and one of the three writes a
//! new person costs the main store. The webhook holds all of it already.
//!
//! Invariants:
//! - a reply is handed off only with a free slot (at most `slots` in flight), and only while the due
//!   index has no backlog ([`ReplyHandoff::set_backlog`]; the local server's sender says there is one
//!   while it finds a reply there that has waited more than a second): replies waiting there are
//!   closer to the end of their 24-hour window, so new replies queue behind them, through the index;
//! - a handed-off reply is stored as claimed (`lease_until`) and due in the index at the lease's end
//!   ([`claimed`]): if the process stops before the outcome is recorded, the sender that runs next finds
//!   it then and sends it — at least once, as for any claimed reply whose sender stopped;
//! - only replies whose transaction committed are handed off (the webhook sends them after its batch's
//!   commit); one whose transaction did not commit is dropped with its slot;
//! - the sender records the outcome conditional on the version written with the reply, like any claim:
//!   an erasure that removed the reply meanwhile, or a sender that took it over after the lease, wins.
//!   As with a reply the drain claimed, one already in the sender's hands when an erasure removes it
//!   may still go out; its outcome is then not recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::{DUE_PARTITION, due_sort_key};
use crate::clock::Timestamp;
use crate::crypto::LeadSecret;
use crate::domain::LeadId;
use crate::store::{Item, StoreError, Value};

/// A reply whose transaction committed, claimed by the process that queued it, for its sender.
#[derive(Debug)]
pub struct ClaimedReply {
    pub reply: HandedReply,
    slot: Slot,
}

/// What the webhook hands over with a reply.
pub struct HandedReply {
    pub id: String,
    /// The reply item as stored (claimed: version and `lease_until` as written).
    pub item: Item,
    /// The page item the webhook read for the event (its token, its `sending` state); `None` when the
    /// batch may have changed the page after the read (a policy event), so the sender reads it.
    pub page: Option<Item>,
    /// The event's lead and its secret, when it has one: the sender uses it for a reply naming that
    /// lead and sealed under the lead's own key, and reads any other from the key store.
    pub secret: Option<(LeadId, LeadSecret)>,
}

impl ClaimedReply {
    /// The reply, and its slot, to hold until the outcome is recorded.
    pub fn into_parts(self) -> (HandedReply, Slot) {
        (self.reply, self.slot)
    }
}

impl std::fmt::Debug for HandedReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandedReply")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A free place among the replies in flight, taken before a reply is written as claimed.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

/// The webhook's side of the hand-off: slots, and the queue to the sender.
#[derive(Debug)]
pub struct ReplyHandoff {
    queue: mpsc::UnboundedSender<ClaimedReply>,
    slots: Arc<Semaphore>,
    backlog: AtomicBool,
    lease_secs: i64,
}

impl ReplyHandoff {
    /// A hand-off of at most `slots` replies in flight, each claimed for `lease_secs`, and the queue its
    /// sender reads.
    pub fn new(slots: usize, lease_secs: i64) -> (Self, mpsc::UnboundedReceiver<ClaimedReply>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let handoff = Self {
            queue,
            slots: Arc::new(Semaphore::new(slots)),
            backlog: AtomicBool::new(false),
            lease_secs,
        };
        (handoff, receiver)
    }

    /// A slot for one more reply, unless every slot is taken, the due index has a backlog, or the
    /// sender is gone.
    pub fn slot(&self) -> Option<Slot> {
        if self.backlog.load(Ordering::Relaxed) || self.queue.is_closed() {
            return None;
        }
        self.slots
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|permit| Slot { _permit: permit })
    }

    /// Whether replies are waiting in the due index (the sender's drain says so after each look).
    pub fn set_backlog(&self, waiting: bool) {
        self.backlog.store(waiting, Ordering::Relaxed);
    }

    /// `item`, a new reply, as written claimed by this process: see [`claimed`].
    ///
    /// # Errors
    /// Only an attribute the data inventory does not declare (a bug).
    pub fn claim(&self, item: Item, reply_id: &str, now: Timestamp) -> Result<Item, StoreError> {
        claimed(item, reply_id, now.plus_secs(self.lease_secs))
    }

    /// Gives a committed reply to the sender.
    pub fn send(&self, slot: Slot, reply: HandedReply) {
        // A sender gone (the process is stopping): the reply's lease runs out and it is sent then.
        let _ = self.queue.send(ClaimedReply { reply, slot });
    }
}

/// A new reply written claimed until `until`: `lease_until` and its next attempt at `until`, and its
/// place in the due index there, so a drain meets it only if its outcome was not recorded by then.
///
/// # Errors
/// Only an attribute the data inventory does not declare (a bug).
pub fn claimed(item: Item, reply_id: &str, until: Timestamp) -> Result<Item, StoreError> {
    Ok(item
        .plain("lease_until", Value::N(until.millis()))?
        .plain("next_attempt_at", Value::N(until.millis()))?
        .with_gsi1(DUE_PARTITION, due_sort_key(until, reply_id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, PageId};
    use crate::replies::{NewReply, reply_id_of, reply_op};
    use crate::store::WriteOp;

    fn new_reply(now: Timestamp) -> Item {
        let sealed = crate::crypto::Sealed::from_bytes(vec![1; 40]);
        let op = reply_op(
            NewReply {
                id: "r1",
                page: &PageId::parse("1000000001").unwrap(),
                account: &AccountId::parse("acc1").unwrap(),
                lead: None,
                recipient_kind: "psid",
                recipient: sealed.clone(),
                text: sealed,
                quick_replies: &[],
            },
            now,
        )
        .unwrap();
        match op {
            WriteOp::Put { item, .. } => item,
            other => panic!("not a put: {other:?}"),
        }
    }

    #[test]
    fn a_claimed_reply_is_held_and_due_only_when_its_lease_ends() {
        let now = Timestamp::from_millis(1_800_000_000_000);
        let (handoff, _queue) = ReplyHandoff::new(4, 60);
        let item = handoff.claim(new_reply(now), "r1", now).unwrap();
        let until = now.plus_secs(60).millis();
        assert_eq!(item.get_i64("lease_until"), Some(until));
        assert_eq!(item.get_i64("next_attempt_at"), Some(until));
        assert_eq!(item.get_str("state"), Some("pending"));
        assert_eq!(item.version(), Some(1));
        let (pk, sk) = item.gsi1().unwrap();
        assert_eq!(pk, DUE_PARTITION);
        assert_eq!(sk, due_sort_key(now.plus_secs(60), "r1"));
        assert_eq!(reply_id_of(&item.key().pk), Some("r1"));
    }

    #[tokio::test]
    async fn slots_run_out_and_come_back_and_a_backlog_or_a_gone_sender_stops_the_handoff() {
        let now = Timestamp::from_millis(1_800_000_000_000);
        let (handoff, mut queue) = ReplyHandoff::new(2, 60);
        let (a, b) = (handoff.slot().unwrap(), handoff.slot().unwrap());
        assert!(handoff.slot().is_none(), "two slots, both taken");
        drop(a);
        let item = new_reply(now);
        let reply = HandedReply {
            id: "r1".into(),
            item,
            page: None,
            secret: None,
        };
        handoff.send(b, reply);
        let c = handoff.slot().expect("a dropped slot is free again");
        let sent = queue.recv().await.unwrap();
        assert_eq!(sent.reply.id, "r1");
        assert!(handoff.slot().is_none(), "the sent reply holds its slot");
        drop(sent);
        assert!(
            handoff.slot().is_some(),
            "its slot is free once the sender is done"
        );
        drop(c);
        handoff.set_backlog(true);
        assert!(
            handoff.slot().is_none(),
            "replies wait in the index: no hand-off"
        );
        handoff.set_backlog(false);
        assert!(handoff.slot().is_some());
        drop(queue);
        assert!(handoff.slot().is_none(), "no sender: no hand-off");
    }
}
