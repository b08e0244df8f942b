//! A group hosted on hospital B with patients of hospitals A and C: they join as per-group
//! pseudonyms, the doctor's announcement and the questions and answers reach every node, a removed
//! member can no longer post, and nothing about a patient but the pseudonym crosses. Three real
//! nodes on loopback, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use caremesh_domain::{Clock, Role};
use caremesh_testkit::{Backend, TestNode, on_both_backends, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    patients_of_two_hospitals_in_a_group_hosted_by_a_third,
    a_join_request_without_invite_waits_for_the_moderator,
    a_host_whose_clock_is_off_is_delivered_and_shown_on_time,
);

async fn call(
    node: &TestNode,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = node
        .http
        .request(method.parse().unwrap(), node.url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn feed_bodies(node: &TestNode, token: &str, gid: &str) -> Vec<String> {
    let (status, page) = call(
        node,
        "GET",
        &format!("/api/v1/groups/{gid}/posts"),
        token,
        None,
    )
    .await;
    if status != StatusCode::OK {
        return Vec::new();
    }
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["body"].as_str().unwrap().to_owned())
        .collect()
}

async fn mesh(nodes: &[&TestNode]) {
    for a in nodes {
        for b in nodes {
            if a.authority() != b.authority() {
                a.add_partner(b).await;
            }
        }
    }
}

async fn join(node: &TestNode, token: &str, group_url: &str, name: &str, invite: &str) -> String {
    let (status, body) = call(
        node,
        "POST",
        "/api/v1/remote-groups",
        token,
        Some(json!({ "group": group_url, "display_name": name, "invite": invite })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["state"], "pending");
    body["group"].as_str().unwrap().to_owned()
}

async fn patients_of_two_hospitals_in_a_group_hosted_by_a_third(b: Backend) {
    let Some(a) = TestNode::spawn_with(b, |c| c.hospital_name = "Hospital A".into()).await else {
        return;
    };
    let Some(host) = TestNode::spawn_with(b, |c| c.hospital_name = "Hospital B".into()).await
    else {
        return;
    };
    let Some(c) = TestNode::spawn_with(b, |c| c.hospital_name = "Hospital C".into()).await else {
        return;
    };
    mesh(&[&a, &host, &c]).await;

    // On B: a doctor creates the group and an invite link.
    let doctor = host.account_with_token(Role::Doctor, "dr.li").await;
    let (status, group) = call(
        &host,
        "POST",
        "/api/v1/groups",
        &doctor,
        Some(json!({ "name": "心衰康复 · 唐山", "condition": "心力衰竭", "city": "唐山", "language": "zh-CN" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    let gid = group["id"].as_str().unwrap().to_owned();
    let group_url = host.federation.urls.group(&gid);
    let (status, invite) = call(
        &host,
        "POST",
        &format!("/api/v1/groups/{gid}/invites"),
        &doctor,
        Some(json!({ "max_uses": 10 })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    let invite_token = invite["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();

    // Patients of A and C join through their own nodes, under names chosen for this group.
    a.create_account(Role::Patient, "wang.xiaoli", "patient password")
        .await;
    let pa = a.login("wang.xiaoli", "patient password").await;
    c.create_account(Role::Patient, "zhao.min", "patient password")
        .await;
    let pc = c.login("zhao.min", "patient password").await;
    let mirror_a = join(&a, &pa, &group_url, "康复中的小李", &invite_token).await;
    let mirror_c = join(&c, &pc, &group_url, "老赵", &invite_token).await;
    for (node, token, gid) in [(&a, &pa, &mirror_a), (&c, &pc, &mirror_c)] {
        wait_for("the host's Accept", || async {
            call(node, "GET", &format!("/api/v1/groups/{gid}"), token, None)
                .await
                .0
                == StatusCode::OK
        })
        .await;
    }
    let (_, g) = call(&a, "GET", &format!("/api/v1/groups/{mirror_a}"), &pa, None).await;
    assert_eq!(g["name"], "心衰康复 · 唐山");
    assert_eq!(g["hosted_here"], false);

    // The doctor's announcement reaches both patients' nodes.
    let (status, _) = call(
        &host,
        "POST",
        &format!("/api/v1/groups/{gid}/posts"),
        &doctor,
        Some(json!({ "kind": "announcement", "title": "本周讲座", "body": "周三晚八点讲利尿剂的用法" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    for (node, token, gid) in [(&a, &pa, &mirror_a), (&c, &pc, &mirror_c)] {
        wait_for("the announcement", || async {
            feed_bodies(node, token, gid)
                .await
                .contains(&"周三晚八点讲利尿剂的用法".to_owned())
        })
        .await;
    }

    // A's patient asks on A; the host stores it and forwards it to C.
    let (status, q) = call(
        &a,
        "POST",
        &format!("/api/v1/groups/{mirror_a}/posts"),
        &pa,
        Some(json!({ "kind": "question", "body": "晚上腿肿要紧吗？" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{q}");
    wait_for("the question on the host", || async {
        feed_bodies(&host, &doctor, &gid)
            .await
            .contains(&"晚上腿肿要紧吗？".to_owned())
    })
    .await;
    wait_for("the question on C", || async {
        feed_bodies(&c, &pc, &mirror_c)
            .await
            .contains(&"晚上腿肿要紧吗？".to_owned())
    })
    .await;
    let (_, host_feed) = call(
        &host,
        "GET",
        &format!("/api/v1/groups/{gid}/posts"),
        &doctor,
        None,
    )
    .await;
    let question = host_feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["body"] == "晚上腿肿要紧吗？")
        .unwrap()
        .clone();
    assert_eq!(question["author"]["name"], "康复中的小李", "{question}");

    // The doctor answers on B; the answer reaches A, in the question's thread.
    let (status, _) = call(
        &host,
        "POST",
        &format!(
            "/api/v1/groups/{gid}/posts/{}/replies",
            question["id"].as_str().unwrap()
        ),
        &doctor,
        Some(json!({ "body": "抬高双腿，记录体重，三天增加两公斤请就诊。" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, a_feed) = call(
        &a,
        "GET",
        &format!("/api/v1/groups/{mirror_a}/posts"),
        &pa,
        None,
    )
    .await;
    let a_question = a_feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["body"] == "晚上腿肿要紧吗？")
        .unwrap()
        .clone();
    let replies_path = format!(
        "/api/v1/groups/{mirror_a}/posts/{}/replies",
        a_question["id"].as_str().unwrap()
    );
    wait_for("the answer on A", || async {
        let (_, r) = call(&a, "GET", &replies_path, &pa, None).await;
        r["items"].as_array().is_some_and(|i| {
            i.iter()
                .any(|p| p["body"] == "抬高双腿，记录体重，三天增加两公斤请就诊。")
        })
    })
    .await;

    // C's patient asks, then deletes the question: it disappears on the host and on A too.
    let (status, oops) = call(
        &c,
        "POST",
        &format!("/api/v1/groups/{mirror_c}/posts"),
        &pc,
        Some(json!({ "kind": "question", "body": "发错群了" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    wait_for("the mistaken question on A", || async {
        feed_bodies(&a, &pa, &mirror_a)
            .await
            .contains(&"发错群了".to_owned())
    })
    .await;
    let (status, _) = call(
        &c,
        "DELETE",
        &format!(
            "/api/v1/groups/{mirror_c}/posts/{}",
            oops["id"].as_str().unwrap()
        ),
        &pc,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let deleted_everywhere = || async {
        let gone = |items: Value| {
            items["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["body"] != "发错群了" || p["deleted"] == true)
        };
        let (_, h) = call(
            &host,
            "GET",
            &format!("/api/v1/groups/{gid}/posts"),
            &doctor,
            None,
        )
        .await;
        let (_, x) = call(
            &a,
            "GET",
            &format!("/api/v1/groups/{mirror_a}/posts"),
            &pa,
            None,
        )
        .await;
        gone(h) && gone(x)
    };
    wait_for("the deletion on the host and on A", deleted_everywhere).await;

    // A host cannot alter a member's post in transit: C refuses an Announce whose forwarded
    // Create no longer matches its author's proof, and stores nothing.
    let original = host
        .store
        .received_activities(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.peer == a.authority() && r.payload.contains("晚上腿肿要紧吗"))
        .unwrap();
    let mut altered: Value = serde_json::from_str(&original.payload).unwrap();
    altered["object"]["content"] = json!("医生说可以停药");
    let forged = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": host.federation.urls.activity("forged-announce"),
        "type": "Announce",
        "actor": group_url,
        "object": altered,
    });
    let before_c = c.store.received_activities(0, 1000).await.unwrap().len();
    let (status, body) = host.deliver_raw(&c, forged.to_string().as_bytes()).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("proof_invalid")),
        "{body}"
    );
    assert_eq!(
        c.store.received_activities(0, 1000).await.unwrap().len(),
        before_c
    );
    assert!(
        !feed_bodies(&c, &pc, &mirror_c)
            .await
            .contains(&"医生说可以停药".to_owned())
    );

    // Group content is not served to other nodes on request: it only travels to members' nodes.
    let object = host
        .federation
        .urls
        .object(question["id"].as_str().unwrap());
    let err = c.federation.client.get_json(&object).await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");

    // Privacy: nothing B received from A names the patient's account.
    let from_a: Vec<String> = host
        .store
        .received_activities(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.peer == a.authority())
        .map(|r| r.payload)
        .collect();
    assert!(from_a.len() >= 2, "the Follow and the question came from A");
    for payload in &from_a {
        for secret in ["wang.xiaoli", "(display)", "/users/wang"] {
            assert!(
                !payload.contains(secret),
                "{secret} crossed to B: {payload}"
            );
        }
    }
    let pseudonym = from_a.iter().find(|p| p.contains("\"Follow\"")).unwrap();
    let actor: Value = serde_json::from_str(pseudonym).unwrap();
    let actor_id = actor["actor"].as_str().unwrap();
    assert!(actor_id.contains("/pseudonyms/"), "{actor_id}");
    let actor_doc = host
        .store
        .remote_actor(actor_id)
        .await
        .unwrap()
        .unwrap()
        .document;
    assert!(
        actor_doc.contains("康复中的小李") && !actor_doc.contains("wang.xiaoli"),
        "{actor_doc}"
    );

    // The doctor removes C's patient; their next post is refused by the host and reaches nobody.
    let (_, members) = call(
        &host,
        "GET",
        &format!("/api/v1/groups/{gid}/members"),
        &doctor,
        None,
    )
    .await;
    let zhao = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["display_name"] == "老赵")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, body) = call(
        &host,
        "DELETE",
        &format!("/api/v1/groups/{gid}/members/{zhao}"),
        &doctor,
        None,
    )
    .await;
    assert!(status.is_success(), "{body}");
    let (status, _) = call(
        &c,
        "POST",
        &format!("/api/v1/groups/{mirror_c}/posts"),
        &pc,
        Some(json!({ "kind": "question", "body": "被移除后还能发吗？" })),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "stored on the patient's own node"
    );
    wait_for("the host to refuse the removed member's post", || async {
        c.store
            .parked_entries(10)
            .await
            .unwrap()
            .iter()
            .any(|e| e.last_error.as_deref().unwrap_or("").contains("403"))
    })
    .await;
    assert!(
        !feed_bodies(&host, &doctor, &gid)
            .await
            .contains(&"被移除后还能发吗？".to_owned())
    );
    assert!(
        !feed_bodies(&a, &pa, &mirror_a)
            .await
            .contains(&"被移除后还能发吗？".to_owned())
    );

    // A's patient leaves: the host learns it, and A, with no member left, receives nothing more.
    let (status, _) = call(
        &a,
        "POST",
        &format!("/api/v1/groups/{mirror_a}/leave"),
        &pa,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let host_group = host.store.group_by_public_id(&gid).await.unwrap();
    wait_for("the host to see the patient leave", || async {
        host.store
            .remote_member_actors(host_group.id)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let before = a.store.received_activities(0, 1000).await.unwrap().len();
    let (status, _) = call(
        &host,
        "POST",
        &format!("/api/v1/groups/{gid}/posts"),
        &doctor,
        Some(json!({ "kind": "announcement", "body": "离开之后的通知" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        a.store.received_activities(0, 1000).await.unwrap().len(),
        before
    );
    let queues = host.store.peer_queues().await.unwrap();
    assert!(
        queues.iter().all(|q| q.pending == 0),
        "nothing queued for nodes without members: {queues:?}"
    );
}

async fn a_join_request_without_invite_waits_for_the_moderator(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(host) = TestNode::spawn(b).await else {
        return;
    };
    mesh(&[&a, &host]).await;
    let doctor = host.account_with_token(Role::Doctor, "dr.li").await;
    let (_, group) = call(
        &host,
        "POST",
        "/api/v1/groups",
        &doctor,
        Some(json!({ "name": "卒中康复", "condition": "脑卒中", "city": "广州", "language": "zh-CN" })),
    )
    .await;
    let gid = group["id"].as_str().unwrap().to_owned();
    let group_url = host.federation.urls.group(&gid);
    a.create_account(Role::Patient, "chen.jie", "patient password")
        .await;
    let pa = a.login("chen.jie", "patient password").await;
    let (status, body) = call(
        &a,
        "POST",
        "/api/v1/remote-groups",
        &pa,
        Some(json!({ "group": group_url, "display_name": "陈阿姨" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mirror = body["group"].as_str().unwrap().to_owned();
    // The request waits on the host; the patient cannot read the group meanwhile.
    let requests_path = format!("/api/v1/groups/{gid}/join-requests");
    wait_for("the request on the host", || async {
        let (_, r) = call(&host, "GET", &requests_path, &doctor, None).await;
        r["items"].as_array().is_some_and(|i| i.len() == 1)
    })
    .await;
    assert_eq!(
        call(&a, "GET", &format!("/api/v1/groups/{mirror}"), &pa, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (_, r) = call(&host, "GET", &requests_path, &doctor, None).await;
    let request = &r["items"][0];
    assert_eq!(request["display_name"], "陈阿姨");
    let mid = request["id"].as_i64().unwrap();
    let (status, _) = call(
        &host,
        "POST",
        &format!("{requests_path}/{mid}/approve"),
        &doctor,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    wait_for("the approval on the patient's node", || async {
        call(&a, "GET", &format!("/api/v1/groups/{mirror}"), &pa, None)
            .await
            .0
            == StatusCode::OK
    })
    .await;
}

/// The partner's clock minus this node's, as `node`'s metrics show it.
async fn clock_skew_metric(node: &TestNode, partner: &TestNode) -> Option<i64> {
    let text = node
        .http
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!(
        "caremesh_partner_clock_skew_seconds{{partner=\"{}\"}} ",
        partner.authority()
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map(|v| v.parse().unwrap())
}

/// A group's host whose clock runs ahead: four minutes ahead, its doctor's announcement is shown
/// on the member's node at once, at the time it arrived; ten minutes ahead, its deliveries are
/// refused for their date and wait (never parked) until the clocks agree again, then arrive with
/// nobody doing anything. The member's node measures the skew (metrics; the admin's partner page).
async fn a_host_whose_clock_is_off_is_delivered_and_shown_on_time(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(host) = TestNode::spawn(b).await else {
        return;
    };
    mesh(&[&a, &host]).await;
    let doctor = host.account_with_token(Role::Doctor, "dr.li").await;
    let (_, group) = call(
        &host,
        "POST",
        "/api/v1/groups",
        &doctor,
        Some(json!({ "name": "心衰康复", "condition": "心力衰竭", "city": "唐山", "language": "zh-CN" })),
    )
    .await;
    let gid = group["id"].as_str().unwrap().to_owned();
    let group_url = host.federation.urls.group(&gid);
    let (_, invite) = call(
        &host,
        "POST",
        &format!("/api/v1/groups/{gid}/invites"),
        &doctor,
        Some(json!({ "max_uses": 10 })),
    )
    .await;
    let invite_token = invite["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    a.create_account(Role::Patient, "wang.xiaoli", "patient password")
        .await;
    let pa = a.login("wang.xiaoli", "patient password").await;
    let mirror = join(&a, &pa, &group_url, "小李", &invite_token).await;
    wait_for("the host's Accept", || async {
        call(&a, "GET", &format!("/api/v1/groups/{mirror}"), &pa, None)
            .await
            .0
            == StatusCode::OK
    })
    .await;
    let announce = |body: &'static str| {
        let (host, doctor, gid) = (&host, &doctor, &gid);
        async move {
            let (status, post) = call(
                host,
                "POST",
                &format!("/api/v1/groups/{gid}/posts"),
                doctor,
                Some(json!({ "kind": "announcement", "body": body })),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{post}");
            host.federation.urls.object(post["id"].as_str().unwrap())
        }
    };
    let mirrored = a
        .store
        .group_by_remote_actor(&group_url)
        .await
        .unwrap()
        .unwrap();

    // Four minutes ahead: accepted, and shown at once, as published when it arrived.
    host.clock.advance_secs(240);
    let early = announce("四分钟后的公告").await;
    wait_for("the announcement on A, at once", || async {
        feed_bodies(&a, &pa, &mirror)
            .await
            .contains(&"四分钟后的公告".to_owned())
    })
    .await;
    let stored = a
        .store
        .post_by_origin(mirrored.id, &early)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.publish_at <= a.clock.now(),
        "published at {:?}, received by {:?}",
        stored.publish_at,
        a.clock.now()
    );
    let skew = clock_skew_metric(&a, &host).await.unwrap();
    assert!((235..=245).contains(&skew), "{skew}");

    // Ten minutes ahead: refused for its date, retried, never parked.
    host.clock.advance_secs(360);
    announce("十分钟后的公告").await;
    wait_for("the host to be refused for its date", || async {
        host.store.peer_queues().await.unwrap().iter().any(|q| {
            q.peer == a.authority()
                && q.consecutive_failures >= 2
                && q.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("signature_expired"))
        })
    })
    .await;
    assert!(host.store.parked_entries(10).await.unwrap().is_empty());
    assert!(
        !feed_bodies(&a, &pa, &mirror)
            .await
            .contains(&"十分钟后的公告".to_owned())
    );
    let skew = clock_skew_metric(&a, &host).await.unwrap();
    assert!((595..=605).contains(&skew), "{skew}");

    // The clocks agree again: the waiting announcement arrives, nobody retries by hand.
    a.clock.advance_secs(600);
    wait_for("the waiting announcement on A", || async {
        feed_bodies(&a, &pa, &mirror)
            .await
            .contains(&"十分钟后的公告".to_owned())
    })
    .await;
    assert!(host.store.parked_entries(10).await.unwrap().is_empty());
    let skew = clock_skew_metric(&a, &host).await.unwrap();
    assert!(skew.abs() <= 5, "{skew}");
}
