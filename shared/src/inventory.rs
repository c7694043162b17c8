//! The data inventory: every item type the store holds and every attribute of each, declared once.
//!
//! The item-encoding layer ([`crate::store::Item`]) refuses any attribute not declared here, and refuses a
//! value whose protection does not match the declaration (a personal attribute can only be given a sealed
//! ciphertext, a blind index or a one-way hash). The privacy notice is rendered from this table, so the
//! notice cannot drift from what the code stores.

/// What kind of data an attribute holds (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Identifier,
    Contact,
    Content,
    Credential,
    Security,
    Technical,
}

/// How an attribute is protected at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    /// AES-256-GCM under the owner's data key ([`crate::crypto::Sealed`]).
    Encrypted,
    /// Keyed HMAC-SHA256 ([`crate::crypto::BlindIndex`]): equality lookups without the value.
    BlindIndex,
    /// SHA-256 of a random token, or an argon2id password hash ([`crate::crypto::OneWayHash`]).
    OneWayHash,
    /// Stored as is, because it is not personal.
    Plain,
}

/// How long an item is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Retention {
    /// Kept while its owner (account, page or lead) exists; erased with it.
    WhileOwnerExists,
    /// Expires this many seconds after it is written (or after the event named in the purpose); the item
    /// carries the TTL attribute and is treated as absent once expired.
    Expires { seconds: i64 },
    /// Has a TTL attribute whose time the writer chooses (for example "48 h after last use").
    ExpiresAtWriterChosenTime,
    /// Kept while its owner exists and it is in use; once it is no longer in use (for a lead: not
    /// subscribed) and nothing has happened to it for this many seconds, the daily retention sweep
    /// ([`crate::retention`]) erases it with everything that hangs off it. No TTL: what counts as in use
    /// changes after it is written.
    WhileInUseThenInactiveFor { seconds: i64 },
}

impl Retention {
    pub const fn needs_ttl(self) -> bool {
        matches!(self, Self::Expires { .. } | Self::ExpiresAtWriterChosenTime)
    }
}

/// How long a lead that is not subscribed is kept after the last thing that happened to it (the person
/// wrote, or a consent record was added): one year.
pub const LEAD_INACTIVE_SECS: i64 = 365 * DAY_SECS;

/// One declared attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Attribute {
    pub name: &'static str,
    pub category: Category,
    pub personal: bool,
    pub protection: Protection,
    pub purpose: &'static str,
}

/// One declared item type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ItemType {
    pub name: &'static str,
    pub description: &'static str,
    /// The shape of the partition and sort keys, for readers (ids and blind indexes only, never plaintext).
    pub key_shape: &'static str,
    pub retention: Retention,
    pub attributes: &'static [Attribute],
}

impl ItemType {
    pub fn attribute(&self, name: &str) -> Option<&'static Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

/// Attributes every item has or may have, managed by the store layer itself.
pub const STRUCTURAL: &[Attribute] = &[
    Attribute {
        name: "pk",
        category: Category::Identifier,
        personal: false,
        protection: Protection::BlindIndex,
        purpose: "partition key: opaque ids and blind indexes only",
    },
    Attribute {
        name: "sk",
        category: Category::Identifier,
        personal: false,
        protection: Protection::BlindIndex,
        purpose: "sort key: opaque ids, times and blind indexes only",
    },
    Attribute {
        name: "t",
        category: Category::Technical,
        personal: false,
        protection: Protection::Plain,
        purpose: "the item type, naming its entry in this inventory",
    },
    Attribute {
        name: "v",
        category: Category::Technical,
        personal: false,
        protection: Protection::Plain,
        purpose: "version number for optimistic concurrency",
    },
    Attribute {
        name: "ttl",
        category: Category::Technical,
        personal: false,
        protection: Protection::Plain,
        purpose: "expiry time (epoch seconds); the item is treated as absent from then on",
    },
    Attribute {
        name: "gsi1pk",
        category: Category::Identifier,
        personal: false,
        protection: Protection::BlindIndex,
        purpose: "secondary index partition: opaque ids and blind indexes only",
    },
    Attribute {
        name: "gsi1sk",
        category: Category::Identifier,
        personal: false,
        protection: Protection::BlindIndex,
        purpose: "secondary index sort key: opaque ids, times and blind indexes only",
    },
];

/// Wrapped per-owner data keys (envelope encryption).
pub const DATA_KEY: ItemType = ItemType {
    name: "data_key",
    description: "An owner's data key, wrapped by KMS (or the local master key). Kept in the key store, \
                  which backups do not copy, so destroying it makes the owner's ciphertexts, including \
                  those in restored backups, unreadable.",
    key_shape: "pk = DATAKEY#<owner>, sk = V#<version, 10 digits>",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        Attribute {
            name: "wrapped",
            category: Category::Security,
            personal: false,
            protection: Protection::Plain,
            purpose: "the data key encrypted by the key-encryption key; useless without KMS",
        },
        Attribute {
            name: "created",
            category: Category::Technical,
            personal: false,
            protection: Protection::Plain,
            purpose: "when the key version was created (ms), for rotation",
        },
    ],
};

const fn technical(name: &'static str, purpose: &'static str) -> Attribute {
    Attribute {
        name,
        category: Category::Technical,
        personal: false,
        protection: Protection::Plain,
        purpose,
    }
}

/// A resumable background job (fan-out of notices, broadcast, erasure). Holds ids and progress only.
pub const JOB: ItemType = ItemType {
    name: "job",
    description: "A queued background job and its progress; deleted when the job finishes, except an erasure \
                  (of a disconnected page's leads, of one lead, of an account, or asked for through Meta's \
                  data-deletion callback), kept one year as its receipt: what it erased, as counts, when \
                  (TTL), and from which pages (page ids, so the status page can name them). No personal \
                  data.",
    key_shape: "pk = JOB#<job id>, sk = JOB; index JOBS#<kind> / <due time>#<job id> while queued",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        technical("kind", "which handler runs the job"),
        technical(
            "params",
            "the job's non-personal parameters (ids, versions)",
        ),
        technical("state", "queued, failed, or done (a kept receipt)"),
        technical("due_at", "when the job may next run (ms)"),
        technical("attempts", "failed steps in a row, for backoff"),
        technical(
            "lease_owner",
            "the runner holding the job (opaque runner id)",
        ),
        technical("lease_until", "until when that runner holds it (ms)"),
        technical(
            "cursor",
            "where the job resumes (store keys: ids and blind indexes only); in a receipt, the counts \
             of what the job erased, when it finished and the ids of the pages it erased from (not \
             personal: a page is a business's public presence; an account erasure names none)",
        ),
        technical("created", "when the job was queued (ms)"),
    ],
};

const fn attr(
    name: &'static str,
    category: Category,
    personal: bool,
    protection: Protection,
    purpose: &'static str,
) -> Attribute {
    Attribute {
        name,
        category,
        personal,
        protection,
        purpose,
    }
}

/// Seconds in a day, for retentions.
pub const DAY_SECS: i64 = 24 * 3600;

/// An account holder's account.
pub const ACCOUNT: ItemType = ItemType {
    name: "account",
    description: "An account holder: how to reach and authenticate them, and which policies they accepted.",
    key_shape: "pk = ACCOUNT#<account id>, sk = PROFILE; index ACCOUNTS / <account id> (notice fan-out)",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        attr(
            "email",
            Category::Contact,
            true,
            Protection::Encrypted,
            "sign-in and account notices",
        ),
        technical(
            "email_claim",
            "the random id of the email claim (key store) that gives the account its address",
        ),
        attr(
            "name",
            Category::Identifier,
            true,
            Protection::Encrypted,
            "how notices address the account holder (optional)",
        ),
        attr(
            "password_hash",
            Category::Credential,
            true,
            Protection::OneWayHash,
            "verify the password (argon2id)",
        ),
        technical("created", "when the account was registered (ms)"),
        technical(
            "email_verified_at",
            "when the current address was proven by a link sent to it (ms)",
        ),
        technical(
            "privacy_version",
            "the privacy policy version the holder accepted",
        ),
        technical("privacy_accepted_at", "when they accepted it (ms)"),
        technical("terms_version", "the terms version the holder accepted"),
        technical("terms_accepted_at", "when they accepted it (ms)"),
    ],
};

/// Claims an email address (by blind index) for one account, keeping addresses unique.
pub const EMAIL_CLAIM: ItemType = ItemType {
    name: "email_claim",
    description: "Maps an email's blind index to its account, so sign-in finds it and no two accounts share it. \
                  Kept in the key store, which backups do not copy: deleting it leaves no restored copy \
                  that finds the account from its address.",
    key_shape: "pk = EMAIL#<email blind index>, sk = EMAIL",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        technical("account_id", "the account holding this address (opaque id)"),
        technical(
            "claim_id",
            "random; the account names it back while it holds the address",
        ),
        technical(
            "created",
            "when the claim was written (a claim never named back is replaced after a grace time)",
        ),
    ],
};

/// Maps the blind index of a person's id on a page to their random lead id.
pub const LEAD_LOOKUP: ItemType = ItemType {
    name: "lead_lookup",
    description: "Maps the blind index of a page and a person's page-scoped id (or checkbox-plugin user_ref) \
                  to the person's lead id, which is random. Kept in the key store, which backups do not \
                  copy: once the lead is erased, a restored main store holds no value computable from the \
                  person's id.",
    key_shape: "pk = LEADLOOKUP#<blind index of page and subject>, sk = LOOKUP",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        technical(
            "lead_id",
            "the lead of this person on this page (random id)",
        ),
        Attribute {
            name: "secret",
            category: Category::Security,
            personal: false,
            protection: Protection::Plain,
            purpose: "the lead's random secret, as in its lead_keys entry: read with the lookup, so a \
                      writer seals the lead's values under the lead's key with no other read; erased with \
                      the lead (absent from lookups written before lead keys were used)",
        },
        technical("created", "when the lookup was written (ms)"),
    ],
};

/// A lead's own entry in the key store: what its erasure must remove there.
pub const LEAD_KEYS: ItemType = ItemType {
    name: "lead_keys",
    description: "One per lead, in its page's partition of the key store: the blind indexes of the lead's \
                  lookups, so erasing the lead (or its page) finds and removes them without opening \
                  anything. Removed last, after the lead's items in the main store.",
    key_shape: "pk = LEADKEYS#<page id>, sk = LEAD#<lead id>",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        attr(
            "lookup",
            Category::Identifier,
            true,
            Protection::BlindIndex,
            "find and remove the lead's lookup when the lead is erased",
        ),
        Attribute {
            name: "secret",
            category: Category::Security,
            personal: false,
            protection: Protection::Plain,
            purpose: "the lead's random secret: the salt from which its values' key is derived with the \
                      account's data key (useless without that key, which KMS wraps); erased with the lead, \
                      so its values in a restored main store no longer open",
        },
        technical("created", "when the lead was created (ms)"),
    ],
};

/// Where an item is stored: the main store, which backups copy, or the key store, which they do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    Main,
    Keys,
}

/// The item types kept in the key store ([`crate::app::App::key_store`]): the data keys, and every item
/// whose key is the blind index of an email address or of a person's id on a page, with the lead entries
/// that name those (so a restored main store holds nothing computable from an address or a person's id).
/// Every other type lives in the main store.
pub const KEY_STORE_TYPES: &[&ItemType] = &[
    &DATA_KEY,
    &EMAIL_CLAIM,
    &ATTEMPT_SLOT,
    &MAIL_THROTTLE,
    &MAIL_SUPPRESSION,
    &LEAD_LOOKUP,
    &LEAD_KEYS,
];

/// Which store holds items of the type named `type_name`.
pub fn store_of(type_name: &str) -> StoreKind {
    if KEY_STORE_TYPES.iter().any(|t| t.name == type_name) {
        StoreKind::Keys
    } else {
        StoreKind::Main
    }
}

/// A signed-in session.
pub const SESSION: ItemType = ItemType {
    name: "session",
    description: "A signed-in session, keyed by the SHA-256 of its token; the token itself is never stored.",
    key_shape: "pk = SESSION#<sha256 of token>, sk = SESSION; index ACCOUNT#<id>#SESSIONS / <created>",
    retention: Retention::ExpiresAtWriterChosenTime,
    attributes: &[
        technical("account_id", "whose session it is (opaque id)"),
        technical("created", "when it was created (ms)"),
        technical(
            "remember",
            "whether the holder chose to stay signed in (30 days instead of 12 h)",
        ),
    ],
};

/// One entry of an account's security log.
pub const SECURITY_EVENT: ItemType = ItemType {
    name: "security_event",
    description: "Sign-ins, failed sign-ins and credential changes, for the holder's security log and lockout.",
    key_shape: "pk = ACCOUNT#<account id>, sk = SEC#<time>#<id>",
    retention: Retention::Expires {
        seconds: 30 * DAY_SECS,
    },
    attributes: &[
        technical(
            "event",
            "what happened (sign_in, sign_in_failed, password_changed, …)",
        ),
        technical("at", "when (ms)"),
        attr(
            "network",
            Category::Security,
            true,
            Protection::Encrypted,
            "the network address, shown to the holder",
        ),
        attr(
            "network_index",
            Category::Security,
            true,
            Protection::BlindIndex,
            "recognise a network seen before (new-network notice)",
        ),
    ],
};

/// One attempt counted against a limit ([`crate::limits`]): sign-ins per email address and per network.
pub const ATTEMPT_SLOT: ItemType = ItemType {
    name: "attempt_slot",
    description: "One sign-in attempt counted against the limit of its email address or of its network, so no \
                  more attempts than the limit allows are checked however many arrive at once. A successful \
                  sign-in gives its slots back; a failed one keeps them until they expire, 15 minutes after \
                  the attempt. The keys hold blind indexes only.",
    key_shape: "pk = SIGNIN#EMAIL#<email blind index> or SIGNIN#NET#<network prefix blind index>, \
                sk = SLOT#<n, 2 digits>",
    retention: Retention::ExpiresAtWriterChosenTime,
    attributes: &[
        technical("claimed", "when the attempt claimed the slot (ms)"),
        technical(
            "failed",
            "set once the attempt's password check failed (an attempt still running has none)",
        ),
    ],
};

/// A connected Facebook Page.
pub const PAGE: ItemType = ItemType {
    name: "page",
    description: "A Facebook Page connected to one account, with its (encrypted) access token.",
    key_shape: "pk = PAGE#<page id>, sk = PAGE; index ACCOUNT#<account id>#PAGES / <page id>",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        technical(
            "account_id",
            "the account that connected the page (opaque id)",
        ),
        attr(
            "access_token",
            Category::Credential,
            false,
            Protection::Encrypted,
            "send Messenger messages as the page",
        ),
        technical(
            "name",
            "the page's public name, shown on its unsubscribe page",
        ),
        technical("connected_at", "when it was connected (ms)"),
        technical(
            "consent_mode",
            "confirmed (ask first) or implicit (first message is the opt-in)",
        ),
        technical(
            "sending",
            "active, or stopped (token/permission error or policy block)",
        ),
        technical("stopped_reason", "why sending stopped, if it did"),
        technical(
            "broadcast_rate",
            "the page's broadcast pace in messages per second (absent: the default)",
        ),
        technical(
            "language",
            "the language of the page's Messenger texts, a language code (absent: English)",
        ),
    ],
};

/// A published version of the privacy policy or the terms.
pub const POLICY: ItemType = ItemType {
    name: "policy",
    description: "A published privacy-policy or terms version. Not personal.",
    key_shape: "pk = POLICY#<kind>, sk = VERSION#<version>; index POLICIES#<kind> / <published time>#<version>",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        technical("kind", "privacy or terms"),
        technical("version", "the version label"),
        technical("url", "where the full text is published"),
        technical("summary", "what changed, as sent in the notice"),
        technical("published_at", "when it took effect (ms)"),
    ],
};

/// A breach notice the operator sends to accounts.
pub const BREACH_NOTICE: ItemType = ItemType {
    name: "breach_notice",
    description: "A personal-data breach notice written by the operator (no personal data), and its scope.",
    key_shape: "pk = BREACH#<notice id>, sk = NOTICE",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        technical("summary", "the notice text the operator wrote"),
        technical("scope", "all, or the list of account ids notified"),
        technical("created", "when it was issued (ms)"),
    ],
};

/// An email notice waiting to be sent or sent (the transactional outbox).
pub const OUTBOX: ItemType = ItemType {
    name: "outbox",
    description: "An account notice written in the same transaction as the change it reports; notify sends it. \
                  The recipient is looked up from the account at send time; only a mail to another address \
                  (a former, a new or a registration's address) carries it, sealed.",
    key_shape: "pk = OUTBOX#<outbox id>, sk = OUTBOX; index OUTBOX#DUE / <next attempt>#<outbox id> while unsent, \
                then ACCOUNT#<account id>#NOTICES / <created>#<outbox id> (an account's notice)",
    retention: Retention::Expires {
        seconds: 30 * DAY_SECS,
    },
    attributes: &[
        technical(
            "notice",
            "which notice (account_created, password_changed, …)",
        ),
        technical(
            "account_id",
            "the account to notify (opaque id); absent for a registration's confirmation mail",
        ),
        attr(
            "recipient",
            Category::Contact,
            true,
            Protection::Encrypted,
            "an address that is not the account's current one: the former one (email changed), the new one \
             (confirm a change), or a registration's (confirm it)",
        ),
        attr(
            "secret",
            Category::Credential,
            true,
            Protection::Encrypted,
            "the single-use token of a confirmation or reset link; removed once the mail is sent",
        ),
        technical(
            "params",
            "the notice's non-personal parameters (times, versions, page ids)",
        ),
        technical(
            "state",
            "pending, sent or failed; held: an erasure's confirmation, until the erasure is done",
        ),
        technical("attempts", "send attempts so far"),
        technical("next_attempt_at", "when to try next (ms)"),
        technical("lease_until", "a sender is working on it until then (ms)"),
        technical("created", "when it was written (ms)"),
        technical("sent_at", "when the mail provider accepted it (ms)"),
        technical("provider_id", "the mail provider's message id"),
        technical("failure", "why sending failed permanently"),
    ],
};

/// A lead: one person on one page (SPEC §3 "minimal collection").
pub const LEAD: ItemType = ItemType {
    name: "lead",
    description: "A person who messaged a page: their page-scoped id (sealed), status, when they last wrote, \
                  and their marketing-messages token (sealed). No name, picture or message text.",
    key_shape: "pk = PAGE#<page id>, sk = LEAD#<lead id (random; found through a LEAD_LOOKUP in the key store)>; index LEADS#<page>#<status> / <created, ms, 13 digits>#<lead id>",
    // Subscribed: kept while the page is connected (the person chose to hear from it and can leave at
    // any time). Unsubscribed, unreachable or never confirmed: nothing is sent to it any more, and its
    // consent chain is the proof of what it agreed to and when it left, needed while a complaint about
    // the messages it got could still come; a year after its last activity it is erased, chain included.
    retention: Retention::WhileInUseThenInactiveFor {
        seconds: LEAD_INACTIVE_SECS,
    },
    attributes: &[
        attr(
            "subject",
            Category::Identifier,
            true,
            Protection::Encrypted,
            "the page-scoped user id (or plugin user_ref) to send to",
        ),
        technical("subject_kind", "psid or user_ref"),
        technical(
            "status",
            "pending, subscribed, unsubscribed, unreachable or merged",
        ),
        technical("created", "when the person first wrote (ms)"),
        technical(
            "last_message_at",
            "when the person last wrote (ms): Meta's 24-hour window",
        ),
        attr(
            "marketing_token",
            Category::Identifier,
            true,
            Protection::Encrypted,
            "send marketing messages the person opted in to",
        ),
        technical(
            "marketing_status",
            "active or stopped (any opt-out stops it)",
        ),
        technical("consent_seq", "number of consent records (chain length)"),
        technical(
            "consent_head",
            "hash of the latest consent record (chain head)",
        ),
        attr(
            "unsubscribe_hash",
            Category::Security,
            false,
            Protection::OneWayHash,
            "find the lead's unsubscribe link to erase it",
        ),
        technical(
            "erasure_requested_at",
            "when the erasure of the lead was asked for (ms)",
        ),
        technical(
            "erasure_job",
            "the queued erasure of the lead (its job id): the lead is frozen until it is erased",
        ),
        technical(
            "merged_into",
            "the lead (opaque id) a checkbox-plugin lead was merged into once the person wrote from \
             Messenger",
        ),
        technical(
            "linked_from",
            "the checkbox-plugin lead (opaque id) merged into this one, so erasure and export find it",
        ),
        technical(
            "marketing_last_sent_at",
            "when a broadcast last used the marketing-messages token (ms): Meta allows one per 48 hours",
        ),
        attr(
            "optin_ref",
            Category::Identifier,
            true,
            Protection::BlindIndex,
            "the opt-in `ref` the person subscribed through, to broadcast to the leads of one campaign",
        ),
    ],
};

/// One record of a lead's consent history: append-only and hash-chained.
pub const CONSENT_RECORD: ItemType = ItemType {
    name: "consent_record",
    description: "Proof of what a person agreed to or refused, when, through what, under which policy; \
                  each record holds the hash of the one before it.",
    key_shape: "pk = CONSENT#<page id>#<lead id>, sk = SEQ#<sequence, 10 digits>",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        technical("seq", "position in the lead's chain"),
        technical(
            "action",
            "opt_in, opt_out, confirmation_requested, declined, marketing_*, merged",
        ),
        technical(
            "source",
            "first_message, get_started, checkbox_plugin, checkbox_plugin_linked, referral, keyword, \
             unsubscribe_link, …",
        ),
        technical(
            "meta_ref",
            "Meta's message id or the opt-in ref, to match Meta's records",
        ),
        technical("meta_timestamp", "Meta's event time (ms)"),
        technical("received_at", "when qchat received it (ms)"),
        technical("policy_version", "the privacy policy version in force"),
        technical("consent_mode", "confirmed or implicit"),
        technical("wording", "the exact wording shown or answered"),
        technical("prev_hash", "hash of the previous record"),
        technical("hash", "hash of this record"),
    ],
};

/// A one-click unsubscribe link's token (stored only as its hash).
pub const UNSUBSCRIBE_LINK: ItemType = ItemType {
    name: "unsubscribe_link",
    description: "Maps the hash of an unsubscribe link's random token to its page and lead.",
    key_shape: "pk = UNSUB#<the token's time stamp (12 hex digits)>.sha256:<SHA-256 of the token>, sk = UNSUB \
                (tokens made before stamps: UNSUB#sha256:<SHA-256>)",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        technical("page_id", "the page of the lead"),
        technical("lead_id", "the lead (opaque id)"),
        technical("created", "when the link was made (ms)"),
    ],
};

/// Webhook de-duplication keys.
pub const WEBHOOK_EVENT: ItemType = ItemType {
    name: "webhook_event",
    description: "Marks a Meta event (by message id, or a hash of its contents) as handled, so retries change nothing.",
    key_shape: "pk = EVENT#<sha256 of page id and mid>, sk = EVENT",
    retention: Retention::Expires {
        seconds: 2 * DAY_SECS,
    },
    attributes: &[technical("received_at", "when it was handled (ms)")],
};

/// A Messenger reply waiting to be sent or sent (the Messenger outbox).
pub const REPLY: ItemType = ItemType {
    name: "reply",
    description: "A Messenger reply written with the event that caused it; notify sends it, so a Graph API \
                  failure never fails the webhook.",
    key_shape: "pk = REPLY#<queued time, ms, 13 digits>-<event hash, 26 hex digits>, sk = REPLY; index REPLY#DUE / <next attempt>#<reply id> while unsent, then REPLY#LEAD#<page>#<lead> / REPLY#<reply id> if it names a lead",
    retention: Retention::Expires {
        seconds: 7 * DAY_SECS,
    },
    attributes: &[
        technical("page_id", "the page that replies"),
        technical(
            "account_id",
            "the page's account (its key seals the values below)",
        ),
        technical("lead_id", "the lead replied to (opaque id)"),
        attr(
            "recipient",
            Category::Identifier,
            true,
            Protection::Encrypted,
            "the person's page-scoped id or user_ref",
        ),
        technical("recipient_kind", "psid or user_ref"),
        attr(
            "text",
            Category::Content,
            true,
            Protection::Encrypted,
            "the reply text (may summarise the person's data)",
        ),
        technical(
            "quick_replies",
            "the reply's buttons (qchat's own payloads)",
        ),
        technical(
            "state",
            "pending, sent or failed; held: an erasure's confirmation, until the erasure is done",
        ),
        technical("attempts", "send attempts so far"),
        technical("next_attempt_at", "when to try next (ms)"),
        technical("lease_until", "a sender is working on it until then (ms)"),
        technical("created", "when it was written (ms)"),
        technical("sent_at", "when Meta accepted it (ms)"),
        technical("message_id", "Meta's id of the sent message"),
        technical("failure", "why sending failed permanently"),
    ],
};

/// A pending proof that someone controls an email address: a new account waiting for its address to be
/// confirmed, or an account's change of address. The link's token is stored only as its SHA-256.
pub const EMAIL_VERIFICATION: ItemType = ItemType {
    name: "email_verification",
    description: "An address waiting to be confirmed through the single-use link mailed to it: a registration \
                  (no account exists until the link is used) or an account's new address. Deleted when the \
                  link is used; expires unused after 24 hours.",
    key_shape: "pk = VERIFY#<SHA-256 of the link token>, sk = VERIFY; index ACCOUNT#<account id>#LINKS / <pk> \
                (a change of address)",
    retention: Retention::Expires { seconds: DAY_SECS },
    attributes: &[
        technical("purpose", "registration or email_change"),
        technical(
            "account_id",
            "the account whose address changes (email_change only; opaque id)",
        ),
        attr(
            "email",
            Category::Contact,
            true,
            Protection::Encrypted,
            "the address to confirm (sealed under the account's key, or the registrations key)",
        ),
        attr(
            "name",
            Category::Identifier,
            true,
            Protection::Encrypted,
            "the name given at registration (optional)",
        ),
        attr(
            "password_hash",
            Category::Credential,
            true,
            Protection::OneWayHash,
            "the password chosen at registration (argon2id)",
        ),
        technical(
            "privacy_version",
            "the privacy policy version accepted at registration",
        ),
        technical(
            "terms_version",
            "the terms version in force at registration",
        ),
        technical("created", "when the link was made (ms)"),
    ],
};

/// A password reset link waiting to be used. The token is stored only as its SHA-256.
pub const PASSWORD_RESET: ItemType = ItemType {
    name: "password_reset",
    description: "A single-use password reset link mailed to an account's address; deleted when used, \
                  expires unused after one hour.",
    key_shape: "pk = RESET#<SHA-256 of the link token>, sk = RESET; index ACCOUNT#<account id>#LINKS / <pk>",
    retention: Retention::Expires { seconds: 3600 },
    attributes: &[
        technical(
            "account_id",
            "the account whose password the link resets (opaque id)",
        ),
        technical("created", "when the link was made (ms)"),
    ],
};

/// How often an address may be mailed a registration or reset link: one link per address per quarter hour,
/// whether or not it has an account (the answer is the same either way).
pub const MAIL_THROTTLE: ItemType = ItemType {
    name: "mail_throttle",
    description: "Marks that a registration or password-reset mail went to an address in the last 15 minutes, \
                  so a typed address cannot be flooded. Keyed by the address's blind index; no value held.",
    key_shape: "pk = MAILED#<purpose>#<email blind index>, sk = MAILED",
    retention: Retention::Expires { seconds: 15 * 60 },
    attributes: &[technical("created", "when the mail was queued (ms)")],
};

/// An address qchat no longer mails ([`crate::mail::suppression`]): SES reported a hard bounce or a complaint.
pub const MAIL_SUPPRESSION: ItemType = ItemType {
    name: "mail_suppression",
    description: "Marks an email address that hard-bounced or whose owner reported a qchat mail as spam, so no \
                  further mail goes to it (repeated bounces and complaints make SES pause sending for everyone). \
                  Keyed by the address's blind index; the address itself is not stored. Kept one year after \
                  the last report.",
    key_shape: "pk = NOMAIL#<email blind index>, sk = NOMAIL",
    retention: Retention::Expires {
        seconds: 365 * DAY_SECS,
    },
    attributes: &[
        technical("reason", "hard_bounce or complaint"),
        technical("at", "when SES reported it (ms)"),
    ],
};

/// The operator's actions, for accountability: what was done, by which account, when. No personal data.
pub const AUDIT_ENTRY: ItemType = ItemType {
    name: "audit_entry",
    description: "One action of the operator (policy published, breach notice queued), readable by the \
                  operator; kept one year.",
    key_shape: "pk = AUDIT, sk = <time, 13 digits>#<entry id>",
    retention: Retention::Expires {
        seconds: 365 * DAY_SECS,
    },
    attributes: &[
        technical("action", "policy_published or breach_notice_queued"),
        technical("actor", "the operator's account id"),
        technical(
            "subject",
            "what the action was about (policy kind and version, breach notice id and scope size)",
        ),
        technical("at", "when (ms)"),
    ],
};

/// A broadcast: one message an account holder sends to a page's leads, its state and counts.
pub const BROADCAST: ItemType = ItemType {
    name: "broadcast",
    description: "A broadcast composed for one page: its message (sealed), when and to whom, its state and \
                  counts per outcome. Kept while its page is connected.",
    key_shape: "pk = BCASTS#<page id>, sk = B#<broadcast id (creation time, 13 digits, then a random id)>",
    retention: Retention::WhileOwnerExists,
    attributes: &[
        technical(
            "account_id",
            "the account that composed it (opaque id; its key seals the content)",
        ),
        attr(
            "content",
            Category::Content,
            true,
            Protection::Encrypted,
            "the text, the URL buttons and the audience's opt-in refs, as composed",
        ),
        technical(
            "subscribed_since",
            "audience filter: only leads subscribed since then (ms)",
        ),
        technical(
            "state",
            "scheduled, sending, paused, done, cancelled or failed",
        ),
        technical("send_at", "when sending starts (ms)"),
        technical("created", "when it was composed (ms)"),
        technical("started_at", "when the first message went out (ms)"),
        technical("ended_at", "when it finished, was cancelled or failed (ms)"),
        technical(
            "counts",
            "how many leads were sent to, skipped (by reason), failed (by class) or are unknown",
        ),
        technical(
            "progress",
            "where the sender resumes in the page's subscribed leads (store keys: opaque ids)",
        ),
        technical(
            "steps",
            "how many batches were counted (so a batch re-run after a crash is not counted twice)",
        ),
        technical("job_id", "the job that sends it"),
        technical(
            "pause_reason",
            "why it is paused or failed (e.g. page_stopped)",
        ),
        technical("paused_at", "when it was paused (ms)"),
    ],
};

/// One (broadcast, lead) delivery: claimed before the Send API call, its outcome written after.
pub const DELIVERY: ItemType = ItemType {
    name: "delivery",
    description: "That a broadcast's message was (or was about to be) sent to one lead, and what came of it: \
                  the claim written before the Send API call makes each broadcast reach a lead at most once. \
                  Expires 30 days after it is written.",
    key_shape: "pk = BDELIV#<page id>#<broadcast id>, sk = LEAD#<lead id>",
    retention: Retention::Expires {
        seconds: 30 * DAY_SECS,
    },
    attributes: &[
        technical(
            "state",
            "claimed (being sent), sent, skipped, failed, or unknown (claimed, outcome lost)",
        ),
        technical(
            "outcome",
            "the skip reason or failure class (unreachable, rate_limited, …)",
        ),
        technical(
            "via",
            "update (24-hour window) or token (marketing message)",
        ),
        technical("message_id", "Meta's id of the sent message"),
        technical("step", "the sender's batch that counted it"),
        technical("claimed_at", "when the claim was written (ms)"),
        technical("at", "when the outcome was recorded (ms)"),
    ],
};

/// The send pace of a page, shared by all its broadcasts and runners.
pub const PACE: ItemType = ItemType {
    name: "pace",
    description: "When a page may send its next broadcast message: reserved in batches by conditional writes, \
                  so two broadcasts or runners of one page never exceed its rate together. Not personal.",
    key_shape: "pk = PACE#<page id>, sk = PACE",
    retention: Retention::WhileOwnerExists,
    attributes: &[technical(
        "next_free_at",
        "the first time not yet reserved (ms)",
    )],
};

/// A person's app-scoped id from Meta's data-deletion callback, until the job it belongs to has mapped
/// it to the pages' leads.
pub const META_DELETION_SUBJECT: ItemType = ItemType {
    name: "meta_deletion_subject",
    description: "Who asked Meta for their data to be deleted (the app-scoped id from Meta's data-deletion \
                  callback), kept only until the deletion job has looked the person up on every connected page; \
                  deleted then, and expiring after 7 days in any case.",
    key_shape: "pk = METADEL#<job id>, sk = SUBJECT",
    retention: Retention::Expires {
        seconds: 7 * 24 * 3600,
    },
    attributes: &[attr(
        "user_id",
        Category::Identifier,
        true,
        Protection::Encrypted,
        "find the person's leads on the connected pages, to erase them",
    )],
};

/// Every item type the product stores. Add a type here before writing it.
pub const ITEM_TYPES: &[&ItemType] = &[
    &DATA_KEY,
    &JOB,
    &ACCOUNT,
    &EMAIL_CLAIM,
    &SESSION,
    &SECURITY_EVENT,
    &ATTEMPT_SLOT,
    &PAGE,
    &POLICY,
    &BREACH_NOTICE,
    &OUTBOX,
    &LEAD,
    &CONSENT_RECORD,
    &UNSUBSCRIBE_LINK,
    &WEBHOOK_EVENT,
    &REPLY,
    &EMAIL_VERIFICATION,
    &PASSWORD_RESET,
    &MAIL_THROTTLE,
    &MAIL_SUPPRESSION,
    &AUDIT_ENTRY,
    &BROADCAST,
    &DELIVERY,
    &PACE,
    &META_DELETION_SUBJECT,
    &LEAD_LOOKUP,
    &LEAD_KEYS,
];

/// Item types that exist only so the conformance suites can exercise the store; never in production data.
#[cfg(feature = "test-support")]
pub const TEST_ITEM_TYPES: &[&ItemType] = &[
    &crate::test_support::PROBE,
    &crate::test_support::PROBE_EXPIRING,
];

/// Looks up a declared item type by its stored name.
pub fn item_type(name: &str) -> Option<&'static ItemType> {
    let found = ITEM_TYPES.iter().copied().find(|t| t.name == name);
    #[cfg(feature = "test-support")]
    let found = found.or_else(|| TEST_ITEM_TYPES.iter().copied().find(|t| t.name == name));
    found
}

/// Whether `attribute` may be stored on an item of type `type_name`.
pub fn is_declared(type_name: &str, attribute: &str) -> bool {
    STRUCTURAL.iter().any(|a| a.name == attribute)
        || item_type(type_name).is_some_and(|t| t.attribute(attribute).is_some())
}

/// The inventory as a plain-text table: item type, attribute, category, personal, protection, purpose,
/// retention. Printed by the inventory test and used in the README.
pub fn as_table() -> String {
    let mut out = String::from(
        "item type | attribute | category | personal | protection | retention | purpose\n",
    );
    for t in ITEM_TYPES {
        let retention = match t.retention {
            Retention::WhileOwnerExists => "while owner exists".to_owned(),
            Retention::Expires { seconds } if seconds % 3600 == 0 => {
                format!("{} h (TTL)", seconds / 3600)
            }
            Retention::Expires { seconds } => format!("{} min (TTL)", (seconds + 59) / 60),
            Retention::ExpiresAtWriterChosenTime => "TTL set per item".to_owned(),
            Retention::WhileInUseThenInactiveFor { seconds } => format!(
                "while in use, then {} days after its last activity (retention sweep)",
                seconds / DAY_SECS
            ),
        };
        for a in t.attributes {
            out.push_str(&format!(
                "{} | {} | {:?} | {} | {:?} | {} | {}\n",
                t.name,
                a.name,
                a.category,
                if a.personal { "yes" } else { "no" },
                a.protection,
                retention,
                a.purpose
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_personal_attribute_is_protected_and_every_expiring_type_is_consistent() {
        for t in ITEM_TYPES {
            for a in t.attributes {
                assert!(
                    !(a.personal && a.protection == Protection::Plain),
                    "{}.{} is personal but stored plain",
                    t.name,
                    a.name
                );
                assert!(
                    !a.purpose.is_empty(),
                    "{}.{} has no purpose",
                    t.name,
                    a.name
                );
                assert!(
                    !STRUCTURAL.iter().any(|s| s.name == a.name),
                    "{}.{} shadows a structural attribute",
                    t.name,
                    a.name
                );
            }
        }
    }

    #[test]
    fn item_type_names_are_unique() {
        let mut names: Vec<_> = ITEM_TYPES.iter().map(|t| t.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }
}
