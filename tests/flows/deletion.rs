//! The erasure status page, `GET /deletion/{code}`: what it answers for a code that names no erasure.
//! (A real code's page is followed through a whole erasure in `pages`.)

use qchat_shared::jobs::Jobs;

use crate::helpers::{Backend, TestApp};

/// Malformed, unknown, and a real job's id that is not an erasure all get the same 404, in HTML and in
/// JSON, naming nothing.
pub async fn a_code_that_names_no_erasure_gets_the_same_404_whatever_it_is(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A job that is not an erasure (a policy fan-out's id must not open a status page).
    let jobs = Jobs::new(
        app.app.store.clone(),
        app.app.clock.clone(),
        app.app.ids.clone(),
        60,
    );
    let other = jobs
        .enqueue("policy_fanout", "{}", app.app.clock.now())
        .await
        .expect("a job is queued");
    let long = "a".repeat(65);
    let codes = [
        "abcdefghijklmnopqrstuvwxyz",
        other.as_str(),
        "NOT-LOWER",
        "%3Cscript%3E",
        long.as_str(),
    ];
    let mut html_bodies = Vec::new();
    let mut json_bodies = Vec::new();
    for code in codes {
        let html = app.get(&format!("/deletion/{code}"), None).await;
        html.assert_status(404);
        assert!(html.text().contains("Deletion request not found"));
        assert!(!html.text().contains(code), "the code is not echoed");
        html_bodies.push(html.body.clone());
        let json = app.get_json_accepting(&format!("/deletion/{code}")).await;
        json.assert_error(404, "not_found");
        json_bodies.push(json.body.clone());
    }
    assert!(html_bodies.windows(2).all(|w| w[0] == w[1]));
    assert!(json_bodies.windows(2).all(|w| w[0] == w[1]));
}
