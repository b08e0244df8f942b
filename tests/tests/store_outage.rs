//! A node whose database stops taking writes (a full disk under SQLite, a database that turned
//! read-only under PostgreSQL): changes answer 503 so that clients and partners retry, `/readyz`
//! says not ready, nothing is half-stored; once the database takes writes again the node writes
//! and says ready without a restart, and what it held before is all there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use caremesh_domain::{Clock, Role};
use caremesh_testkit::{Backend, TestNode, wait_for};
use common::{create_group, expect, get, post};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// How the test stops the database from taking writes, and lets it take them again.
enum Outage {
    /// The SQLite node's disk is full until this file is removed.
    DiskFull(std::path::PathBuf),
    /// The node's PostgreSQL database refuses writes until the setting is reset.
    ReadOnly { admin_url: String, database: String },
}

impl Outage {
    async fn begin(node: &TestNode) -> Self {
        match node.small_disk() {
            Some(disk) => Self::DiskFull(disk.fill()),
            None => {
                let admin_url = caremesh_testkit::postgres_admin_url().unwrap();
                let database = node
                    .config
                    .database
                    .url
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned();
                let admin = admin_pool(&admin_url).await;
                sqlx_exec(
                    &admin,
                    &format!("alter database {database} set default_transaction_read_only = on"),
                )
                .await;
                // The node's sessions end; those it opens now refuse writes.
                sqlx_exec(
                    &admin,
                    &format!(
                        "select pg_terminate_backend(pid) from pg_stat_activity
                         where datname = '{database}' and pid <> pg_backend_pid()"
                    ),
                )
                .await;
                admin.close().await;
                Self::ReadOnly {
                    admin_url,
                    database,
                }
            }
        }
    }

    /// Lets the database take writes again. On PostgreSQL the node's read-only sessions stay
    /// open: the node must leave them by itself.
    async fn end(self) {
        match self {
            Self::DiskFull(filler) => std::fs::remove_file(filler).unwrap(),
            Self::ReadOnly {
                admin_url,
                database,
            } => {
                let admin = admin_pool(&admin_url).await;
                sqlx_exec(
                    &admin,
                    &format!("alter database {database} reset default_transaction_read_only"),
                )
                .await;
                admin.close().await;
            }
        }
    }
}

async fn admin_pool(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap()
}

async fn sqlx_exec(pool: &sqlx::PgPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

/// A doctor's note on `node`, with the doctor's integrity proof, as a partner delivers it.
async fn note(node: &TestNode, author: &str, n: usize) -> Value {
    let urls = &node.federation.urls;
    let actor = urls.person(author);
    let activity = json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/data-integrity/v2"],
        "id": urls.activity(&format!("create-{author}-{n}")),
        "type": "Create",
        "actor": actor,
        "object": {
            "id": urls.object(&format!("{author}-{n}")),
            "type": "Note",
            "attributedTo": actor,
            "content": format!("康复操第{n}节"),
            "published": node.clock.now().to_rfc3339(),
        },
    });
    node.federation.sign_as(&actor, &activity).await.unwrap()
}

async fn received(node: &TestNode) -> Vec<String> {
    node.store
        .received_activities(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.activity_id)
        .collect()
}

async fn readyz(node: &TestNode) -> StatusCode {
    node.http
        .get(node.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
}

fn question(text: &str) -> Value {
    json!({ "kind": "question", "title": text, "body": format!("{text}?") })
}

/// The titles in the group's feed, newest first.
async fn feed(node: &TestNode, token: &str, gid: &str) -> Vec<String> {
    let body = expect(
        get(node, token, &format!("/api/v1/groups/{gid}/posts")).await,
        200,
    );
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `node` loses its database's writes and gets them back; `partner` delivers to it meanwhile.
async fn outage_and_recovery(node: TestNode) {
    let partner = TestNode::spawn(Backend::Sqlite).await.unwrap();
    node.add_partner(&partner).await;
    partner.add_partner(&node).await;
    let doctor = node.account_with_token(Role::Doctor, "dr.wang").await;
    let gid = create_group(&node, &doctor, "卒中康复 唐山").await;
    expect(
        post(
            &node,
            &doctor,
            &format!("/api/v1/groups/{gid}/posts"),
            question("before"),
        )
        .await,
        201,
    );
    partner
        .create_account(Role::Doctor, "dr.li", "doctor password")
        .await;
    let (direct, queued) = (
        note(&partner, "dr.li", 1).await,
        note(&partner, "dr.li", 2).await,
    );
    assert_eq!(readyz(&node).await, StatusCode::OK);

    let outage = Outage::begin(&node).await;

    // A change answers 503 with Retry-After, whatever connection it meets (on PostgreSQL the first
    // ones were cut), and stores nothing.
    for _ in 0..6 {
        let resp = node
            .http
            .post(node.url(&format!("/api/v1/groups/{gid}/posts")))
            .bearer_auth(&doctor)
            .json(&question("during"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().contains_key("retry-after"));
        let body: Value = resp.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
    // A partner's signed delivery answers 503 too, so that it is sent again.
    let (status, body) = partner
        .deliver_raw(&node, &serde_json::to_vec(&direct).unwrap())
        .await;
    assert_eq!(status, 503, "{body}");
    // And the partner's outbox keeps trying another.
    let peers = partner.federation.peers(&[node.authority()]).await.unwrap();
    partner.federation.publish(&queued, &peers).await.unwrap();
    assert_eq!(readyz(&node).await, StatusCode::SERVICE_UNAVAILABLE);
    // Reads go on.
    wait_for("the feed to be read during the outage", || async {
        get(&node, &doctor, &format!("/api/v1/groups/{gid}/posts"))
            .await
            .0
            == StatusCode::OK
    })
    .await;
    assert_eq!(feed(&node, &doctor, &gid).await, ["before"]);
    assert_eq!(readyz(&node).await, StatusCode::SERVICE_UNAVAILABLE);

    outage.end().await;

    // Ready again within seconds, by itself, and writing.
    let deadline = Instant::now() + Duration::from_secs(10);
    while readyz(&node).await != StatusCode::OK {
        assert!(Instant::now() < deadline, "not ready 10 s after the outage");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for n in 0..4 {
        expect(
            post(
                &node,
                &doctor,
                &format!("/api/v1/groups/{gid}/posts"),
                question(&format!("after {n}")),
            )
            .await,
            201,
        );
    }
    let (status, body) = partner
        .deliver_raw(&node, &serde_json::to_vec(&direct).unwrap())
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("stored")),
        "{body}"
    );
    wait_for("the partner's retried delivery", || async {
        received(&node).await.len() == 2
    })
    .await;

    // What was stored before is there, each change once, and nothing from the refused requests.
    assert_eq!(
        feed(&node, &doctor, &gid).await,
        ["after 3", "after 2", "after 1", "after 0", "before"]
    );
    let mut got = received(&node).await;
    got.sort();
    let mut sent = vec![
        direct["id"].as_str().unwrap().to_owned(),
        queued["id"].as_str().unwrap().to_owned(),
    ];
    sent.sort();
    assert_eq!(got, sent);
    let me = expect(get(&node, &doctor, "/api/v1/me").await, 200);
    assert_eq!(me["username"], "dr.wang");
    assert_eq!(readyz(&node).await, StatusCode::OK);
}

/// SQLite on a 16 MiB tmpfs that the test fills; needs root (to mount), else recorded as skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_the_node_writes_again_once_it_has_room() {
    let Some(node) = TestNode::spawn_on_small_disk("16m").await else {
        return;
    };
    outage_and_recovery(node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_answers_503_and_the_node_writes_again_once_it_is_writable() {
    let Some(node) = TestNode::spawn(Backend::Postgres).await else {
        return;
    };
    outage_and_recovery(node).await;
}
