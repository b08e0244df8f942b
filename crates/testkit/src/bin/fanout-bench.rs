//! Fan-out benchmark: one post in a group whose members sit on 35 partner nodes. Reports the time
//! from the doctor's POST until all 35 nodes acknowledged the delivery (median and p99 over the
//! runs) and the number of deliveries per post, which must equal the number of nodes (one POST per
//! node, whatever the number of members there). The 35 nodes are simulated on loopback by minimal
//! HTTP servers that answer 202, so the number measures the sending node.
//!
//! `cargo run --release -p caremesh-testkit --bin fanout-bench -- [NODES] [RUNS]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use caremesh_domain::{Clock, Role};
use caremesh_store::{Partner, RemoteFollow};
use caremesh_testkit::{Backend, TestNode};
use serde_json::{Value, json};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let nodes: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(35);
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(50);

    let host = TestNode::spawn_with(Backend::Sqlite, |c| {
        c.federation.delivery.concurrency = 64;
        c.log.level = "warn".into();
    })
    .await
    .unwrap();

    // The member nodes: count inbox POSTs.
    let received = Arc::new(AtomicUsize::new(0));
    let mut ports = Vec::new();
    for _ in 0..nodes {
        let counter = received.clone();
        let app = Router::new().route(
            "/inbox",
            post(move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    StatusCode::ACCEPTED
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.push(listener.local_addr().unwrap().port());
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    for port in &ports {
        host.store
            .add_partner(Partner {
                authority: format!("127.0.0.1:{port}"),
                base_url: format!("http://127.0.0.1:{port}/"),
                added_at: host.clock.now(),
                source: "cli".into(),
            })
            .await
            .unwrap();
    }
    host.federation.partners.invalidate().await;

    let doctor = host.account_with_token(Role::Doctor, "dr.li").await;
    let group: Value = host
        .http
        .post(host.url("/api/v1/groups"))
        .bearer_auth(&doctor)
        .json(&json!({ "name": "心衰康复", "condition": "心力衰竭", "city": "唐山", "language": "zh-CN" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let gid = group["id"].as_str().unwrap().to_owned();
    let invite: Value = host
        .http
        .post(host.url(&format!("/api/v1/groups/{gid}/invites")))
        .bearer_auth(&doctor)
        .json(&json!({ "max_uses": 10000 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = invite["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let g = host.store.group_by_public_id(&gid).await.unwrap();
    // Three members on each node: still one delivery per node.
    for port in &ports {
        for m in 0..3 {
            let actor = format!("http://127.0.0.1:{port}/pseudonyms/m{m}");
            host.store
                .remote_follow(
                    RemoteFollow {
                        group_id: g.id,
                        actor_id: &actor,
                        name: "member",
                        invite_token: Some(&token),
                        max_members: 500,
                    },
                    Vec::new(),
                    host.clock.now(),
                )
                .await
                .unwrap();
        }
    }

    let mut times = Vec::with_capacity(runs);
    for r in 0..runs {
        let before = received.load(Ordering::SeqCst);
        let started = Instant::now();
        let resp = host
            .http
            .post(host.url(&format!("/api/v1/groups/{gid}/posts")))
            .bearer_auth(&doctor)
            .json(&json!({ "kind": "announcement", "body": format!("第{r}次讲座通知") }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let deadline = Instant::now() + Duration::from_secs(30);
        while received.load(Ordering::SeqCst) < before + nodes {
            assert!(Instant::now() < deadline, "deliveries did not complete");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        // Let stragglers (there must be none) arrive before the next run.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            received.load(Ordering::SeqCst),
            before + nodes,
            "one delivery per node"
        );
    }
    times.sort_by(f64::total_cmp);
    let total = received.load(Ordering::SeqCst);
    println!(
        "fan-out: one post to a group with {} members on {nodes} nodes, {runs} runs",
        nodes * 3
    );
    println!("  deliveries per post: {} (nodes: {nodes})", total / runs);
    println!(
        "  time until all {nodes} nodes acknowledged: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[times.len() - 1]
    );
    host.stop().await;
}
