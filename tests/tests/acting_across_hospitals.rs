//! A group hosted on hospital B whose doctor and moderator belong to hospital C, with a patient
//! of hospital A: three real nodes on loopback (the host on PostgreSQL in the PostgreSQL run).
//! What C's staff decide from C's own node (pins, accepted answers, removals of posts and
//! members, the library) goes to the host, which checks their role against its own records,
//! applies it and tells every node; where the host refuses, C shows why and nothing diverges.
//! A report made on A reaches B's moderators. A credential C revokes suspends its doctor's
//! teaching on every node until it is restored. No activity goes back to the node it came
//! from, nothing is parked, and A shows the group as B has it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use caremesh_domain::Role;
use caremesh_testkit::{Backend, TestNode, on_both_backends, wait_for};
use common::mesh::{feed, find, invite, join_remote, mesh, node, replies};
use common::{call, expect, get, post};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(staff_of_another_hospital_act_on_a_group_through_its_host);

const CREDENTIAL: &str = "/api/v1/admin/accounts/dr.zhang/credential";

fn credential() -> Value {
    json!({
        "title": "主任医师", "specialty": "心血管内科", "licence_number": "110108",
        "checked_on": "2026-11-20", "valid_until": "2027-11-20T00:00:00Z"
    })
}

/// The id a member's node knows a post of the group by (its own public id), by the post's text.
async fn id_of(node: &TestNode, token: &str, gid: &str, body: &str) -> String {
    let p = find(node, token, gid, body).await;
    p["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no post {body:?} on {}", node.authority()))
        .to_owned()
}

/// Sends an action that the group is hosted elsewhere: the answer is 202, `sent_to_host`.
#[track_caller]
fn sent(got: (reqwest::StatusCode, Value)) -> Value {
    let body = expect(got, 202);
    assert_eq!(body["status"], "sent_to_host", "{body}");
    assert_eq!(body["request"]["state"], "pending", "{body}");
    body["request"].clone()
}

/// The state of a request, as the sender's node shows it.
async fn request(node: &TestNode, token: &str, gid: &str, id: i64) -> Value {
    let page = expect(
        get(node, token, &format!("/api/v1/groups/{gid}/requests")).await,
        200,
    );
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

async fn answered(node: &TestNode, token: &str, gid: &str, id: i64) -> Value {
    wait_for("the host's answer", || async {
        request(node, token, gid, id).await["state"] != "pending"
    })
    .await;
    request(node, token, gid, id).await
}

async fn library_titles(node: &TestNode, token: &str, gid: &str) -> Vec<String> {
    let page = expect(
        get(node, token, &format!("/api/v1/groups/{gid}/library/items")).await,
        200,
    );
    let mut out: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| format!("{}/{}", i["folder_name"], i["title"]))
        .collect();
    out.sort();
    out
}

async fn staff_of_another_hospital_act_on_a_group_through_its_host(b: Backend) {
    let Some(a) = node(Backend::Sqlite, "Hospital A").await else {
        return;
    };
    let Some(host) = node(b, "Hospital B").await else {
        return;
    };
    let Some(c) = node(Backend::Sqlite, "Hospital C").await else {
        return;
    };
    mesh(&[&a, &host, &c]).await;

    // C's doctor, with the credential C checked, and a nurse of C.
    let admin_c = c.account_with_token(Role::Admin, "admin").await;
    let zhang = c.account_with_token(Role::Doctor, "dr.zhang").await;
    let nurse = c.account_with_token(Role::Staff, "nurse.chen").await;
    expect(
        call(
            &c,
            Some(&admin_c),
            Method::PUT,
            CREDENTIAL,
            Some(credential()),
        )
        .await,
        200,
    );

    // B hosts the group; A's patient and C's staff join it from their own nodes.
    let li = host.account_with_token(Role::Doctor, "dr.li").await;
    let g = common::create_group(&host, &li, "心衰康复 · 唐山").await;
    let g_url = host.federation.urls.group(&g);
    let token = invite(&host, &li, &g).await;
    let pa = a.account_with_token(Role::Patient, "wang.xiaoli").await;
    let a_g = join_remote(&a, &pa, &g_url, "康复中的小李", &token).await;
    let c_g = join_remote(&c, &zhang, &g_url, "", &token).await;
    let c_g_nurse = join_remote(&c, &nurse, &g_url, "", &token).await;
    assert_eq!(c_g, c_g_nurse, "one mirror of the group on C");

    // B's owner makes C's doctor a doctor of the group and C's nurse a moderator.
    let members = expect(
        get(&host, &li, &format!("/api/v1/groups/{g}/members")).await,
        200,
    );
    let member_id = |name: &str| {
        members["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["display_name"] == name)
            .unwrap_or_else(|| panic!("no member {name} in {members}"))["id"]
            .as_i64()
            .unwrap()
    };
    common::set_role(&host, &li, &g, member_id("dr.zhang (display)"), "doctor").await;
    common::set_role(
        &host,
        &li,
        &g,
        member_id("nurse.chen (display)"),
        "moderator",
    )
    .await;
    for (t, role) in [(&zhang, "doctor"), (&nurse, "moderator")] {
        wait_for("C to learn its staff's roles", || async {
            get(&c, t, &format!("/api/v1/groups/{c_g}")).await.1["my_role"] == role
        })
        .await;
    }

    // A shows the group as its host has it: its condition code and its members on every node.
    let on_b = expect(get(&host, &li, &format!("/api/v1/groups/{g}")).await, 200);
    assert_eq!(on_b["member_count"], 4, "{on_b}");
    wait_for("A to show the host's member count", || async {
        let on_a = get(&a, &pa, &format!("/api/v1/groups/{a_g}")).await.1;
        on_a["member_count"] == on_b["member_count"]
            && on_a["condition_code"] == on_b["condition_code"]
    })
    .await;
    assert_eq!(on_b["condition_code"], "C50");

    // A's patient asks; C's doctor answers from C: every node shows the question answered.
    let question = "晚上腿肿要紧吗？";
    expect(
        post(
            &a,
            &pa,
            &format!("/api/v1/groups/{a_g}/posts"),
            json!({ "kind": "question", "body": question }),
        )
        .await,
        201,
    );
    let spam = "加微信买特效药";
    expect(
        post(
            &a,
            &pa,
            &format!("/api/v1/groups/{a_g}/posts"),
            json!({ "kind": "question", "body": spam }),
        )
        .await,
        201,
    );
    wait_for("the questions on C", || async {
        !find(&c, &zhang, &c_g, question).await.is_null()
            && !find(&c, &zhang, &c_g, spam).await.is_null()
    })
    .await;
    let q_c = id_of(&c, &zhang, &c_g, question).await;
    let answer = "抬高双腿，少盐，明天门诊复查。";
    expect(
        post(
            &c,
            &zhang,
            &format!("/api/v1/groups/{c_g}/posts/{q_c}/replies"),
            json!({ "body": answer }),
        )
        .await,
        201,
    );
    for (n, t, gid) in [(&host, &li, &g), (&a, &pa, &a_g), (&c, &zhang, &c_g)] {
        wait_for(
            "the question answered by a doctor on every node",
            || async { find(n, t, gid, question).await["answered_by_doctor"] == true },
        )
        .await;
    }

    // A moderator of C may not pin (only doctors teach): refused on C, nothing is sent.
    let refused = call(
        &c,
        Some(&nurse),
        Method::PUT,
        &format!("/api/v1/groups/{c_g}/posts/{q_c}/pin"),
        None,
    )
    .await;
    assert_eq!(refused.0, 403, "{}", refused.1);

    // C's doctor pins the question from C: C asks the host, and shows nothing until it decides.
    let pin = sent(
        call(
            &c,
            Some(&zhang),
            Method::PUT,
            &format!("/api/v1/groups/{c_g}/posts/{q_c}/pin"),
            None,
        )
        .await,
    );
    for (n, t, gid) in [(&host, &li, &g), (&a, &pa, &a_g), (&c, &zhang, &c_g)] {
        wait_for("the pin on every node", || async {
            find(n, t, gid, question).await["pinned"] == true
        })
        .await;
    }
    assert_eq!(
        answered(&c, &zhang, &c_g, pin["id"].as_i64().unwrap()).await["state"],
        "accepted"
    );

    // … and accepts the answer she gave.
    let r_c = replies(&c, &zhang, &c_g, &q_c).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sent(
        call(
            &c,
            Some(&zhang),
            Method::PUT,
            &format!("/api/v1/groups/{c_g}/posts/{q_c}/accepted-answer"),
            Some(json!({ "reply": r_c })),
        )
        .await,
    );
    for (n, t, gid) in [(&host, &li, &g), (&a, &pa, &a_g), (&c, &zhang, &c_g)] {
        wait_for("the accepted answer on every node", || async {
            let q = find(n, t, gid, question).await;
            let Some(qid) = q["id"].as_str() else {
                return false;
            };
            let rs = replies(n, t, gid, qid).await;
            rs.iter().any(|r| {
                Some(r["id"].as_str().unwrap()) == q["accepted_answer"].as_str()
                    && r["body"] == answer
            })
        })
        .await;
    }

    // A's patient reports the spam on A: the report goes to B's moderators, and A says it was sent.
    let spam_a = id_of(&a, &pa, &a_g, spam).await;
    let report = expect(
        post(
            &a,
            &pa,
            &format!("/api/v1/groups/{a_g}/posts/{spam_a}/reports"),
            json!({ "reason": "广告" }),
        )
        .await,
        201,
    );
    let mirror = a.store.group_by_public_id(&a_g).await.unwrap();
    let on_a = a
        .store
        .list_reports(mirror.id, true, None, 10)
        .await
        .unwrap();
    assert_eq!(on_a.len(), 1);
    assert!(
        on_a[0].forwarded_at.is_some(),
        "A records that the report was sent: {report}"
    );
    wait_for("the report in B's queue", || async {
        let page = get(&host, &li, &format!("/api/v1/groups/{g}/reports"))
            .await
            .1;
        page["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|r| r["reason"] == "广告"))
    })
    .await;

    // C's moderator removes the spam from C: removed on every node, logged on B by her name.
    let spam_c = id_of(&c, &nurse, &c_g, spam).await;
    sent(
        call(
            &c,
            Some(&nurse),
            Method::DELETE,
            &format!("/api/v1/groups/{c_g}/posts/{spam_c}"),
            Some(json!({ "reason": "广告" })),
        )
        .await,
    );
    for (n, t, gid) in [(&host, &li, &g), (&a, &pa, &a_g), (&c, &zhang, &c_g)] {
        wait_for("the removal on every node", || async {
            let p = find(n, t, gid, spam).await;
            p.is_null() || p["deleted_by"] == "moderator"
        })
        .await;
    }
    let log = expect(
        get(&host, &li, &format!("/api/v1/groups/{g}/moderation-log")).await,
        200,
    );
    let removal = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "remove_post")
        .cloned();
    let removal = removal.unwrap_or_else(|| panic!("no removal in {log}"));
    assert_eq!(removal["moderator"], "nurse.chen (display)", "{removal}");
    let reports = get(&host, &li, &format!("/api/v1/groups/{g}/reports"))
        .await
        .1;
    assert!(
        reports["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["reason"] != "广告" || r["resolved_at"].is_string()),
        "the removal resolved the report: {reports}"
    );

    // C's doctor keeps the library from C: a folder, and the answered question in it.
    let folder = sent(
        post(
            &c,
            &zhang,
            &format!("/api/v1/groups/{c_g}/library/folders"),
            json!({ "name": "腿肿" }),
        )
        .await,
    );
    answered(&c, &zhang, &c_g, folder["id"].as_i64().unwrap()).await;
    wait_for("the folder on C", || async {
        get(&c, &zhang, &format!("/api/v1/groups/{c_g}/library/folders"))
            .await
            .1["items"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["name"] == "腿肿"))
    })
    .await;
    let folders = get(&c, &zhang, &format!("/api/v1/groups/{c_g}/library/folders"))
        .await
        .1;
    let folder_id = folders["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "腿肿")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    sent(
        post(
            &c,
            &zhang,
            &format!("/api/v1/groups/{c_g}/library/items"),
            json!({ "folder": folder_id, "post": q_c }),
        )
        .await,
    );
    let expected = vec![format!("\"腿肿\"/\"{question}\"")];
    for (n, t, gid) in [(&host, &li, &g), (&a, &pa, &a_g), (&c, &zhang, &c_g)] {
        wait_for("the library on every node", || async {
            library_titles(n, t, gid).await == expected
        })
        .await;
    }

    // C revokes its doctor's credential. C refuses her teaching at once, with a clear code; the
    // host refuses it too, even when asked directly, and C's request shows why.
    expect(
        call(&c, Some(&admin_c), Method::DELETE, CREDENTIAL, None).await,
        200,
    );
    let local = call(
        &c,
        Some(&zhang),
        Method::DELETE,
        &format!("/api/v1/groups/{c_g}/posts/{q_c}/pin"),
        None,
    )
    .await;
    assert_eq!(
        (local.0.as_u16(), local.1["error"].as_str()),
        (403, Some("credential_inactive")),
        "{}",
        local.1
    );
    let queue = get(&c, &zhang, "/api/v1/doctor/queue").await;
    assert_eq!(
        (queue.0.as_u16(), queue.1["error"].as_str()),
        (403, Some("credential_inactive")),
        "{}",
        queue.1
    );
    wait_for("B to know the credential is revoked", || async {
        let q = find(&host, &li, &g, question).await;
        let Some(qid) = q["id"].as_str() else {
            return false;
        };
        replies(&host, &li, &g, qid)
            .await
            .iter()
            .any(|r| r["author"]["credential"]["status"] == "revoked")
    })
    .await;
    let q_ref = host
        .store
        .post_by_public_id(
            host.store.group_by_public_id(&g).await.unwrap().id,
            find(&host, &li, &g, question).await["id"].as_str().unwrap(),
            None,
        )
        .await
        .unwrap();
    let q_ref = q_ref.origin_id.unwrap();
    let forged = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": c.federation.urls.activity("unpin-behind-c"),
        "type": "caremesh:Unpin",
        "actor": c.federation.urls.person("dr.zhang"),
        "object": q_ref,
        "target": g_url,
    });
    let (status, body) = c.deliver_raw(&host, forged.to_string().as_bytes()).await;
    assert_eq!(status, 202, "{body}");
    wait_for("B's refusal on its way to C", || async {
        host.store
            .pending_entries(&c.authority(), 100)
            .await
            .unwrap()
            .iter()
            .any(|e| e.payload.contains("\"Reject\"") && e.payload.contains("credential_inactive"))
            || c.store
                .received_activities(0, 10_000)
                .await
                .unwrap()
                .iter()
                .any(|a| a.activity_type == "Reject" && a.payload.contains("credential_inactive"))
    })
    .await;
    assert_eq!(
        find(&host, &li, &g, question).await["pinned"],
        true,
        "the host did not unpin"
    );

    // Restored, she teaches again.
    expect(
        call(
            &c,
            Some(&admin_c),
            Method::PUT,
            CREDENTIAL,
            Some(credential()),
        )
        .await,
        200,
    );
    wait_for("B to know the credential is valid again", || async {
        let q = find(&host, &li, &g, question).await;
        let Some(qid) = q["id"].as_str() else {
            return false;
        };
        replies(&host, &li, &g, qid)
            .await
            .iter()
            .any(|r| r["author"]["credential"]["status"] == "verified")
    })
    .await;
    let unpin = sent(
        call(
            &c,
            Some(&zhang),
            Method::DELETE,
            &format!("/api/v1/groups/{c_g}/posts/{q_c}/pin"),
            None,
        )
        .await,
    );
    assert_eq!(
        answered(&c, &zhang, &c_g, unpin["id"].as_i64().unwrap()).await["state"],
        "accepted"
    );
    for (n, t, gid) in [(&host, &li, &g), (&a, &pa, &a_g), (&c, &zhang, &c_g)] {
        wait_for("the unpin on every node", || async {
            find(n, t, gid, question).await["pinned"] == false
        })
        .await;
    }

    // A refusal by the host reaches C's request: a moderator of C may not remove the group's
    // owner (B decides by its own records).
    let owner_post = expect(
        post(
            &host,
            &li,
            &format!("/api/v1/groups/{g}/posts"),
            json!({ "kind": "announcement", "body": "周三晚八点讲座" }),
        )
        .await,
        201,
    );
    assert!(owner_post["id"].is_string());
    wait_for("the announcement on C", || async {
        !find(&c, &nurse, &c_g, "周三晚八点讲座").await.is_null()
    })
    .await;
    let by_owner = id_of(&c, &nurse, &c_g, "周三晚八点讲座").await;
    let remove_owner = sent(
        post(
            &c,
            &nurse,
            &format!("/api/v1/groups/{c_g}/posts/{by_owner}/remove-author"),
            json!({ "ban": true }),
        )
        .await,
    );
    let answer = answered(&c, &nurse, &c_g, remove_owner["id"].as_i64().unwrap()).await;
    assert_eq!(answer["state"], "refused", "{answer}");
    assert!(
        answer["code"].is_string() && answer["reason"].is_string(),
        "{answer}"
    );
    let owner = expect(get(&host, &li, &format!("/api/v1/groups/{g}")).await, 200);
    assert_eq!(owner["my_role"], "owner", "nothing changed on B");
    // The group's page on C tells its moderator, in her language.
    let page = c
        .http
        .get(c.url(&format!("/g/{c_g}")))
        .header("cookie", format!("caremesh_session={nurse}"))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("已发给本群所在医院的请求"), "{page}");
    assert!(
        page.contains("禁止成员") && page.contains("被拒绝"),
        "{page}"
    );

    // C's moderator removes A's patient through one of her posts: B removes her, and A stops
    // showing her the group.
    let q_nurse = id_of(&c, &nurse, &c_g, question).await;
    let removal = sent(
        post(
            &c,
            &nurse,
            &format!("/api/v1/groups/{c_g}/posts/{q_nurse}/remove-author"),
            json!({ "reason": "多次发广告" }),
        )
        .await,
    );
    assert_eq!(
        answered(&c, &nurse, &c_g, removal["id"].as_i64().unwrap()).await["state"],
        "accepted"
    );
    wait_for(
        "A to stop showing the group to its removed patient",
        || async { get(&a, &pa, &format!("/api/v1/groups/{a_g}")).await.0 == 404 },
    )
    .await;
    let removed = expect(
        get(
            &host,
            &li,
            &format!("/api/v1/groups/{g}/members?state=removed"),
        )
        .await,
        200,
    );
    assert!(
        removed["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["display_name"] == "康复中的小李"),
        "{removed}"
    );

    // Nothing went back to where it came from, and nothing was parked anywhere.
    for n in [&a, &host, &c] {
        wait_for("every queue to drain", || async {
            n.store
                .peer_queues()
                .await
                .unwrap()
                .iter()
                .all(|q| q.pending == 0)
        })
        .await;
        let parked = n.store.parked_entries(100).await.unwrap();
        assert!(parked.is_empty(), "parked on {}: {parked:?}", n.authority());
        let me = n.authority();
        for got in n.store.received_activities(0, 100_000).await.unwrap() {
            let activity: Value = serde_json::from_str(&got.payload).unwrap();
            let inner = activity["object"]["id"].as_str().unwrap_or_default();
            assert!(
                !(activity["type"] == "Announce" && inner.contains(&format!("//{me}/"))),
                "{me} received its own activity back: {}",
                got.payload
            );
        }
    }
    let _ = feed(&a, &pa, &a_g).await;
}
