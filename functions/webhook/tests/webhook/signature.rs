//! Signature verification over raw bytes, and the GET handshake.

use qchat_shared::http::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn nothing_stored(t: &TestApp) {
    assert!(t.lead(&psid("2001")).await.is_none());
    assert_eq!(t.due_replies().await, 0);
}

pub async fn a_valid_signature_is_accepted_and_the_batch_stored(backend: Backend) {
    let t = app(backend, "implicit").await;
    let r = t
        .post(&body(vec![message("2001", "m_1", "hello", 1)]))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(t.lead(&psid("2001")).await.is_some());
}

pub async fn a_wrong_secret_a_changed_byte_a_missing_header_and_sha1_are_refused_and_store_nothing(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    let raw = serde_json::to_vec(&body(vec![message("2001", "m_1", "hello", 1)])).unwrap();
    let wrong = qchat_webhook::signature::sign(b"another-secret", &raw);
    let good = sign(&raw);
    let mut changed = raw.clone();
    let last = changed.len() - 2;
    changed[last] ^= 0x01;
    let sha1 = "sha1=0123456789abcdef0123456789abcdef01234567";
    for (bytes, sig) in [
        (&raw, Some(wrong.as_str())),
        (&changed, Some(good.as_str())),
        (&raw, None),
        (&raw, Some(sha1)),
        (&raw, Some("sha256=nothex")),
    ] {
        let r = qchat_webhook::handle(&t.app, post_request(bytes, sig)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let v: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["error"]["code"], "invalid_signature");
    }
    nothing_stored(&t).await;
}

pub async fn escaped_non_ascii_escaped_slashes_and_raw_emoji_verify_on_the_raw_bytes(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    // Exactly as Meta may send it: `ä` escaped, `/` escaped, an emoji raw. Re-serialising would change it.
    let raw = format!(
        r#"{{"object":"page","entry":[{{"id":"{PAGE_ID}","time":1,"messaging":[{{"sender":{{"id":"2001"}},"recipient":{{"id":"{PAGE_ID}"}},"timestamp":1,"message":{{"mid":"m_1","text":"K\u00e4se http:\/\/x 😀"}}}}]}}]}}"#
    );
    let raw = raw.into_bytes();
    let reserialised =
        serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&raw).unwrap()).unwrap();
    assert_ne!(
        raw, reserialised,
        "the body must differ from its re-serialisation"
    );
    let r = qchat_webhook::handle(&t.app, post_request(&reserialised, Some(&sign(&raw)))).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    nothing_stored(&t).await;
    let r = t.post_raw(&raw).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(t.lead(&psid("2001")).await.is_some());
}

fn get(query: &str) -> qchat_shared::http::Request {
    http::Request::builder()
        .method("GET")
        .uri(format!("/webhook?{query}"))
        .body(qchat_shared::http::Bytes::new())
        .unwrap()
}

pub async fn the_handshake_echoes_the_challenge_only_for_the_right_token(backend: Backend) {
    let t = app(backend, "implicit").await;
    let ok = qchat_webhook::handle(
        &t.app,
        get(&format!(
            "hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        )),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(&ok.body()[..], b"1158201444");
    assert!(
        ok.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let wrong = qchat_webhook::handle(
        &t.app,
        get("hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let v: serde_json::Value = serde_json::from_slice(wrong.body()).unwrap();
    assert_eq!(v["error"]["code"], "forbidden");
    let mode = qchat_webhook::handle(
        &t.app,
        get(&format!(
            "hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"
        )),
    )
    .await;
    assert_eq!(mode.status(), StatusCode::FORBIDDEN);
    let bad = qchat_webhook::handle(
        &t.app,
        get(&format!(
            "hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=%3Cscript%3E"
        )),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let _ = json!({});
}

/// The secret is rotated where it is kept (Secrets Manager, secrets.json) while the function holds the
/// old one: the first delivery signed with the new secret is accepted after one re-read; one signed with
/// the old secret, or forged, is refused, and a stream of forgeries re-reads at most once per interval.
pub async fn a_rotated_app_secret_is_picked_up_at_once_and_forgeries_cannot_flood_the_secret_store(
    backend: Backend,
) {
    let mut t = app(backend, "implicit").await;
    let (keeper, reads) = keep_secrets_in_backend(&mut t, backend).await;
    let post_signed = |secret: &'static str, id: &'static str, mid: &'static str| {
        let raw = serde_json::to_vec(&body(vec![message(id, mid, "hello", 1)])).unwrap();
        let sig = qchat_webhook::signature::sign(secret.as_bytes(), &raw);
        qchat_webhook::handle(&t.app, post_request(&raw, Some(&sig)))
    };
    assert_eq!(
        post_signed(APP_SECRET, "2001", "m_1").await.status(),
        StatusCode::OK
    );
    assert_eq!(reads.reads(), 1);

    keeper.store("rotated-app-secret-2", VERIFY_TOKEN).await;
    // Half a minute later, well inside the cached copy's lifetime.
    t.clock.advance_secs(30);
    assert_eq!(
        post_signed("rotated-app-secret-2", "2002", "m_2")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(reads.reads(), 2, "one re-read picked up the rotation");
    assert!(t.lead(&psid("2002")).await.is_some());
    assert_eq!(
        post_signed("rotated-app-secret-2", "2003", "m_3")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(reads.reads(), 2, "the new secret is held");

    for (secret, id, mid) in [
        (APP_SECRET, "2004", "m_4"),
        ("forged-1", "2005", "m_5"),
        ("forged-2", "2006", "m_6"),
        ("forged-3", "2007", "m_7"),
    ] {
        assert_eq!(
            post_signed(secret, id, mid).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(reads.reads(), 2, "no re-read within the interval");
    t.clock.advance_secs(30);
    for (secret, id, mid) in [("forged-4", "2008", "m_8"), ("forged-5", "2009", "m_9")] {
        assert_eq!(
            post_signed(secret, id, mid).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        reads.reads(),
        3,
        "one re-read per interval, however many forgeries"
    );
    for id in ["2004", "2005", "2006", "2007", "2008", "2009"] {
        assert!(t.lead(&psid(id)).await.is_none());
    }
}

/// A verify token rotated where it is kept is accepted by the next handshake after one re-read; the old
/// one is refused once the new one is held.
pub async fn a_rotated_verify_token_is_picked_up_by_the_next_handshake(backend: Backend) {
    let mut t = app(backend, "implicit").await;
    let (keeper, reads) = keep_secrets_in_backend(&mut t, backend).await;
    let handshake = |token: &str| {
        qchat_webhook::handle(
            &t.app,
            get(&format!(
                "hub.mode=subscribe&hub.verify_token={token}&hub.challenge=42"
            )),
        )
    };
    assert_eq!(handshake(VERIFY_TOKEN).await.status(), StatusCode::OK);
    keeper.store(APP_SECRET, "rotated-verify-token").await;
    t.clock.advance_secs(30);
    assert_eq!(
        handshake("rotated-verify-token").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        handshake(VERIFY_TOKEN).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(reads.reads(), 2);
}
