//! A node killed with SIGKILL in the middle of delivering loses nothing: after a restart the
//! partner holds every activity exactly once, in order, and at most the delivery that was in
//! flight is sent twice. Both nodes are real `caremesh` processes; node A runs on SQLite, and
//! on PostgreSQL when `TEST_POSTGRES_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use caremesh_domain::{Clock, Role, SystemClock};
use caremesh_server::Config;
use caremesh_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_caremesh");
/// Enough that deliveries (one at a time, in order) are still going when the node is killed.
const ACTIVITIES: usize = 2000;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn node_env(cmd: &mut Command, port: u16, dir: &Path, db: &str, partner_port: u16) {
    for (k, _) in std::env::vars() {
        if k.starts_with("CAREMESH_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("CAREMESH_LISTEN", format!("127.0.0.1:{port}"))
        .env("CAREMESH_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("CAREMESH_DATA_DIR", dir)
        .env("CAREMESH_DATABASE__URL", db)
        .env(
            "CAREMESH_FEDERATION__PARTNERS",
            format!("[\"http://127.0.0.1:{partner_port}\"]"),
        )
        .env("CAREMESH_FEDERATION__DELIVERY__LEASE_SECS", "2")
        .env("CAREMESH_FEDERATION__DELIVERY__POLL_INTERVAL_MS", "50")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
}

async fn start(port: u16, dir: &Path, db: &str, partner_port: u16) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve");
    node_env(&mut cmd, port, dir, db, partner_port);
    let mut child = cmd.spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(&url).await
            && r.status() == 200
        {
            return child;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "node on port {port} exited"
        );
        assert!(Instant::now() < deadline, "node on port {port} not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config_for(port: u16, dir: &Path, db: &str, partner_port: u16) -> Config {
    let mut c = Config {
        base_url: url::Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap(),
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    c.database.url = db.to_owned();
    c.federation.partners = vec![format!("http://127.0.0.1:{partner_port}")];
    c.validate().unwrap();
    c
}

/// Queues `ACTIVITIES` signed notes for B in A's database, as A would while serving.
async fn prepare_sender(config: &Config, b_port: u16) -> Vec<String> {
    let store = caremesh_server::open_store(config, caremesh_server::EmptyDatabase::Initialise)
        .await
        .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let fed = caremesh_server::build_federation(config, store.clone(), clock.clone())
        .await
        .unwrap();
    store
        .create_user(
            caremesh_store::NewUser {
                username: "dr.wang".into(),
                display_name: "王医生".into(),
                role: Role::Doctor,
                password_hash: "unused".into(),
            },
            clock.now(),
        )
        .await
        .unwrap();
    let peers = fed.peers(&[format!("127.0.0.1:{b_port}")]).await.unwrap();
    let actor = fed.urls.person("dr.wang");
    let mut ids = Vec::new();
    for n in 0..ACTIVITIES {
        let activity = json!({
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/data-integrity/v2"],
            "id": fed.urls.activity(&format!("crash-{n}")),
            "type": "Create",
            "actor": actor,
            "object": {
                "id": fed.urls.object(&format!("crash-{n}")),
                "type": "Note",
                "attributedTo": actor,
                "content": format!("第{n}条健康教育"),
                "published": clock.now().to_rfc3339(),
            },
        });
        let signed = fed.sign_as(&actor, &activity).await.unwrap();
        ids.push(signed["id"].as_str().unwrap().to_owned());
        fed.publish(&signed, &peers).await.unwrap();
    }
    ids
}

async fn received(b_db: &str) -> Vec<String> {
    let store = SqliteStore::connect(&SqliteOptions {
        url: b_db.to_owned(),
        max_connections: 1,
    })
    .await
    .unwrap();
    let got = caremesh_store::FederationStore::received_activities(&store, 0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.activity_id)
        .collect();
    store.close().await;
    got
}

async fn inbox_posts(port: u16) -> u64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("caremesh_http_requests_total{method=\"POST\",route=\"/inbox\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn crash_in_the_middle_of_delivery(a_db: String, a_dir: &Path, b_dir: &Path) {
    let (a_port, b_port) = (free_port(), free_port());
    let b_db = format!("sqlite://{}/caremesh.db", b_dir.display());
    let mut b = start(b_port, b_dir, "", a_port).await;
    let a_config = config_for(a_port, a_dir, &a_db, b_port);
    let sent = prepare_sender(&a_config, b_port).await;

    let mut a = start(a_port, a_dir, &a_db, b_port).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received(&b_db).await.is_empty() {
        assert!(Instant::now() < deadline, "deliveries did not start");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    a.kill().unwrap();
    a.wait().unwrap();
    let at_kill = received(&b_db).await.len();
    assert!(
        at_kill < ACTIVITIES,
        "the node must die mid-delivery (got {at_kill} already)"
    );

    let mut a = start(a_port, a_dir, &a_db, b_port).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while received(&b_db).await.len() < ACTIVITIES {
        assert!(
            Instant::now() < deadline,
            "deliveries did not resume after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(received(&b_db).await, sent, "every activity once, in order");
    let posts = inbox_posts(b_port).await;
    assert!(
        (ACTIVITIES as u64..=ACTIVITIES as u64 + 1).contains(&posts),
        "at most the delivery in flight is repeated: {posts} POSTs for {ACTIVITIES} activities"
    );
    for child in [&mut a, &mut b] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_delivery_loses_nothing_sqlite() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a_db = format!("sqlite://{}/caremesh.db", a_dir.path().display());
    crash_in_the_middle_of_delivery(a_db, a_dir.path(), b_dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_delivery_loses_nothing_postgres() {
    let Some(admin) = caremesh_store::skip::postgres_url_or_skip() else {
        return;
    };
    let a_db = caremesh_store_postgres::create_scratch_database(&admin)
        .await
        .unwrap();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    crash_in_the_middle_of_delivery(a_db, a_dir.path(), b_dir.path()).await;
}
