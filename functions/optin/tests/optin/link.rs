//! `/u/{token}`: the GET only asks, the POST unsubscribes once, unknown links get a plain 404 page.

use http::{Method, StatusCode};
use qchat_shared::leads::{Action, LeadStatus};

use crate::helpers::{Backend, TestApp, psid};

async fn lead_status(t: &TestApp, token: &str, page: &str, lead: &str) -> (String, usize, bool) {
    let r = t
        .optin(
            Method::GET,
            &format!("/api/pages/{page}/leads/{lead}"),
            Some(token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    (
        v["status"].as_str().unwrap_or_default().to_owned(),
        v["consent_history"].as_array().map_or(0, Vec::len),
        v["chain"]["intact"] == true,
    )
}

pub async fn the_link_page_shows_the_page_name_and_a_form_and_does_not_unsubscribe(
    backend: Backend,
) {
    let t = TestApp::spawn(backend).await;
    let h = t.holder("link").await;
    t.page(&h, "1001", Some("Bakery <Rosa & Co>")).await;
    let lead = t
        .lead(
            &h,
            "1001",
            &psid(),
            LeadStatus::Subscribed,
            &[Action::OptIn],
        )
        .await;

    for _ in 0..2 {
        let r = t.optin(Method::GET, &lead.link, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.content_type.starts_with("text/html"));
        assert!(
            r.csp
                .as_deref()
                .is_some_and(|c| c.contains("default-src 'none'"))
        );
        assert!(
            r.body.contains("Bakery &lt;Rosa &amp; Co&gt;"),
            "{}",
            r.body
        );
        assert!(!r.body.contains("<Rosa"));
        assert!(r.body.contains("<form method=\"post\">"));
        assert!(
            r.body
                .contains("<button type=\"submit\">Unsubscribe</button>")
        );
    }
    let (status, records, intact) = lead_status(&t, &h.token, "1001", &lead.id).await;
    assert_eq!((status.as_str(), records, intact), ("subscribed", 1, true));
}

pub async fn a_page_without_a_name_is_called_this_page(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let h = t.holder("noname").await;
    t.page(&h, "1002", None).await;
    let lead = t
        .lead(
            &h,
            "1002",
            &psid(),
            LeadStatus::Subscribed,
            &[Action::OptIn],
        )
        .await;
    let r = t.optin(Method::GET, &lead.link, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("messages from this page?"), "{}", r.body);
}

pub async fn posting_unsubscribes_once_with_an_opt_out_record_and_a_second_post_changes_nothing(
    backend: Backend,
) {
    let t = TestApp::spawn(backend).await;
    let h = t.holder("post").await;
    t.page(&h, "1003", Some("Rosa's Bakery")).await;
    let lead = t
        .lead(
            &h,
            "1003",
            &psid(),
            LeadStatus::Subscribed,
            &[Action::ConfirmationRequested, Action::OptIn],
        )
        .await;

    let first = t.optin(Method::POST, &lead.link, None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.content_type.starts_with("text/html"));
    assert!(first.body.contains("You are unsubscribed"));
    assert!(first.body.contains("Rosa&#39;s Bakery"));

    let detail = t
        .optin(
            Method::GET,
            &format!("/api/pages/1003/leads/{}", lead.id),
            Some(&h.token),
        )
        .await
        .json();
    assert_eq!(detail["status"], "unsubscribed");
    assert_eq!(detail["chain"], serde_json::json!({"intact": true}));
    let history = detail["consent_history"].as_array().expect("history");
    assert_eq!(history.len(), 3);
    let last = &history[2];
    assert_eq!(last["seq"], 3);
    assert_eq!(last["action"], "opt_out");
    assert_eq!(last["source"], "unsubscribe_link");
    assert_eq!(last["policy_version"], "1");
    assert_eq!(last["prev_hash"], history[1]["hash"]);
    assert!(
        last["wording"]
            .as_str()
            .is_some_and(|w| w.contains("Unsubscribe"))
    );

    t.clock.advance_secs(60);
    let second = t.optin(Method::POST, &lead.link, None).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body, first.body);
    let (status, records, intact) = lead_status(&t, &h.token, "1003", &lead.id).await;
    assert_eq!(
        (status.as_str(), records, intact),
        ("unsubscribed", 3, true)
    );

    // The GET of a used link says so instead of asking again.
    let page = t.optin(Method::GET, &lead.link, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("You are unsubscribed"));
    assert!(!page.body.contains("<form"));
}

pub async fn unknown_or_malformed_links_get_a_plain_not_found_page(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let unknown = format!("/u/{}", "A".repeat(43));
    for path in [unknown.as_str(), "/u/short", "/u/%3Cscript%3E"] {
        for method in [Method::GET, Method::POST] {
            let r = t.optin(method, path, None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
            assert!(r.content_type.starts_with("text/html"));
            assert!(r.body.contains("This link is not valid or has expired."));
            assert!(!r.body.contains("script"));
        }
    }
}

/// The pages speak the browser's language (of the eight qchat has), and the consent record keeps the
/// wording exactly as it was shown.
pub async fn the_link_pages_answer_in_the_browsers_language_and_the_record_keeps_that_wording(
    backend: Backend,
) {
    let t = TestApp::spawn(backend).await;
    let h = t.holder("lang").await;
    t.page(&h, "1004", Some("Bäckerei Rosa")).await;
    let lead = t
        .lead(
            &h,
            "1004",
            &psid(),
            LeadStatus::Subscribed,
            &[Action::OptIn],
        )
        .await;

    let ask = t
        .optin_in(Method::GET, &lead.link, "de-AT,de;q=0.9,en;q=0.5")
        .await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("<html lang=\"de\">"), "{}", ask.body);
    assert!(
        ask.body
            .contains("Keine Nachrichten mehr von Bäckerei Rosa erhalten?"),
        "{}",
        ask.body
    );
    assert!(ask.body.contains(">Abmelden</button>"));

    let done = t.optin_in(Method::POST, &lead.link, "fr-FR,fr").await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body.contains("<html lang=\"fr\">"));
    assert!(done.body.contains("Vous êtes désabonné"), "{}", done.body);
    let detail = t
        .optin(
            Method::GET,
            &format!("/api/pages/1004/leads/{}", lead.id),
            Some(&h.token),
        )
        .await
        .json();
    let history = detail["consent_history"].as_array().expect("history");
    assert_eq!(
        history.last().expect("the opt-out")["wording"],
        "Ne plus recevoir de messages de Bäckerei Rosa ? [Se désabonner]"
    );

    // A language qchat does not have, or none: English. A broken header is no error.
    for header in ["ja,zh;q=0.8", "", ";;q=,"] {
        let page = t.optin_in(Method::GET, &lead.link, header).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("<html lang=\"en\">"), "{header}");
        assert!(page.body.contains("You are unsubscribed"), "{header}");
    }
    let unknown = format!("/u/{}", "A".repeat(43));
    let invalid = t.optin_in(Method::GET, &unknown, "pl").await;
    assert_eq!(invalid.status, StatusCode::NOT_FOUND);
    assert!(
        invalid
            .body
            .contains("Ten link jest nieprawidłowy lub wygasł.")
    );
}
