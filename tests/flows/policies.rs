//! Policies and breach notices: the shipped version, publishing (operator only) with its notice fan-out
//! queued, acceptance of the version in force, and breach notices (operator only).

use serde_json::{Value, json};

use crate::helpers::{Backend, PUBLIC_URL, TestApp, strong_password, unique_email};

fn publish(kind: &str, version: &str) -> Value {
    json!({
        "kind": kind,
        "version": version,
        "url": format!("{PUBLIC_URL}/legal/{kind}-{version}"),
        "summary": "Retention of the security log shortened.\nNothing else changed.",
    })
}

/// The queued job with this id, as stored: (kind, params).
async fn stored_job(app: &TestApp, id: &str) -> Option<(String, String)> {
    let pk = format!("JOB#{id}");
    app.raw_store()
        .await
        .of_type("job")
        .find(|j| j.text("pk").as_deref() == Some(pk.as_str()))
        .map(|j| {
            (
                j.text("kind").unwrap_or_default(),
                j.text("params").unwrap_or_default(),
            )
        })
}

async fn job_kinds(app: &TestApp) -> Vec<String> {
    app.raw_store()
        .await
        .of_type("job")
        .filter_map(|j| j.text("kind"))
        .collect()
}

pub async fn a_fresh_install_has_privacy_policy_and_terms_version_1(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let r = app.get("/api/policies/current", None).await;

    r.assert_status(200);
    let body = r.json();
    assert_eq!(body["privacy"]["kind"], "privacy");
    assert_eq!(body["privacy"]["version"], "1");
    assert_eq!(body["privacy"]["url"], format!("{PUBLIC_URL}/privacy"));
    assert_eq!(body["terms"]["kind"], "terms");
    assert_eq!(body["terms"]["version"], "1");
    for kind in ["privacy", "terms"] {
        assert!(
            !body[kind]["summary"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{kind} has a summary"
        );
    }

    let (_, token) = app.signed_in_holder("fresh").await;
    let me = app.get("/api/account", Some(&token)).await.json();
    assert_eq!(me["role"], "account_holder");
    assert_eq!(
        me["policies"],
        json!({
            "privacy": { "accepted_version": "1", "current_version": "1" },
            "terms": { "accepted_version": "1", "current_version": "1" },
            "acceptance_required": false,
        })
    );
}

pub async fn only_the_operator_may_publish_a_policy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, holder) = app.signed_in_holder("not-operator").await;

    app.post_json("/api/policies", &publish("privacy", "2"), Some(&holder))
        .await
        .assert_error(403, "forbidden");
    app.post_json("/api/policies", &publish("terms", "2"), None)
        .await
        .assert_error(401, "unauthenticated");

    let current = app.get("/api/policies/current", None).await.json();
    assert_eq!(current["privacy"]["version"], "1");
    assert_eq!(current["terms"]["version"], "1");
    assert!(job_kinds(&app).await.is_empty(), "no notice was queued");
}

pub async fn a_published_policy_queues_its_fanout_and_must_be_accepted_in_its_current_version(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator_token().await;
    let (_, holder) = app.signed_in_holder("accepting").await;
    let me = app.get("/api/account", Some(&operator)).await.json();
    assert_eq!(me["role"], "operator");

    app.clock.advance_secs(60);
    let r = app
        .post_json("/api/policies", &publish("privacy", "2"), Some(&operator))
        .await;

    r.assert_status(201);
    let body = r.json();
    assert_eq!(body["policy"]["version"], "2");
    assert_eq!(body["policy"]["kind"], "privacy");
    assert_eq!(
        body["policy"]["url"],
        format!("{PUBLIC_URL}/legal/privacy-2")
    );
    let job = body["notice_job"].as_str().expect("the fan-out job's id");
    let (kind, params) = stored_job(&app, job).await.expect("the job is queued");
    assert_eq!(kind, "policy_fanout");
    let params: Value = serde_json::from_str(&params).expect("JSON parameters");
    assert_eq!(params, json!({ "kind": "privacy", "version": "2" }));

    for version in ["2", "1"] {
        app.post_json(
            "/api/policies",
            &publish("privacy", version),
            Some(&operator),
        )
        .await
        .assert_error(409, "version_exists");
    }
    app.post_json(
        "/api/policies",
        &publish("privacy", "two words"),
        Some(&operator),
    )
    .await
    .assert_error(400, "invalid_version");
    let mut bad_url = publish("privacy", "3");
    bad_url["url"] = json!("ftp://example.test/policy");
    app.post_json("/api/policies", &bad_url, Some(&operator))
        .await
        .assert_error(400, "invalid_url");
    app.post_json("/api/policies", &publish("cookies", "3"), Some(&operator))
        .await
        .assert_error(400, "invalid_field");
    assert_eq!(job_kinds(&app).await, ["policy_fanout"], "one fan-out only");

    let current = app.get("/api/policies/current", None).await.json();
    assert_eq!(current["privacy"]["version"], "2");
    assert_eq!(current["terms"]["version"], "1");

    let policies = |me: Value| me["policies"].clone();
    let mine = policies(app.get("/api/account", Some(&holder)).await.json());
    assert_eq!(mine["acceptance_required"], true);
    assert_eq!(mine["privacy"]["accepted_version"], "1");
    assert_eq!(mine["privacy"]["current_version"], "2");

    let accept = |kind: &str, version: &str| json!({ "kind": kind, "version": version });
    for (kind, stale) in [("privacy", "1"), ("privacy", "3"), ("terms", "2")] {
        app.post_json(
            "/api/account/policy-acceptance",
            &accept(kind, stale),
            Some(&holder),
        )
        .await
        .assert_error(409, "policy_version_mismatch");
    }
    let r = app
        .post_json(
            "/api/account/policy-acceptance",
            &accept("privacy", "2"),
            Some(&holder),
        )
        .await;
    r.assert_status(200);
    assert_eq!(
        r.json(),
        json!({ "kind": "privacy", "accepted_version": "2" })
    );
    let mine = policies(app.get("/api/account", Some(&holder)).await.json());
    assert_eq!(mine["acceptance_required"], false);
    assert_eq!(mine["privacy"]["accepted_version"], "2");

    // New terms require acceptance again, of the terms this time.
    app.clock.advance_secs(60);
    app.post_json(
        "/api/policies",
        &publish("terms", "2026-11"),
        Some(&operator),
    )
    .await
    .assert_status(201);
    let mine = policies(app.get("/api/account", Some(&holder)).await.json());
    assert_eq!(mine["acceptance_required"], true);
    assert_eq!(mine["terms"]["current_version"], "2026-11");
    app.post_json(
        "/api/account/policy-acceptance",
        &accept("terms", "2026-11"),
        Some(&holder),
    )
    .await
    .assert_status(200);
    let mine = policies(app.get("/api/account", Some(&holder)).await.json());
    assert_eq!(mine["acceptance_required"], false);

    // Registration now names the new privacy version.
    let email = unique_email("late");
    let password = strong_password();
    let late = |version: &str| json!({ "email": email, "password": password, "accepted_policy_version": version });
    app.post_json("/api/accounts", &late("1"), None)
        .await
        .assert_error(400, "policy_version_mismatch");
    app.post_json("/api/accounts", &late("2"), None)
        .await
        .assert_status(202);

    app.assert_every_stored_attribute_is_declared().await;
}

pub async fn only_the_operator_may_queue_a_breach_notice(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let operator = app.operator_token().await;
    let (holder, token) = app.signed_in_holder("breach").await;
    let all = json!({ "summary": "A backup was exposed for two hours.", "scope": "all" });

    app.post_json("/api/breach-notices", &all, Some(&token))
        .await
        .assert_error(403, "forbidden");
    app.post_json("/api/breach-notices", &all, None)
        .await
        .assert_error(401, "unauthenticated");
    assert!(job_kinds(&app).await.is_empty());

    let r = app
        .post_json("/api/breach-notices", &all, Some(&operator))
        .await;
    r.assert_status(202);
    let job = r.json()["notice_job"]
        .as_str()
        .expect("a job id")
        .to_owned();
    let (kind, _) = stored_job(&app, &job).await.expect("the job is queued");
    assert_eq!(kind, "breach_fanout");

    let listed = json!({ "summary": "Your page's token may have leaked.", "scope": [holder.id] });
    app.post_json("/api/breach-notices", &listed, Some(&operator))
        .await
        .assert_status(202);

    for scope in [json!("some"), json!([]), json!(["not an account id"])] {
        app.post_json(
            "/api/breach-notices",
            &json!({ "summary": "x", "scope": scope }),
            Some(&operator),
        )
        .await
        .assert_error(400, "invalid_scope");
    }
    app.post_json(
        "/api/breach-notices",
        &json!({ "summary": " ", "scope": "all" }),
        Some(&operator),
    )
    .await
    .assert_error(400, "invalid_summary");

    let mut kinds = job_kinds(&app).await;
    kinds.sort();
    assert_eq!(kinds, ["breach_fanout", "breach_fanout"]);
    assert_eq!(app.raw_store().await.of_type("breach_notice").count(), 2);
}
