//! Inbox ingest benchmark: how many signed, proof-carrying activities per second a node verifies,
//! deduplicates and stores, next to the raw limits measured in the same run (one Ed25519
//! verification, one single-row commit, one 100-row commit) so the result reads as a ratio.
//!
//! Run in release mode: `cargo run --release -p caremesh-testkit --bin inbox-bench [N] [RUNS]`.
//! With `TEST_POSTGRES_URL` set it measures PostgreSQL as well.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Instant;

use caremesh_domain::{Clock, Role, Timestamp};
use caremesh_federation::client::system_time;
use caremesh_protocol::KeyPair;
use caremesh_protocol::httpsig::signed_request_headers;
use caremesh_store::{IncomingActivity, ObjectChange};
use caremesh_testkit::{Backend, TestNode, postgres_admin_url};
use serde_json::json;
use tokio::sync::Semaphore;

const CONCURRENCY: usize = 64;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Ed25519 verifications per second on one core.
fn verify_rate() -> f64 {
    let key = KeyPair::from_seed(&[9; 32]);
    let msg =
        b"POST /inbox host date digest: a typical signing string of about a hundred bytes....";
    let sig = key.sign(msg);
    let pk = key.public_key();
    let n = 20_000;
    let t = Instant::now();
    for _ in 0..n {
        pk.verify(msg, &sig).unwrap();
    }
    f64::from(n) / t.elapsed().as_secs_f64()
}

fn incoming(run: &str, n: usize, at: Timestamp) -> IncomingActivity {
    IncomingActivity {
        activity_id: format!("https://bench.example/activities/{run}-{n}"),
        activity_type: "Create".into(),
        actor_id: "https://bench.example/users/dr".into(),
        peer: "bench.example".into(),
        payload: format!("{{\"n\":{n},\"content\":\"{}\"}}", "x".repeat(400)),
        received_at: at,
        object: Some(ObjectChange::Upsert {
            object_id: format!("https://bench.example/objects/{run}-{n}"),
            object_type: "Note".into(),
            attributed_to: "https://bench.example/users/dr".into(),
            document: "{\"content\":\"benchmark\"}".into(),
            published_at: Some(at),
            updated_at: None,
        }),
    }
}

/// Single-row commits per second and rows per second in 100-row commits, on the node's store.
async fn commit_rates(node: &TestNode) -> (f64, f64) {
    let now = node.clock.now();
    let n = 1000;
    let t = Instant::now();
    for i in 0..n {
        node.store
            .ingest(vec![incoming("single", i, now)])
            .await
            .unwrap();
    }
    let single = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for b in 0..50 {
        let batch = (0..100)
            .map(|i| incoming("batch", b * 100 + i, now))
            .collect();
        node.store.ingest(batch).await.unwrap();
    }
    let batched = 5000.0 / t.elapsed().as_secs_f64();
    (single, batched)
}

/// Sends `n` signed activities with proofs from `sender` to `receiver`; returns activities/s.
async fn ingest_run(sender: &TestNode, receiver: &TestNode, run: usize, n: usize) -> f64 {
    let (key_id, key) = sender.federation.keys.instance_key().await.unwrap();
    let key = KeyPair::from_seed(&key.seed());
    let urls = &sender.federation.urls;
    let actor = urls.person("dr.bench");
    let host = receiver.authority();
    let mut requests = Vec::with_capacity(n);
    for i in 0..n {
        let activity = json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/data-integrity/v2"],
            "id": urls.activity(&format!("bench-{run}-{i}")),
            "type": "Create",
            "actor": actor,
            "object": {
                "id": urls.object(&format!("bench-{run}-{i}")),
                "type": "Note",
                "attributedTo": actor,
                "content": "心衰患者每日称体重，三天内增加两公斤以上请联系医生。",
                "published": sender.clock.now().to_rfc3339(),
            },
        });
        let signed = sender.federation.sign_as(&actor, &activity).await.unwrap();
        let body = serde_json::to_vec(&signed).unwrap();
        let headers = signed_request_headers(
            "POST",
            "/inbox",
            &host,
            &body,
            system_time(receiver.clock.now()),
            &key_id,
            &key,
        )
        .unwrap();
        requests.push((body, headers));
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    let url = receiver.url("/inbox");
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (body, headers) in requests {
        let permit = slots.clone().acquire_owned().await.unwrap();
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut req = client
                .post(&url)
                .header("content-type", "application/activity+json");
            for (k, v) in headers {
                if k != "Host" {
                    req = req.header(k, v);
                }
            }
            let resp = req.body(body).send().await.unwrap();
            assert_eq!(
                resp.status(),
                202,
                "{}",
                resp.text().await.unwrap_or_default()
            );
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

async fn bench(backend: Backend, n: usize, runs: usize) {
    let Some(sender) = TestNode::spawn(backend).await else {
        return;
    };
    let Some(receiver) = TestNode::spawn_with(backend, |c| {
        c.federation.inbox_requests_per_minute = 10_000_000;
        c.federation.inbox_unverified_requests_per_minute = 10_000_000;
        c.log.level = "warn".into();
    })
    .await
    else {
        return;
    };
    sender.add_partner(&receiver).await;
    receiver.add_partner(&sender).await;
    sender
        .create_account(Role::Doctor, "dr.bench", "bench password")
        .await;
    // Warm-up: the receiver fetches and caches the sender's keys.
    ingest_run(&sender, &receiver, 0, 50).await;
    let mut rates = Vec::new();
    for run in 1..=runs {
        rates.push(ingest_run(&sender, &receiver, run, n).await);
    }
    let stored = receiver
        .store
        .received_activities(0, u32::MAX)
        .await
        .unwrap()
        .len();
    assert_eq!(stored, 50 + n * runs, "every activity stored once");
    let (single, batched) = commit_rates(&receiver).await;
    let verify = verify_rate();
    let ingest = median(rates.clone());
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    println!("backend: {name}");
    println!(
        "  inbox ingest (verify signature + proof, dedupe, store), {n} activities x {runs} runs, {CONCURRENCY} concurrent clients:"
    );
    println!(
        "    runs: {}",
        rates
            .iter()
            .map(|r| format!("{r:.0}/s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("    median: {ingest:.0} activities/s");
    println!("  raw limits measured in the same run:");
    println!(
        "    Ed25519 verify, one core: {verify:.0}/s (each activity needs 2: signature and proof)"
    );
    println!(
        "    single-row commit: {single:.0}/s   ->  ingest / commit = {:.2}",
        ingest / single
    );
    println!("    100-row commits: {batched:.0} rows/s");
    println!("    ingest / (verify/2) = {:.2}", ingest / (verify / 2.0));
    sender.stop().await;
    receiver.stop().await;
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5000);
    let runs = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    bench(Backend::Sqlite, n, runs).await;
    if postgres_admin_url().is_some() {
        bench(Backend::Postgres, n, runs).await;
    } else {
        println!("backend: postgres skipped (set TEST_POSTGRES_URL)");
    }
}
