//! The whole story of a group across hospitals, on three real nodes on loopback with their own
//! databases (the host on PostgreSQL in the PostgreSQL run): patients of A and C join a group
//! hosted on B, a verified doctor of C announces to groups on B and on A in one action, questions
//! and answers flow, the host's doctor accepts an answer and pins a question, a member's helpful
//! mark and an author's edit reach everyone, a moderator removes a post, an author deletes one, and
//! in the end every node shows the same group. Then a ban and a revoked credential follow.
//!
//! A second test delivers a host's activities in reverse order and checks that the member's node
//! still ends up showing what the host shows.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use caremesh_domain::Role;
use caremesh_testkit::{Backend, TestNode, on_both_backends, wait_for};
use common::mesh::{converge, find, invite, join_remote, mesh, node, replies, snapshot};
use common::{call, expect, get, post};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    the_story_of_a_group_across_three_hospitals,
    activities_that_arrive_out_of_order_converge,
    a_node_that_joins_later_gets_the_recent_threads,
    photos_travel_with_posts_to_member_nodes_only,
);

async fn the_story_of_a_group_across_three_hospitals(b: Backend) {
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

    // C's administrator records the credential of C's doctor.
    let admin_c = c.account_with_token(Role::Admin, "admin").await;
    let zhang = c.account_with_token(Role::Doctor, "dr.zhang").await;
    let credential_path = "/api/v1/admin/accounts/dr.zhang/credential";
    expect(
        call(
            &c,
            Some(&admin_c),
            Method::PUT,
            credential_path,
            Some(json!({
                "title": "主任医师", "specialty": "心血管内科", "licence_number": "110108",
                "checked_on": "2026-11-20", "valid_until": "2027-11-20T00:00:00Z"
            })),
        )
        .await,
        200,
    );

    // B hosts the heart-failure group; A hosts a second group; both hand out invite links.
    let li = host.account_with_token(Role::Doctor, "dr.li").await;
    let g1 = common::create_group(&host, &li, "心衰康复 · 唐山").await;
    let g1_url = host.federation.urls.group(&g1);
    let g1_invite = invite(&host, &li, &g1).await;
    let wang_doctor = a.account_with_token(Role::Doctor, "dr.wang").await;
    let g2 = common::create_group(&a, &wang_doctor, "冠心病随访 · 北京").await;
    let g2_url = a.federation.urls.group(&g2);
    let g2_invite = invite(&a, &wang_doctor, &g2).await;

    // Patients of A and C join as pseudonyms; C's doctor joins both groups as herself.
    let pa = a.account_with_token(Role::Patient, "wang.xiaoli").await;
    let pc = c.account_with_token(Role::Patient, "zhao.min").await;
    let a_g1 = join_remote(&a, &pa, &g1_url, "康复中的小李", &g1_invite).await;
    let c_g1 = join_remote(&c, &pc, &g1_url, "老赵", &g1_invite).await;
    let zhang_g1 = join_remote(&c, &zhang, &g1_url, "", &g1_invite).await;
    let zhang_g2 = join_remote(&c, &zhang, &g2_url, "", &g2_invite).await;
    assert_eq!(zhang_g1, c_g1, "one mirror of the group on C");

    // Each host lets C's doctor teach, after checking the credential C signed; a patient's
    // pseudonym cannot be made a doctor.
    let members = expect(
        get(&host, &li, &format!("/api/v1/groups/{g1}/members")).await,
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
    let refused = call(
        &host,
        Some(&li),
        Method::PUT,
        &format!(
            "/api/v1/groups/{g1}/members/{}/role",
            member_id("康复中的小李")
        ),
        Some(json!({ "role": "doctor" })),
    )
    .await;
    assert_eq!(refused.0, 409, "{}", refused.1);
    assert_eq!(refused.1["error"], "credential_unverified");
    common::set_role(&host, &li, &g1, member_id("dr.zhang (display)"), "doctor").await;
    let a_members = expect(
        get(&a, &wang_doctor, &format!("/api/v1/groups/{g2}/members")).await,
        200,
    );
    let zhang_on_a = a_members["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["display_name"] == "dr.zhang (display)")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    common::set_role(&a, &wang_doctor, &g2, zhang_on_a, "doctor").await;
    for gid in [&zhang_g1, &zhang_g2] {
        wait_for("C to learn that its doctor teaches", || async {
            get(&c, &zhang, &format!("/api/v1/groups/{gid}")).await.1["my_role"] == "doctor"
        })
        .await;
    }

    // One announcement to both groups, in one action.
    let announced = expect(
        post(
            &c,
            &zhang,
            "/api/v1/announcements",
            json!({ "groups": [zhang_g1, zhang_g2], "title": "冬季提醒", "body": "天冷注意保暖，每天称体重。" }),
        )
        .await,
        201,
    );
    assert_eq!(announced["items"].as_array().unwrap().len(), 2);
    let announcement = "天冷注意保暖，每天称体重。";
    for (n, token, gid) in [
        (&host, &li, &g1),
        (&a, &pa, &a_g1),
        (&c, &pc, &c_g1),
        (&a, &wang_doctor, &g2),
    ] {
        wait_for("the announcement on every node", || async {
            find(n, token, gid, announcement).await["pinned"] == true
        })
        .await;
        let post = find(n, token, gid, announcement).await;
        let badge = &post["author"]["credential"];
        assert_eq!(badge["status"], "verified", "{post}");
        assert_eq!(badge["issuer_name"], "Hospital C", "{post}");
    }

    // The group's page on A shows who vouches for the doctor.
    let page = a
        .http
        .get(a.url(&format!("/g/{a_g1}")))
        .header("cookie", format!("caremesh_session={pa}"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Verified by Hospital C"), "{page}");

    // A's patient asks on A; C's doctor answers on C; the host's doctor accepts the answer.
    let question = "晚上腿肿要紧吗？";
    expect(
        post(
            &a,
            &pa,
            &format!("/api/v1/groups/{a_g1}/posts"),
            json!({ "kind": "question", "body": question }),
        )
        .await,
        201,
    );
    wait_for("the question on C", || async {
        !find(&c, &zhang, &c_g1, question).await.is_null()
    })
    .await;
    let q_on_c = find(&c, &zhang, &c_g1, question).await;
    let answer = "抬高双腿，记录体重，三天增加两公斤请就诊。";
    let reply_on_c = expect(
        post(
            &c,
            &zhang,
            &format!(
                "/api/v1/groups/{c_g1}/posts/{}/replies",
                q_on_c["id"].as_str().unwrap()
            ),
            json!({ "body": answer }),
        )
        .await,
        201,
    );
    wait_for("the answer on the host", || async {
        let q = find(&host, &li, &g1, question).await;
        q["reply_count"] == 1 && q["answered_by_doctor"] == true
    })
    .await;
    let q_on_b = find(&host, &li, &g1, question).await;
    let q_b = q_on_b["id"].as_str().unwrap();
    let reply_on_b = replies(&host, &li, &g1, q_b).await[0].clone();
    assert_eq!(reply_on_b["body"], answer);
    assert_eq!(reply_on_b["author"]["credential"]["status"], "verified");
    expect(
        call(
            &host,
            Some(&li),
            Method::PUT,
            &format!("/api/v1/groups/{g1}/posts/{q_b}/accepted-answer"),
            Some(json!({ "reply": reply_on_b["id"] })),
        )
        .await,
        200,
    );

    // C's patient finds the answer helpful; the host counts it and every node shows the count.
    expect(
        call(
            &c,
            Some(&pc),
            Method::PUT,
            &format!(
                "/api/v1/groups/{c_g1}/posts/{}/helpful",
                reply_on_c["id"].as_str().unwrap()
            ),
            None,
        )
        .await,
        200,
    );
    wait_for("the helpful mark on the host", || async {
        replies(&host, &li, &g1, q_b).await[0]["helpful_count"] == 1
    })
    .await;

    // A's patient edits the question; the host pins it.
    let q_on_a = find(&a, &pa, &a_g1, question).await;
    let edited = "晚上腿肿要紧吗？已经三天了。";
    expect(
        call(
            &a,
            Some(&pa),
            Method::PATCH,
            &format!(
                "/api/v1/groups/{a_g1}/posts/{}",
                q_on_a["id"].as_str().unwrap()
            ),
            Some(json!({ "body": edited })),
        )
        .await,
        200,
    );
    wait_for("the edit on the host", || async {
        !find(&host, &li, &g1, edited).await.is_null()
    })
    .await;
    expect(
        call(
            &host,
            Some(&li),
            Method::PUT,
            &format!("/api/v1/groups/{g1}/posts/{q_b}/pin"),
            None,
        )
        .await,
        200,
    );

    // C's patient posts an advertisement, which the host's doctor removes; A's patient posts by
    // mistake and deletes it.
    let advert = "加我微信买特效药";
    expect(
        post(
            &c,
            &pc,
            &format!("/api/v1/groups/{c_g1}/posts"),
            json!({ "kind": "question", "body": advert }),
        )
        .await,
        201,
    );
    wait_for("the advert on the host", || async {
        !find(&host, &li, &g1, advert).await.is_null()
    })
    .await;
    let advert_b = find(&host, &li, &g1, advert).await;
    expect(
        call(
            &host,
            Some(&li),
            Method::DELETE,
            &format!(
                "/api/v1/groups/{g1}/posts/{}",
                advert_b["id"].as_str().unwrap()
            ),
            Some(json!({ "reason": "广告" })),
        )
        .await,
        200,
    );
    let oops = expect(
        post(
            &a,
            &pa,
            &format!("/api/v1/groups/{a_g1}/posts"),
            json!({ "kind": "question", "body": "发错群了" }),
        )
        .await,
        201,
    );
    wait_for("the mistake on C", || async {
        !find(&c, &pc, &c_g1, "发错群了").await.is_null()
    })
    .await;
    expect(
        call(
            &a,
            Some(&pa),
            Method::DELETE,
            &format!(
                "/api/v1/groups/{a_g1}/posts/{}",
                oops["id"].as_str().unwrap()
            ),
            None,
        )
        .await,
        200,
    );

    wait_for("the deletion on the host", || async {
        find(&host, &li, &g1, "发错群了").await.is_null()
    })
    .await;

    // Every node shows the same group; removed and deleted posts are gone from every feed.
    let expected = snapshot(&host, &li, &g1).await;
    let check = expected.join("\n");
    for needle in [
        "pinned=true",
        "helpful=1",
        "edited=true",
        "answered=true",
        &format!("accepted=Some(\"\\\"{answer}\\\"\")"),
    ] {
        assert!(
            check.contains(needle),
            "{needle} missing from the host's view:\n{check}"
        );
    }
    assert!(
        !check.contains(advert) && !check.contains("发错群了"),
        "{check}"
    );
    for (n, token, gid, name) in [(&a, &pa, &a_g1, "A"), (&c, &pc, &c_g1, "C")] {
        converge(n, token, gid, &expected, name).await;
    }

    // The host bans C's patient: C stops showing the group to them and refuses their posts.
    let zhao = member_id("老赵");
    expect(
        post(
            &host,
            &li,
            &format!("/api/v1/groups/{g1}/members/{zhao}/ban"),
            json!({ "reason": "广告" }),
        )
        .await,
        200,
    );
    wait_for("C to learn of the ban", || async {
        get(&c, &pc, &format!("/api/v1/groups/{c_g1}")).await.0 == 404
    })
    .await;
    let refused = post(
        &c,
        &pc,
        &format!("/api/v1/groups/{c_g1}/posts"),
        json!({ "kind": "question", "body": "还能发吗" }),
    )
    .await;
    assert_eq!(refused.0, 404, "{}", refused.1);
    let rejoin = post(
        &c,
        &pc,
        "/api/v1/remote-groups",
        json!({ "group": g1_url, "display_name": "老赵", "invite": g1_invite }),
    )
    .await;
    assert_eq!(rejoin.0, 409, "{}", rejoin.1);

    // C revokes its doctor's credential: the other nodes show it on her posts after the update.
    expect(
        call(&c, Some(&admin_c), Method::DELETE, credential_path, None).await,
        200,
    );
    for (n, token, gid) in [(&a, &pa, &a_g1), (&host, &li, &g1)] {
        wait_for("the revocation beside the doctor's posts", || async {
            find(n, token, gid, announcement).await["author"]["credential"]["status"] == "revoked"
        })
        .await;
    }
}

async fn activities_that_arrive_out_of_order_converge(b: Backend) {
    let Some(mut a) = TestNode::spawn(Backend::Sqlite).await else {
        return;
    };
    let Some(mut host) = TestNode::spawn(b).await else {
        return;
    };
    mesh(&[&a, &host]).await;
    let li = host.account_with_token(Role::Doctor, "dr.li").await;
    let g = common::create_group(&host, &li, "卒中康复").await;
    let g_url = host.federation.urls.group(&g);
    let token = invite(&host, &li, &g).await;
    let local = host
        .account_with_token(Role::Patient, "local.patient")
        .await;
    expect(
        post(
            &host,
            &local,
            &format!("/api/v1/group-invites/{token}/accept"),
            json!({}),
        )
        .await,
        201,
    );
    // The host's own patient shows the same name on every node once they have chosen one (until
    // then other nodes see a neutral name, never the account's).
    expect(
        call(
            &host,
            Some(&local),
            Method::PUT,
            &format!("/api/v1/groups/{g}/me"),
            Some(json!({ "display_name": "老周" })),
        )
        .await,
        200,
    );
    let pa = a.account_with_token(Role::Patient, "chen.jie").await;
    let mirror = join_remote(&a, &pa, &g_url, "陈阿姨", &token).await;

    // First, one of each kind in order, so that A knows every key it will need.
    let warm = expect(
        post(
            &host,
            &local,
            &format!("/api/v1/groups/{g}/posts"),
            json!({ "kind": "question", "body": "热身" }),
        )
        .await,
        201,
    );
    let warm_id = warm["id"].as_str().unwrap();
    expect(
        call(
            &host,
            Some(&li),
            Method::PUT,
            &format!("/api/v1/groups/{g}/posts/{warm_id}/pin"),
            None,
        )
        .await,
        200,
    );
    expect(
        post(
            &host,
            &li,
            &format!("/api/v1/groups/{g}/posts/{warm_id}/replies"),
            json!({ "body": "热身回复" }),
        )
        .await,
        201,
    );
    wait_for("the warm-up on A", || async {
        let p = find(&a, &pa, &mirror, "热身").await;
        p["pinned"] == true && p["reply_count"] == 1
    })
    .await;

    // A is unreachable while the host's members write, edit, answer, pin, remove and delete.
    a.pause().await;
    let q = expect(
        post(
            &host,
            &local,
            &format!("/api/v1/groups/{g}/posts"),
            json!({ "kind": "question", "body": "吞咽困难怎么练习？" }),
        )
        .await,
        201,
    );
    let qid = q["id"].as_str().unwrap();
    expect(
        call(
            &host,
            Some(&local),
            Method::PATCH,
            &format!("/api/v1/groups/{g}/posts/{qid}"),
            Some(json!({ "body": "吞咽困难怎么练习？喝水会呛。" })),
        )
        .await,
        200,
    );
    let r = expect(
        post(
            &host,
            &li,
            &format!("/api/v1/groups/{g}/posts/{qid}/replies"),
            json!({ "body": "先练习空吞咽，喝水用增稠剂。" }),
        )
        .await,
        201,
    );
    expect(
        call(
            &host,
            Some(&li),
            Method::PUT,
            &format!("/api/v1/groups/{g}/posts/{qid}/accepted-answer"),
            Some(json!({ "reply": r["id"] })),
        )
        .await,
        200,
    );
    expect(
        call(
            &host,
            Some(&local),
            Method::PUT,
            &format!(
                "/api/v1/groups/{g}/posts/{}/helpful",
                r["id"].as_str().unwrap()
            ),
            None,
        )
        .await,
        200,
    );
    expect(
        call(
            &host,
            Some(&li),
            Method::PUT,
            &format!("/api/v1/groups/{g}/posts/{qid}/pin"),
            None,
        )
        .await,
        200,
    );
    let spam = expect(
        post(
            &host,
            &local,
            &format!("/api/v1/groups/{g}/posts"),
            json!({ "kind": "question", "body": "代购药品" }),
        )
        .await,
        201,
    );
    expect(
        call(
            &host,
            Some(&li),
            Method::DELETE,
            &format!("/api/v1/groups/{g}/posts/{}", spam["id"].as_str().unwrap()),
            None,
        )
        .await,
        200,
    );
    let gone = expect(
        post(
            &host,
            &local,
            &format!("/api/v1/groups/{g}/posts"),
            json!({ "kind": "question", "body": "我删了" }),
        )
        .await,
        201,
    );
    expect(
        call(
            &host,
            Some(&local),
            Method::DELETE,
            &format!("/api/v1/groups/{g}/posts/{}", gone["id"].as_str().unwrap()),
            None,
        )
        .await,
        200,
    );
    let expected = snapshot(&host, &li, &g).await;

    // The host stops (with its queue for A), A comes back, and the queued activities reach A
    // newest first.
    host.pause().await;
    a.resume().await;
    let queued = host
        .store
        .pending_entries(&a.authority(), 100)
        .await
        .unwrap();
    assert!(queued.len() >= 10, "{} activities queued", queued.len());
    for e in queued.iter().rev() {
        let (status, body) = host.deliver_raw(&a, &host.rendered(e).await).await;
        assert!(
            status == 202 || status == 200,
            "{status} {body} for {}",
            e.payload
        );
    }
    let got = snapshot(&a, &pa, &mirror).await;
    assert_eq!(got, expected, "A after activities in reverse order");

    // The host comes back and delivers its queue in order: nothing changes.
    host.resume().await;
    wait_for("the host's queue to drain", || async {
        host.store
            .peer_queues()
            .await
            .unwrap()
            .iter()
            .all(|q| q.pending == 0)
    })
    .await;
    assert_eq!(snapshot(&a, &pa, &mirror).await, expected);
}

/// A group with a history: a patient of another node who joins later sees its pinned
/// announcement and recent threads, with their replies, edits and the host's decisions, as the
/// host shows them; deleted posts stay away.
async fn a_node_that_joins_later_gets_the_recent_threads(b: Backend) {
    let Some(host) = TestNode::spawn(b).await else {
        return;
    };
    let Some(a) = TestNode::spawn(Backend::Sqlite).await else {
        return;
    };
    let Some(c) = TestNode::spawn(Backend::Sqlite).await else {
        return;
    };
    mesh(&[&a, &host, &c]).await;
    let li = host.account_with_token(Role::Doctor, "dr.li").await;
    let g = common::create_group(&host, &li, "糖尿病足护理").await;
    let g_url = host.federation.urls.group(&g);
    let token = invite(&host, &li, &g).await;
    // A patient of C is a member from the start and writes too.
    let pc = c.account_with_token(Role::Patient, "zhao.min").await;
    let c_g = join_remote(&c, &pc, &g_url, "老赵", &token).await;
    expect(
        post(
            &host,
            &li,
            &format!("/api/v1/groups/{g}/posts"),
            json!({ "kind": "announcement", "title": "每日检查", "body": "每天睡前检查双脚。", "pinned": true }),
        )
        .await,
        201,
    );
    let q = expect(
        post(
            &c,
            &pc,
            &format!("/api/v1/groups/{c_g}/posts"),
            json!({ "kind": "question", "body": "脚上起泡怎么办？" }),
        )
        .await,
        201,
    );
    expect(
        call(
            &c,
            Some(&pc),
            Method::PATCH,
            &format!("/api/v1/groups/{c_g}/posts/{}", q["id"].as_str().unwrap()),
            Some(json!({ "body": "脚上起泡怎么办？不疼。" })),
        )
        .await,
        200,
    );
    wait_for("the edited question on the host", || async {
        !find(&host, &li, &g, "脚上起泡怎么办？不疼。")
            .await
            .is_null()
    })
    .await;
    let q_b = find(&host, &li, &g, "脚上起泡怎么办？不疼。").await;
    let qid = q_b["id"].as_str().unwrap();
    let r = expect(
        post(
            &host,
            &li,
            &format!("/api/v1/groups/{g}/posts/{qid}/replies"),
            json!({ "body": "不要挑破，保持干燥，来门诊看看。" }),
        )
        .await,
        201,
    );
    expect(
        call(
            &host,
            Some(&li),
            Method::PUT,
            &format!("/api/v1/groups/{g}/posts/{qid}/accepted-answer"),
            Some(json!({ "reply": r["id"] })),
        )
        .await,
        200,
    );
    let gone = expect(
        post(
            &host,
            &li,
            &format!("/api/v1/groups/{g}/posts"),
            json!({ "kind": "announcement", "body": "发错了" }),
        )
        .await,
        201,
    );
    expect(
        call(
            &host,
            Some(&li),
            Method::DELETE,
            &format!("/api/v1/groups/{g}/posts/{}", gone["id"].as_str().unwrap()),
            None,
        )
        .await,
        200,
    );
    // The doctor keeps the answered question in the library.
    let folder = expect(
        post(
            &host,
            &li,
            &format!("/api/v1/groups/{g}/library/folders"),
            json!({ "name": "足部护理" }),
        )
        .await,
        201,
    );
    expect(
        post(
            &host,
            &li,
            &format!("/api/v1/groups/{g}/library/items"),
            json!({ "folder": folder["id"], "post": qid, "title": "水泡的处理" }),
        )
        .await,
        201,
    );
    // And a handout (a PDF uploaded to the library).
    let pdf =
        b"%PDF-1.4\n% Caremesh handout\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n".to_vec();
    let upload = host
        .http
        .post(host.url(&format!("/api/v1/groups/{g}/attachments?name=handout.pdf")))
        .bearer_auth(&li)
        .header("content-type", "application/pdf")
        .body(pdf.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let handout: Value = upload.json().await.unwrap();
    expect(
        post(
            &host,
            &li,
            &format!("/api/v1/groups/{g}/library/items"),
            json!({ "folder": folder["id"], "attachment": handout["id"], "title": "足部护理手册" }),
        )
        .await,
        201,
    );
    let expected = snapshot(&host, &li, &g).await;
    assert_eq!(expected.len(), 3, "{expected:?}");
    let library = vec![
        "足部护理/水泡的处理".to_owned(),
        "足部护理/足部护理手册".to_owned(),
    ];

    // A patient of A joins now: A shows the same group, and the same library.
    let pa = a.account_with_token(Role::Patient, "wang.xiaoli").await;
    let a_g = join_remote(&a, &pa, &g_url, "小王", &token).await;
    converge(&a, &pa, &a_g, &expected, "A").await;
    wait_for("the library on A", || async {
        let mut got = library_titles(&a, &pa, &a_g).await;
        got.sort();
        got == library
    })
    .await;
    // C, a member from the start, got the library when it changed.
    let mut on_c = library_titles(&c, &pc, &c_g).await;
    on_c.sort();
    assert_eq!(on_c, library);
    // The handout itself, byte for byte.
    for (n, token, gid) in [(&a, &pa, &a_g), (&c, &pc, &c_g)] {
        let (_, items) = get(n, token, &format!("/api/v1/groups/{gid}/library/items")).await;
        let file = items["items"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|i| i["attachment"]["url"].as_str().map(str::to_owned))
            .unwrap();
        assert_eq!(file_bytes(n, token, &file).await, pdf);
    }
    // The library of a mirrored group is its host's: it is not changed on a member's node.
    let refused = post(
        &a,
        &pa,
        &format!("/api/v1/groups/{a_g}/library/folders"),
        json!({ "name": "我的" }),
    )
    .await;
    assert!(refused.0 == 403 || refused.0 == 409, "{}", refused.1);

    // The host removes the items: members' nodes follow.
    let items = expect(
        get(&host, &li, &format!("/api/v1/groups/{g}/library/items")).await,
        200,
    );
    for item in items["items"].as_array().unwrap() {
        let iid = item["id"].as_i64().unwrap();
        expect(
            call(
                &host,
                Some(&li),
                Method::DELETE,
                &format!("/api/v1/groups/{g}/library/items/{iid}"),
                None,
            )
            .await,
            204,
        );
    }
    for (n, token, gid) in [(&a, &pa, &a_g), (&c, &pc, &c_g)] {
        wait_for("the removal from the library", || async {
            library_titles(n, token, gid).await.is_empty()
        })
        .await;
    }
}

/// `folder/title` of every item of a group's library.
async fn library_titles(node: &TestNode, token: &str, gid: &str) -> Vec<String> {
    let (_, items) = get(node, token, &format!("/api/v1/groups/{gid}/library/items")).await;
    items["items"]
        .as_array()
        .map(|i| {
            i.iter()
                .map(|x| {
                    format!(
                        "{}/{}",
                        x["folder"]["name"]
                            .as_str()
                            .or(x["folder_name"].as_str())
                            .unwrap_or("?"),
                        x["title"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The bytes a member downloads of a post's file on `node`.
async fn file_bytes(node: &TestNode, token: &str, url: &str) -> Vec<u8> {
    let resp = node
        .http
        .get(node.url(url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    resp.bytes().await.unwrap().to_vec()
}

/// A photo on a question asked in a group hosted elsewhere reaches the host and the other
/// members' nodes, byte for byte (checked against the hash its author signed); a partner node with
/// no member in the group cannot fetch it.
async fn photos_travel_with_posts_to_member_nodes_only(b: Backend) {
    let Some(host) = TestNode::spawn(b).await else {
        return;
    };
    let Some(a) = TestNode::spawn(Backend::Sqlite).await else {
        return;
    };
    let Some(c) = TestNode::spawn(Backend::Sqlite).await else {
        return;
    };
    let Some(outsider) = TestNode::spawn(Backend::Sqlite).await else {
        return;
    };
    mesh(&[&a, &host, &c]).await;
    mesh(&[&host, &outsider]).await;
    let li = host.account_with_token(Role::Doctor, "dr.li").await;
    let g = common::create_group(&host, &li, "皮肤护理").await;
    let g_url = host.federation.urls.group(&g);
    let token = invite(&host, &li, &g).await;
    let pa = a.account_with_token(Role::Patient, "wang.xiaoli").await;
    let pc = c.account_with_token(Role::Patient, "zhao.min").await;
    let a_g = join_remote(&a, &pa, &g_url, "小王", &token).await;
    let c_g = join_remote(&c, &pc, &g_url, "老赵", &token).await;

    // A's patient photographs a rash (the upload drops the photo's GPS position) and asks.
    let upload = a
        .http
        .post(a.url(&format!("/api/v1/groups/{a_g}/attachments?name=rash.jpg")))
        .bearer_auth(&pa)
        .header("content-type", "image/jpeg")
        .body(common::images::jpeg_with_gps(32, 24))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let photo: Value = upload.json().await.unwrap();
    expect(
        post(
            &a,
            &pa,
            &format!("/api/v1/groups/{a_g}/posts"),
            json!({ "kind": "question", "body": "手臂上起了红疹", "attachments": [photo["id"]] }),
        )
        .await,
        201,
    );
    let original = file_bytes(&a, &pa, photo["url"].as_str().unwrap()).await;
    for (n, token, gid) in [(&host, &li, &g), (&c, &pc, &c_g)] {
        wait_for("the photo on the node", || async {
            find(n, token, gid, "手臂上起了红疹").await["attachments"]
                .as_array()
                .is_some_and(|f| f.len() == 1)
        })
        .await;
        let post = find(n, token, gid, "手臂上起了红疹").await;
        let file = &post["attachments"][0];
        assert_eq!(file["content_type"], "image/jpeg");
        assert_eq!(file["file_name"], "rash.jpg");
        assert_eq!(
            file_bytes(n, token, file["url"].as_str().unwrap()).await,
            original
        );
    }

    // The outsider, a partner of the host with no member in the group, gets nothing.
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&original))
    };
    let url = host.federation.media_url(&g_url, &sha);
    let err = outsider
        .federation
        .client
        .get_bytes(&url, 1 << 20)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    // A member's node may.
    assert_eq!(
        a.federation.client.get_bytes(&url, 1 << 20).await.unwrap(),
        original
    );
}
