//! The processing activities (GDPR Art. 30): why each item type of the data inventory is kept, about whom,
//! and on which legal basis, with the words the privacy notice uses for them in each language of
//! [`Lang`] (English and German here, the others in this module's files named by language code).
//!
//! Invariants (held by the tests below): every item type of [`crate::inventory::ITEM_TYPES`] belongs to
//! exactly one activity, and every item type with a personal attribute belongs to an activity about a
//! person and has a name in every notice language; so a new item type, or a personal attribute added to
//! one, cannot be stored without the notice saying what it is, why it is kept and for how long.

use crate::i18n::Lang;
use crate::inventory::{self, Category, ItemType, Retention};

mod es;
mod fr;
mod it;
mod nl;
mod pl;
mod pt;

/// Whose data an activity processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// People who write to a connected page in Messenger (leads).
    Lead,
    /// Account holders (the businesses' staff who sign in).
    AccountHolder,
    /// Nobody: the service's own bookkeeping, with no personal data.
    None,
}

/// The legal basis of an activity (GDPR Art. 6(1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// (a) consent, given to the business that runs the page; qchat processes on its behalf (Art. 28).
    ConsentForThePage,
    /// (b) the contract the account holder registered for.
    Contract,
    /// (c) a legal obligation of the controller.
    LegalObligation,
    /// (f) the controller's legitimate interest in a secure service.
    LegitimateInterest,
    /// Not personal data: no basis needed.
    NotPersonal,
}

/// One processing activity.
#[derive(Debug, Clone, Copy)]
pub struct Activity {
    /// Stable id (HTML anchors, JSON).
    pub id: &'static str,
    pub subject: Subject,
    pub basis: Basis,
    pub item_types: &'static [&'static ItemType],
}

use inventory::{
    ACCOUNT, ATTEMPT_SLOT, AUDIT_ENTRY, BREACH_NOTICE, BROADCAST, CONSENT_RECORD, DATA_KEY,
    DELIVERY, EMAIL_CLAIM, EMAIL_VERIFICATION, JOB, LEAD, LEAD_KEYS, LEAD_LOOKUP, MAIL_SUPPRESSION,
    MAIL_THROTTLE, META_DELETION_SUBJECT, OUTBOX, PACE, PAGE, PASSWORD_RESET, POLICY, REPLY,
    SECURITY_EVENT, SESSION, UNSUBSCRIBE_LINK, WEBHOOK_EVENT,
};

/// Every activity, in the order the notice and the record show them.
pub const ACTIVITIES: &[Activity] = &[
    Activity {
        id: "consent",
        subject: Subject::Lead,
        basis: Basis::ConsentForThePage,
        item_types: &[
            &LEAD,
            &CONSENT_RECORD,
            &UNSUBSCRIBE_LINK,
            &LEAD_LOOKUP,
            &LEAD_KEYS,
        ],
    },
    Activity {
        id: "messages",
        subject: Subject::Lead,
        basis: Basis::ConsentForThePage,
        item_types: &[&REPLY, &DELIVERY, &WEBHOOK_EVENT],
    },
    Activity {
        id: "deletion_requests",
        subject: Subject::Lead,
        basis: Basis::LegalObligation,
        item_types: &[&META_DELETION_SUBJECT],
    },
    Activity {
        id: "account",
        subject: Subject::AccountHolder,
        basis: Basis::Contract,
        item_types: &[
            &ACCOUNT,
            &EMAIL_CLAIM,
            &EMAIL_VERIFICATION,
            &PASSWORD_RESET,
            &PAGE,
            &BROADCAST,
        ],
    },
    Activity {
        id: "security",
        subject: Subject::AccountHolder,
        basis: Basis::LegitimateInterest,
        item_types: &[
            &SESSION,
            &SECURITY_EVENT,
            &ATTEMPT_SLOT,
            &MAIL_THROTTLE,
            &AUDIT_ENTRY,
        ],
    },
    Activity {
        id: "notices",
        subject: Subject::AccountHolder,
        basis: Basis::LegalObligation,
        item_types: &[&OUTBOX, &MAIL_SUPPRESSION, &BREACH_NOTICE, &POLICY],
    },
    Activity {
        id: "operation",
        subject: Subject::None,
        basis: Basis::NotPersonal,
        item_types: &[&DATA_KEY, &JOB, &PACE],
    },
];

/// Whether an item type holds any personal attribute.
pub fn is_personal(t: &ItemType) -> bool {
    t.attributes.iter().any(|a| a.personal)
}

/// The categories of personal data an activity holds, in declaration order, without repeats.
pub fn personal_categories(activity: &Activity) -> Vec<Category> {
    let mut out = Vec::new();
    for t in activity.item_types {
        for a in t.attributes.iter().filter(|a| a.personal) {
            if !out.contains(&a.category) {
                out.push(a.category);
            }
        }
    }
    out
}

/// The words of the notice and the record in one language.
#[derive(Debug)]
pub struct NoticeTexts {
    pub lang: Lang,
    pub title: &'static str,
    /// `{version}`, `{date}`.
    pub version_line: &'static str,
    pub placeholder: &'static str,
    pub controller_label: &'static str,
    pub email_label: &'static str,
    pub address_label: &'static str,
    pub collected_title: &'static str,
    pub collected_intro: &'static str,
    pub leads_title: &'static str,
    pub leads_intro: &'static str,
    pub holders_title: &'static str,
    pub kinds_label: &'static str,
    pub basis_label: &'static str,
    pub kept_label: &'static str,
    pub recipients_title: &'static str,
    pub recipients_intro: &'static str,
    /// Processor name, what it does.
    pub processors: [(&'static str, &'static str); 2],
    pub cookies_title: &'static str,
    /// `{hours}`, `{days}`.
    pub cookie_text: &'static str,
    pub authority_label: &'static str,
    pub record_link: &'static str,
    pub record_title: &'static str,
    pub record_intro: &'static str,
    pub record_columns: [&'static str; 7],
    pub record_activities_title: &'static str,
    pub record_types_title: &'static str,
    pub back_to_notice: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    /// By activity id: the purpose, as a heading.
    pub purposes: &'static [(&'static str, &'static str)],
    /// By item type name: what it is, in the reader's words.
    pub item_names: &'static [(&'static str, &'static str)],
    /// The record's column headings for an activity's purpose and whose data it is.
    pub purpose_label: &'static str,
    pub subject_label: &'static str,
    /// The legal bases, in the order of [`Basis`]: consent for the page, contract, legal obligation,
    /// legitimate interest, not personal. Cited as the GDPR's official text in this language cites it.
    pub bases: [&'static str; 5],
    /// The categories of data, in the order of [`Category`].
    pub categories: [&'static str; 6],
    /// How long an item type is kept, by [`Retention`]: while its owner exists; until a time its writer
    /// chose; while in use, then `{days}` days; a fixed time, `{n}` and `{unit}` (one of the units below).
    pub kept_while_owner_exists: &'static str,
    pub kept_until_expiry: &'static str,
    pub kept_while_in_use: &'static str,
    pub kept_for: &'static str,
    /// Units of time as (one, few, many): "few" is the form Polish uses after 2-4 (22-24, …); the other
    /// languages repeat "many" there.
    pub days: [&'static str; 3],
    pub hours: [&'static str; 3],
    pub minutes: [&'static str; 3],
}

impl NoticeTexts {
    pub fn purpose(&self, activity: &str) -> &'static str {
        lookup(self.purposes, activity)
    }

    pub fn item_name(&self, item_type: &str) -> &'static str {
        lookup(self.item_names, item_type)
    }

    pub fn basis(&self, basis: Basis) -> &'static str {
        let i = match basis {
            Basis::ConsentForThePage => 0,
            Basis::Contract => 1,
            Basis::LegalObligation => 2,
            Basis::LegitimateInterest => 3,
            Basis::NotPersonal => 4,
        };
        self.bases[i]
    }

    pub fn category(&self, category: Category) -> &'static str {
        let i = match category {
            Category::Identifier => 0,
            Category::Contact => 1,
            Category::Content => 2,
            Category::Credential => 3,
            Category::Security => 4,
            Category::Technical => 5,
        };
        self.categories[i]
    }

    /// How long an item type is kept, in the reader's words.
    pub fn retention(&self, retention: Retention) -> String {
        match retention {
            Retention::WhileOwnerExists => self.kept_while_owner_exists.to_owned(),
            Retention::Expires { seconds } => {
                let (n, units) = if seconds % 86_400 == 0 {
                    (seconds / 86_400, self.days)
                } else if seconds % 3600 == 0 {
                    (seconds / 3600, self.hours)
                } else {
                    ((seconds + 59) / 60, self.minutes)
                };
                self.kept_for
                    .replace("{n}", &n.to_string())
                    .replace("{unit}", units[plural_form(self.lang, n)])
            }
            Retention::ExpiresAtWriterChosenTime => self.kept_until_expiry.to_owned(),
            Retention::WhileInUseThenInactiveFor { seconds } => self
                .kept_while_in_use
                .replace("{days}", &(seconds / 86_400).to_string()),
        }
    }
}

/// Which of a unit's (one, few, many) forms goes with `n`: Polish uses "few" after 2-4, 22-24, … (but not
/// 12-14); every other notice language has only one and many.
fn plural_form(lang: Lang, n: i64) -> usize {
    if n == 1 {
        0
    } else if lang == Lang::Pl && (2..=4).contains(&(n % 10)) && !(12..=14).contains(&(n % 100)) {
        1
    } else {
        2
    }
}

fn lookup(table: &'static [(&'static str, &'static str)], key: &str) -> &'static str {
    table
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, v)| *v)
}

impl Lang {
    /// The notice's words in this language (every language has its own: no fallback).
    pub fn notice(self) -> &'static NoticeTexts {
        match self {
            Self::En => &NOTICE_EN,
            Self::De => &NOTICE_DE,
            Self::Fr => &fr::NOTICE_FR,
            Self::Es => &es::NOTICE_ES,
            Self::It => &it::NOTICE_IT,
            Self::Nl => &nl::NOTICE_NL,
            Self::Pl => &pl::NOTICE_PL,
            Self::Pt => &pt::NOTICE_PT,
        }
    }
}

pub static NOTICE_EN: NoticeTexts = NoticeTexts {
    lang: Lang::En,
    title: "Privacy notice",
    version_line: "Version {version}, in force since {date}.",
    placeholder: "This is a local installation. The controller named below is a placeholder: set \
                  QCHAT_CONTROLLER_NAME and QCHAT_CONTROLLER_EMAIL to name the real one.",
    controller_label: "Controller",
    email_label: "Email",
    address_label: "Postal address",
    collected_title: "What is collected, why, and for how long",
    collected_intro: "Every personal value is stored encrypted (AES-256-GCM under a key of its own \
                      account) or only as a one-way or keyed hash. Names, profile pictures and the \
                      text of your messages are not kept.",
    leads_title: "If you write to a page in Messenger",
    leads_intro: "The business that runs the page decides why your data is used; qchat keeps it for that \
                  business:",
    holders_title: "If you have a qchat account",
    kinds_label: "Kinds of data",
    basis_label: "Legal basis",
    kept_label: "Kept",
    recipients_title: "Who receives it",
    recipients_intro: "No data is sold or used for advertising or profiling. Only these processors \
                       receive it, to run the service:",
    processors: [
        (
            "Meta Platforms (Facebook Messenger)",
            "delivers Messenger messages between a page and the people who write to it",
        ),
        (
            "Amazon Web Services",
            "hosts the service and its encrypted database (in the AWS region the operator runs it \
             in), manages the encryption keys and sends email",
        ),
    ],
    cookies_title: "Cookies",
    cookie_text: "Only one cookie, qchat_session, keeps an account holder signed in: until the browser \
                  closes (server side {hours} hours), or {days} days with \"keep me signed in\". No \
                  tracking or advertising cookies.",
    authority_label: "Supervisory authority competent for the controller",
    record_link: "Every stored value, its protection and its retention: the record of processing",
    record_title: "Record of processing",
    record_intro: "The operator's record of processing activities (GDPR Art. 30), generated from the data \
                   inventory the code enforces: every stored value, why it is kept, how it is protected \
                   and for how long.",
    record_columns: [
        "record",
        "value",
        "category",
        "personal",
        "protection",
        "purpose",
        "kept",
    ],
    record_activities_title: "Processing activities",
    record_types_title: "Every stored value",
    back_to_notice: "Back to the privacy notice",
    yes: "yes",
    no: "no",
    purposes: &[
        (
            "consent",
            "Record your subscription choices and keep proof of them",
        ),
        (
            "messages",
            "Send you the replies you asked for and the messages you subscribed to",
        ),
        ("deletion_requests", "Erase your data when you ask Meta to"),
        (
            "account",
            "Provide your account: sign-in, your pages and your broadcasts",
        ),
        ("security", "Keep accounts secure"),
        (
            "notices",
            "Email you about your account, policy changes and personal data breaches",
        ),
        (
            "operation",
            "Run the service (encryption keys, background jobs, pacing)",
        ),
    ],
    item_names: &[
        (
            "lead",
            "your Messenger id for the page (encrypted), your status and when you last wrote",
        ),
        (
            "consent_record",
            "what you agreed to or refused, when and through what",
        ),
        ("unsubscribe_link", "the hash of your unsubscribe link"),
        (
            "lead_lookup",
            "a keyed hash of your id on the page, to find your lead, with the random key of your own that your data's encryption needs",
        ),
        (
            "lead_keys",
            "the same keyed hash and a random key of your own, which your data's encryption needs and which is destroyed with your lead",
        ),
        (
            "meta_deletion_subject",
            "your app-scoped id (encrypted), until your leads are found",
        ),
        (
            "reply",
            "qchat's replies to you (encrypted) until they are sent",
        ),
        ("delivery", "which broadcast messages reached you"),
        (
            "webhook_event",
            "a mark that Meta's event was handled (no content)",
        ),
        (
            "account",
            "your email address, name (encrypted) and password hash",
        ),
        (
            "email_claim",
            "a keyed hash of your email address, to find your account",
        ),
        (
            "email_verification",
            "an address waiting to be confirmed (encrypted)",
        ),
        ("password_reset", "a password reset link (hash only)"),
        (
            "page",
            "your connected pages and their access tokens (encrypted)",
        ),
        ("broadcast", "your broadcasts and their text (encrypted)"),
        (
            "session",
            "your signed-in sessions (a hash of the token only)",
        ),
        (
            "security_event",
            "your security log: sign-ins with the network they came from, and credential changes",
        ),
        ("attempt_slot", "counted sign-in attempts, for the lockout"),
        (
            "mail_throttle",
            "that a mail went to an address in the last 15 minutes",
        ),
        ("audit_entry", "the operator's actions"),
        ("outbox", "the notices emailed to you"),
        (
            "mail_suppression",
            "an address that bounced or reported spam",
        ),
        ("breach_notice", "breach notices (no personal data)"),
        ("policy", "published policy versions (no personal data)"),
        ("data_key", "encryption keys, wrapped by KMS"),
        (
            "job",
            "background jobs and erasure receipts (counts and page ids only)",
        ),
        ("pace", "each page's sending pace"),
    ],
    purpose_label: "Purpose",
    subject_label: "Whose data",
    bases: [
        "your consent, given to the business that runs the page (GDPR Art. 6(1)(a)), and its duty \
         to prove it (Art. 7(1)); qchat processes on that business's behalf (Art. 28)",
        "the contract for your account (GDPR Art. 6(1)(b))",
        "the contract for your account and legal duties such as telling you of a personal data \
         breach (GDPR Art. 6(1)(b) and (c), Art. 34)",
        "the legitimate interest in a secure service (GDPR Art. 6(1)(f))",
        "no personal data",
    ],
    categories: [
        "identifiers",
        "contact details",
        "message content",
        "credentials",
        "security records",
        "technical data",
    ],
    kept_while_owner_exists: "while the account, page or person it belongs to exists; erased with it",
    kept_until_expiry: "until it expires (see the record), then deleted",
    kept_while_in_use: "while you are subscribed and the page is connected; otherwise {days} days after \
                        you last wrote or changed your consent, then erased",
    kept_for: "{n} {unit}, then deleted",
    days: ["day", "days", "days"],
    hours: ["hour", "hours", "hours"],
    minutes: ["minute", "minutes", "minutes"],
};

pub static NOTICE_DE: NoticeTexts = NoticeTexts {
    lang: Lang::De,
    title: "Datenschutzhinweise",
    version_line: "Version {version}, gültig seit {date}.",
    placeholder: "Dies ist eine lokale Installation. Der unten genannte Verantwortliche ist ein \
                  Platzhalter: Setzen Sie QCHAT_CONTROLLER_NAME und QCHAT_CONTROLLER_EMAIL, um den \
                  tatsächlichen zu nennen.",
    controller_label: "Verantwortlicher",
    email_label: "E-Mail",
    address_label: "Postanschrift",
    collected_title: "Was erhoben wird, wozu und wie lange",
    collected_intro: "Jeder personenbezogene Wert wird verschlüsselt gespeichert (AES-256-GCM mit einem \
                      Schlüssel des jeweiligen Kontos) oder nur als Hashwert. Namen, \
                      Profilbilder und der Text Ihrer Nachrichten werden nicht gespeichert.",
    leads_title: "Wenn Sie einer Seite im Messenger schreiben",
    leads_intro: "Das Unternehmen, das die Seite betreibt, entscheidet, wozu Ihre Daten verwendet werden; \
                  qchat speichert sie für dieses Unternehmen:",
    holders_title: "Wenn Sie ein qchat-Konto haben",
    kinds_label: "Datenarten",
    basis_label: "Rechtsgrundlage",
    kept_label: "Speicherdauer",
    recipients_title: "Wer die Daten erhält",
    recipients_intro: "Keine Daten werden verkauft oder für Werbung oder Profilbildung verwendet. Nur \
                       diese Auftragsverarbeiter erhalten sie, um den Dienst zu betreiben:",
    processors: [
        (
            "Meta Platforms (Facebook Messenger)",
            "stellt Messenger-Nachrichten zwischen einer Seite und den Menschen zu, die ihr schreiben",
        ),
        (
            "Amazon Web Services",
            "betreibt den Dienst und seine verschlüsselte Datenbank (in der AWS-Region, die der \
             Betreiber wählt), verwaltet die Schlüssel und versendet E-Mails",
        ),
    ],
    cookies_title: "Cookies",
    cookie_text: "Nur ein Cookie, qchat_session, hält Kontoinhaber angemeldet: bis der Browser \
                  geschlossen wird (serverseitig {hours} Stunden) oder {days} Tage mit „angemeldet \
                  bleiben“. Keine Tracking- oder Werbe-Cookies.",
    authority_label: "Für den Verantwortlichen zuständige Aufsichtsbehörde",
    record_link: "Jeder gespeicherte Wert, sein Schutz und seine Speicherdauer: das \
                  Verarbeitungsverzeichnis",
    record_title: "Verzeichnis von Verarbeitungstätigkeiten",
    record_intro: "Das Verzeichnis von Verarbeitungstätigkeiten des Betreibers (Art. 30 DSGVO), erzeugt \
                   aus dem Dateninventar, das der Code durchsetzt: jeder gespeicherte Wert, wozu er \
                   gespeichert wird, wie er geschützt ist und wie lange. Die Beschreibungen der einzelnen \
                   Werte stammen aus dem Code und sind englisch.",
    record_columns: [
        "Eintrag",
        "Wert",
        "Kategorie",
        "personenbezogen",
        "Schutz",
        "Zweck",
        "Speicherdauer",
    ],
    record_activities_title: "Verarbeitungstätigkeiten",
    record_types_title: "Jeder gespeicherte Wert",
    back_to_notice: "Zurück zu den Datenschutzhinweisen",
    yes: "ja",
    no: "nein",
    purposes: &[
        (
            "consent",
            "Ihre Abonnemententscheidungen festhalten und nachweisen",
        ),
        (
            "messages",
            "Ihnen die angeforderten Antworten und die abonnierten Nachrichten senden",
        ),
        (
            "deletion_requests",
            "Ihre Daten löschen, wenn Sie Meta darum bitten",
        ),
        (
            "account",
            "Ihr Konto bereitstellen: Anmeldung, Ihre Seiten und Ihre Rundsendungen",
        ),
        ("security", "Konten sicher halten"),
        (
            "notices",
            "Sie per E-Mail über Ihr Konto, Änderungen der Richtlinien und Datenpannen informieren",
        ),
        (
            "operation",
            "Den Dienst betreiben (Schlüssel, Hintergrundaufträge, Sendetempo)",
        ),
    ],
    item_names: &[
        (
            "lead",
            "Ihre Messenger-ID für die Seite (verschlüsselt), Ihr Status und wann Sie zuletzt schrieben",
        ),
        (
            "consent_record",
            "wozu Sie eingewilligt oder was Sie abgelehnt haben, wann und wodurch",
        ),
        ("unsubscribe_link", "der Hashwert Ihres Abmeldelinks"),
        (
            "lead_lookup",
            "ein mit Schlüssel gebildeter Hashwert Ihrer ID auf der Seite, um Ihren Lead zu finden, mit Ihrem eigenen Zufallsschlüssel, den die Verschlüsselung Ihrer Daten braucht",
        ),
        (
            "lead_keys",
            "derselbe Hashwert und ein eigener Zufallsschlüssel, den die Verschlüsselung Ihrer Daten braucht und der mit Ihrem Lead vernichtet wird",
        ),
        (
            "meta_deletion_subject",
            "Ihre App-bezogene ID (verschlüsselt), bis Ihre Leads gefunden sind",
        ),
        (
            "reply",
            "Antworten von qchat an Sie (verschlüsselt), bis sie gesendet sind",
        ),
        ("delivery", "welche Rundsendungen Sie erreicht haben"),
        (
            "webhook_event",
            "eine Markierung, dass Metas Ereignis verarbeitet wurde (ohne Inhalt)",
        ),
        (
            "account",
            "Ihre E-Mail-Adresse, Ihr Name (verschlüsselt) und Ihr Passwort-Hash",
        ),
        (
            "email_claim",
            "ein mit Schlüssel gebildeter Hashwert Ihrer E-Mail-Adresse, um Ihr Konto zu finden",
        ),
        (
            "email_verification",
            "eine noch zu bestätigende Adresse (verschlüsselt)",
        ),
        (
            "password_reset",
            "ein Link zum Zurücksetzen des Passworts (nur Hashwert)",
        ),
        (
            "page",
            "Ihre verbundenen Seiten und deren Zugriffstoken (verschlüsselt)",
        ),
        (
            "broadcast",
            "Ihre Rundsendungen und ihr Text (verschlüsselt)",
        ),
        (
            "session",
            "Ihre Anmeldesitzungen (nur ein Hashwert des Tokens)",
        ),
        (
            "security_event",
            "Ihr Sicherheitsprotokoll: Anmeldungen mit dem Netz, aus dem sie kamen, und Änderungen \
             der Zugangsdaten",
        ),
        ("attempt_slot", "gezählte Anmeldeversuche, für die Sperre"),
        (
            "mail_throttle",
            "dass in den letzten 15 Minuten eine E-Mail an eine Adresse ging",
        ),
        ("audit_entry", "die Handlungen des Betreibers"),
        ("outbox", "die Ihnen gesendeten Benachrichtigungen"),
        (
            "mail_suppression",
            "eine Adresse, die unzustellbar war oder Spam gemeldet hat",
        ),
        (
            "breach_notice",
            "Meldungen von Datenpannen (ohne personenbezogene Daten)",
        ),
        (
            "policy",
            "veröffentlichte Richtlinienversionen (ohne personenbezogene Daten)",
        ),
        ("data_key", "Schlüssel, von KMS verschlüsselt"),
        (
            "job",
            "Hintergrundaufträge und Löschbelege (nur Zahlen und Seiten-IDs)",
        ),
        ("pace", "das Sendetempo jeder Seite"),
    ],
    purpose_label: "Zweck",
    subject_label: "Betroffene",
    bases: [
        "Ihre Einwilligung gegenüber dem Unternehmen, das die Seite betreibt (Art. 6 Abs. 1 lit. a \
         DSGVO), und dessen Pflicht, sie nachzuweisen (Art. 7 Abs. 1); qchat verarbeitet in seinem \
         Auftrag (Art. 28)",
        "der Vertrag über Ihr Konto (Art. 6 Abs. 1 lit. b DSGVO)",
        "der Vertrag über Ihr Konto und gesetzliche Pflichten wie die Benachrichtigung bei einer \
         Datenpanne (Art. 6 Abs. 1 lit. b und c, Art. 34 DSGVO)",
        "das berechtigte Interesse an einem sicheren Dienst (Art. 6 Abs. 1 lit. f DSGVO)",
        "keine personenbezogenen Daten",
    ],
    categories: [
        "Kennungen",
        "Kontaktdaten",
        "Nachrichteninhalte",
        "Zugangsdaten",
        "Sicherheitsprotokolle",
        "technische Daten",
    ],
    kept_while_owner_exists: "solange das Konto, die Seite oder die Person, zu der es gehört, besteht; \
                              mit ihr gelöscht",
    kept_until_expiry: "bis es abläuft (siehe Verzeichnis), dann gelöscht",
    kept_while_in_use: "solange Sie abonniert sind und die Seite verbunden ist; sonst {days} Tage nach \
                        Ihrer letzten Nachricht oder Einwilligungsänderung, dann gelöscht",
    kept_for: "{n} {unit}, dann gelöscht",
    days: ["Tag", "Tage", "Tage"],
    hours: ["Stunde", "Stunden", "Stunden"],
    minutes: ["Minute", "Minuten", "Minuten"],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_type_belongs_to_exactly_one_activity() {
        for t in inventory::ITEM_TYPES {
            let owners: Vec<_> = ACTIVITIES
                .iter()
                .filter(|a| a.item_types.iter().any(|x| x.name == t.name))
                .map(|a| a.id)
                .collect();
            assert_eq!(owners.len(), 1, "{} is in {owners:?}", t.name);
        }
        for a in ACTIVITIES {
            for t in a.item_types {
                assert!(
                    inventory::ITEM_TYPES.iter().any(|x| x.name == t.name),
                    "{} is in the inventory",
                    t.name
                );
            }
        }
    }

    #[test]
    fn personal_data_is_only_in_activities_about_a_person_with_a_legal_basis() {
        for a in ACTIVITIES {
            let personal = a.item_types.iter().any(|t| is_personal(t));
            if personal {
                assert_ne!(a.subject, Subject::None, "{}", a.id);
                assert_ne!(a.basis, Basis::NotPersonal, "{}", a.id);
            }
            if a.subject == Subject::None {
                assert!(!personal, "{} holds personal data", a.id);
            }
        }
    }

    /// Every text of a notice, but the keyed tables and the unit forms.
    fn sentences(t: &NoticeTexts) -> Vec<&'static str> {
        let mut all = vec![
            t.title,
            t.version_line,
            t.placeholder,
            t.controller_label,
            t.email_label,
            t.address_label,
            t.collected_title,
            t.collected_intro,
            t.leads_title,
            t.leads_intro,
            t.holders_title,
            t.kinds_label,
            t.basis_label,
            t.kept_label,
            t.recipients_title,
            t.recipients_intro,
            t.cookies_title,
            t.cookie_text,
            t.authority_label,
            t.record_link,
            t.record_title,
            t.record_intro,
            t.record_activities_title,
            t.record_types_title,
            t.back_to_notice,
            t.yes,
            t.no,
            t.purpose_label,
            t.subject_label,
            t.kept_while_owner_exists,
            t.kept_until_expiry,
            t.kept_while_in_use,
            t.kept_for,
        ];
        all.extend(t.record_columns);
        all.extend(t.bases);
        all.extend(t.categories);
        all.extend(t.processors.iter().flat_map(|(a, b)| [*a, *b]));
        all.extend(t.days.iter().chain(&t.hours).chain(&t.minutes));
        all
    }

    #[test]
    fn every_language_has_its_own_notice_with_every_text() {
        let keys =
            |table: &[(&str, &str)]| table.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>();
        for lang in Lang::ALL {
            let t = lang.notice();
            assert_eq!(t.lang, lang, "{lang:?} has its own notice, not a fallback");
            for s in sentences(t) {
                assert!(!s.trim().is_empty(), "{lang:?}: an empty text");
            }
            // The placeholders each text is filled with are there, and no other.
            for (s, wanted) in [
                (t.version_line, &["{version}", "{date}"][..]),
                (t.cookie_text, &["{hours}", "{days}"]),
                (t.kept_while_in_use, &["{days}"]),
                (t.kept_for, &["{n}", "{unit}"]),
            ] {
                for w in wanted {
                    assert!(s.contains(w), "{lang:?}: {w} in {s}");
                }
                assert_eq!(s.matches('{').count(), wanted.len(), "{lang:?}: {s}");
            }
            assert_eq!(keys(t.purposes), keys(NOTICE_EN.purposes), "{lang:?}");
            assert_eq!(keys(t.item_names), keys(NOTICE_EN.item_names), "{lang:?}");
            for a in ACTIVITIES {
                assert!(!t.purpose(a.id).is_empty(), "{lang:?} {}", a.id);
                for it in a.item_types {
                    assert!(!t.item_name(it.name).is_empty(), "{lang:?} {}", it.name);
                }
            }
            if lang != Lang::En {
                // Translated, not copied: every sentence of any length differs from the English one.
                for (mine, english) in sentences(t).into_iter().zip(sentences(&NOTICE_EN)) {
                    if english.len() > 40 {
                        assert_ne!(mine, english, "{lang:?} is translated");
                    }
                }
                for ((_, mine), (_, english)) in t.item_names.iter().zip(NOTICE_EN.item_names) {
                    assert_ne!(mine, english, "{lang:?} names it in its own words");
                }
            }
        }
    }

    #[test]
    fn legal_bases_cite_the_gdpr_as_its_official_text_in_each_language_does() {
        for (lang, consent, legitimate) in [
            (Lang::En, "GDPR Art. 6(1)(a)", "GDPR Art. 6(1)(f)"),
            (
                Lang::De,
                "Art. 6 Abs. 1 lit. a DSGVO",
                "Art. 6 Abs. 1 lit. f DSGVO",
            ),
            (
                Lang::Fr,
                "article 6, paragraphe 1, point a), du RGPD",
                "point f), du RGPD",
            ),
            (
                Lang::Es,
                "artículo 6, apartado 1, letra a), del RGPD",
                "letra f), del RGPD",
            ),
            (
                Lang::It,
                "articolo 6, paragrafo 1, lettera a), del RGPD",
                "lettera f), del RGPD",
            ),
            (Lang::Nl, "artikel 6, lid 1, punt a), AVG", "punt f), AVG"),
            (
                Lang::Pl,
                "art. 6 ust. 1 lit. a RODO",
                "art. 6 ust. 1 lit. f RODO",
            ),
            (
                Lang::Pt,
                "artigo 6.º, n.º 1, alínea a), do RGPD",
                "alínea f), do RGPD",
            ),
        ] {
            let t = lang.notice();
            assert!(
                t.basis(Basis::ConsentForThePage).contains(consent),
                "{lang:?}"
            );
            assert!(
                t.basis(Basis::LegitimateInterest).contains(legitimate),
                "{lang:?}"
            );
        }
    }

    #[test]
    fn every_retention_reads_as_a_sentence_in_every_language() {
        for t in inventory::ITEM_TYPES {
            for texts in Lang::ALL.map(Lang::notice) {
                let kept = texts.retention(t.retention);
                assert!(!kept.is_empty() && !kept.contains('{'), "{kept}");
            }
        }
        let hour = Retention::Expires { seconds: 3600 };
        assert_eq!(NOTICE_EN.retention(hour), "1 hour, then deleted");
        assert_eq!(
            NOTICE_DE.retention(Retention::Expires {
                seconds: 2 * 86_400
            }),
            "2 Tage, dann gelöscht"
        );
        // Polish counts in three forms.
        let pl = Lang::Pl.notice();
        for (hours, form) in [
            (1, "1 godzina"),
            (2, "2 godziny"),
            (5, "5 godzin"),
            (12, "12 godzin"),
            (22, "22 godziny"),
        ] {
            let kept = pl.retention(Retention::Expires {
                seconds: hours * 3600,
            });
            assert!(kept.starts_with(&format!("{form},")), "{kept}");
        }
    }
}
