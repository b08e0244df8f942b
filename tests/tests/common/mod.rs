//! Helpers shared by the group tests: a logged-in client, and a group with one account of each
//! role in it.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod images;
pub mod mesh;

use caremesh_domain::Role;
use caremesh_testkit::TestNode;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Sends a request as `token` (or anonymously) and returns the status and the JSON body
/// (`Value::Null` when the body is not JSON).
pub async fn call(
    node: &TestNode,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = node.http.request(method, node.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub async fn get(node: &TestNode, token: &str, path: &str) -> (StatusCode, Value) {
    call(node, Some(token), Method::GET, path, None).await
}

pub async fn post(node: &TestNode, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    call(node, Some(token), Method::POST, path, Some(body)).await
}

/// Asserts the status and returns the body, printing it when the status is wrong.
#[track_caller]
pub fn expect(got: (StatusCode, Value), status: u16) -> Value {
    assert_eq!(got.0.as_u16(), status, "unexpected answer: {}", got.1);
    got.1
}

/// A group with one account of each kind around it.
pub struct World {
    pub gid: String,
    /// Doctor who created the group.
    pub owner: String,
    /// A second doctor, appointed doctor of the group.
    pub doctor: String,
    /// A staff member appointed moderator.
    pub moderator: String,
    /// A patient member.
    pub member: String,
    pub member_id: i64,
    /// A patient of the node who is not a member.
    pub outsider: String,
    /// A doctor who owns another group, not this one.
    pub other_doctor: String,
    pub other_gid: String,
    /// The hospital administrator (not a member).
    pub admin: String,
}

pub async fn create_group(node: &TestNode, token: &str, name: &str) -> String {
    let body = expect(
        post(
            node,
            token,
            "/api/v1/groups",
            json!({
                "name": name,
                "condition": "乳腺癌",
                "condition_code": "C50",
                "city": "唐山",
                "language": "zh-CN",
                "description": "术后康复与随访教育",
                "rules": "互相尊重；不发广告。",
                "member_list": "members",
            }),
        )
        .await,
        201,
    );
    body["id"].as_str().unwrap().to_owned()
}

/// Makes an invite link for the group and lets `token` join with it; returns the membership id.
pub async fn join(node: &TestNode, by: &str, gid: &str, token: &str) -> i64 {
    let invite = expect(
        post(
            node,
            by,
            &format!("/api/v1/groups/{gid}/invites"),
            json!({}),
        )
        .await,
        201,
    );
    let link = invite["url"].as_str().unwrap();
    let invite_token = link.rsplit('/').next().unwrap();
    expect(
        post(
            node,
            token,
            &format!("/api/v1/group-invites/{invite_token}/accept"),
            json!({}),
        )
        .await,
        201,
    );
    let me = node
        .store
        .user_by_username(&username_of(node, token).await)
        .await
        .unwrap();
    let group = node.store.group_by_public_id(gid).await.unwrap();
    node.store
        .membership(group.id, me.id)
        .await
        .unwrap()
        .unwrap()
        .id
}

pub async fn username_of(node: &TestNode, token: &str) -> String {
    let me = expect(get(node, token, "/api/v1/me").await, 200);
    me["username"].as_str().unwrap().to_owned()
}

pub async fn set_role(node: &TestNode, owner: &str, gid: &str, member_id: i64, role: &str) {
    expect(
        call(
            node,
            Some(owner),
            Method::PUT,
            &format!("/api/v1/groups/{gid}/members/{member_id}/role"),
            Some(json!({ "role": role })),
        )
        .await,
        200,
    );
}

pub async fn world(node: &TestNode) -> World {
    let owner = node.account_with_token(Role::Doctor, "dr.owner").await;
    let doctor = node.account_with_token(Role::Doctor, "dr.second").await;
    let moderator = node.account_with_token(Role::Staff, "nurse.mod").await;
    let member = node
        .account_with_token(Role::Patient, "patient.member")
        .await;
    let outsider = node
        .account_with_token(Role::Patient, "patient.outsider")
        .await;
    let other_doctor = node.account_with_token(Role::Doctor, "dr.other").await;
    let admin = node.account_with_token(Role::Admin, "admin").await;
    let gid = create_group(node, &owner, "乳腺癌康复 唐山").await;
    let other_gid = create_group(node, &other_doctor, "卒中康复 广州").await;
    let d = join(node, &owner, &gid, &doctor).await;
    set_role(node, &owner, &gid, d, "doctor").await;
    let m = join(node, &owner, &gid, &moderator).await;
    set_role(node, &owner, &gid, m, "moderator").await;
    let member_id = join(node, &owner, &gid, &member).await;
    World {
        gid,
        owner,
        doctor,
        moderator,
        member,
        member_id,
        outsider,
        other_doctor,
        other_gid,
        admin,
    }
}
