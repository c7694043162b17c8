//! The privacy policy and terms in force: the latest published version of each, or the shipped version
//! "1" on a fresh install. Shared so that every function records the version in force the same way (the
//! account function for registration and acceptance, consent records in webhook and optin).
//!
//! The shipped texts of version 1 live in `shared/data/policies/` (see its README): the privacy
//! notice's prose sections and the full terms, filled in with the configured controller
//! ([`shipped::fill`]). Every route a shipped text names must exist in the route table
//! ([`unrouted_mentions`], held by tests), so a text cannot promise a route the code does not serve.

use crate::app::App;
use crate::clock::Timestamp;
use crate::config::Config;
use crate::routes::{self, ROUTES};
use crate::store::{Index, KeyRange, Order, Query, StoreError};

/// The shipped version of both documents.
pub const SHIPPED_VERSION: &str = "1";
/// When the shipped texts of version 1 were last changed (2026-12-03, UTC midnight): the date a fresh
/// install shows as "in force since", rather than the epoch.
pub const SHIPPED_PUBLISHED_AT_MILLIS: i64 = 1_796_256_000_000;

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

/// The summary of the shipped version of `kind`.
fn shipped_summary(kind: PolicyKind) -> &'static str {
    shipped_url_and_summary("", kind).1
}

fn shipped_url_and_summary(base: &str, kind: PolicyKind) -> (String, &'static str) {
    match kind {
        PolicyKind::Privacy => (
            format!("{base}/privacy"),
            "Who is responsible for the data qchat holds about account holders and the people who \
             message their pages, what it stores, why and for how long, who processes it, your rights and \
             how to use them, and how a personal data breach is handled.",
        ),
        PolicyKind::Terms => (
            format!("{base}/privacy#terms"),
            "What qchat does; your duties as the controller of your leads' data and qchat's role as your \
             processor; use within the law and Meta's Messenger rules; suspension; liability; how changes \
             are announced; ending the service.",
        ),
    }
}

fn shipped(app: &App, kind: PolicyKind) -> CurrentPolicy {
    let (url, summary) = shipped_url_and_summary(&app.config.public_url, kind);
    CurrentPolicy {
        kind,
        version: SHIPPED_VERSION.to_owned(),
        url,
        summary: summary.to_owned(),
        published_at: Timestamp::from_millis(SHIPPED_PUBLISHED_AT_MILLIS).to_rfc3339(),
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

/// The shipped texts of version 1, as written in `shared/data/policies/` (Markdown subset, placeholders
/// unfilled), and how they are filled in.
pub mod shipped {
    use crate::config::Config;

    /// A prose section of the shipped privacy notice or terms.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Section {
        /// The HTML anchor (`/privacy#terms`).
        pub id: &'static str,
        pub source: &'static str,
    }

    pub const CONTROLLER: Section = Section {
        id: "controller",
        source: include_str!("../data/policies/privacy-v1-controller.md"),
    };
    pub const RIGHTS: Section = Section {
        id: "rights",
        source: include_str!("../data/policies/privacy-v1-rights.md"),
    };
    pub const BREACH: Section = Section {
        id: "breach",
        source: include_str!("../data/policies/privacy-v1-breach.md"),
    };
    pub const TERMS: Section = Section {
        id: "terms",
        source: include_str!("../data/policies/terms-v1.md"),
    };

    /// The German versions of the sections the privacy notice shows a German reader.
    pub const CONTROLLER_DE: Section = Section {
        id: "controller",
        source: include_str!("../data/policies/privacy-v1-controller.de.md"),
    };
    pub const RIGHTS_DE: Section = Section {
        id: "rights",
        source: include_str!("../data/policies/privacy-v1-rights.de.md"),
    };

    /// The sections the privacy notice shows a French, Spanish, Italian, Dutch, Polish or Portuguese
    /// reader (the German ones' structure).
    pub const CONTROLLER_FR: Section = Section {
        id: "controller",
        source: include_str!("../data/policies/privacy-v1-controller.fr.md"),
    };
    pub const RIGHTS_FR: Section = Section {
        id: "rights",
        source: include_str!("../data/policies/privacy-v1-rights.fr.md"),
    };
    pub const CONTROLLER_ES: Section = Section {
        id: "controller",
        source: include_str!("../data/policies/privacy-v1-controller.es.md"),
    };
    pub const RIGHTS_ES: Section = Section {
        id: "rights",
        source: include_str!("../data/policies/privacy-v1-rights.es.md"),
    };
    pub const CONTROLLER_IT: Section = Section {
        id: "controller",
        source: include_str!("../data/policies/privacy-v1-controller.it.md"),
    };
    pub const RIGHTS_IT: Section = Section {
        id: "rights",
        source: include_str!("../data/policies/privacy-v1-rights.it.md"),
    };
    pub const CONTROLLER_NL: Section = Section {
        id: "controller",
        source: include_str!("../data/policies/privacy-v1-controller.nl.md"),
    };
    pub const RIGHTS_NL: Section = Section {
        id: "rights",
        source: include_str!("../data/policies/privacy-v1-rights.nl.md"),
    };
    pub const CONTROLLER_PL: Section = Section {
        id: "controller",
        source: include_str!("../data/policies/privacy-v1-controller.pl.md"),
    };
    pub const RIGHTS_PL: Section = Section {
        id: "rights",
        source: include_str!("../data/policies/privacy-v1-rights.pl.md"),
    };
    pub const CONTROLLER_PT: Section = Section {
        id: "controller",
        source: include_str!("../data/policies/privacy-v1-controller.pt.md"),
    };
    pub const RIGHTS_PT: Section = Section {
        id: "rights",
        source: include_str!("../data/policies/privacy-v1-rights.pt.md"),
    };

    /// The privacy notice's prose sections of version 1, in reading order.
    pub const PRIVACY_SECTIONS: &[Section] = &[CONTROLLER, RIGHTS, BREACH];
    /// Every shipped text.
    pub const ALL: &[Section] = &[
        CONTROLLER,
        RIGHTS,
        BREACH,
        TERMS,
        CONTROLLER_DE,
        RIGHTS_DE,
        CONTROLLER_FR,
        RIGHTS_FR,
        CONTROLLER_ES,
        RIGHTS_ES,
        CONTROLLER_IT,
        RIGHTS_IT,
        CONTROLLER_NL,
        RIGHTS_NL,
        CONTROLLER_PL,
        RIGHTS_PL,
        CONTROLLER_PT,
        RIGHTS_PT,
    ];

    /// The controller and rights sections in `lang` (each language has its own).
    pub fn notice_sections(lang: crate::i18n::Lang) -> (Section, Section) {
        use crate::i18n::Lang;
        match lang {
            Lang::En => (CONTROLLER, RIGHTS),
            Lang::De => (CONTROLLER_DE, RIGHTS_DE),
            Lang::Fr => (CONTROLLER_FR, RIGHTS_FR),
            Lang::Es => (CONTROLLER_ES, RIGHTS_ES),
            Lang::It => (CONTROLLER_IT, RIGHTS_IT),
            Lang::Nl => (CONTROLLER_NL, RIGHTS_NL),
            Lang::Pl => (CONTROLLER_PL, RIGHTS_PL),
            Lang::Pt => (CONTROLLER_PT, RIGHTS_PT),
        }
    }

    /// The controller's name, email and postal address (if set), as one line.
    pub fn contact(config: &Config) -> String {
        let c = &config.controller;
        let mut line = format!("{}, {}", c.name, c.email);
        if let Some(address) = &c.postal_address {
            line.push_str(", ");
            line.push_str(address);
        }
        line
    }

    /// `source` with its placeholders filled in from the configuration. Other braces (route parameters
    /// such as `{page_id}`) are left as they are.
    pub fn fill(source: &str, config: &Config) -> String {
        source
            .replace("{controller_contact}", &contact(config))
            .replace("{controller_name}", &config.controller.name)
            .replace("{controller_email}", &config.controller.email)
            .replace("{public_url}", &config.public_url)
    }

    /// The section's title: its first line without the `## `.
    pub fn title(source: &str) -> &str {
        source
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("## "))
            .unwrap_or_default()
    }
}

/// The roots of the paths a text can name: those of the route table, and those the specification plans
/// (so a text cannot name a planned route before it exists either).
const PATH_ROOTS: &[&str] = &[
    "/api/",
    "/u/",
    "/privacy",
    "/webhook",
    "/facebook/",
    "/deletion/",
];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Every route `text` names that the route table does not serve, as `"METHOD /path"` (or just the path
/// when the text names no method): a path under one of the known roots must match a route, and with a
/// method written just before it (`POST /api/x`) a route of that method. A fragment or query after the
/// path is ignored (`/privacy#terms`); `{name}` segments match the table's parameters.
pub fn unrouted_mentions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some((at, _)) = PATH_ROOTS
        .iter()
        .filter_map(|root| text[from..].find(root).map(|i| (from + i, root)))
        .min_by_key(|(i, _)| *i)
    {
        let path: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "/{}_-.".contains(*c))
            .collect();
        from = at + path.len().max(1);
        let path = path.trim_end_matches(['.', '-']);
        let before = text[..at].trim_end_matches('`').trim_end();
        let method = METHODS
            .iter()
            .find(|m| {
                before.ends_with(*m)
                    && before[..before.len() - m.len()]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !c.is_ascii_alphanumeric())
            })
            .copied();
        let served = match method {
            Some(m) => matches!(routes::find(ROUTES, m, path), routes::Matched::Route(..)),
            None => !routes::allowed_methods(ROUTES, path).is_empty(),
        };
        if !served {
            out.push(match method {
                Some(m) => format!("{m} {path}"),
                None => path.to_owned(),
            });
        }
    }
    out
}

/// Every shipped text, filled in with `config`, as `(section id, text)`; with the shipped summaries.
pub fn shipped_texts(config: &Config) -> Vec<(&'static str, String)> {
    let mut texts: Vec<_> = shipped::ALL
        .iter()
        .map(|s| (s.id, shipped::fill(s.source, config)))
        .collect();
    for kind in [PolicyKind::Privacy, PolicyKind::Terms] {
        texts.push((kind.name(), shipped_summary(kind).to_owned()));
    }
    texts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_lookup(|name| match name {
            "QCHAT_CONTROLLER_NAME" => Some("Ana Bakery Ltd".to_owned()),
            "QCHAT_CONTROLLER_EMAIL" => Some("privacy@ana.example".to_owned()),
            "QCHAT_CONTROLLER_ADDRESS" => Some("1 Flour Street, Brussels".to_owned()),
            "QCHAT_PUBLIC_URL" => Some("https://chat.ana.example".to_owned()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_route_a_shipped_text_names_is_in_the_route_table() {
        for (id, text) in shipped_texts(&config()) {
            assert_eq!(unrouted_mentions(&text), Vec::<String>::new(), "in {id}");
        }
        for s in shipped::ALL {
            assert_eq!(
                unrouted_mentions(s.source),
                Vec::<String>::new(),
                "in {}",
                s.id
            );
        }
    }

    #[test]
    fn a_text_naming_a_missing_route_or_a_route_with_another_method_is_caught() {
        for (text, missing) in [
            (
                "archive it with `GET /api/account/archive`.",
                "GET /api/account/archive",
            ),
            (
                "status at /deletion/{code}/receipt.",
                "/deletion/{code}/receipt",
            ),
            (
                "delete it: DELETE /api/account/profile",
                "DELETE /api/account/profile",
            ),
            (
                "Meta calls /facebook/data-removal.",
                "/facebook/data-removal",
            ),
            ("POST /privacy", "POST /privacy"),
            ("(`PUT /u/{token}`)", "PUT /u/{token}"),
            ("/privacy-policy", "/privacy-policy"),
        ] {
            assert_eq!(
                unrouted_mentions(text),
                vec![missing.to_owned()],
                "{text:?}"
            );
        }
        for text in [
            "`GET /api/account`, and https://x.example/privacy#terms.",
            "open /u/{token} (POST /u/{token} unsubscribes); DELETE /api/pages/{page_id}.",
            "AGET /api/account is just a path",
        ] {
            assert_eq!(unrouted_mentions(text), Vec::<String>::new(), "{text:?}");
        }
    }

    #[test]
    fn the_shipped_texts_are_filled_in_with_the_controller_and_keep_route_parameters() {
        let config = config();
        for s in shipped::ALL {
            assert!(
                !shipped::title(s.source).is_empty(),
                "{} has a ## title",
                s.id
            );
            let text = shipped::fill(s.source, &config);
            for placeholder in [
                "{controller_name}",
                "{controller_email}",
                "{controller_contact}",
                "{public_url}",
            ] {
                assert!(
                    !text.contains(placeholder),
                    "{placeholder} left in {}",
                    s.id
                );
            }
        }
        let terms = shipped::fill(shipped::TERMS.source, &config);
        assert!(terms.contains("Ana Bakery Ltd, privacy@ana.example, 1 Flour Street, Brussels"));
        assert!(terms.contains("DELETE /api/pages/{page_id}"));
        let breach = shipped::fill(shipped::BREACH.source, &config);
        assert!(breach.contains("72 hours") && breach.contains("POST /api/breach-notices"));
    }
}
