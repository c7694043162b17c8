//! `GET /privacy`: the privacy notice a person reads (GDPR Art. 13/14), and `GET /privacy/record`: the
//! operator's record of processing (Art. 30) with every stored attribute. Both are rendered from the
//! processing table over the data inventory ([`qchat_shared::processing`]), so they cannot drift from
//! what the code stores; with the controller named in the configuration, the shipped prose sections
//! (who is responsible, your rights; the breach procedure in the record) and the terms of service in
//! force (the full shipped text of version 1, or a newer version's summary and link). In the browser's
//! language ([`Lang::of_request`]: one of the eight, English otherwise). HTML by default; the notice as JSON with
//! `Accept: application/json`.

use qchat_shared::app::App;
use qchat_shared::config::Config;
use qchat_shared::http::{
    ApiError, Request, Response, StatusCode, escape_html as escape, html, json, wants_json,
};
use qchat_shared::i18n::Lang;
use qchat_shared::inventory;
use qchat_shared::policies::shipped::{self, Section};
use qchat_shared::processing::{self, ACTIVITIES, Activity, Basis, NoticeTexts, Subject};

use crate::policies::{CurrentPolicy, PolicyKind, SHIPPED_VERSION, current_policy};
use crate::sessions::{REMEMBERED_DAYS, UNREMEMBERED_HOURS};

struct Cookie {
    name: &'static str,
    purpose: &'static str,
    lifetime: String,
}

fn cookies() -> Vec<Cookie> {
    vec![Cookie {
        name: qchat_shared::http::SESSION_COOKIE,
        purpose: "keeps an account holder signed in (strictly necessary; no tracking or advertising cookies are used)",
        lifetime: format!(
            "until the browser closes (server side {UNREMEMBERED_HOURS} hours), or {REMEMBERED_DAYS} days with \"keep me signed in\""
        ),
    }]
}

/// The notice's language for a request: the browser's, if it is one of the eight; English otherwise.
fn notice_lang(req: &Request) -> &'static NoticeTexts {
    Lang::of_request(req).notice()
}

/// `GET /privacy`: the notice a person reads (HTML), or the whole notice as data (JSON).
pub async fn notice(app: &App, req: &Request) -> Result<Response, ApiError> {
    let privacy = current_policy(app, PolicyKind::Privacy).await?;
    let terms = current_policy(app, PolicyKind::Terms).await?;
    if wants_json(req) {
        return notice_json(app, &privacy, &terms);
    }
    let t = notice_lang(req);
    let full_text = if privacy.url == format!("{}/privacy", app.config.public_url) {
        String::new()
    } else {
        format!(r#" <a href="{u}">{u}</a>"#, u = escape(&privacy.url))
    };
    let (controller, rights) = shipped::notice_sections(t.lang);
    let cookies = format!(
        "<section id=\"cookies\">\n<h2>{}</h2>\n<p>{}</p>\n</section>",
        escape(t.cookies_title),
        escape(
            &t.cookie_text
                .replace("{hours}", &UNREMEMBERED_HOURS.to_string())
                .replace("{days}", &REMEMBERED_DAYS.to_string())
        ),
    );
    let authority = format!("{}</section>", authority_html(&app.config, t));
    let body = format!(
        "{placeholder}<p>{version} {ps}{full_text}</p>\n\
         <nav aria-label=\"{title}\"><p><a href=\"/privacy/record\">{record_link}</a></p></nav>\n\
         {controller}\n{collected}\n{recipients}\n{cookies}\n{rights}\n{terms}",
        placeholder = placeholder_html(app, t),
        version = escape(&version_line(t, &privacy)),
        ps = if t.lang == Lang::En {
            escape(&privacy.summary)
        } else {
            String::new()
        },
        title = escape(t.title),
        record_link = escape(t.record_link),
        controller = section_html(controller, &app.config, Some(&contact_html(&app.config, t))),
        collected = collected_html(t, ACTIVITIES),
        recipients = recipients_html(t),
        rights = section_html(rights, &app.config, None).replace("</section>", &authority),
        terms = terms_html(&terms, &app.config, t.lang),
    );
    Ok(document(t, t.title, &body))
}

/// `GET /privacy/record`: the operator's record of processing (Art. 30): every activity, every stored
/// value with its category, protection, purpose and retention, and how a breach is handled.
pub async fn record(app: &App, req: &Request) -> Result<Response, ApiError> {
    let t = notice_lang(req);
    let mut activities = String::new();
    for a in ACTIVITIES {
        let types: Vec<_> = a
            .item_types
            .iter()
            .map(|x| format!("<code>{}</code>", escape(x.name)))
            .collect();
        activities.push_str(&format!(
            "<tr><th scope=\"row\">{purpose}</th><td>{subject}</td><td>{kinds}</td><td>{basis}</td><td>{types}</td></tr>\n",
            purpose = escape(t.purpose(a.id)),
            subject = escape(subject_name(t, a.subject)),
            kinds = escape(&categories(t, a)),
            basis = escape(t.basis(a.basis)),
            types = types.join(", "),
        ));
    }
    let mut rows = String::new();
    for it in inventory::ITEM_TYPES {
        for a in it.attributes {
            rows.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td></tr>\n",
                escape(it.name),
                escape(a.name),
                escape(t.category(a.category)),
                if a.personal { t.yes } else { t.no },
                a.protection,
                escape(a.purpose),
                escape(&t.retention(it.retention)),
            ));
        }
    }
    let [c0, c1, c2, c3, c4, c5, c6] = t.record_columns.map(escape);
    let (subject_h, kinds_h, basis_h) = (t.subject_label, t.kinds_label, t.basis_label);
    let body = format!(
        "<p>{intro}</p>\n<p><a href=\"/privacy\">{back}</a></p>\n{contact}\
         <section id=\"activities\">\n<h2>{at}</h2>\n<div class=\"wide\" tabindex=\"0\" role=\"region\" aria-label=\"{at}\"><table>\n\
         <tr><th scope=\"col\">{purpose_h}</th><th scope=\"col\">{subject_h}</th><th scope=\"col\">{kinds_h}</th>\
         <th scope=\"col\">{basis_h}</th><th scope=\"col\">{c0}</th></tr>\n{activities}</table></div>\n</section>\n\
         {recipients}\n\
         <section id=\"inventory\">\n<h2>{tt}</h2>\n<div class=\"wide\" tabindex=\"0\" role=\"region\" aria-label=\"{tt}\"><table{en}>\n\
         <tr><th scope=\"col\">{c0}</th><th scope=\"col\">{c1}</th><th scope=\"col\">{c2}</th><th scope=\"col\">{c3}</th>\
         <th scope=\"col\">{c4}</th><th scope=\"col\">{c5}</th><th scope=\"col\">{c6}</th></tr>\n{rows}</table></div>\n</section>\n\
         <div lang=\"en\">{breach}</div>",
        intro = escape(t.record_intro),
        back = escape(t.back_to_notice),
        contact = contact_html(&app.config, t),
        at = escape(t.record_activities_title),
        purpose_h = escape(t.purpose_label),
        subject_h = escape(subject_h),
        kinds_h = escape(kinds_h),
        basis_h = escape(basis_h),
        recipients = recipients_html(t),
        tt = escape(t.record_types_title),
        en = if t.lang == Lang::En {
            ""
        } else {
            " lang=\"en\""
        },
        breach = section_html(shipped::BREACH, &app.config, None),
    );
    Ok(document(t, t.record_title, &body))
}

/// The page around a notice or record body, in the notice's language.
fn document(t: &NoticeTexts, title: &str, body: &str) -> Response {
    let code = t.lang.code();
    let mut r = html(
        StatusCode::OK,
        format!(
            r#"<!doctype html>
<html lang="{code}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}}
a{{color:#0645ad}}table{{border-collapse:collapse;width:100%;font-size:.9rem}}
td,th{{border:1px solid #ccc;padding:.3rem;text-align:left;vertical-align:top}}.wide{{overflow-x:auto}}
dt{{font-weight:600;margin-top:.8rem}}dd{{margin-left:1rem}}
.placeholder{{border:2px solid #b00;padding:.5rem 1rem}}</style>
</head><body><main>
<h1>{title}</h1>
{body}
</main></body></html>
"#,
            title = escape(title),
        ),
    );
    r.headers_mut().insert(
        http::header::CONTENT_LANGUAGE,
        http::HeaderValue::from_static(code),
    );
    r.headers_mut().insert(
        http::header::VARY,
        http::HeaderValue::from_static("Accept-Language"),
    );
    r
}

fn placeholder_html(app: &App, t: &NoticeTexts) -> String {
    if app.config.controller.placeholder {
        format!(
            "<p class=\"placeholder\"><b>{}</b></p>\n",
            escape(t.placeholder)
        )
    } else {
        String::new()
    }
}

/// "Version 1, in force since 2026-12-03." (the date only: the time of day says nothing to a reader).
fn version_line(t: &NoticeTexts, privacy: &CurrentPolicy) -> String {
    let date: String = privacy.published_at.chars().take(10).collect();
    t.version_line
        .replace("{version}", &privacy.version)
        .replace("{date}", &date)
}

fn subject_name(t: &NoticeTexts, subject: Subject) -> &'static str {
    match subject {
        Subject::Lead => t.leads_title,
        Subject::AccountHolder => t.holders_title,
        Subject::None => t.basis(Basis::NotPersonal),
    }
}

/// The categories of personal data an activity holds, as words.
fn categories(t: &NoticeTexts, a: &Activity) -> String {
    let words: Vec<_> = processing::personal_categories(a)
        .into_iter()
        .map(|c| t.category(c))
        .collect();
    if words.is_empty() {
        t.basis(Basis::NotPersonal).to_owned()
    } else {
        words.join(", ")
    }
}

/// What is collected about whom, why, on which basis and for how long: one entry per activity about a
/// person, listing each item type with personal data and its retention. Generated from `activities` (the
/// processing table over the inventory), so a new item type or retention shows up here by itself.
fn collected_html(t: &NoticeTexts, activities: &[Activity]) -> String {
    let mut out = format!(
        "<section id=\"collected\">\n<h2>{}</h2>\n<p>{}</p>\n",
        escape(t.collected_title),
        escape(t.collected_intro)
    );
    for (subject, title, intro) in [
        (Subject::Lead, t.leads_title, Some(t.leads_intro)),
        (Subject::AccountHolder, t.holders_title, None),
    ] {
        out.push_str(&format!("<h3>{}</h3>\n", escape(title)));
        if let Some(intro) = intro {
            out.push_str(&format!("<p>{}</p>\n", escape(intro)));
        }
        out.push_str("<dl>\n");
        for a in activities.iter().filter(|a| a.subject == subject) {
            let mut items = String::new();
            for it in a.item_types.iter().filter(|x| processing::is_personal(x)) {
                items.push_str(&format!(
                    "<li>{} — {}: {}</li>\n",
                    escape(t.item_name(it.name)),
                    escape(t.kept_label),
                    escape(&t.retention(it.retention)),
                ));
            }
            out.push_str(&format!(
                "<dt id=\"purpose-{id}\">{purpose}</dt>\n<dd><p>{kl}: {kinds}. {bl}: {basis}.</p>\n<ul>\n{items}</ul></dd>\n",
                id = a.id,
                purpose = escape(t.purpose(a.id)),
                kl = escape(t.kinds_label),
                kinds = escape(&categories(t, a)),
                bl = escape(t.basis_label),
                basis = escape(t.basis(a.basis)),
            ));
        }
        out.push_str("</dl>\n");
    }
    out.push_str("</section>");
    out
}

fn recipients_html(t: &NoticeTexts) -> String {
    let items: String = t
        .processors
        .iter()
        .map(|(name, what)| format!("<li><b>{}</b>: {}</li>", escape(name), escape(what)))
        .collect();
    format!(
        "<section id=\"recipients\">\n<h2>{}</h2>\n<p>{}</p>\n<ul>{items}</ul>\n</section>",
        escape(t.recipients_title),
        escape(t.recipients_intro)
    )
}

/// The configured supervisory authority, if any.
fn authority_html(config: &Config, t: &NoticeTexts) -> String {
    config
        .controller
        .supervisory_authority
        .as_deref()
        .map(|a| format!("<p>{}: {}</p>\n", escape(t.authority_label), escape(a)))
        .unwrap_or_default()
}

/// The whole notice as data: the controller, the policies in force, the prose sections, the activities
/// and every inventory attribute, the cookies and the processors.
fn notice_json(
    app: &App,
    privacy: &CurrentPolicy,
    terms: &CurrentPolicy,
) -> Result<Response, ApiError> {
    let en = &processing::NOTICE_EN;
    let data: Vec<_> = inventory::ITEM_TYPES
        .iter()
        .map(|t| {
            serde_json::json!({
                "item_type": t.name,
                "description": t.description,
                "retention": en.retention(t.retention),
                "attributes": t.attributes.iter().map(|a| serde_json::json!({
                    "name": a.name, "category": a.category, "personal": a.personal,
                    "protection": a.protection, "purpose": a.purpose,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let activities: Vec<_> = ACTIVITIES
        .iter()
        .map(|a| {
            serde_json::json!({
                "id": a.id,
                "purpose": en.purpose(a.id),
                "subject": a.subject,
                "legal_basis": a.basis,
                "legal_basis_text": en.basis(a.basis),
                "categories": processing::personal_categories(a),
                "item_types": a.item_types.iter().map(|t| t.name).collect::<Vec<_>>(),
            })
        })
        .collect();
    let cookies: Vec<_> = cookies()
        .iter()
        .map(
            |c| serde_json::json!({ "name": c.name, "purpose": c.purpose, "lifetime": c.lifetime }),
        )
        .collect();
    let processors: Vec<_> = en
        .processors
        .iter()
        .map(|(name, purpose)| serde_json::json!({ "name": name, "purpose": purpose }))
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
    let mut terms_json = serde_json::to_value(terms).map_err(|_| ApiError::internal())?;
    terms_json["text"] = shipped_terms(terms)
        .map(|s| serde_json::Value::String(shipped::fill(s.source, &app.config)))
        .unwrap_or(serde_json::Value::Null);
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "controller": {
                "name": controller.name,
                "email": controller.email,
                "postal_address": controller.postal_address,
                "supervisory_authority": controller.supervisory_authority,
                "placeholder": controller.placeholder,
            },
            "privacy_policy": privacy,
            "terms": terms_json,
            "sections": sections,
            "activities": activities,
            "data": data,
            "cookies": cookies,
            "processors": processors,
        }),
    ))
}

/// The shipped text of the terms in force, if the version in force is the shipped one.
fn shipped_terms(terms: &CurrentPolicy) -> Option<Section> {
    (terms.version == SHIPPED_VERSION).then_some(shipped::TERMS)
}

/// The terms in force: the full shipped text of version 1, or a published version's summary and link.
fn terms_html(terms: &CurrentPolicy, config: &Config, lang: Lang) -> String {
    let version = format!(" (version {})", terms.version);
    let html = match shipped_terms(terms) {
        Some(s) => section_html_titled(s, config, &version, None),
        None => format!(
            "<section id=\"terms\">\n<h2>Terms of service{v}</h2>\n<p>In force since {at}. {summary}</p>\n\
             <p>Full text: <a href=\"{url}\">{url}</a></p>\n</section>",
            v = escape(&version),
            at = escape(&terms.published_at),
            summary = escape(&terms.summary),
            url = escape(&terms.url),
        ),
    };
    // The terms are written in English only: say so to a reader's software.
    if lang == Lang::En {
        html
    } else {
        html.replacen(
            "<section id=\"terms\">",
            "<section id=\"terms\" lang=\"en\">",
            1,
        )
    }
}

/// The controller's identity and contact, from the configuration.
fn contact_html(config: &Config, t: &NoticeTexts) -> String {
    let c = &config.controller;
    let mut out = format!(
        "<p>{cl}: <b>{name}</b><br>\n{el}: <a href=\"mailto:{email}\">{email}</a>",
        cl = escape(t.controller_label),
        el = escape(t.email_label),
        name = escape(&c.name),
        email = escape(&c.email),
    );
    if let Some(address) = &c.postal_address {
        out.push_str(&format!(
            "<br>\n{}: {}",
            escape(t.address_label),
            escape(address)
        ));
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
    fn a_new_retention_or_purpose_in_the_processing_table_shows_up_in_the_notice() {
        use qchat_shared::inventory::{LEAD, Retention};
        // The lead item type as it would be if its retention changed to 9 days.
        static CHANGED: inventory::ItemType = inventory::ItemType {
            retention: Retention::Expires {
                seconds: 9 * 86_400,
            },
            ..LEAD
        };
        static TYPES: [&inventory::ItemType; 1] = [&CHANGED];
        let activities = [Activity {
            id: "security",
            subject: Subject::Lead,
            basis: Basis::LegitimateInterest,
            item_types: &TYPES,
        }];
        for t in [&processing::NOTICE_EN, &processing::NOTICE_DE] {
            let html = collected_html(t, &activities);
            assert!(
                html.contains(&escape(&t.retention(CHANGED.retention))),
                "{html}"
            );
            assert!(
                html.contains(&escape(t.purpose("security"))),
                "the purpose moves with the activity: {html}"
            );
            assert!(html.contains(&escape(t.basis(Basis::LegitimateInterest))));
        }
        let html = collected_html(&processing::NOTICE_EN, &activities);
        assert!(html.contains("9 days, then deleted"), "{html}");
        assert!(!collected_html(&processing::NOTICE_EN, ACTIVITIES).contains("9 days"));
    }

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
