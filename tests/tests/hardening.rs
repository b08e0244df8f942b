//! What an outside review of running nodes broke, each on real nodes over loopback and on both
//! backends: a banned doctor editing a post by naming another group (or none) or by sending the
//! edit past the host to a member's node; partners telling patients' names from unknown ones by
//! the answer to `/users/{name}`; a host's own patients crossing under their sign-up name; clients that open connections and send nothing, or stop
//! half-way through their headers or a body.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use caremesh_domain::{Clock, Role};
use caremesh_testkit::{Backend, TestNode, on_both_backends, wait_for};
use common::mesh::{find, invite, join_remote, mesh, node};
use common::{call, expect, get, post};
use serde_json::{Value, json};

on_both_backends!(
    a_banned_doctor_cannot_edit_through_another_group_or_past_the_host,
    patients_and_unknown_names_look_the_same_to_partners,
    the_hosts_own_patients_cross_under_a_neutral_name_and_renames_follow,
    a_key_id_naming_any_path_of_a_partner_fetches_nothing,
);

/// The member id of `name` in a group of `node`.
async fn member_id(node: &TestNode, token: &str, gid: &str, name: &str) -> i64 {
    let members = expect(
        get(node, token, &format!("/api/v1/groups/{gid}/members")).await,
        200,
    );
    members["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["display_name"] == name)
        .unwrap_or_else(|| panic!("no member {name} in {members}"))["id"]
        .as_i64()
        .unwrap()
}

/// The document a node keeps of a federated object.
async fn stored_doc(node: &TestNode, id: &str) -> Value {
    let o = node.store.federated_object(id).await.unwrap().unwrap();
    serde_json::from_str(o.document.as_deref().unwrap()).unwrap()
}

async fn a_banned_doctor_cannot_edit_through_another_group_or_past_the_host(b: Backend) {
    let Some(a) = node(b, "Hospital A").await else {
        return;
    };
    let Some(host) = node(b, "Hospital B").await else {
        return;
    };
    let Some(c) = node(b, "Hospital C").await else {
        return;
    };
    mesh(&[&a, &host, &c]).await;

    // B hosts two groups; A's doctor is a member of both, C's patient of the first.
    let li = host.account_with_token(Role::Doctor, "dr.li").await;
    let g1 = common::create_group(&host, &li, "心衰康复 · 唐山").await;
    let g2 = common::create_group(&host, &li, "高血压 · 唐山").await;
    let g1_url = host.federation.urls.group(&g1);
    let g2_url = host.federation.urls.group(&g2);
    let zhang = a.account_with_token(Role::Doctor, "dr.zhang").await;
    let a_g1 = join_remote(&a, &zhang, &g1_url, "", &invite(&host, &li, &g1).await).await;
    join_remote(&a, &zhang, &g2_url, "", &invite(&host, &li, &g2).await).await;
    let pc = c.account_with_token(Role::Patient, "wang.xiaoli").await;
    let c_g1 = join_remote(&c, &pc, &g1_url, "小李", &invite(&host, &li, &g1).await).await;

    // A's doctor posts in the first group; B and C show it.
    expect(
        post(
            &a,
            &zhang,
            &format!("/api/v1/groups/{a_g1}/posts"),
            json!({ "kind": "question", "body": "原来的内容" }),
        )
        .await,
        201,
    );
    wait_for("the post on B and on C", || async {
        !find(&host, &li, &g1, "原来的内容").await.is_null()
            && !find(&c, &pc, &c_g1, "原来的内容").await.is_null()
    })
    .await;
    let on_b = find(&host, &li, &g1, "原来的内容").await;
    let group_b = host.store.group_by_public_id(&g1).await.unwrap();
    let stored = host
        .store
        .post_by_public_id(group_b.id, on_b["id"].as_str().unwrap(), None)
        .await
        .unwrap();
    let object_id = stored.origin_id.clone().expect("a post written on A");
    let original = stored_doc(&host, &object_id).await;
    assert_eq!(original["context"], g1_url.as_str());

    // B's owner bans A's doctor from the first group; the second is unchanged.
    let id = member_id(&host, &li, &g1, "dr.zhang (display)").await;
    expect(
        post(
            &host,
            &li,
            &format!("/api/v1/groups/{g1}/members/{id}/ban"),
            json!({ "reason": "广告" }),
        )
        .await,
        200,
    );

    // What a misbehaving node A could send: the doctor's edit of that post, signed by the doctor,
    // naming the second group (where the doctor is active), no group, the first group, or sent
    // straight to C past the host.
    let actor = a.federation.urls.person("dr.zhang");
    let edit = |n: u32, context: Option<&str>| {
        let mut note = original.clone();
        note["content"] = json!(format!("改过的内容 {n}"));
        note["updated"] = json!(a.clock.now().plus_secs(i64::from(n)).to_rfc3339());
        match context {
            Some(ctx) => note["context"] = json!(ctx),
            None => {
                note.as_object_mut().unwrap().remove("context");
            }
        }
        json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/data-integrity/v2"],
            "id": a.federation.urls.activity(&format!("forged-update-{n}")),
            "type": "Update",
            "actor": actor,
            "object": note,
        })
    };
    let attempts: [(&TestNode, Option<&str>); 4] = [
        (&host, Some(g2_url.as_str())),
        (&host, None),
        (&host, Some(g1_url.as_str())),
        (&c, Some(g1_url.as_str())),
    ];
    for (n, (to, context)) in attempts.into_iter().enumerate() {
        let n = u32::try_from(n).unwrap() + 1;
        let signed = a
            .federation
            .sign_as(&actor, &edit(n, context))
            .await
            .unwrap();
        let (status, body) = a
            .deliver_raw(to, serde_json::to_string(&signed).unwrap().as_bytes())
            .await;
        assert_eq!(
            status,
            403,
            "edit {n} to {} naming {context:?}: {body}",
            to.authority()
        );
        assert!(
            to.store
                .received_activities(0, 10_000)
                .await
                .unwrap()
                .iter()
                .all(|r| !r.activity_id.contains("forged-update")),
            "a refused edit is not recorded"
        );
    }

    // Neither B nor C changed the post, nor what they keep of its object.
    for (node, token, gid) in [(&host, &li, &g1), (&c, &pc, &c_g1)] {
        assert!(
            !find(node, token, gid, "原来的内容").await.is_null(),
            "the post is unchanged on {}",
            node.authority()
        );
        assert_eq!(
            stored_doc(node, &object_id).await["content"],
            original["content"]
        );
    }
    let stored = host
        .store
        .post_by_public_id(group_b.id, &stored.public_id, None)
        .await
        .unwrap();
    assert_eq!(stored.body, "原来的内容");
    assert!(stored.edited_at.is_none());
}

/// A signed GET from `from` of a path of `to`, as a partner's node would send it.
async fn signed_get(from: &TestNode, to: &TestNode, path: &str) -> (u16, String) {
    let (key_id, key) = from.federation.keys.instance_key().await.unwrap();
    let resp = from
        .signed_request(reqwest::Method::GET, to, path, b"", &key_id, &key)
        .header("accept", "application/activity+json")
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn patients_and_unknown_names_look_the_same_to_partners(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(bn) = TestNode::spawn(b).await else {
        return;
    };
    a.add_partner(&bn).await;
    bn.add_partner(&a).await;
    a.create_account(Role::Patient, "patient.zhao", "patient password")
        .await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    let admin = a.account_with_token(Role::Admin, "admin").await;
    a.create_account(Role::Doctor, "dr.gone", "doctor password")
        .await;
    expect(
        post(
            &a,
            &admin,
            "/api/v1/admin/accounts/dr.gone/disable",
            json!({}),
        )
        .await,
        200,
    );

    let (status, doc) = signed_get(&bn, &a, "/users/dr.wang").await;
    assert_eq!(status, 200, "{doc}");
    let unknown = signed_get(&bn, &a, "/users/nobody.here").await;
    assert_eq!(unknown.0, 404);
    for name in ["patient.zhao", "dr.gone"] {
        assert_eq!(
            signed_get(&bn, &a, &format!("/users/{name}")).await,
            unknown,
            "{name} answers as an unknown name does"
        );
    }
    // WebFinger (public) the same.
    let wf = |name: &str| {
        let url = a.url(&format!(
            "/.well-known/webfinger?resource=acct:{name}@{}",
            a.authority()
        ));
        let http = a.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let unknown = wf("nobody.here").await;
    assert_eq!(unknown.0, 404);
    assert_eq!(wf("patient.zhao").await, unknown);
    assert_eq!(wf("dr.gone").await, unknown);
    assert_eq!(wf("dr.wang").await.0, 200);
}

/// Opens a connection to `node` and sends `bytes`, then nothing more.
async fn stalled(node: &TestNode, bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut s = tokio::net::TcpStream::connect(node.config.listen)
        .await
        .unwrap();
    s.write_all(bytes).await.unwrap();
    s
}

/// Whether the node ends the connection (or answers and ends it) within `secs`.
async fn closed_within(mut s: tokio::net::TcpStream, secs: u64) -> bool {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Slow or silent clients cannot hold the node's connections: headers not sent in time and bodies
/// that stop are cut off, and at most `http.max_connections` are served at once while the rest
/// wait, so the node keeps answering everyone else.
#[tokio::test]
async fn silent_and_half_sent_requests_are_cut_off_and_connections_are_bounded() {
    let Some(node) = TestNode::spawn_with(Backend::Sqlite, |c| {
        c.http.max_connections = 8;
        c.http.header_read_timeout_secs = 2;
        c.http.body_idle_timeout_secs = 2;
    })
    .await
    else {
        return;
    };
    // Eight clients: silent ones, one that stops in the middle of its headers, one in its body.
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(stalled(&node, b"").await);
    }
    held.push(stalled(&node, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await);
    held.push(
        stalled(
            &node,
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"username\":",
        )
        .await,
    );
    // They hold every connection the node serves: the next client waits, and is answered once
    // they are cut off.
    let http = reqwest::Client::new();
    let waiting = tokio::spawn({
        let url = node.url("/healthz");
        async move {
            let started = std::time::Instant::now();
            let status = http.get(url).send().await.unwrap().status();
            (status, started.elapsed())
        }
    });
    let mut closed = Vec::new();
    for s in held {
        closed.push(tokio::spawn(closed_within(s, 10)));
    }
    for c in closed {
        assert!(c.await.unwrap(), "a stalled connection was left open");
    }
    let (status, waited) = waiting.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        waited >= std::time::Duration::from_millis(500),
        "the ninth client was served while eight connections were held ({waited:?})"
    );
    // And the node answers as before.
    let ok = node.http.get(node.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

/// A patient of the host who chose no name for the group crosses to the other nodes under a
/// neutral one, never their account's (perhaps real) name; a name they choose later reaches the
/// posts the other nodes already store.
async fn the_hosts_own_patients_cross_under_a_neutral_name_and_renames_follow(b: Backend) {
    let Some(a) = node(b, "Hospital A").await else {
        return;
    };
    let Some(host) = node(b, "Hospital B").await else {
        return;
    };
    mesh(&[&a, &host]).await;
    let li = host.account_with_token(Role::Doctor, "dr.li").await;
    let g = common::create_group(&host, &li, "心衰康复 · 唐山").await;
    let g_url = host.federation.urls.group(&g);
    let token = invite(&host, &li, &g).await;
    // B's own patient, whose account name is what they signed up with.
    let zhao = host.account_with_token(Role::Patient, "zhao.real").await;
    expect(
        post(
            &host,
            &zhao,
            &format!("/api/v1/group-invites/{token}/accept"),
            json!({}),
        )
        .await,
        201,
    );
    let pa = a.account_with_token(Role::Patient, "wang.xiaoli").await;
    let a_g = join_remote(&a, &pa, &g_url, "小李", &token).await;
    // The join request's id tells the host nothing: not when it was made.
    let follows: Vec<String> = host
        .store
        .received_activities(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.payload.contains("\"Follow\""))
        .map(|r| r.activity_id)
        .collect();
    assert_eq!(follows.len(), 1);
    let tail = follows[0].rsplit("follow-").next().unwrap();
    assert!(
        !tail
            .split('-')
            .any(|p| p.len() >= 10 && p.bytes().all(|b| b.is_ascii_digit())),
        "a time in {}",
        follows[0]
    );
    expect(
        post(
            &host,
            &zhao,
            &format!("/api/v1/groups/{g}/posts"),
            json!({ "kind": "question", "body": "我是本院的病人" }),
        )
        .await,
        201,
    );
    wait_for("the post on A", || async {
        !find(&a, &pa, &a_g, "我是本院的病人").await.is_null()
    })
    .await;
    let on_a = find(&a, &pa, &a_g, "我是本院的病人").await;
    let shown = on_a["author"]["name"].as_str().unwrap().to_owned();
    assert!(shown.starts_with("病友 "), "{on_a}");
    assert!(
        !shown.contains("zhao"),
        "the account's name stays home: {on_a}"
    );
    // Nothing A stores names the account.
    for r in a.store.received_activities(0, 10_000).await.unwrap() {
        assert!(!r.payload.contains("zhao.real"), "{}", r.payload);
    }
    // The host's page shows the host's own members as before.
    let on_b = find(&host, &li, &g, "我是本院的病人").await;
    assert_eq!(on_b["author"]["name"], "zhao.real (display)");

    // The patient chooses a name: A shows it on the post it already has.
    expect(
        call(
            &host,
            Some(&zhao),
            reqwest::Method::PUT,
            &format!("/api/v1/groups/{g}/me"),
            Some(json!({ "display_name": "老赵" })),
        )
        .await,
        200,
    );
    wait_for("the new name on A", || async {
        find(&a, &pa, &a_g, "我是本院的病人").await["author"]["name"] == "老赵"
    })
    .await;
}

/// Anybody may send the inbox a request whose `keyId` names a partner: the node fetches keys
/// only from the addresses of actors, so such a request cannot make it send a signed GET to any
/// other path of the partner (its API, its files).
async fn a_key_id_naming_any_path_of_a_partner_fetches_nothing(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(bn) = TestNode::spawn(b).await else {
        return;
    };
    a.add_partner(&bn).await;
    bn.add_partner(&a).await;
    let stranger = caremesh_protocol::KeyPair::from_seed(&[9u8; 32]);
    let body = serde_json::to_vec(&json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": a.url("/activities/forged-1"),
        "type": "Like",
        "actor": a.url("/actor"),
        "object": a.url("/objects/x"),
    }))
    .unwrap();
    for (path, route) in [
        ("/api/v1/admin/accounts", "/api/v1/admin/accounts"),
        ("/users/dr.wang/inbox", "/users/{username}/inbox"),
        ("/media/0000", "/media/{sha256}"),
    ] {
        let key_id = format!("{}#main-key", a.url(path));
        // Sent by anybody (here from A's address) with a stranger's key.
        let resp = a
            .signed_request(
                reqwest::Method::POST,
                &bn,
                "/inbox",
                &body,
                &key_id,
                &stranger,
            )
            .header("content-type", "application/activity+json")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["error"], "key_unavailable", "{path}: {answer}");
        assert_eq!(
            a.requests_served("GET", route).await,
            0,
            "B sent a GET of {path} to A"
        );
    }
    // A real key is fetched as before: B still verifies A's deliveries.
    let (status, body) = a
        .deliver_raw(
            &bn,
            serde_json::to_string(&json!({
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": a.url("/activities/real-1"),
                "type": "Like",
                "actor": a.url("/actor"),
                "object": bn.url("/objects/none"),
            }))
            .unwrap()
            .as_bytes(),
        )
        .await;
    assert_ne!(status, 401, "{body}");
    assert!(a.requests_served("GET", "/actor").await >= 1);
}
