//! Several real nodes on loopback that are each other's partners, and what their members see of
//! a group: the helpers of the tests of groups across hospitals.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use caremesh_testkit::{Backend, TestNode, wait_for};
use serde_json::{Value, json};

use super::{expect, get, post};

pub async fn mesh(nodes: &[&TestNode]) {
    for a in nodes {
        for b in nodes {
            if a.authority() != b.authority() {
                a.add_partner(b).await;
            }
        }
    }
}

pub async fn node(backend: Backend, name: &str) -> Option<TestNode> {
    let name = name.to_owned();
    TestNode::spawn_with(backend, move |c| c.hospital_name = name).await
}

/// An invite token of the group, usable ten times.
pub async fn invite(node: &TestNode, token: &str, gid: &str) -> String {
    let invite = expect(
        post(
            node,
            token,
            &format!("/api/v1/groups/{gid}/invites"),
            json!({ "max_uses": 10 }),
        )
        .await,
        201,
    );
    invite["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// Joins a group hosted on another node through `node`; returns the local mirror's id once the
/// host accepted.
pub async fn join_remote(
    node: &TestNode,
    token: &str,
    group_url: &str,
    name: &str,
    invite: &str,
) -> String {
    let body = expect(
        post(
            node,
            token,
            "/api/v1/remote-groups",
            json!({ "group": group_url, "display_name": name, "invite": invite }),
        )
        .await,
        202,
    );
    let mirror = body["group"].as_str().unwrap().to_owned();
    wait_for("the host's Accept", || async {
        get(node, token, &format!("/api/v1/groups/{mirror}"))
            .await
            .0
            == 200
    })
    .await;
    mirror
}

pub async fn feed(node: &TestNode, token: &str, gid: &str) -> Vec<Value> {
    let (status, page) = get(node, token, &format!("/api/v1/groups/{gid}/posts?limit=50")).await;
    if status != 200 {
        return Vec::new();
    }
    page["items"].as_array().unwrap().clone()
}

pub async fn replies(node: &TestNode, token: &str, gid: &str, pid: &str) -> Vec<Value> {
    let (_, page) = get(
        node,
        token,
        &format!("/api/v1/groups/{gid}/posts/{pid}/replies?limit=50"),
    )
    .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

/// The post of the feed with this text (`Null` if there is none).
pub async fn find(node: &TestNode, token: &str, gid: &str, body: &str) -> Value {
    feed(node, token, gid)
        .await
        .into_iter()
        .find(|p| p["body"] == body)
        .unwrap_or(Value::Null)
}

/// What a member sees of a group, independent of the node's own ids: each thread with its
/// state and its replies, in feed order.
pub async fn snapshot(node: &TestNode, token: &str, gid: &str) -> Vec<String> {
    let mut out = Vec::new();
    for p in feed(node, token, gid).await {
        let pid = p["id"].as_str().unwrap();
        let rs = replies(node, token, gid, pid).await;
        let accepted = rs
            .iter()
            .find(|r| Some(r["id"].as_str().unwrap()) == p["accepted_answer"].as_str())
            .map(|r| r["body"].to_string());
        out.push(format!(
            "{} {} by {}: {:?} {} pinned={} deleted={} by={} helpful={} edited={} answered={} accepted={:?}",
            p["kind"],
            p["title"],
            p["author"]["name"],
            p["body"].as_str().unwrap(),
            p["publish_at"],
            p["pinned"],
            p["deleted"],
            p["deleted_by"],
            p["helpful_count"],
            p["edited"],
            p["answered_by_doctor"],
            accepted,
        ));
        for r in rs {
            out.push(format!(
                "  reply by {}: {:?} deleted={} helpful={} edited={}",
                r["author"]["name"], r["body"], r["deleted"], r["helpful_count"], r["edited"],
            ));
        }
    }
    out
}

/// Waits until `node` shows the group as `expected`; shows the difference if it never does.
pub async fn converge(node: &TestNode, token: &str, gid: &str, expected: &[String], name: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = snapshot(node, token, gid).await;
        if got == expected {
            return;
        }
        if std::time::Instant::now() > deadline {
            assert_eq!(got.join("\n"), expected.join("\n"), "node {name}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
