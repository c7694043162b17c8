//! `GET /privacy`: the public privacy notice, rendered from the data inventory together with the cookies
//! used and the processors data is shared with, so the notice cannot drift from what the code stores;
//! with the controller named in the configuration, the shipped prose sections (who is responsible, your
//! rights, personal data breaches) and the terms of service in force (the full shipped text of version
//! 1, or a newer version's summary and link). HTML by default; JSON with `Accept: application/json`.

use qchat_shared::app::App;
use qchat_shared::config::Config;
use qchat_shared::http::{
    ApiError, Request, Response, StatusCode, escape_html as escape, html, json, wants_json,
};
use qchat_shared::inventory::{self, ItemType, Retention};
use qchat_shared::policies::shipped::{self, Section};

use crate::policies::{CurrentPolicy, PolicyKind, SHIPPED_VERSION, current_policy};
use crate::sessions::{REMEMBERED_DAYS, UNREMEMBERED_HOURS};

struct Cookie {
    name: &'static str,
    purpose: &'static str,
    lifetime: String,
}

struct Processor {
    name: &'static str,
    purpose: &'static str,
}

const PROCESSORS: &[Processor] = &[
    Processor {
        name: "Meta Platforms (Facebook Messenger)",
        purpose: "to deliver Messenger messages between a page and the people who write to it",
    },
    Processor {
        name: "Amazon Web Services",
        purpose: "to host the service and its encrypted database, manage encryption keys, and send email",
    },
];

fn cookies() -> Vec<Cookie> {
    vec![Cookie {
        name: qchat_shared::http::SESSION_COOKIE,
        purpose: "keeps an account holder signed in (strictly necessary; no tracking or advertising cookies are used)",
        lifetime: format!(
            "until the browser closes (server side {UNREMEMBERED_HOURS} hours), or {REMEMBERED_DAYS} days with \"remember me\""
        ),
    }]
}

fn retention_text(t: &ItemType) -> String {
    match t.retention {
        Retention::WhileOwnerExists => {
            "while the account, page or lead it belongs to exists; erased with it".to_owned()
        }
        Retention::Expires { seconds } if seconds % 86_400 == 0 => {
            format!("{} days, then deleted", seconds / 86_400)
        }
        Retention::Expires { seconds } if seconds % 3600 == 0 => {
            format!("{} hours, then deleted", seconds / 3600)
        }
        Retention::Expires { seconds } => format!("{} minutes, then deleted", (seconds + 59) / 60),
        Retention::ExpiresAtWriterChosenTime => {
            "until it expires (see its description), then deleted".to_owned()
        }
        Retention::WhileInUseThenInactiveFor { seconds } => format!(
            "while subscribed and the page is connected; once unsubscribed, unreachable or never \
             confirmed, {} days after the person last wrote or changed their consent, then erased with \
             its consent records",
            seconds / 86_400
        ),
    }
}

pub async fn notice(app: &App, req: &Request) -> Result<Response, ApiError> {
    let privacy = current_policy(app, PolicyKind::Privacy).await?;
    let terms = current_policy(app, PolicyKind::Terms).await?;
    if wants_json(req) {
        let data: Vec<_> = inventory::ITEM_TYPES
            .iter()
            .map(|t| {
                serde_json::json!({
                    "item_type": t.name,
                    "description": t.description,
                    "retention": retention_text(t),
                    "attributes": t.attributes.iter().map(|a| serde_json::json!({
                        "name": a.name, "category": a.category, "personal": a.personal,
                        "protection": a.protection, "purpose": a.purpose,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let cookies: Vec<_> = cookies()
            .iter()
            .map(|c| serde_json::json!({ "name": c.name, "purpose": c.purpose, "lifetime": c.lifetime }))
            .collect();
        let processors: Vec<_> = PROCESSORS
            .iter()
            .map(|p| serde_json::json!({ "name": p.name, "purpose": p.purpose }))
            .collect();
        let controller = &app.config.controller;
        let sections: Vec<_> = shipped::PRIVACY_SECTIONS
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id,
                    "title": shipped::title(s.source),
                    "text": shipped::fill(s.source, &app.config),
                })
            })
            .collect();
        let mut terms_json = serde_json::to_value(&terms).map_err(|_| ApiError::internal())?;
        terms_json["text"] = shipped_terms(&terms)
            .map(|s| serde_json::Value::String(shipped::fill(s.source, &app.config)))
            .unwrap_or(serde_json::Value::Null);
        return Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "controller": {
                    "name": controller.name,
                    "email": controller.email,
                    "postal_address": controller.postal_address,
                    "placeholder": controller.placeholder,
                },
                "privacy_policy": privacy,
                "terms": terms_json,
                "sections": sections,
                "data": data,
                "cookies": cookies,
                "processors": processors,
            }),
        ));
    }

    let mut rows = String::new();
    for t in inventory::ITEM_TYPES {
        for a in t.attributes {
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td></tr>\n",
                escape(t.name),
                escape(a.name),
                a.category,
                if a.personal { "yes" } else { "no" },
                a.protection,
                escape(a.purpose),
                escape(&retention_text(t)),
            ));
        }
    }
    let cookie_rows: String = cookies()
        .iter()
        .map(|c| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(c.name),
                escape(c.purpose),
                escape(&c.lifetime)
            )
        })
        .collect();
    let processor_rows: String = PROCESSORS
        .iter()
        .map(|p| format!("<li><b>{}</b>: {}</li>", escape(p.name), escape(p.purpose)))
        .collect();
    let full_text = if privacy.url == format!("{}/privacy", app.config.public_url) {
        String::new()
    } else {
        format!(
            r#" Full text: <a href="{u}">{u}</a>"#,
            u = escape(&privacy.url)
        )
    };
    let section = |s: Section| section_html(s, &app.config, None);
    let page = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Privacy notice</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
table{{border-collapse:collapse;width:100%;font-size:.9rem}}td,th{{border:1px solid #ccc;padding:.3rem;text-align:left;vertical-align:top}}
.placeholder{{border:2px solid #b00;padding:.5rem 1rem}}</style>
</head><body>
<h1>Privacy notice</h1>
{placeholder}<p>Privacy policy version {pv}, in force since {pp}. {ps}{full_text}</p>
{controller}
<h2>What we store, why, and for how long</h2>
<p>Every value marked personal is encrypted (AES-256-GCM under a key of its own account) or kept only as a keyed
hash. Names and profile pictures of people who message a page are not collected.</p>
<table><tr><th>record</th><th>value</th><th>category</th><th>personal</th><th>protection</th><th>purpose</th><th>kept</th></tr>
{rows}</table>
<h2>Cookies</h2>
<table><tr><th>name</th><th>purpose</th><th>lifetime</th></tr>{cookie_rows}</table>
<h2>Who processes data for us</h2>
<ul>{processor_rows}</ul>
{rights}
{breach}
{terms}
</body></html>"#,
        placeholder = if app.config.controller.placeholder {
            "<p class=\"placeholder\"><b>This is a local installation.</b> The controller named below is a \
             placeholder: set QCHAT_CONTROLLER_NAME and QCHAT_CONTROLLER_EMAIL to name the real one.</p>\n"
        } else {
            ""
        },
        pv = escape(&privacy.version),
        pp = escape(&privacy.published_at),
        ps = escape(&privacy.summary),
        controller = section_html(
            shipped::CONTROLLER,
            &app.config,
            Some(&contact_html(&app.config))
        ),
        rights = section(shipped::RIGHTS),
        breach = section(shipped::BREACH),
        terms = terms_html(&terms, &app.config),
    );
    Ok(html(StatusCode::OK, page))
}

/// The shipped text of the terms in force, if the version in force is the shipped one.
fn shipped_terms(terms: &CurrentPolicy) -> Option<Section> {
    (terms.version == SHIPPED_VERSION).then_some(shipped::TERMS)
}

/// The terms in force: the full shipped text of version 1, or a published version's summary and link.
fn terms_html(terms: &CurrentPolicy, config: &Config) -> String {
    let version = format!(" (version {})", terms.version);
    match shipped_terms(terms) {
        Some(s) => section_html_titled(s, config, &version, None),
        None => format!(
            "<section id=\"terms\">\n<h2>Terms of service{v}</h2>\n<p>In force since {at}. {summary}</p>\n\
             <p>Full text: <a href=\"{url}\">{url}</a></p>\n</section>",
            v = escape(&version),
            at = escape(&terms.published_at),
            summary = escape(&terms.summary),
            url = escape(&terms.url),
        ),
    }
}

/// The controller's identity and contact, from the configuration.
fn contact_html(config: &Config) -> String {
    let c = &config.controller;
    let mut out = format!(
        "<p>Controller: <b>{name}</b><br>\nEmail: <a href=\"mailto:{email}\">{email}</a>",
        name = escape(&c.name),
        email = escape(&c.email),
    );
    if let Some(address) = &c.postal_address {
        out.push_str(&format!("<br>\nPostal address: {}", escape(address)));
    }
    out.push_str("</p>\n");
    out
}

fn section_html(section: Section, config: &Config, after_title: Option<&str>) -> String {
    section_html_titled(section, config, "", after_title)
}

/// A shipped section, filled in, as `<section id>` with its `## ` title as the `<h2>` (plus `suffix`),
/// then `after_title`, then its body.
fn section_html_titled(
    section: Section,
    config: &Config,
    suffix: &str,
    after_title: Option<&str>,
) -> String {
    let text = shipped::fill(section.source, config);
    let body = text
        .split_once('\n')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    format!(
        "<section id=\"{id}\">\n<h2>{title}{suffix}</h2>\n{after}{body}</section>",
        id = section.id,
        title = escape(shipped::title(section.source)),
        suffix = escape(suffix),
        after = after_title.unwrap_or_default(),
        body = markdown_html(body),
    )
}

/// A block of the shipped texts' Markdown subset (see `shared/data/policies/README.md`).
enum Block {
    Paragraph(Vec<String>),
    List { ordered: bool, items: Vec<String> },
}

fn flush(block: &mut Option<Block>, out: &mut String) {
    match block.take() {
        Some(Block::Paragraph(lines)) => {
            out.push_str(&format!("<p>{}</p>\n", inline_html(&lines.join(" "))));
        }
        Some(Block::List { ordered, items }) => {
            let tag = if ordered { "ol" } else { "ul" };
            out.push_str(&format!("<{tag}>\n"));
            for item in items {
                out.push_str(&format!("<li>{}</li>\n", inline_html(&item)));
            }
            out.push_str(&format!("</{tag}>\n"));
        }
        None => {}
    }
}

/// A list item's text, if `line` starts one: `- text` or `12. text`.
fn list_item(line: &str) -> Option<(bool, &str)> {
    if let Some(rest) = line.strip_prefix("- ") {
        return Some((false, rest));
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    line.get(digits..)
        .and_then(|rest| rest.strip_prefix(". "))
        .filter(|_| digits > 0)
        .map(|rest| (true, rest))
}

/// Renders the Markdown subset as HTML. Every character of the text is escaped before any markup is
/// added, so a text, or a configured value filled into it, cannot add markup of its own.
fn markdown_html(source: &str) -> String {
    let mut out = String::new();
    let mut block: Option<Block> = None;
    for line in source.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            flush(&mut block, &mut out);
        } else if let Some(title) = line.strip_prefix("### ") {
            flush(&mut block, &mut out);
            out.push_str(&format!("<h3>{}</h3>\n", inline_html(title.trim())));
        } else if let Some((ordered, item)) = list_item(line) {
            match &mut block {
                Some(Block::List { ordered: o, items }) if *o == ordered => {
                    items.push(item.trim().to_owned());
                }
                _ => {
                    flush(&mut block, &mut out);
                    block = Some(Block::List {
                        ordered,
                        items: vec![item.trim().to_owned()],
                    });
                }
            }
        } else if line.starts_with(' ')
            && let Some(Block::List { items, .. }) = &mut block
            && let Some(last) = items.last_mut()
        {
            last.push(' ');
            last.push_str(trimmed);
        } else {
            match &mut block {
                Some(Block::Paragraph(lines)) => lines.push(trimmed.to_owned()),
                _ => {
                    flush(&mut block, &mut out);
                    block = Some(Block::Paragraph(vec![trimmed.to_owned()]));
                }
            }
        }
    }
    flush(&mut block, &mut out);
    out
}

/// `` `code` `` and `**bold**` in one line of text, escaped first.
fn inline_html(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in escape(text).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{part}</code>"));
            continue;
        }
        for (j, piece) in part.split("**").enumerate() {
            if j % 2 == 1 {
                out.push_str(&format!("<b>{piece}</b>"));
            } else {
                out.push_str(piece);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_markdown_subset_renders_headings_paragraphs_lists_code_and_bold() {
        let html = markdown_html(
            "First line\nsame paragraph.\n\n### Sub\n\n- one `GET /x`\n  continued\n- **two**\n\n\
             1. first\n2. second\nafter",
        );
        assert_eq!(
            html,
            "<p>First line same paragraph.</p>\n<h3>Sub</h3>\n\
             <ul>\n<li>one <code>GET /x</code> continued</li>\n<li><b>two</b></li>\n</ul>\n\
             <ol>\n<li>first</li>\n<li>second</li>\n</ol>\n<p>after</p>\n"
        );
    }

    #[test]
    fn text_cannot_add_markup_of_its_own() {
        let html = markdown_html("<script>x</script> & \"q\" `<b>`");
        assert_eq!(
            html,
            "<p>&lt;script&gt;x&lt;/script&gt; &amp; &quot;q&quot; <code>&lt;b&gt;</code></p>\n"
        );
    }

    #[test]
    fn every_shipped_section_renders_without_leftover_markdown() {
        let config = Config::from_lookup(|_| None).unwrap_or_else(|e| panic!("{e}"));
        for s in shipped::ALL {
            let html = section_html(*s, &config, None);
            for leftover in ["**", "`", "\n- ", "\n## ", "\n### ", "{controller_"] {
                assert!(!html.contains(leftover), "{leftover:?} in {}: {html}", s.id);
            }
        }
    }
}
