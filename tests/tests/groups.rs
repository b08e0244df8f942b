//! Groups over real HTTP: creating a group, joining by invite link and QR code or by request,
//! the size limit, removal and bans, posts, threads, scheduled announcements, helpful marks,
//! accepted answers, the doctor's queue, the library, search, reports and the moderation log.
//! Every scenario runs on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use caremesh_domain::{Clock, Role};
use caremesh_testkit::{Backend, TestNode, on_both_backends};
use common::{call, create_group, expect, get, join, post, world};
use reqwest::Method;
use serde_json::{Value, json};

on_both_backends!(
    doctor_creates_group_and_patients_join_by_invite,
    invites_expire_run_out_and_can_be_revoked,
    full_group_refuses_with_a_clear_error,
    join_requests_are_approved_or_rejected,
    removed_members_lose_access_at_once_and_bans_stick,
    announcements_pin_and_schedule,
    threads_edits_deletes_and_history,
    helpful_marks_sort_and_accepted_answers,
    doctor_queue_spans_groups_oldest_first,
    html_is_returned_as_inert_text,
    library_and_search_in_chinese_and_english,
    reports_queue_and_moderation_log,
    bad_input_gets_clear_errors_and_changes_nothing,
    every_list_pages_by_cursor,
    cookie_writes_from_other_sites_are_refused,
    patients_choose_their_name_in_each_group,
);

fn g(gid: &str, rest: &str) -> String {
    format!("/api/v1/groups/{gid}{rest}")
}

async fn feed_ids(node: &TestNode, token: &str, gid: &str, query: &str) -> Vec<String> {
    let body = expect(
        get(node, token, &g(gid, &format!("/posts{query}"))).await,
        200,
    );
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn new_post(node: &TestNode, token: &str, gid: &str, body: Value) -> Value {
    expect(post(node, token, &g(gid, "/posts"), body).await, 201)
}

async fn question(node: &TestNode, token: &str, gid: &str, text: &str) -> String {
    new_post(
        node,
        token,
        gid,
        json!({ "kind": "question", "title": text, "body": format!("{text}?") }),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn reply(node: &TestNode, token: &str, gid: &str, pid: &str, text: &str) -> String {
    expect(
        post(
            node,
            token,
            &g(gid, &format!("/posts/{pid}/replies")),
            json!({ "body": text }),
        )
        .await,
        201,
    )["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn doctor_creates_group_and_patients_join_by_invite(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let doctor = node.account_with_token(Role::Doctor, "dr.wang").await;
    let patient = node.account_with_token(Role::Patient, "xiaoli").await;
    // Patients cannot create groups.
    let (status, body) = post(
        &node,
        &patient,
        "/api/v1/groups",
        json!({"name": "x", "condition": "y", "city": "z", "language": "en"}),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (403, Some("forbidden"))
    );

    let gid = create_group(&node, &doctor, "乳腺癌康复 唐山").await;
    let group = expect(get(&node, &doctor, &g(&gid, "")).await, 200);
    assert_eq!(group["name"], "乳腺癌康复 唐山");
    assert_eq!(group["condition_code"], "C50");
    assert_eq!(group["my_role"], "owner");
    assert_eq!(group["member_count"], 1);
    assert!(group["notice"].as_str().unwrap().contains("健康教育"));

    let invite = expect(
        post(
            &node,
            &doctor,
            &g(&gid, "/invites"),
            json!({ "label": "门诊", "valid_hours": 48, "max_uses": 50 }),
        )
        .await,
        201,
    );
    assert_eq!(invite["state"], "usable");
    assert_eq!(invite["max_uses"], 50);
    let url = invite["url"].as_str().unwrap();
    assert!(url.starts_with(&node.url("/group-invite/")), "{url}");
    let token = url.rsplit('/').next().unwrap();

    // The QR code as SVG and PNG, rendered by the node.
    let svg = node
        .http
        .get(node.url(invite["qr_svg"].as_str().unwrap()))
        .bearer_auth(&doctor)
        .send()
        .await
        .unwrap();
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
    let png = node
        .http
        .get(node.url(invite["qr_png"].as_str().unwrap()))
        .bearer_auth(&doctor)
        .send()
        .await
        .unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    let png = png.bytes().await.unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert!(img.width() >= 200, "a code big enough to scan");

    // The patient previews the invite, then joins, and sees the group.
    let preview = expect(
        get(&node, &patient, &format!("/api/v1/group-invites/{token}")).await,
        200,
    );
    assert_eq!(preview["group"]["name"], "乳腺癌康复 唐山");
    assert_eq!(preview["group"]["my_role"], Value::Null);
    assert_eq!(preview["uses_left"], 50);
    assert_eq!(
        expect(get(&node, &patient, &g(&gid, "/posts")).await, 404)["error"],
        "not_found"
    );
    let joined = expect(
        post(
            &node,
            &patient,
            &format!("/api/v1/group-invites/{token}/accept"),
            json!({}),
        )
        .await,
        201,
    );
    assert_eq!(joined["my_role"], "member");
    assert_eq!(joined["member_count"], 2);
    expect(get(&node, &patient, &g(&gid, "/posts")).await, 200);
    let mine = expect(get(&node, &patient, "/api/v1/groups").await, 200);
    assert_eq!(mine["items"][0]["id"], gid.as_str());

    // Joining twice is refused and uses nothing.
    let again = expect(
        post(
            &node,
            &patient,
            &format!("/api/v1/group-invites/{token}/accept"),
            json!({}),
        )
        .await,
        409,
    );
    assert_eq!(again["error"], "already_member");
    let listed = expect(get(&node, &doctor, &g(&gid, "/invites")).await, 200);
    assert_eq!(listed["items"][0]["uses"], 1);
    // The member list is visible to members when the owner chose so.
    let members = expect(get(&node, &patient, &g(&gid, "/members")).await, 200);
    assert_eq!(members["items"].as_array().unwrap().len(), 2);
    assert_eq!(members["items"][0]["role"], "owner");
    assert_eq!(members["items"][0]["is_doctor"], true);
    // ... and hidden when the owner changes that.
    let patched = expect(
        call(
            &node,
            Some(&doctor),
            Method::PATCH,
            &g(&gid, ""),
            Some(json!({ "member_list": "moderators", "condition_code": null })),
        )
        .await,
        200,
    );
    assert_eq!(patched["member_list"], "moderators");
    assert_eq!(patched["condition_code"], Value::Null);
    assert_eq!(
        expect(get(&node, &patient, &g(&gid, "/members")).await, 403)["error"],
        "forbidden"
    );
    // Members leave; the owner cannot.
    assert_eq!(
        call(
            &node,
            Some(&patient),
            Method::POST,
            &g(&gid, "/leave"),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(get(&node, &patient, &g(&gid, "/posts")).await.0, 404);
    let owner_leaves = expect(
        call(&node, Some(&doctor), Method::POST, &g(&gid, "/leave"), None).await,
        409,
    );
    assert_eq!(owner_leaves["error"], "owner_cannot_leave");
    node.stop().await;
}

async fn invites_expire_run_out_and_can_be_revoked(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let doctor = node.account_with_token(Role::Doctor, "dr.wang").await;
    let p1 = node.account_with_token(Role::Patient, "p1").await;
    let p2 = node.account_with_token(Role::Patient, "p2").await;
    let gid = create_group(&node, &doctor, "group").await;
    let token_of = |v: &Value| {
        v["url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let once = token_of(&expect(
        post(
            &node,
            &doctor,
            &g(&gid, "/invites"),
            json!({ "max_uses": 1 }),
        )
        .await,
        201,
    ));
    let hourly = token_of(&expect(
        post(
            &node,
            &doctor,
            &g(&gid, "/invites"),
            json!({ "valid_hours": 1 }),
        )
        .await,
        201,
    ));
    let revoked = expect(
        post(&node, &doctor, &g(&gid, "/invites"), json!({})).await,
        201,
    );
    let revoked_id = revoked["id"].as_i64().unwrap();
    let revoked_token = token_of(&revoked);
    let gone = expect(
        call(
            &node,
            Some(&doctor),
            Method::DELETE,
            &g(&gid, &format!("/invites/{revoked_id}")),
            None,
        )
        .await,
        200,
    );
    assert_eq!(gone["state"], "revoked");

    let accept = |who: &str, tok: &str| {
        let node = &node;
        let who = who.to_owned();
        let path = format!("/api/v1/group-invites/{tok}/accept");
        async move { post(node, &who, &path, json!({})).await }
    };
    expect(accept(&p1, &once).await, 201);
    assert_eq!(
        expect(accept(&p2, &once).await, 410)["error"],
        "invite_used"
    );
    assert_eq!(
        expect(accept(&p2, &revoked_token).await, 410)["error"],
        "invite_revoked"
    );
    node.clock.advance_secs(3601);
    assert_eq!(
        expect(accept(&p2, &hourly).await, 410)["error"],
        "invite_expired"
    );
    assert_eq!(
        expect(accept(&p2, "no-such-token").await, 404)["error"],
        "not_found"
    );
    let group = expect(get(&node, &doctor, &g(&gid, "")).await, 200);
    assert_eq!(group["member_count"], 2, "only the first use got in");
    node.stop().await;
}

async fn full_group_refuses_with_a_clear_error(b: Backend) {
    let Some(node) = TestNode::spawn_with(b, |c| c.groups.max_members = 3).await else {
        return;
    };
    let doctor = node.account_with_token(Role::Doctor, "dr.wang").await;
    let gid = create_group(&node, &doctor, "small").await;
    let invite = expect(
        post(&node, &doctor, &g(&gid, "/invites"), json!({})).await,
        201,
    );
    let token = invite["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    for name in ["p1", "p2"] {
        let t = node.account_with_token(Role::Patient, name).await;
        expect(
            post(
                &node,
                &t,
                &format!("/api/v1/group-invites/{token}/accept"),
                json!({}),
            )
            .await,
            201,
        );
    }
    let late = node.account_with_token(Role::Patient, "p3").await;
    let full = expect(
        post(
            &node,
            &late,
            &format!("/api/v1/group-invites/{token}/accept"),
            json!({}),
        )
        .await,
        409,
    );
    assert_eq!(full["error"], "group_full");
    assert!(full["message"].as_str().unwrap().contains('3'));
    assert_eq!(get(&node, &late, &g(&gid, "/posts")).await.0, 404);
    // A join request can wait, but cannot be approved while the group is full.
    let req = expect(
        post(&node, &late, &g(&gid, "/join-requests"), json!({})).await,
        202,
    );
    let mid = req["id"].as_i64().unwrap();
    let refused = expect(
        post(
            &node,
            &doctor,
            &g(&gid, &format!("/join-requests/{mid}/approve")),
            json!({}),
        )
        .await,
        409,
    );
    assert_eq!(refused["error"], "group_full");
    let group = expect(get(&node, &doctor, &g(&gid, "")).await, 200);
    assert_eq!(group["member_count"], 3);
    node.stop().await;
}

async fn join_requests_are_approved_or_rejected(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let asker = node.account_with_token(Role::Patient, "asker").await;
    let req = expect(
        post(
            &node,
            &asker,
            &g(&w.gid, "/join-requests"),
            json!({ "message": "刚做完手术" }),
        )
        .await,
        202,
    );
    assert_eq!(req["state"], "pending");
    let again = expect(
        post(&node, &asker, &g(&w.gid, "/join-requests"), json!({})).await,
        409,
    );
    assert_eq!(again["error"], "already_requested");
    // Pending is not membership.
    assert_eq!(get(&node, &asker, &g(&w.gid, "/posts")).await.0, 404);
    // Members cannot decide; moderators see the queue.
    assert_eq!(
        get(&node, &w.member, &g(&w.gid, "/join-requests")).await.0,
        403
    );
    let queue = expect(
        get(&node, &w.moderator, &g(&w.gid, "/join-requests")).await,
        200,
    );
    assert_eq!(queue["items"][0]["request_message"], "刚做完手术");
    let mid = queue["items"][0]["id"].as_i64().unwrap();
    let path = g(&w.gid, &format!("/join-requests/{mid}/approve"));
    assert_eq!(post(&node, &w.member, &path, json!({})).await.0, 403);
    let approved = expect(post(&node, &w.moderator, &path, json!({})).await, 200);
    assert_eq!(approved["state"], "active");
    expect(get(&node, &asker, &g(&w.gid, "/posts")).await, 200);
    assert_eq!(
        expect(post(&node, &w.moderator, &path, json!({})).await, 409)["error"],
        "no_pending_request"
    );
    // A rejected request gives no access.
    let other = node.account_with_token(Role::Patient, "other").await;
    let r = expect(
        post(&node, &other, &g(&w.gid, "/join-requests"), json!({})).await,
        202,
    );
    let rid = r["id"].as_i64().unwrap();
    let rejected = expect(
        post(
            &node,
            &w.owner,
            &g(&w.gid, &format!("/join-requests/{rid}/reject")),
            json!({}),
        )
        .await,
        200,
    );
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(get(&node, &other, &g(&w.gid, "/posts")).await.0, 404);
    let log = expect(
        get(&node, &w.moderator, &g(&w.gid, "/moderation-log")).await,
        200,
    );
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions[..2], ["reject_join", "approve_join"]);
    node.stop().await;
}

async fn removed_members_lose_access_at_once_and_bans_stick(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let pid = question(&node, &w.member, &w.gid, "我的问题").await;
    expect(
        get(&node, &w.member, &g(&w.gid, &format!("/posts/{pid}"))).await,
        200,
    );
    // A member cannot remove anyone; a moderator cannot remove a doctor.
    let doctor_mid = {
        let ms = expect(get(&node, &w.owner, &g(&w.gid, "/members")).await, 200);
        ms["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["role"] == "doctor")
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let path = g(&w.gid, &format!("/members/{}", w.member_id));
    assert_eq!(
        call(&node, Some(&w.member), Method::DELETE, &path, None)
            .await
            .0,
        403
    );
    assert_eq!(
        call(
            &node,
            Some(&w.moderator),
            Method::DELETE,
            &g(&w.gid, &format!("/members/{doctor_mid}")),
            None
        )
        .await
        .0,
        403
    );
    let removed = expect(
        call(
            &node,
            Some(&w.moderator),
            Method::DELETE,
            &path,
            Some(json!({ "reason": "广告" })),
        )
        .await,
        200,
    );
    assert_eq!(removed["state"], "removed");
    // Access ends with the next request.
    assert_eq!(
        get(&node, &w.member, &g(&w.gid, &format!("/posts/{pid}")))
            .await
            .0,
        404
    );
    assert_eq!(
        post(
            &node,
            &w.member,
            &g(&w.gid, "/posts"),
            json!({"kind": "question", "body": "still here?"})
        )
        .await
        .0,
        404
    );
    // Removed members may come back; banned ones may not.
    common::join(&node, &w.owner, &w.gid, &w.member).await;
    let banned = expect(
        post(
            &node,
            &w.moderator,
            &g(&w.gid, &format!("/members/{}/ban", w.member_id)),
            json!({ "reason": "再次广告" }),
        )
        .await,
        200,
    );
    assert_eq!(banned["state"], "banned");
    let invite = expect(
        post(&node, &w.owner, &g(&w.gid, "/invites"), json!({})).await,
        201,
    );
    let token = invite["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let refused = expect(
        post(
            &node,
            &w.member,
            &format!("/api/v1/group-invites/{token}/accept"),
            json!({}),
        )
        .await,
        409,
    );
    assert_eq!(refused["error"], "banned");
    assert_eq!(
        expect(
            post(&node, &w.member, &g(&w.gid, "/join-requests"), json!({})).await,
            409
        )["error"],
        "banned"
    );
    let banned_list = expect(
        get(&node, &w.moderator, &g(&w.gid, "/members?state=banned")).await,
        200,
    );
    assert_eq!(banned_list["items"][0]["id"], w.member_id);
    // Unban, then an invite works again.
    expect(
        call(
            &node,
            Some(&w.moderator),
            Method::DELETE,
            &g(&w.gid, &format!("/members/{}/ban", w.member_id)),
            None,
        )
        .await,
        200,
    );
    expect(
        post(
            &node,
            &w.member,
            &format!("/api/v1/group-invites/{token}/accept"),
            json!({}),
        )
        .await,
        201,
    );
    // The owner cannot be removed, even by an administrator.
    let owner_mid = {
        let ms = expect(get(&node, &w.owner, &g(&w.gid, "/members")).await, 200);
        ms["items"][0]["id"].as_i64().unwrap()
    };
    let err = expect(
        post(
            &node,
            &w.admin,
            &g(&w.gid, &format!("/members/{owner_mid}/ban")),
            json!({}),
        )
        .await,
        409,
    );
    assert_eq!(err["error"], "cannot_remove_owner");
    let log = expect(
        get(&node, &w.admin, &g(&w.gid, "/moderation-log")).await,
        200,
    );
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // Coming back by the invite link is logged as well.
    assert_eq!(
        actions[..5],
        [
            "join_by_invite",
            "unban",
            "ban",
            "join_by_invite",
            "remove_member"
        ]
    );
    assert_eq!(log["items"][2]["detail"], "再次广告");
    assert_eq!(log["items"][2]["moderator"], "nurse.mod (display)");
    node.stop().await;
}

async fn announcements_pin_and_schedule(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let q = question(&node, &w.member, &w.gid, "化疗期间能运动吗").await;
    // Patients cannot announce, pin or schedule.
    let refused = post(
        &node,
        &w.member,
        &g(&w.gid, "/posts"),
        json!({ "kind": "announcement", "body": "x" }),
    )
    .await;
    assert_eq!(refused.0.as_u16(), 403);
    let refused = post(
        &node,
        &w.member,
        &g(&w.gid, "/posts"),
        json!({ "kind": "question", "body": "x", "pinned": true }),
    )
    .await;
    assert_eq!(refused.0.as_u16(), 403);
    assert_eq!(
        call(
            &node,
            Some(&w.member),
            Method::PUT,
            &g(&w.gid, &format!("/posts/{q}/pin")),
            None
        )
        .await
        .0,
        403
    );
    let ann = new_post(&node, &w.doctor, &w.gid, json!({ "kind": "announcement", "title": "门诊时间调整", "body": "下周一停诊", "pinned": true })).await;
    assert_eq!(ann["author"]["role"], "doctor");
    let later = node.clock.now().plus_secs(3600).to_rfc3339();
    let scheduled = new_post(
        &node,
        &w.doctor,
        &w.gid,
        json!({ "kind": "announcement", "body": "明天讲座", "publish_at": later }),
    )
    .await;
    let sid = scheduled["id"].as_str().unwrap().to_owned();
    let q2 = question(&node, &w.member, &w.gid, "第二个问题").await;
    let ann_id = ann["id"].as_str().unwrap().to_owned();
    assert_eq!(
        feed_ids(&node, &w.member, &w.gid, "").await,
        [ann_id.clone(), q2.clone(), q.clone()]
    );
    // Members do not see a scheduled post, not even by its id; doctors and moderators do.
    assert_eq!(
        get(&node, &w.member, &g(&w.gid, &format!("/posts/{sid}")))
            .await
            .0,
        404
    );
    assert_eq!(
        get(&node, &w.member, &g(&w.gid, "/posts/scheduled"))
            .await
            .0,
        403
    );
    let list = expect(
        get(&node, &w.moderator, &g(&w.gid, "/posts/scheduled")).await,
        200,
    );
    assert_eq!(list["items"][0]["id"], sid.as_str());
    node.clock.advance_secs(3600);
    assert_eq!(
        feed_ids(&node, &w.member, &w.gid, "").await,
        [ann_id.clone(), sid.clone(), q2.clone(), q.clone()]
    );
    // Pinning a question moves it up; unpinning the announcement moves it down.
    expect(
        call(
            &node,
            Some(&w.owner),
            Method::PUT,
            &g(&w.gid, &format!("/posts/{q}/pin")),
            None,
        )
        .await,
        200,
    );
    expect(
        call(
            &node,
            Some(&w.doctor),
            Method::DELETE,
            &g(&w.gid, &format!("/posts/{ann_id}/pin")),
            None,
        )
        .await,
        200,
    );
    assert_eq!(
        feed_ids(&node, &w.member, &w.gid, "").await,
        [q.clone(), sid, q2, ann_id]
    );
    // Scheduling in the past or too far ahead is refused.
    let past = node.clock.now().plus_secs(-60).to_rfc3339();
    let err = expect(
        post(
            &node,
            &w.doctor,
            &g(&w.gid, "/posts"),
            json!({ "kind": "announcement", "body": "x", "publish_at": past }),
        )
        .await,
        422,
    );
    assert!(err["message"].as_str().unwrap().contains("publish_at"));
    node.stop().await;
}

async fn threads_edits_deletes_and_history(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let q = question(&node, &w.member, &w.gid, "术后多久可以洗澡").await;
    let r1 = reply(&node, &w.doctor, &w.gid, &q, "一般拆线后").await;
    let r2 = reply(&node, &w.moderator, &w.gid, &q, "听医生的").await;
    let thread = expect(
        get(&node, &w.member, &g(&w.gid, &format!("/posts/{q}/replies"))).await,
        200,
    );
    let ids: Vec<&str> = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [r1.as_str(), r2.as_str()]);
    assert_eq!(thread["items"][0]["thread"], q.as_str());
    let parent = expect(
        get(&node, &w.member, &g(&w.gid, &format!("/posts/{q}"))).await,
        200,
    );
    assert_eq!(parent["reply_count"], 2);
    assert_eq!(parent["answered_by_doctor"], true);
    // Replies to replies are refused.
    let err = expect(
        post(
            &node,
            &w.member,
            &g(&w.gid, &format!("/posts/{r1}/replies")),
            json!({"body": "x"}),
        )
        .await,
        409,
    );
    assert_eq!(err["error"], "not_top_level");
    // Only the author edits; the edit is marked and its history kept for moderators.
    let path = g(&w.gid, &format!("/posts/{q}"));
    assert_eq!(
        call(
            &node,
            Some(&w.doctor),
            Method::PATCH,
            &path,
            Some(json!({"body": "changed"}))
        )
        .await
        .0,
        403
    );
    let edited = expect(
        call(
            &node,
            Some(&w.member),
            Method::PATCH,
            &path,
            Some(json!({"title": "术后洗澡", "body": "术后多久可以洗澡？伤口在腋下"})),
        )
        .await,
        200,
    );
    assert_eq!(edited["edited"], true);
    assert_eq!(edited["body"], "术后多久可以洗澡？伤口在腋下");
    assert_eq!(
        get(&node, &w.member, &format!("{path}/history")).await.0,
        403
    );
    let history = expect(
        get(&node, &w.moderator, &format!("{path}/history")).await,
        200,
    );
    assert_eq!(history["items"][0]["body"], "术后多久可以洗澡?");
    assert_eq!(history["items"][0]["reason"], "edit");
    // The author deletes the question: a tombstone keeps the thread readable.
    let deleted = expect(
        call(&node, Some(&w.member), Method::DELETE, &path, None).await,
        200,
    );
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["deleted_by"], "author");
    assert_eq!(deleted["body"], "");
    let feed = expect(get(&node, &w.member, &g(&w.gid, "/posts")).await, 200);
    assert_eq!(feed["items"][0]["deleted"], true);
    let thread = expect(
        get(&node, &w.member, &g(&w.gid, &format!("/posts/{q}/replies"))).await,
        200,
    );
    assert_eq!(thread["items"][0]["body"], "一般拆线后");
    assert!(
        expect(
            get(&node, &w.moderator, &format!("{path}/history")).await,
            200
        )["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the author's deletion erases the history"
    );
    let err = expect(
        post(
            &node,
            &w.doctor,
            &g(&w.gid, &format!("/posts/{q}/replies")),
            json!({"body": "late"}),
        )
        .await,
        409,
    );
    assert_eq!(err["error"], "thread_deleted");
    // A member cannot delete another's reply; a moderator removes it, logged.
    let rpath = g(&w.gid, &format!("/posts/{r2}"));
    assert_eq!(
        call(&node, Some(&w.member), Method::DELETE, &rpath, None)
            .await
            .0,
        403
    );
    let removed = expect(
        call(
            &node,
            Some(&w.doctor),
            Method::DELETE,
            &rpath,
            Some(json!({"reason": "不准确"})),
        )
        .await,
        200,
    );
    assert_eq!(removed["deleted_by"], "moderator");
    let history = expect(
        get(&node, &w.moderator, &format!("{rpath}/history")).await,
        200,
    );
    assert_eq!(history["items"][0]["body"], "听医生的");
    assert_eq!(history["items"][0]["reason"], "removed");
    let log = expect(
        get(&node, &w.moderator, &g(&w.gid, "/moderation-log")).await,
        200,
    );
    assert_eq!(log["items"][0]["action"], "remove_post");
    assert_eq!(log["items"][0]["target_post"], r2.as_str());
    assert_eq!(log["items"][0]["detail"], "不准确");
    node.stop().await;
}

async fn helpful_marks_sort_and_accepted_answers(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let second = node
        .account_with_token(Role::Patient, "second.patient")
        .await;
    join(&node, &w.owner, &w.gid, &second).await;
    let q = question(&node, &w.member, &w.gid, "白细胞低怎么办").await;
    let a = reply(&node, &second, &w.gid, &q, "多吃蛋白").await;
    let bb = reply(&node, &w.doctor, &w.gid, &q, "遵医嘱打升白针").await;
    let mark = |who: &str, pid: &str, m: Method| {
        let node = &node;
        let who = who.to_owned();
        let path = g(&w.gid, &format!("/posts/{pid}/helpful"));
        async move { call(node, Some(&who), m, &path, None).await }
    };
    let own = expect(mark(&second, &a, Method::PUT).await, 409);
    assert_eq!(own["error"], "own_post");
    let marked = expect(mark(&w.member, &bb, Method::PUT).await, 200);
    assert_eq!(
        (
            marked["helpful_count"].as_i64(),
            marked["marked_helpful"].as_bool()
        ),
        (Some(1), Some(true))
    );
    let twice = expect(mark(&w.member, &bb, Method::PUT).await, 200);
    assert_eq!(twice["helpful_count"], 1, "marking twice counts once");
    expect(mark(&second, &bb, Method::PUT).await, 200);
    expect(mark(&w.member, &a, Method::PUT).await, 200);
    let by_helpful = expect(
        get(
            &node,
            &w.member,
            &g(&w.gid, &format!("/posts/{q}/replies?sort=helpful")),
        )
        .await,
        200,
    );
    assert_eq!(by_helpful["items"][0]["id"], bb.as_str());
    assert_eq!(by_helpful["items"][0]["helpful_count"], 2);
    let unmarked = expect(mark(&w.member, &bb, Method::DELETE).await, 200);
    assert_eq!(unmarked["helpful_count"], 1);
    // Feed sorted by helpful marks.
    let q2 = question(&node, &second, &w.gid, "第二个").await;
    expect(mark(&second, &q, Method::PUT).await, 200);
    assert_eq!(
        feed_ids(&node, &w.member, &w.gid, "?sort=helpful").await,
        [q.clone(), q2.clone()]
    );
    assert_eq!(
        feed_ids(&node, &w.member, &w.gid, "?sort=newest").await,
        [q2, q.clone()]
    );
    // Only doctors accept an answer.
    let path = g(&w.gid, &format!("/posts/{q}/accepted-answer"));
    assert_eq!(
        call(
            &node,
            Some(&w.member),
            Method::PUT,
            &path,
            Some(json!({"reply": a}))
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(
            &node,
            Some(&w.moderator),
            Method::PUT,
            &path,
            Some(json!({"reply": a}))
        )
        .await
        .0,
        403
    );
    let accepted = expect(
        call(
            &node,
            Some(&w.doctor),
            Method::PUT,
            &path,
            Some(json!({"reply": a})),
        )
        .await,
        200,
    );
    assert_eq!(accepted["accepted_answer"], a.as_str());
    let cleared = expect(
        call(&node, Some(&w.doctor), Method::DELETE, &path, None).await,
        200,
    );
    assert_eq!(cleared["accepted_answer"], Value::Null);
    node.stop().await;
}

async fn doctor_queue_spans_groups_oldest_first(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    // The second doctor also serves the other group.
    let mid = join(&node, &w.other_doctor, &w.other_gid, &w.doctor).await;
    common::set_role(&node, &w.other_doctor, &w.other_gid, mid, "doctor").await;
    let p2 = node
        .account_with_token(Role::Patient, "stroke.patient")
        .await;
    join(&node, &w.other_doctor, &w.other_gid, &p2).await;
    let q1 = question(&node, &w.member, &w.gid, "一").await;
    node.clock.advance_secs(60);
    let q2 = question(&node, &p2, &w.other_gid, "二").await;
    node.clock.advance_secs(60);
    let q3 = question(&node, &w.member, &w.gid, "三").await;
    let queue = expect(get(&node, &w.doctor, "/api/v1/doctor/queue").await, 200);
    let ids: Vec<&str> = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["question"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [q1.as_str(), q2.as_str(), q3.as_str()]);
    assert_eq!(queue["items"][1]["group"]["id"], w.other_gid.as_str());
    // Paged.
    let page = expect(
        get(&node, &w.doctor, "/api/v1/doctor/queue?limit=2").await,
        200,
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = expect(
        get(
            &node,
            &w.doctor,
            &format!("/api/v1/doctor/queue?limit=2&cursor={cursor}"),
        )
        .await,
        200,
    );
    assert_eq!(rest["items"][0]["question"]["id"], q3.as_str());
    // Answering from the queue is replying in the thread; a patient's reply does not count.
    reply(&node, &p2, &w.other_gid, &q2, "我也想知道").await;
    let reply_path = queue["items"][0]["reply_path"].as_str().unwrap();
    expect(
        post(
            &node,
            &w.doctor,
            reply_path,
            json!({"body": "可以适度运动"}),
        )
        .await,
        201,
    );
    let queue = expect(get(&node, &w.doctor, "/api/v1/doctor/queue").await, 200);
    let ids: Vec<&str> = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["question"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [q2.as_str(), q3.as_str()]);
    // The owner of the first group sees only its questions; patients have no queue.
    let owner_queue = expect(get(&node, &w.owner, "/api/v1/doctor/queue").await, 200);
    assert_eq!(owner_queue["items"].as_array().unwrap().len(), 1);
    assert_eq!(get(&node, &w.member, "/api/v1/doctor/queue").await.0, 403);
    node.stop().await;
}

async fn html_is_returned_as_inert_text(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let evil = "<script>alert(1)</script> <img src=x onerror=alert(2)> **粗体**";
    let created = new_post(
        &node,
        &w.member,
        &w.gid,
        json!({"kind": "question", "title": "<b>标题</b>", "body": evil}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let resp = node
        .http
        .get(node.url(&g(&w.gid, &format!("/posts/{id}"))))
        .bearer_auth(&w.member)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let raw = resp.text().await.unwrap();
    // The text comes back exactly as typed, inside a JSON string: nothing rendered it, nothing
    // stripped it, and a client that shows it as text shows it harmlessly.
    let body: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(body["body"], evil);
    assert_eq!(body["title"], "<b>标题</b>");
    assert!(
        raw.contains(r#""body":"<script>alert(1)</script>"#),
        "{raw}"
    );
    // Control characters and direction overrides are removed.
    let sneaky = new_post(
        &node,
        &w.member,
        &w.gid,
        json!({"kind": "question", "body": "a\u{0}b\u{202E}c\r\nd"}),
    )
    .await;
    assert_eq!(sneaky["body"], "abc\nd");
    node.stop().await;
}

async fn library_and_search_in_chinese_and_english(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let guide = new_post(&node, &w.doctor, &w.gid, json!({"kind": "announcement", "title": "Lymphedema exercises", "body": "淋巴水肿的康复锻炼：每天三次"})).await;
    let gid_post = guide["id"].as_str().unwrap();
    question(&node, &w.member, &w.gid, "Tamoxifen side effects").await;
    // Members read the library but do not file into it.
    assert_eq!(
        post(
            &node,
            &w.member,
            &g(&w.gid, "/library/folders"),
            json!({"name": "x"})
        )
        .await
        .0,
        403
    );
    let folder = expect(
        post(
            &node,
            &w.moderator,
            &g(&w.gid, "/library/folders"),
            json!({"name": "术后康复"}),
        )
        .await,
        201,
    );
    let fid = folder["id"].as_i64().unwrap();
    assert_eq!(
        expect(
            post(
                &node,
                &w.doctor,
                &g(&w.gid, "/library/folders"),
                json!({"name": "术后康复"})
            )
            .await,
            409
        )["error"],
        "folder_exists"
    );
    let item = expect(
        post(
            &node,
            &w.moderator,
            &g(&w.gid, "/library/items"),
            json!({"folder": fid, "post": gid_post}),
        )
        .await,
        201,
    );
    assert_eq!(item["title"], "Lymphedema exercises");
    assert_eq!(item["post"], gid_post);
    assert_eq!(
        expect(
            post(
                &node,
                &w.moderator,
                &g(&w.gid, "/library/items"),
                json!({"folder": fid, "post": gid_post})
            )
            .await,
            409
        )["error"],
        "already_in_folder"
    );
    assert_eq!(
        expect(
            post(
                &node,
                &w.moderator,
                &g(&w.gid, "/library/items"),
                json!({"folder": fid})
            )
            .await,
            422
        )["error"],
        "invalid_field"
    );
    let folders = expect(
        get(&node, &w.member, &g(&w.gid, "/library/folders")).await,
        200,
    );
    assert_eq!(folders["items"][0]["item_count"], 1);
    let items = expect(
        get(
            &node,
            &w.member,
            &g(&w.gid, &format!("/library/items?folder={fid}")),
        )
        .await,
        200,
    );
    assert_eq!(items["items"][0]["post"], gid_post);

    let search = |q: &str| {
        let node = &node;
        let path = g(&w.gid, &format!("/search?q={}", urlencode(q)));
        let member = w.member.clone();
        async move {
            let body = expect(get(node, &member, &path).await, 200);
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(search("水肿").await, [gid_post]);
    assert_eq!(search("康复锻炼").await, [gid_post]);
    assert_eq!(search("LYMPHEDEMA").await, [gid_post]);
    assert_eq!(search("tamoxifen").await.len(), 1);
    assert!(search("化疗").await.is_empty());
    let lib = expect(
        get(
            &node,
            &w.member,
            &g(
                &w.gid,
                &format!("/search?in=library&q={}", urlencode("术后")),
            ),
        )
        .await,
        200,
    );
    assert_eq!(lib["items"][0]["post"], gid_post);
    // The other group's members find nothing here: the group does not exist for them.
    assert_eq!(
        get(&node, &w.other_doctor, &g(&w.gid, "/search?q=a"))
            .await
            .0,
        404
    );
    node.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn reports_queue_and_moderation_log(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let spam = question(&node, &w.member, &w.gid, "买保健品加微信").await;
    let fine = question(&node, &w.member, &w.gid, "正常问题").await;
    let report = |pid: &str, reason: &str| {
        let node = &node;
        let path = g(&w.gid, &format!("/posts/{pid}/reports"));
        let body = json!({"reason": reason});
        let doctor = w.doctor.clone();
        async move { post(node, &doctor, &path, body).await }
    };
    let r = expect(report(&spam, "广告").await, 201);
    assert_eq!(r["post"], spam.as_str());
    assert_eq!(
        expect(report(&spam, "again").await, 409)["error"],
        "already_reported"
    );
    let r2 = expect(report(&fine, "不确定").await, 201);
    assert_eq!(get(&node, &w.member, &g(&w.gid, "/reports")).await.0, 403);
    let queue = expect(get(&node, &w.moderator, &g(&w.gid, "/reports")).await, 200);
    assert_eq!(queue["items"].as_array().unwrap().len(), 2);
    assert_eq!(queue["items"][0]["post_body"], "买保健品加微信?");
    // The hospital admin, not a member, sees the queue and removes the reported post.
    let admin_view = expect(get(&node, &w.admin, &g(&w.gid, "/reports")).await, 200);
    assert_eq!(admin_view["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        get(&node, &w.admin, &g(&w.gid, "/posts")).await.0,
        403,
        "admins read no group content"
    );
    expect(
        call(
            &node,
            Some(&w.admin),
            Method::DELETE,
            &g(&w.gid, &format!("/posts/{spam}")),
            Some(json!({"reason": "广告"})),
        )
        .await,
        200,
    );
    let rid = r2["id"].as_i64().unwrap();
    expect(
        post(
            &node,
            &w.moderator,
            &g(&w.gid, &format!("/reports/{rid}/dismiss")),
            json!({}),
        )
        .await,
        200,
    );
    assert_eq!(
        expect(
            post(
                &node,
                &w.moderator,
                &g(&w.gid, &format!("/reports/{rid}/dismiss")),
                json!({})
            )
            .await,
            409
        )["error"],
        "report_resolved"
    );
    assert!(
        expect(get(&node, &w.moderator, &g(&w.gid, "/reports")).await, 200)["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let all = expect(
        get(&node, &w.moderator, &g(&w.gid, "/reports?state=all")).await,
        200,
    );
    assert_eq!(all["items"][0]["resolution"], "removed");
    assert_eq!(all["items"][1]["resolution"], "dismissed");
    let log = expect(
        get(&node, &w.admin, &g(&w.gid, "/moderation-log")).await,
        200,
    );
    let actions: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions[..2], ["dismiss_report", "remove_post"]);
    assert_eq!(log["items"][1]["moderator"], "admin (display)");
    assert_eq!(
        get(&node, &w.member, &g(&w.gid, "/moderation-log")).await.0,
        403
    );
    assert_eq!(
        get(&node, &w.other_doctor, &g(&w.gid, "/moderation-log"))
            .await
            .0,
        404
    );
    node.stop().await;
}

async fn bad_input_gets_clear_errors_and_changes_nothing(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let before = expect(get(&node, &w.owner, &g(&w.gid, "")).await, 200);
    let feed_before = feed_ids(&node, &w.member, &w.gid, "").await;
    let posts = g(&w.gid, "/posts");
    let cases: Vec<(Method, String, Option<Value>, u16, &str)> = vec![
        (
            Method::GET,
            g("no-such-group", "/posts"),
            None,
            404,
            "not_found",
        ),
        (
            Method::POST,
            g("no-such-group", "/posts"),
            Some(json!({"kind": "question", "body": "x"})),
            404,
            "not_found",
        ),
        (
            Method::POST,
            posts.clone(),
            Some(json!({"kind": "question"})),
            422,
            "invalid_body",
        ),
        (
            Method::POST,
            posts.clone(),
            Some(json!({"kind": "question", "body": 5})),
            422,
            "invalid_body",
        ),
        (
            Method::POST,
            posts.clone(),
            Some(json!({"kind": "question", "body": "x", "extra": 1})),
            422,
            "invalid_body",
        ),
        (
            Method::POST,
            posts.clone(),
            Some(json!({"kind": "poll", "body": "x"})),
            422,
            "invalid_field",
        ),
        (
            Method::POST,
            posts.clone(),
            Some(json!({"kind": "question", "body": "   "})),
            422,
            "invalid_field",
        ),
        (
            Method::POST,
            posts.clone(),
            Some(json!({"kind": "question", "body": "字".repeat(10_001)})),
            422,
            "invalid_field",
        ),
        (
            Method::POST,
            posts.clone(),
            Some(json!({"kind": "question", "title": "t".repeat(201), "body": "x"})),
            422,
            "invalid_field",
        ),
        (
            Method::POST,
            posts.clone(),
            Some(json!({"kind": "question", "body": "x", "attachments": ["nope"]})),
            409,
            "attachment_unusable",
        ),
        (
            Method::GET,
            format!("{posts}?cursor=garbage"),
            None,
            400,
            "invalid_cursor",
        ),
        (
            Method::GET,
            format!("{posts}?limit=0"),
            None,
            400,
            "invalid_limit",
        ),
        (
            Method::GET,
            format!("{posts}?sort=random"),
            None,
            400,
            "invalid_query",
        ),
        (
            Method::GET,
            format!("{posts}?bogus=1"),
            None,
            400,
            "invalid_query",
        ),
        (
            Method::GET,
            g(&w.gid, "/posts/nope"),
            None,
            404,
            "not_found",
        ),
        (
            Method::GET,
            g(&w.gid, "/search?q="),
            None,
            400,
            "invalid_query",
        ),
        (
            Method::POST,
            g(&w.gid, "/join-requests"),
            Some(json!({})),
            409,
            "already_member",
        ),
        (
            Method::POST,
            "/api/v1/groups".into(),
            Some(json!({"name": "x", "condition": "c", "city": "c", "language": "fr"})),
            422,
            "invalid_field",
        ),
        (
            Method::POST,
            "/api/v1/groups".into(),
            Some(json!({"name": "", "condition": "c", "city": "c", "language": "en"})),
            422,
            "invalid_field",
        ),
        (
            Method::POST,
            "/api/v1/groups".into(),
            Some(
                json!({"name": "x", "condition": "c", "condition_code": "c50!", "city": "c", "language": "en"}),
            ),
            422,
            "invalid_field",
        ),
        (
            Method::POST,
            "/api/v1/groups".into(),
            Some(json!({"name": "x", "city": "c", "language": "en"})),
            422,
            "invalid_body",
        ),
        (
            Method::PATCH,
            g(&w.gid, ""),
            Some(json!({"name": "a\nb"})),
            422,
            "invalid_field",
        ),
        (
            Method::PUT,
            g(&w.gid, &format!("/members/{}/role", w.member_id)),
            Some(json!({"role": "owner"})),
            422,
            "invalid_field",
        ),
        (
            Method::PUT,
            g(&w.gid, &format!("/members/{}/role", w.member_id)),
            Some(json!({"role": "doctor"})),
            409,
            "not_a_doctor",
        ),
        (
            Method::PUT,
            g(&w.gid, &format!("/members/{}/role", w.member_id)),
            Some(json!({"role": "king"})),
            422,
            "invalid_body",
        ),
        (
            Method::PUT,
            g(&w.gid, "/members/abc/role"),
            Some(json!({"role": "member"})),
            400,
            "invalid_path",
        ),
        (
            Method::PUT,
            g(&w.gid, "/members/999999/role"),
            Some(json!({"role": "member"})),
            404,
            "not_found",
        ),
        (
            Method::POST,
            g(&w.gid, "/invites"),
            Some(json!({"valid_hours": 0})),
            422,
            "invalid_field",
        ),
        (
            Method::POST,
            g(&w.gid, "/invites"),
            Some(json!({"max_uses": -1})),
            422,
            "invalid_body",
        ),
        (
            Method::POST,
            g(&w.gid, "/invites"),
            Some(json!({"max_uses": 0})),
            422,
            "invalid_field",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let who = if path.contains("/members/")
            || path.ends_with("/invites")
            || method == Method::PATCH
            || path == "/api/v1/groups"
        {
            &w.owner
        } else {
            &w.member
        };
        let (got, answer) = call(&node, Some(who), method.clone(), &path, body).await;
        assert_eq!(
            (got.as_u16(), answer["error"].as_str()),
            (status, Some(code)),
            "{method} {path}: {answer}"
        );
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Nothing changed.
    assert_eq!(
        expect(get(&node, &w.owner, &g(&w.gid, "")).await, 200),
        before
    );
    assert_eq!(feed_ids(&node, &w.member, &w.gid, "").await, feed_before);
    let mine = expect(get(&node, &w.owner, "/api/v1/groups").await, 200);
    assert_eq!(
        mine["items"].as_array().unwrap().len(),
        1,
        "no group was created"
    );
    let invites = expect(get(&node, &w.owner, &g(&w.gid, "/invites")).await, 200);
    assert_eq!(
        invites["items"].as_array().unwrap().len(),
        3,
        "only the invites of the setup"
    );
    let members = expect(get(&node, &w.owner, &g(&w.gid, "/members")).await, 200);
    assert_eq!(
        members["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == w.member_id)
            .unwrap()["role"],
        "member"
    );
    // Anonymous requests get 401 before anything else.
    let (status, body) = call(
        &node,
        None,
        Method::GET,
        &g("no-such-group", "/posts"),
        None,
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (401, Some("unauthenticated"))
    );
    node.stop().await;
}

async fn every_list_pages_by_cursor(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let mut made = Vec::new();
    for i in 0..7 {
        made.push(question(&node, &w.member, &w.gid, &format!("问题{i}")).await);
    }
    let q = made[0].clone();
    let mut replies = Vec::new();
    for i in 0..5 {
        replies.push(reply(&node, &w.doctor, &w.gid, &q, &format!("回复{i}")).await);
    }
    async fn all_pages(node: &TestNode, token: &str, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit=2&cursor={c}"),
                None => format!("{path}{sep}limit=2"),
            };
            let page = expect(get(node, token, &url).await, 200);
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 2);
            out.extend(items.iter().map(|i| i["id"].to_string()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        out
    }
    let feed = all_pages(&node, &w.member, &g(&w.gid, "/posts")).await;
    let expected: Vec<String> = made.iter().rev().map(|id| format!("\"{id}\"")).collect();
    assert_eq!(feed, expected);
    let helpful = all_pages(&node, &w.member, &g(&w.gid, "/posts?sort=helpful")).await;
    assert_eq!(helpful.len(), 7);
    let thread = all_pages(&node, &w.member, &g(&w.gid, &format!("/posts/{q}/replies"))).await;
    assert_eq!(
        thread,
        replies
            .iter()
            .map(|id| format!("\"{id}\""))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        all_pages(&node, &w.member, &g(&w.gid, "/members"))
            .await
            .len(),
        4
    );
    assert_eq!(
        all_pages(&node, &w.owner, &g(&w.gid, "/invites"))
            .await
            .len(),
        3
    );
    assert_eq!(
        all_pages(&node, &w.member, &g(&w.gid, "/search?q=问题"))
            .await
            .len(),
        7
    );
    // Every entry of the log, two a page, each once (the joins by link and two more).
    let whole = expect(
        get(&node, &w.owner, &g(&w.gid, "/moderation-log?limit=100")).await,
        200,
    );
    let whole = whole["items"].as_array().unwrap();
    assert!(
        whole
            .iter()
            .filter(|e| e["action"] != "join_by_invite")
            .count()
            == 2
    );
    let paged = all_pages(&node, &w.owner, &g(&w.gid, "/moderation-log")).await;
    assert_eq!(
        paged,
        whole
            .iter()
            .map(|e| e["id"].to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        all_pages(&node, &w.doctor, "/api/v1/doctor/queue")
            .await
            .len(),
        6
    );
    node.stop().await;
}

async fn cookie_writes_from_other_sites_are_refused(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let cookie = format!("caremesh_session={}", w.member);
    let posts = node.url(&g(&w.gid, "/posts"));
    let send = |origin: &'static str| {
        node.http
            .post(&posts)
            .header("cookie", &cookie)
            .header("origin", origin)
            .json(&json!({"kind": "question", "body": "from a page"}))
            .send()
    };
    let refused = send("https://evil.example").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"],
        "cross_origin_refused"
    );
    assert!(
        feed_ids(&node, &w.member, &w.gid, "").await.is_empty(),
        "nothing was posted"
    );
    // Reading with the cookie from anywhere is fine; writing from the node's own pages too.
    let read = node
        .http
        .get(&posts)
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let own = node.base_url.origin().ascii_serialization();
    let ok = node
        .http
        .post(&posts)
        .header("cookie", &cookie)
        .header("origin", own)
        .json(&json!({"kind": "question", "body": "from a page"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
    assert_eq!(feed_ids(&node, &w.member, &w.gid, "").await.len(), 1);
    node.stop().await;
}

async fn patients_choose_their_name_in_each_group(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let me = g(&w.gid, "/me");
    let put = |token: &str, body: Value| {
        let token = token.to_owned();
        let node = &node;
        let me = me.clone();
        async move { call(node, Some(&token), Method::PUT, &me, Some(body)).await }
    };
    let q = question(&node, &w.member, &w.gid, "术后锻炼").await;
    let body = expect(
        put(&w.member, json!({"display_name": "  康复中的小王 "})).await,
        200,
    );
    assert_eq!(body["display_name"], "康复中的小王");
    assert_eq!(body["id"], w.member_id);
    // The group shows the name on posts and in the member list; other groups do not.
    let post = expect(
        get(&node, &w.owner, &g(&w.gid, &format!("/posts/{q}"))).await,
        200,
    );
    assert_eq!(post["author"]["name"], "康复中的小王");
    let members = expect(get(&node, &w.owner, &g(&w.gid, "/members")).await, 200);
    assert!(
        members["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["display_name"] == "康复中的小王")
    );
    join(&node, &w.other_doctor, &w.other_gid, &w.member).await;
    let q2 = question(&node, &w.member, &w.other_gid, "另一个群").await;
    let post = expect(
        get(&node, &w.member, &g(&w.other_gid, &format!("/posts/{q2}"))).await,
        200,
    );
    assert_eq!(post["author"]["name"], "patient.member (display)");

    // Refusals change nothing.
    for (token, body, status, code) in [
        (
            &w.member,
            json!({"display_name": "   "}),
            422,
            "invalid_field",
        ),
        (
            &w.member,
            json!({"display_name": "名".repeat(65)}),
            422,
            "invalid_field",
        ),
        (&w.member, json!({"display_name": 5}), 422, "invalid_body"),
        (&w.member, json!({"name": "x"}), 422, "invalid_body"),
        // Doctors and staff are known by their account's name.
        (&w.doctor, json!({"display_name": "x"}), 403, "forbidden"),
        (&w.moderator, json!({"display_name": "x"}), 403, "forbidden"),
        (&w.admin, json!({"display_name": "x"}), 403, "forbidden"),
        // Outsiders learn nothing about the group.
        (&w.outsider, json!({"display_name": "x"}), 404, "not_found"),
    ] {
        let (st, b) = put(token, body.clone()).await;
        assert_eq!(
            (st.as_u16(), b["error"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let (st, _) = call(
        &node,
        None,
        Method::PUT,
        &me,
        Some(json!({"display_name": "x"})),
    )
    .await;
    assert_eq!(st.as_u16(), 401);
    let post = expect(
        get(&node, &w.owner, &g(&w.gid, &format!("/posts/{q}"))).await,
        200,
    );
    assert_eq!(post["author"]["name"], "康复中的小王");
    // Who has left cannot choose a name there any more.
    expect(
        post_empty(&node, &w.member, &g(&w.gid, "/leave")).await,
        204,
    );
    let (st, b) = put(&w.member, json!({"display_name": "x"})).await;
    assert_eq!((st.as_u16(), b["error"].as_str()), (404, Some("not_found")));
}

async fn post_empty(node: &TestNode, token: &str, path: &str) -> (reqwest::StatusCode, Value) {
    call(node, Some(token), Method::POST, path, None).await
}
