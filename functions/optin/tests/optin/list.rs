//! `GET /api/pages/{page_id}/leads`: the whole page or one status, 50 at a time, with a cursor.

use std::collections::BTreeSet;

use http::{Method, StatusCode};
use qchat_shared::leads::{Action, LeadStatus};

use crate::helpers::{Backend, Holder, TestApp, psid};

/// Follows `next_cursor` to the end; returns every lead id and the size of each answer.
async fn all_pages(t: &TestApp, h: &Holder, base: &str) -> (Vec<String>, Vec<usize>) {
    let (mut ids, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let sep = if base.contains('?') { '&' } else { '?' };
        let path = match &cursor {
            Some(c) => format!("{base}{sep}cursor={c}"),
            None => base.to_owned(),
        };
        let r = t.optin(Method::GET, &path, Some(&h.token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v = r.json();
        let leads = v["leads"].as_array().expect("leads").clone();
        sizes.push(leads.len());
        for l in &leads {
            ids.push(l["id"].as_str().expect("id").to_owned());
            let keys: BTreeSet<_> = l.as_object().expect("lead").keys().cloned().collect();
            let expected: BTreeSet<_> = [
                "id",
                "status",
                "created_at",
                "last_message_at",
                "marketing_status",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect();
            assert_eq!(keys, expected);
        }
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (ids, sizes),
        }
    }
}

pub async fn leads_are_listed_by_page_and_by_status_across_pages_of_fifty(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let h = t.holder("list").await;
    t.page(&h, "2001", Some("Shop")).await;
    // In the order they came (a millisecond apart), which is the order of a filtered list.
    let mut subscribed_in_order = Vec::new();
    let mut others = BTreeSet::new();
    for i in 0..75 {
        t.clock.advance_millis(1);
        let status = if i % 5 == 0 {
            LeadStatus::Pending
        } else {
            LeadStatus::Subscribed
        };
        let lead = t.lead(&h, "2001", &psid(), status, &[Action::OptIn]).await;
        if status == LeadStatus::Subscribed {
            subscribed_in_order.push(lead.id);
        } else {
            others.insert(lead.id);
        }
    }
    let subscribed: BTreeSet<_> = subscribed_in_order.iter().cloned().collect();
    let everything: BTreeSet<_> = subscribed.union(&others).cloned().collect();

    let (ids, sizes) = all_pages(&t, &h, "/api/pages/2001/leads").await;
    assert_eq!(sizes, vec![50, 25]);
    assert_eq!(ids.len(), 75);
    assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), everything);

    let (ids, sizes) = all_pages(&t, &h, "/api/pages/2001/leads?status=subscribed").await;
    assert_eq!(sizes, vec![50, 10]);
    assert_eq!(ids, subscribed_in_order);

    let (ids, _) = all_pages(&t, &h, "/api/pages/2001/leads?status=pending").await;
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), others);
    let (ids, sizes) = all_pages(&t, &h, "/api/pages/2001/leads?status=unreachable").await;
    assert!(ids.is_empty());
    assert_eq!(sizes, vec![0]);

    // A status change moves the lead between index partitions.
    let moved = subscribed.iter().next().expect("a lead").clone();
    let r = t
        .optin(
            Method::POST,
            &format!("/api/pages/2001/leads/{moved}/unsubscribe"),
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (ids, _) = all_pages(&t, &h, "/api/pages/2001/leads?status=unsubscribed").await;
    assert_eq!(ids, vec![moved.clone()]);
    let (ids, _) = all_pages(&t, &h, "/api/pages/2001/leads?status=subscribed").await;
    assert_eq!(ids.len(), 59);
    assert!(!ids.contains(&moved));
}

pub async fn an_unknown_status_or_a_bad_cursor_is_a_400(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let h = t.holder("bad").await;
    t.page(&h, "2002", None).await;
    t.page(&h, "2003", None).await;
    for _ in 0..51 {
        t.lead(
            &h,
            "2002",
            &psid(),
            LeadStatus::Subscribed,
            &[Action::OptIn],
        )
        .await;
    }
    for status in ["active", "SUBSCRIBED", "pending,subscribed"] {
        let r = t
            .optin(
                Method::GET,
                &format!("/api/pages/2002/leads?status={status}"),
                Some(&h.token),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(r.error_code(), "invalid_status");
        // The message names every status there is, `merged` included.
        let message = r.json()["error"]["message"]
            .as_str()
            .expect("a message")
            .to_owned();
        for known in LeadStatus::ALL {
            assert!(message.contains(known.name()), "{message}");
        }
    }

    // `merged` is a status like the others: its filter answers its leads only.
    let merged = t
        .lead(&h, "2003", &psid(), LeadStatus::Merged, &[Action::OptIn])
        .await;
    t.lead(
        &h,
        "2003",
        &psid(),
        LeadStatus::Subscribed,
        &[Action::OptIn],
    )
    .await;
    let r = t
        .optin(
            Method::GET,
            "/api/pages/2003/leads?status=merged",
            Some(&h.token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let listed = r.json();
    let leads = listed["leads"].as_array().expect("leads");
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0]["id"].as_str(), Some(merged.id.as_str()));
    assert_eq!(leads[0]["status"].as_str(), Some("merged"));

    let first = t
        .optin(Method::GET, "/api/pages/2002/leads", Some(&h.token))
        .await
        .json();
    let page_cursor = first["next_cursor"].as_str().expect("a cursor").to_owned();
    let by_status = t
        .optin(
            Method::GET,
            "/api/pages/2002/leads?status=subscribed",
            Some(&h.token),
        )
        .await
        .json();
    let status_cursor = by_status["next_cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();

    let bad = [
        "/api/pages/2002/leads?cursor=not%20a%20cursor!".to_owned(),
        "/api/pages/2002/leads?cursor=eyJwayI6IngifQ".to_owned(),
        // A cursor is only good for the list that made it: not another status, not another page.
        format!("/api/pages/2002/leads?cursor={status_cursor}"),
        format!("/api/pages/2002/leads?status=subscribed&cursor={page_cursor}"),
        format!("/api/pages/2002/leads?status=pending&cursor={status_cursor}"),
        format!("/api/pages/2003/leads?cursor={page_cursor}"),
    ];
    for path in &bad {
        let r = t.optin(Method::GET, path, Some(&h.token)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(r.error_code(), "invalid_cursor");
    }
}

/// Keyset pages: each answer starts after the last lead of the one before, so leads added while a list
/// is read never make a lead appear twice or be skipped. In the unfiltered list (lead id order) a new
/// lead may fall before or after the cursor; in a status list (creation order) every new one comes after
/// it, so the list read to its end holds every lead of that status, old and new, each once.
pub async fn leads_added_while_the_list_is_read_never_repeat_or_hide_a_lead(backend: Backend) {
    let t = TestApp::spawn(backend).await;
    let h = t.holder("growing").await;
    t.page(&h, "2003", Some("Shop")).await;
    let mut existing = Vec::new();
    for _ in 0..120 {
        t.clock.advance_millis(1);
        let lead = t
            .lead(
                &h,
                "2003",
                &psid(),
                LeadStatus::Subscribed,
                &[Action::OptIn],
            )
            .await;
        existing.push(lead.id);
    }
    for base in [
        "/api/pages/2003/leads",
        "/api/pages/2003/leads?status=subscribed",
    ] {
        let mut seen = Vec::new();
        let mut added = Vec::new();
        let mut cursor = None::<String>;
        loop {
            let path = match &cursor {
                Some(c) if base.contains('?') => format!("{base}&cursor={c}"),
                Some(c) => format!("{base}?cursor={c}"),
                None => base.to_owned(),
            };
            let r = t.optin(Method::GET, &path, Some(&h.token)).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let v = r.json();
            for l in v["leads"].as_array().expect("leads") {
                seen.push(l["id"].as_str().expect("id").to_owned());
            }
            // Two more people arrive between two pages.
            for _ in 0..2 {
                t.clock.advance_millis(1);
                let lead = t
                    .lead(
                        &h,
                        "2003",
                        &psid(),
                        LeadStatus::Subscribed,
                        &[Action::OptIn],
                    )
                    .await;
                added.push(lead.id);
            }
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let unique: BTreeSet<_> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{base}: a lead was listed twice");
        for id in &existing {
            assert!(
                unique.contains(id),
                "{base}: a lead present all along was skipped"
            );
        }
        if base.contains("status") {
            // Creation order: the ones there from the start, then every one added while reading, in
            // the order they came.
            let in_order: Vec<_> = existing.iter().chain(&added).cloned().collect();
            assert_eq!(seen, in_order[..seen.len()].to_vec());
            assert_eq!(seen.len(), existing.len() + added.len() - 2);
        }
        existing.extend(added);
    }
}
