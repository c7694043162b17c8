//! The HTTP surface: the public privacy notice (with its controller, rights, breach and terms sections,
//! and no route named that does not exist), the security headers of every kind of response, and answers
//! for unknown routes and wrong methods.

use std::collections::{BTreeMap, BTreeSet};

use http::Method;
use qchat_shared::http::escape_html;
use qchat_shared::i18n::Lang;
use qchat_shared::inventory::ITEM_TYPES;
use qchat_shared::policies::shipped;
use qchat_shared::policies::unrouted_mentions;
use qchat_shared::processing::{ACTIVITIES, NOTICE_EN, Subject, is_personal};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, CONTROLLER_ADDRESS, CONTROLLER_EMAIL, CONTROLLER_NAME, PUBLIC_URL, TestApp,
    strong_password, unique_email,
};

/// The `<section id="{id}">` of a page, up to its end; panics if there is none.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<section id=\"{id}\">"))
        .unwrap_or_else(|| panic!("a section {id:?} in the notice"));
    let len = page[start..].find("</section>").expect("the section ends");
    &page[start..start + len]
}

async fn notice_html(app: &TestApp) -> String {
    let r = app.get("/privacy", None).await;
    r.assert_status(200);
    r.text()
}

async fn notice_json(app: &TestApp) -> Value {
    let r = app
        .request(
            Method::GET,
            "/privacy",
            None,
            &[("accept", "application/json")],
        )
        .await;
    r.assert_status(200);
    r.json()
}

/// The JSON notice's section `id`.
fn json_section<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("a section {id:?} in {body}"))
}

/// Every string in a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

pub async fn the_privacy_notice_is_short_html_under_a_strict_csp_and_links_the_record(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;

    let r = app.get("/privacy", None).await;

    r.assert_status(200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("content-language"), Some("en"));
    let csp = r.header("content-security-policy").expect("a CSP");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp:?}");
    }
    assert!(!csp.contains("script-src"), "no scripts at all: {csp:?}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    let page = r.text();
    assert!(page.starts_with("<!doctype html>\n<html lang=\"en\">"));
    assert!(!page.contains("<script"), "no scripts");
    // The person's notice is not the attribute table: that is the record's.
    assert!(!page.contains("<td>gsi1pk</td>"), "no technical attributes");
    assert!(page.contains("<a href=\"/privacy/record\">"));
    for expected in [
        "qchat_session",
        "Meta Platforms",
        "Amazon Web Services",
        "Version 1, in force since 2026-12-03.",
        "Terms of service (version 1)",
        "<h3>If you write to a page in Messenger</h3>",
        "<h3>If you have a qchat account</h3>",
        "Legal basis: your consent, given to the business that runs the page",
        "Legal basis: the contract for your account (GDPR Art. 6(1)(b))",
        "https://edpb.europa.eu/about-edpb/about-edpb/members_en",
    ] {
        assert!(page.contains(expected), "{expected:?} is in the notice");
    }
    assert!(!page.contains("1970-01-01"), "a real date");
    // The text a person reads before the terms: a notice read in about two minutes (~200 words a
    // minute, with the route names of the rights section).
    let notice = &page[..page.find("<section id=\"terms\"").expect("the terms")];
    let words = strip_tags(notice).split_whitespace().count();
    assert!(words < 1600, "{words} words");
}

/// The text of an HTML fragment, tags removed.
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

pub async fn the_notice_says_for_every_personal_record_what_it_is_why_on_which_basis_and_how_long(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    // Without a header (English), and as a browser of each language asks for it.
    let asked = [(None, Lang::En)]
        .into_iter()
        .chain(Lang::ALL.map(|l| (Some(l.code()), l)));
    for (accept, lang) in asked {
        let texts = lang.notice();
        let headers: Vec<(&str, &str)> = accept
            .map(|a| vec![("accept-language", a)])
            .unwrap_or_default();
        let r = app.request(Method::GET, "/privacy", None, &headers).await;
        r.assert_status(200);
        let page = r.text();
        let collected = section(&page, "collected");
        for a in ACTIVITIES {
            let entry = collected.find(&format!("<dt id=\"purpose-{}\">", a.id));
            if a.subject == Subject::None {
                assert!(entry.is_none(), "{} is not about a person", a.id);
                continue;
            }
            let entry = &collected[entry.unwrap_or_else(|| panic!("{} is listed", a.id))..];
            let entry = &entry[..entry.find("</dd>").expect("its end")];
            assert!(entry.contains(&escape_html(texts.purpose(a.id))), "{entry}");
            assert!(
                entry.contains(&escape_html(texts.basis(a.basis))),
                "{entry}"
            );
            for t in a.item_types.iter().filter(|t| is_personal(t)) {
                let line = format!(
                    "<li>{} — {}: {}</li>",
                    escape_html(texts.item_name(t.name)),
                    escape_html(texts.kept_label),
                    escape_html(&texts.retention(t.retention)),
                );
                assert!(entry.contains(&line), "{line} in {entry}");
            }
        }
        // Every item type with a personal attribute is in the person's notice.
        for t in ITEM_TYPES.iter().filter(|t| is_personal(t)) {
            assert!(
                collected.contains(&escape_html(texts.item_name(t.name))),
                "{}",
                t.name
            );
        }
    }
}

pub async fn the_notice_and_the_record_are_in_german_when_the_browser_asks_for_it(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let de = [("accept-language", "de-DE,de;q=0.9,en;q=0.5")];

    let r = app.request(Method::GET, "/privacy", None, &de).await;
    r.assert_status(200);
    assert_eq!(r.header("content-language"), Some("de"));
    assert_eq!(r.header("vary"), Some("Accept-Language"));
    let page = r.text();
    assert!(page.contains("<html lang=\"de\">"));
    for expected in [
        "<h1>Datenschutzhinweise</h1>",
        "Version 1, gültig seit 2026-12-03.",
        "<h2>Wer für Ihre Daten verantwortlich ist</h2>",
        "<h2>Was erhoben wird, wozu und wie lange</h2>",
        "<h2>Ihre Rechte und wie Sie sie ausüben</h2>",
        "<b>DELETE MY DATA</b>: Sie sind sofort abgemeldet",
        "<code>DELETE /api/account</code>",
        "Rechtsgrundlage: der Vertrag über Ihr Konto",
        "members_de",
        // The terms exist in English only, and say so.
        "<section id=\"terms\" lang=\"en\">",
    ] {
        assert!(page.contains(expected), "{expected:?} in the German notice");
    }
    assert!(!page.contains("Who is responsible for your data"));
    assert_eq!(unrouted_mentions(&page), Vec::<String>::new());

    let r = app.request(Method::GET, "/privacy/record", None, &de).await;
    r.assert_status(200);
    assert_eq!(r.header("content-language"), Some("de"));
    let record = r.text();
    assert!(record.contains("<h1>Verzeichnis von Verarbeitungstätigkeiten</h1>"));
    assert!(
        record.contains("<table lang=\"en\">"),
        "the inventory's own words are English"
    );

    // A language qchat has no texts in gets English, declared as English.
    let r = app
        .request(Method::GET, "/privacy", None, &[("accept-language", "ja")])
        .await;
    assert_eq!(r.header("content-language"), Some("en"));
    assert!(r.text().contains("<h1>Privacy notice</h1>"));
}

pub async fn the_notice_and_the_record_are_written_in_each_of_the_eight_languages(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    for lang in Lang::ALL {
        let t = lang.notice();
        let asked = [("accept-language", lang.code())];
        let r = app.request(Method::GET, "/privacy", None, &asked).await;
        r.assert_status(200);
        assert_eq!(r.header("content-language"), Some(lang.code()));
        let page = r.text();
        assert!(page.contains(&format!("<html lang=\"{}\">", lang.code())));
        let (controller, rights) = shipped::notice_sections(lang);
        for expected in [
            format!("<h1>{}</h1>", escape_html(t.title)),
            format!("<h2>{}</h2>", escape_html(t.collected_title)),
            format!(
                "<h2>{}</h2>",
                escape_html(shipped::title(controller.source))
            ),
            format!("<h2>{}</h2>", escape_html(shipped::title(rights.source))),
            format!("<h2>{}</h2>", escape_html(t.recipients_title)),
            escape_html(t.basis(qchat_shared::processing::Basis::Contract)),
            // Every right a person uses in Messenger, in words the webhook recognises.
            "<b>DELETE MY DATA</b>".to_owned(),
            "<b>STOP</b>".to_owned(),
            "<code>DELETE /api/account</code>".to_owned(),
        ] {
            assert!(page.contains(&expected), "{lang:?}: {expected:?}");
        }
        if lang != Lang::En {
            // Nothing of the English notice is left in it, but the terms (English only, and marked so).
            for english in [
                "Who is responsible for your data",
                "Your rights and how to use them",
                "What is collected, why, and for how long",
                "Legal basis",
            ] {
                assert!(!page.contains(english), "{lang:?}: {english:?}");
            }
            assert!(page.contains("<section id=\"terms\" lang=\"en\">"));
        }
        assert_eq!(unrouted_mentions(&page), Vec::<String>::new());

        let r = app
            .request(Method::GET, "/privacy/record", None, &asked)
            .await;
        r.assert_status(200);
        assert_eq!(r.header("content-language"), Some(lang.code()));
        let record = r.text();
        assert!(record.contains(&format!("<h1>{}</h1>", escape_html(t.record_title))));
        assert!(record.contains(&escape_html(t.purpose_label)));
    }
}

pub async fn the_record_of_processing_lists_every_inventory_attribute_and_the_breach_procedure(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;

    let r = app.get("/privacy/record", None).await;

    r.assert_status(200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r.header("content-security-policy").is_some());
    let page = r.text();
    assert!(page.contains("<h1>Record of processing</h1>"));
    assert!(page.contains("<a href=\"/privacy\">"));
    for t in ITEM_TYPES {
        for a in t.attributes {
            assert!(
                page.contains(&format!("<tr><td>{}</td><td>{}</td>", t.name, a.name)),
                "{}.{} is listed",
                t.name,
                a.name
            );
        }
    }
    for a in ACTIVITIES {
        assert!(
            page.contains(&escape_html(NOTICE_EN.purpose(a.id))),
            "{}",
            a.id
        );
    }
    let breach = section(&page, "breach");
    assert!(breach.contains("supervisory authority within 72 hours"));
    assert_eq!(unrouted_mentions(&page), Vec::<String>::new());
    app.request(Method::HEAD, "/privacy/record", None, &[])
        .await
        .assert_status(200);
}

pub async fn the_privacy_notice_is_json_when_asked_for_and_matches_the_inventory(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let r = app
        .request(
            Method::GET,
            "/privacy",
            None,
            &[("accept", "application/json")],
        )
        .await;

    r.assert_status(200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    let listed: BTreeMap<String, BTreeSet<String>> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| {
            let attributes = t["attributes"]
                .as_array()
                .expect("attributes")
                .iter()
                .map(|a| {
                    for field in ["category", "personal", "protection", "purpose"] {
                        assert!(!a[field].is_null(), "{field} of {a}");
                    }
                    a["name"].as_str().expect("a name").to_owned()
                })
                .collect();
            (
                t["item_type"].as_str().expect("a type").to_owned(),
                attributes,
            )
        })
        .collect();
    let declared: BTreeMap<String, BTreeSet<String>> = ITEM_TYPES
        .iter()
        .map(|t| {
            (
                t.name.to_owned(),
                t.attributes.iter().map(|a| a.name.to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(listed, declared);
    assert_eq!(body["cookies"][0]["name"], "qchat_session");
    assert_eq!(body["processors"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["privacy_policy"]["version"], "1");
    assert_eq!(body["terms"]["version"], "1");
    assert!(
        body["terms"]["text"].is_string(),
        "the shipped terms in full"
    );
    let ids: Vec<_> = body["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| s["id"].as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(ids, ["controller", "rights", "breach"]);
}

pub async fn the_privacy_notice_names_the_controller_and_how_to_reach_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let controller = app.app.config.controller.clone();
    // The embedded backend runs on the local defaults, the AWS one on the configured controller (as
    // the template's required parameters set it).
    match backend {
        Backend::Sqlite => {
            assert!(controller.placeholder);
            assert!(controller.name.contains("placeholder"), "{controller:?}");
            assert_eq!(controller.postal_address, None);
        }
        Backend::Moto => {
            assert!(!controller.placeholder);
            assert_eq!(controller.name, CONTROLLER_NAME);
            assert_eq!(controller.email, CONTROLLER_EMAIL);
            assert_eq!(
                controller.postal_address.as_deref(),
                Some(CONTROLLER_ADDRESS)
            );
        }
    }

    let page = notice_html(&app).await;
    let who = section(&page, "controller");
    assert!(who.contains("<h2>Who is responsible for your data</h2>"));
    assert!(
        who.contains(&format!(
            "Controller: <b>{}</b>",
            escape_html(&controller.name)
        )),
        "{who}"
    );
    assert!(who.contains(&format!(
        "<a href=\"mailto:{e}\">{e}</a>",
        e = controller.email
    )));
    match &controller.postal_address {
        Some(address) => {
            assert!(who.contains(&format!("Postal address: {}", escape_html(address))))
        }
        None => assert!(!who.contains("Postal address")),
    }
    // Both roles are explained: controller of account data, processor of the leads' data.
    assert!(who.contains("is the controller of the account data"));
    assert!(who.contains("processes it only on that business&#39;s behalf"));
    assert_eq!(
        page.contains("class=\"placeholder\""),
        controller.placeholder,
        "a placeholder controller is flagged, a configured one is not"
    );
    // The competent authority, when configured, is named with the rights.
    let rights = section(&page, "rights");
    match &controller.supervisory_authority {
        Some(authority) => assert!(rights.contains(&escape_html(authority)), "{rights}"),
        None => assert!(!rights.contains("Supervisory authority competent")),
    }
    // The terms end with the same contact.
    assert!(section(&page, "terms").contains(&escape_html(&controller.email)));

    let body = notice_json(&app).await;
    assert_eq!(
        body["controller"],
        json!({
            "name": controller.name,
            "email": controller.email,
            "postal_address": controller.postal_address,
            "supervisory_authority": controller.supervisory_authority,
            "placeholder": controller.placeholder,
        })
    );
    let text = json_section(&body, "controller")["text"]
        .as_str()
        .expect("the section's text");
    assert!(text.contains(&controller.name) && text.contains(&controller.email));
    assert!(!text.contains("{controller_"), "placeholders are filled in");
}

pub async fn the_record_says_how_a_personal_data_breach_is_handled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = app.app.config.controller.email.clone();

    let r = app.get("/privacy/record", None).await;
    r.assert_status(200);
    let page = r.text();
    let breach = section(&page, "breach");
    for needed in [
        "<h2>Personal data breaches</h2>",
        "assesses the breach",
        "supervisory authority within 72 hours",
        "<code>POST /api/breach-notices</code>",
        "emails it to every account in its scope",
        "keeps a record of every breach",
        email.as_str(),
    ] {
        assert!(breach.contains(needed), "{needed:?} in {breach}");
    }
    let body = notice_json(&app).await;
    let text = json_section(&body, "breach")["text"]
        .as_str()
        .expect("text");
    assert!(text.contains("72 hours") && text.contains("`POST /api/breach-notices`"));
    assert_eq!(
        json_section(&body, "breach")["title"],
        "Personal data breaches"
    );

    // The mechanism the section describes answers as it says: the operator's notice is queued.
    let operator = app.operator_token().await;
    app.post_json(
        "/api/breach-notices",
        &json!({ "summary": "A backup was exposed for two hours.", "scope": "all" }),
        Some(&operator),
    )
    .await
    .assert_status(202);
}

pub async fn the_rights_section_names_the_export_and_erasure_routes_and_says_what_delete_my_data_does(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let page = notice_html(&app).await;
    let rights = section(&page, "rights");
    for needed in [
        "<code>GET /api/account/export</code>",
        "<code>DELETE /api/account</code>",
        "<b>DELETE MY DATA</b>: you are unsubscribed at once",
        "is erased within minutes",
        "<code>DELETE /api/pages/{page_id}/leads/{lead_id}</code>",
        "<code>DELETE /api/pages/{page_id}</code>",
        &format!("{PUBLIC_URL}/u/{{token}}"),
        "Facebook settings",
        "<code>POST /facebook/data-deletion</code>",
    ] {
        assert!(rights.contains(needed), "{needed:?} in {rights}");
    }
}

pub async fn the_full_shipped_terms_are_shown_until_a_newer_version_is_published(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let page = notice_html(&app).await;
    let terms = section(&page, "terms");
    for heading in [
        "1. The service",
        "2. Your account",
        "3. Your leads&#39; data: your duties and our role",
        "4. Acceptable use",
        "5. Suspension",
        "6. Liability",
        "7. Changes to these terms",
        "8. Ending the service",
        "9. Contact",
    ] {
        assert!(terms.contains(&format!("<h3>{heading}</h3>")), "{heading}");
    }

    let operator = app.operator_token().await;
    let url = format!("{PUBLIC_URL}/legal/terms-2");
    app.post_json(
        "/api/policies",
        &json!({ "kind": "terms", "version": "2", "url": url, "summary": "Liability capped." }),
        Some(&operator),
    )
    .await
    .assert_status(201);

    let page = notice_html(&app).await;
    let terms = section(&page, "terms");
    assert!(
        terms.contains("<h2>Terms of service (version 2)</h2>"),
        "{terms}"
    );
    assert!(terms.contains("Liability capped."));
    assert!(terms.contains(&format!("<a href=\"{url}\">")));
    assert!(
        !terms.contains("<h3>1. The service</h3>"),
        "not the old text"
    );
    let body = notice_json(&app).await;
    assert_eq!(body["terms"]["version"], "2");
    assert!(body["terms"]["text"].is_null(), "{}", body["terms"]);
}

pub async fn every_route_the_privacy_notice_names_is_in_the_route_table(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let page = notice_html(&app).await;
    assert_eq!(unrouted_mentions(&page), Vec::<String>::new());
    let mut texts = Vec::new();
    strings(&notice_json(&app).await, &mut texts);
    assert!(texts.len() > 100, "every string of the JSON notice");
    for text in texts {
        assert_eq!(unrouted_mentions(&text), Vec::<String>::new(), "{text}");
    }
    // The check would catch a text naming a route that does not exist.
    let broken = unrouted_mentions(&page.replace("GET /api/account<", "GET /api/account/archive<"));
    assert!(
        !broken.is_empty() && broken.iter().all(|m| m == "GET /api/account/archive"),
        "{broken:?}"
    );
}

pub async fn every_kind_of_response_carries_the_security_headers(backend: Backend) {
    // `TestApp::request` checks the headers on every response of every case; this case makes sure
    // every kind of answer is among them.
    let app = TestApp::spawn(backend).await;
    let holder = app.new_holder("headers").await;
    let signed_in = app.sign_in(&holder.email, &holder.password, false).await;
    let token = signed_in.json()["token"].as_str().unwrap().to_owned();
    let responses = [
        signed_in,
        app.get("/api/account", Some(&token)).await,
        app.get("/privacy", None).await,
        app.request(
            Method::POST,
            "/api/accounts",
            Some(b"{".to_vec()),
            &[("content-type", "application/json")],
        )
        .await,
        app.request(Method::POST, "/api/accounts", Some(b"{}".to_vec()), &[])
            .await,
        app.get("/api/pages", None).await,
        app.post_json("/api/policies", &serde_json::json!({}), Some(&token))
            .await,
        app.delete("/api/pages/42", Some(&token)).await,
        app.get("/nowhere", None).await,
        app.request(Method::PUT, "/api/account", None, &[]).await,
        app.register(&holder.email, &holder.password, None).await,
        app.delete("/api/sessions/current", Some(&token)).await,
        app.register(&unique_email("second"), &strong_password(), None)
            .await,
    ];
    let statuses: Vec<u16> = responses.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses,
        [
            200, 200, 200, 400, 415, 401, 403, 404, 404, 405, 202, 204, 202
        ]
    );
    for r in &responses {
        r.assert_security_headers();
    }
}

pub async fn an_unknown_route_is_404_and_a_known_route_with_another_method_405(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/api/nope"),
        (Method::GET, "/api/account/"),
        (Method::DELETE, "/api/pages/"),
        (Method::GET, "/api/pages/1/2/3"),
        (Method::POST, "/API/ACCOUNTS"),
    ] {
        let r = app.request(method, path, None, &[]).await;
        r.assert_error(404, "not_found");
        assert_eq!(r.header("allow"), None, "a 404 has no Allow");
    }
    // A 405 carries `Allow`, the methods the route takes, comma-separated (RFC 9110): from the
    // function's own router, and from the router in front of every function.
    let req = http::Request::builder()
        .method(Method::PUT)
        .uri("/api/account")
        .body(bytes::Bytes::new())
        .expect("a request");
    let r = qchat_account::handle(&app.app, req).await;
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("DELETE, GET, HEAD, PATCH")
    );
    for (method, path, allow) in [
        (Method::GET, "/api/accounts", "POST"),
        (Method::PUT, "/api/account", "DELETE, GET, HEAD, PATCH"),
        (Method::GET, "/api/sessions", "DELETE, POST"),
        (Method::POST, "/privacy", "GET, HEAD"),
        (Method::GET, "/api/pages/123", "DELETE, PATCH"),
        (
            Method::DELETE,
            "/api/pages/123/broadcasts",
            "GET, HEAD, POST",
        ),
        (Method::OPTIONS, "/api/policies/current", "GET, HEAD"),
        (Method::DELETE, "/webhook", "GET, HEAD, POST"),
        (Method::PUT, "/u/some-token", "GET, HEAD, POST"),
        (Method::DELETE, "/api/pages/123/leads", "GET, HEAD"),
    ] {
        let r = app.request(method.clone(), path, None, &[]).await;
        r.assert_error(405, "method_not_allowed");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
}
