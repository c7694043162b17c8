//! `GET /privacy`: the public privacy notice, rendered from the data inventory together with the cookies
//! used and the processors data is shared with, so the notice cannot drift from what the code stores.
//! HTML by default; JSON with `Accept: application/json`.

use qchat_shared::app::App;
use qchat_shared::http::{
    ApiError, Request, Response, StatusCode, escape_html as escape, html, json,
};
use qchat_shared::inventory::{self, ItemType, Retention};

use crate::policies::{PolicyKind, current_policy};
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
        Retention::Expires { seconds } => format!("{} hours, then deleted", seconds / 3600),
        Retention::ExpiresAtWriterChosenTime => {
            "until it expires (see its description), then deleted".to_owned()
        }
    }
}

fn wants_json(req: &Request) -> bool {
    req.headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
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
        return Ok(json(
            StatusCode::OK,
            &serde_json::json!({
                "privacy_policy": privacy,
                "terms": terms,
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
    let page = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Privacy notice</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
table{{border-collapse:collapse;width:100%;font-size:.9rem}}td,th{{border:1px solid #ccc;padding:.3rem;text-align:left;vertical-align:top}}</style>
</head><body>
<h1>Privacy notice</h1>
<p>Privacy policy version {pv}, in force since {pp}. {ps}</p>
<h2>What we store, why, and for how long</h2>
<p>Every value marked personal is encrypted (AES-256-GCM under a key of its own account) or kept only as a keyed
hash. Names and profile pictures of people who message a page are not collected.</p>
<table><tr><th>record</th><th>value</th><th>category</th><th>personal</th><th>protection</th><th>purpose</th><th>kept</th></tr>
{rows}</table>
<h2>Cookies</h2>
<table><tr><th>name</th><th>purpose</th><th>lifetime</th></tr>{cookie_rows}</table>
<h2>Who processes data for us</h2>
<ul>{processor_rows}</ul>
<h2>Your rights</h2>
<p>You can get a copy of your data and have it erased. Account holders: use the account export and the account
deletion in the API. People who message a page: write <b>MY DATA</b> to the page for a summary, <b>STOP</b> to stop
messages, <b>DELETE MY DATA</b> to have everything about you erased, or remove the app in your Facebook settings
and request deletion there.</p>
<h2 id="terms">Terms (version {tv})</h2>
<p>{ts}</p>
</body></html>"#,
        pv = escape(&privacy.version),
        pp = escape(&privacy.published_at),
        ps = escape(&privacy.summary),
        tv = escape(&terms.version),
        ts = escape(&terms.summary),
    );
    Ok(html(StatusCode::OK, page))
}
