//! The processing activities (GDPR Art. 30): why each item type of the data inventory is kept, about whom,
//! and on which legal basis, with the words the privacy notice uses for them in English and German.
//!
//! Invariants (held by the tests below): every item type of [`crate::inventory::ITEM_TYPES`] belongs to
//! exactly one activity, and every item type with a personal attribute belongs to an activity about a
//! person and has a name in every notice language; so a new item type, or a personal attribute added to
//! one, cannot be stored without the notice saying what it is, why it is kept and for how long.

use crate::i18n::Lang;
use crate::inventory::{self, Category, ItemType, Retention};

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
}

impl NoticeTexts {
    pub fn purpose(&self, activity: &str) -> &'static str {
        lookup(self.purposes, activity)
    }

    pub fn item_name(&self, item_type: &str) -> &'static str {
        lookup(self.item_names, item_type)
    }

    pub fn basis(&self, basis: Basis) -> &'static str {
        match (self.lang, basis) {
            (Lang::De, Basis::ConsentForThePage) => {
                "Ihre Einwilligung gegenüber dem Unternehmen, das die Seite betreibt (Art. 6 Abs. 1 lit. a \
                 DSGVO), und dessen Pflicht, sie nachzuweisen (Art. 7 Abs. 1); qchat verarbeitet in seinem \
                 Auftrag (Art. 28)"
            }
            (Lang::De, Basis::Contract) => {
                "der Vertrag über Ihr Konto (Art. 6 Abs. 1 lit. b DSGVO)"
            }
            (Lang::De, Basis::LegalObligation) => {
                "der Vertrag über Ihr Konto und gesetzliche Pflichten wie die Benachrichtigung bei einer \
                 Datenpanne (Art. 6 Abs. 1 lit. b und c, Art. 34 DSGVO)"
            }
            (Lang::De, Basis::LegitimateInterest) => {
                "das berechtigte Interesse an einem sicheren Dienst (Art. 6 Abs. 1 lit. f DSGVO)"
            }
            (Lang::De, Basis::NotPersonal) => "keine personenbezogenen Daten",
            (_, Basis::ConsentForThePage) => {
                "your consent, given to the business that runs the page (GDPR Art. 6(1)(a)), and its duty \
                 to prove it (Art. 7(1)); qchat processes on that business's behalf (Art. 28)"
            }
            (_, Basis::Contract) => "the contract for your account (GDPR Art. 6(1)(b))",
            (_, Basis::LegalObligation) => {
                "the contract for your account and legal duties such as telling you of a personal data \
                 breach (GDPR Art. 6(1)(b) and (c), Art. 34)"
            }
            (_, Basis::LegitimateInterest) => {
                "the legitimate interest in a secure service (GDPR Art. 6(1)(f))"
            }
            (_, Basis::NotPersonal) => "no personal data",
        }
    }

    pub fn category(&self, category: Category) -> &'static str {
        match (self.lang, category) {
            (Lang::De, Category::Identifier) => "Kennungen",
            (Lang::De, Category::Contact) => "Kontaktdaten",
            (Lang::De, Category::Content) => "Nachrichteninhalte",
            (Lang::De, Category::Credential) => "Zugangsdaten",
            (Lang::De, Category::Security) => "Sicherheitsprotokolle",
            (Lang::De, Category::Technical) => "technische Daten",
            (_, Category::Identifier) => "identifiers",
            (_, Category::Contact) => "contact details",
            (_, Category::Content) => "message content",
            (_, Category::Credential) => "credentials",
            (_, Category::Security) => "security records",
            (_, Category::Technical) => "technical data",
        }
    }

    /// How long an item type is kept, in the reader's words.
    pub fn retention(&self, retention: Retention) -> String {
        let de = self.lang == Lang::De;
        match retention {
            Retention::WhileOwnerExists if de => {
                "solange das Konto, die Seite oder die Person, zu der es gehört, besteht; mit ihr gelöscht"
                    .to_owned()
            }
            Retention::WhileOwnerExists => {
                "while the account, page or person it belongs to exists; erased with it".to_owned()
            }
            Retention::Expires { seconds } => {
                // (one, many) in English, then in German.
                let (n, units) = if seconds % 86_400 == 0 {
                    (seconds / 86_400, [("day", "days"), ("Tag", "Tage")])
                } else if seconds % 3600 == 0 {
                    (seconds / 3600, [("hour", "hours"), ("Stunde", "Stunden")])
                } else {
                    ((seconds + 59) / 60, [("minute", "minutes"), ("Minute", "Minuten")])
                };
                let (one, many) = units[usize::from(de)];
                let unit = if n == 1 { one } else { many };
                if de {
                    format!("{n} {unit}, dann gelöscht")
                } else {
                    format!("{n} {unit}, then deleted")
                }
            }
            Retention::ExpiresAtWriterChosenTime if de => {
                "bis es abläuft (siehe Verzeichnis), dann gelöscht".to_owned()
            }
            Retention::ExpiresAtWriterChosenTime => {
                "until it expires (see the record), then deleted".to_owned()
            }
            Retention::WhileInUseThenInactiveFor { seconds } if de => format!(
                "solange Sie abonniert sind und die Seite verbunden ist; sonst {} Tage nach Ihrer \
                 letzten Nachricht oder Einwilligungsänderung, dann gelöscht",
                seconds / 86_400
            ),
            Retention::WhileInUseThenInactiveFor { seconds } => format!(
                "while you are subscribed and the page is connected; otherwise {} days after you last \
                 wrote or changed your consent, then erased",
                seconds / 86_400
            ),
        }
    }
}

fn lookup(table: &'static [(&'static str, &'static str)], key: &str) -> &'static str {
    table
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, v)| *v)
}

impl Lang {
    /// The notice's words in this language: German for German, English for every other language
    /// (the notice is written in those two).
    pub fn notice(self) -> &'static NoticeTexts {
        match self {
            Self::De => &NOTICE_DE,
            _ => &NOTICE_EN,
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
            "a keyed hash of your id on the page, to find your lead",
        ),
        (
            "lead_keys",
            "the same keyed hash, to remove that lookup with your lead",
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
        ("job", "background jobs and erasure receipts (counts only)"),
        ("pace", "each page's sending pace"),
    ],
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
            "ein mit Schlüssel gebildeter Hashwert Ihrer ID auf der Seite, um Ihren Lead zu finden",
        ),
        (
            "lead_keys",
            "derselbe Hashwert, um diesen Verweis mit Ihrem Lead zu löschen",
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
        ("job", "Hintergrundaufträge und Löschbelege (nur Zahlen)"),
        ("pace", "das Sendetempo jeder Seite"),
    ],
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

    #[test]
    fn every_activity_and_item_type_has_words_in_every_notice_language() {
        for texts in [&NOTICE_EN, &NOTICE_DE] {
            for a in ACTIVITIES {
                assert!(!texts.purpose(a.id).is_empty(), "{:?} {}", texts.lang, a.id);
                for t in a.item_types {
                    assert!(
                        !texts.item_name(t.name).is_empty(),
                        "{:?} {}",
                        texts.lang,
                        t.name
                    );
                }
            }
        }
        assert_eq!(Lang::Fr.notice().lang, Lang::En);
        assert_eq!(Lang::De.notice().lang, Lang::De);
    }

    #[test]
    fn every_retention_reads_as_a_sentence_in_both_languages() {
        for t in inventory::ITEM_TYPES {
            for texts in [&NOTICE_EN, &NOTICE_DE] {
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
    }
}
