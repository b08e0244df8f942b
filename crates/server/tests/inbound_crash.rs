//! The host of a group is killed (SIGKILL) again and again while three member nodes send it
//! their members' posts: every post a member node saw acknowledged is stored on the host exactly
//! once, and reaches every other member node exactly once. Four real `caremesh` processes; the
//! host runs on SQLite, and on PostgreSQL when `TEST_POSTGRES_URL` is set.
//!
//! What it proves: an inbound activity is recorded in the inbox journal and applied in a second
//! step; a kill between the two leaves it recorded but not applied, and the node applies it on
//! redelivery or when it starts again (`caremesh_app::inbound`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_caremesh");
/// Posts per member node.
const POSTS: usize = 1000;
const MEMBERS: usize = 3;
const PASSWORD: &str = "a long enough password";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Node {
    port: u16,
    dir: PathBuf,
    db: String,
    partners: Vec<u16>,
    child: Option<Child>,
}

impl Node {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        // Each node starts on a new database (an empty PostgreSQL one on that backend).
        cmd.arg("--init").args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("CAREMESH_") {
                cmd.env_remove(k);
            }
        }
        let partners: Vec<String> = self
            .partners
            .iter()
            .map(|p| format!("\"http://127.0.0.1:{p}\""))
            .collect();
        cmd.env("CAREMESH_LISTEN", format!("127.0.0.1:{}", self.port))
            .env(
                "CAREMESH_BASE_URL",
                format!("http://127.0.0.1:{}", self.port),
            )
            .env("CAREMESH_DATA_DIR", &self.dir)
            .env("CAREMESH_DATABASE__URL", &self.db)
            .env(
                "CAREMESH_FEDERATION__PARTNERS",
                format!("[{}]", partners.join(",")),
            )
            .env("CAREMESH_FEDERATION__DELIVERY__LEASE_SECS", "2")
            .env("CAREMESH_FEDERATION__DELIVERY__POLL_INTERVAL_MS", "50")
            .env("CAREMESH_FEDERATION__DELIVERY__BACKOFF_BASE_MS", "100")
            .env("CAREMESH_FEDERATION__DELIVERY__BACKOFF_MAX_SECS", "1")
            .env("CAREMESH_FEDERATION__DELIVERY__BREAKER_THRESHOLD", "1000")
            .env("CAREMESH_FEDERATION__INBOX_REQUESTS_PER_MINUTE", "1000000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    fn create_account(&self, role: &str, username: &str) {
        let mut child = self
            .command(&[
                "account",
                "create",
                "--role",
                role,
                "--username",
                username,
                "--password-stdin",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        assert!(child.wait().unwrap().success(), "account create {username}");
    }

    async fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::env::temp_dir().join(format!("caremesh-crash-{}.log", self.port)))
            .unwrap();
        let mut child = self
            .command(&["serve"])
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let url = self.url("/readyz");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = reqwest::get(&url).await
                && r.status() == 200
            {
                break;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "node {} exited",
                self.port
            );
            assert!(Instant::now() < deadline, "node {} not ready", self.port);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn login(http: &reqwest::Client, node: &Node, username: &str) -> String {
    let r: Value = http
        .post(node.url("/api/v1/auth/login"))
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login: {r}"))
        .to_owned()
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Every post body in the group's feed, read page by page.
async fn feed_bodies(http: &reqwest::Client, node: &Node, token: &str, gid: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = node.url(&format!("/api/v1/groups/{gid}/posts?limit=100"));
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = call(http, reqwest::Method::GET, url, token, None).await;
        assert_eq!(status, 200, "feed: {page}");
        for p in page["items"].as_array().unwrap() {
            out.push(p["body"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// Each body exactly once: the bodies that appear other than once.
fn not_once(bodies: &[String], expected: &[String]) -> Vec<(String, usize)> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for b in bodies {
        *count.entry(b).or_default() += 1;
    }
    expected
        .iter()
        .filter_map(|e| {
            let n = count.get(e.as_str()).copied().unwrap_or(0);
            (n != 1).then(|| (e.clone(), n))
        })
        .chain(
            count
                .iter()
                .filter(|(b, _)| !expected.iter().any(|e| e == *b))
                .map(|(b, n)| ((*b).to_owned(), *n)),
        )
        .collect()
}

/// Whether a node's outbox has delivered everything (nothing pending), and what it parked.
async fn outbox_state(node: &Node) -> (u64, u64) {
    let out = node
        .command(&["outbox", "status", "--json"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "outbox status");
    // One JSON object per partner, a line each.
    let q: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pending = q.iter().map(|p| p["pending"].as_u64().unwrap_or(0)).sum();
    let parked = q.iter().map(|p| p["parked"].as_u64().unwrap_or(0)).sum();
    (pending, parked)
}

async fn host_killed_while_members_post(host_db: Option<String>) {
    let http = reqwest::Client::new();
    let dirs: Vec<tempfile::TempDir> = (0..=MEMBERS)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let ports: Vec<u16> = (0..=MEMBERS).map(|_| free_port()).collect();
    let mut nodes: Vec<Node> = (0..=MEMBERS)
        .map(|i| Node {
            port: ports[i],
            dir: dirs[i].path().to_path_buf(),
            db: match (i, &host_db) {
                (0, Some(db)) => db.clone(),
                _ => format!("sqlite://{}/caremesh.db", dirs[i].path().display()),
            },
            partners: ports.iter().copied().filter(|p| *p != ports[i]).collect(),
            child: None,
        })
        .collect();
    nodes[0].create_account("doctor", "dr.host");
    for (i, n) in nodes.iter().enumerate().skip(1) {
        n.create_account("staff", &format!("nurse{i}"));
    }
    for n in &mut nodes {
        n.start().await;
    }

    // The group on the host, and one member on each other node (joining with an invite).
    let doctor = login(&http, &nodes[0], "dr.host").await;
    let (status, group) = call(
        &http,
        reqwest::Method::POST,
        nodes[0].url("/api/v1/groups"),
        &doctor,
        Some(json!({"name": "卒中康复", "condition": "卒中", "city": "广州", "language": "zh-CN"})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let host_gid = group["id"].as_str().unwrap().to_owned();
    let (status, invite) = call(
        &http,
        reqwest::Method::POST,
        nodes[0].url(&format!("/api/v1/groups/{host_gid}/invites")),
        &doctor,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{invite}");
    let invite = invite["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let group_url = nodes[0].url(&format!("/groups/{host_gid}"));
    let mut members = Vec::new();
    for (i, n) in nodes.iter().enumerate().skip(1) {
        let token = login(&http, n, &format!("nurse{i}")).await;
        let (status, joined) = call(
            &http,
            reqwest::Method::POST,
            n.url("/api/v1/remote-groups"),
            &token,
            Some(json!({ "group": group_url, "invite": invite })),
        )
        .await;
        assert_eq!(status, 202, "{joined}");
        let gid = joined["group"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, g) = call(
                &http,
                reqwest::Method::GET,
                n.url(&format!("/api/v1/groups/{gid}")),
                &token,
                None,
            )
            .await;
            if status == 200 && g["my_role"].is_string() {
                break;
            }
            assert!(Instant::now() < deadline, "node {i} was not admitted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        members.push((token, gid));
    }

    // The host is killed and started again, over and over, while the members post.
    let stop = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    let mut host = nodes.remove(0);
    let killer = {
        let (stop, kills) = (stop.clone(), kills.clone());
        tokio::spawn(async move {
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) || kills.load(Ordering::Relaxed) < 6 {
                n += 1;
                // 0.3–1.2 s of work between kills.
                tokio::time::sleep(Duration::from_millis(300 + (n * 7919) % 900)).await;
                host.kill();
                kills.fetch_add(1, Ordering::Relaxed);
                host.start().await;
            }
            host
        })
    };
    let started = Instant::now();
    let mut writers = Vec::new();
    for (i, (token, gid)) in members.iter().enumerate() {
        let (http, node_url, token, gid) =
            (http.clone(), nodes[i].url(""), token.clone(), gid.clone());
        writers.push(tokio::spawn(async move {
            for k in 0..POSTS {
                let body = format!("node {} question {k}", i + 1);
                // As a client should: a 503 changed nothing and says to try again.
                let mut tries = 0;
                loop {
                    let (status, post) = call(
                        &http,
                        reqwest::Method::POST,
                        format!("{node_url}/api/v1/groups/{gid}/posts"),
                        &token,
                        Some(json!({ "kind": "question", "body": body })),
                    )
                    .await;
                    if status == 503 && tries < 20 {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    assert_eq!(status, 201, "{post}");
                    break;
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let host = killer.await.unwrap();
    let killed = kills.load(Ordering::Relaxed);
    assert!(killed >= 6, "the host was killed {killed} times");

    let posted = started.elapsed();
    // Everything is delivered: nothing pending, nothing parked, on any node.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let mut states = vec![outbox_state(&host).await];
        for n in &nodes {
            states.push(outbox_state(n).await);
        }
        assert!(
            states.iter().all(|(_, parked)| *parked == 0),
            "parked entries are real failures only: {states:?}"
        );
        if states.iter().all(|(pending, _)| *pending == 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries did not finish: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let expected: Vec<String> = (1..=MEMBERS)
        .flat_map(|i| (0..POSTS).map(move |k| format!("node {i} question {k}")))
        .collect();
    let on_host = feed_bodies(&http, &host, &doctor, &host_gid).await;
    let wrong = not_once(&on_host, &expected);
    assert!(
        wrong.is_empty(),
        "on the host after {killed} kills, {} posts are not there exactly once, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    for (i, (token, gid)) in members.iter().enumerate() {
        let got = feed_bodies(&http, &nodes[i], token, gid).await;
        let wrong = not_once(&got, &expected);
        assert!(
            wrong.is_empty(),
            "on member node {}, {} posts are not there exactly once, e.g. {:?}",
            i + 1,
            wrong.len(),
            &wrong[..wrong.len().min(5)]
        );
    }
    eprintln!(
        "host killed {killed} times; {} posts stored once on the host and on {MEMBERS} member nodes \
         (posted in {posted:?}, all delivered after {:?})",
        expected.len(),
        started.elapsed()
    );
    drop(host);
}

/// The two tests run one after the other: each keeps the machine's two cores busy.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(host_db: impl std::future::Future<Output = Option<String>>) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = host_db.await;
        host_killed_while_members_post(db).await;
    });
}

#[test]
fn host_killed_while_members_post_sqlite() {
    run(async { None });
}

#[test]
fn host_killed_while_members_post_postgres() {
    let admin = match std::env::var("TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(std::env::var("TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"));
            return;
        }
    };
    run(async move {
        Some(
            caremesh_store_postgres::create_scratch_database(&admin)
                .await
                .unwrap(),
        )
    });
}
