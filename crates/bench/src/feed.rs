//! `feed-bench`: fills one group with 1,000,000 posts, starts a real node, and measures the group
//! feed (`GET /api/v1/groups/{id}/posts`, the 50 newest posts) with concurrent HTTP clients for a
//! fixed time, next to `GET /healthz` measured the same way in the same run, so the result reads
//! as a ratio of what the machine can serve at all.
//!
//! ```sh
//! cargo run --release -p caremesh-bench --bin feed-bench -- [--posts N] [--seconds S]
//!     [--clients C] [--runs R] [--backend sqlite|postgres|both] [--pool N] [--query '?limit=1']
//! ```
//!
//! Defaults: 1,000,000 posts, 10 s per measurement, 16 clients, 3 runs, both backends when
//! PostgreSQL is available, 8 database connections.
//!
//! PostgreSQL is measured when `TEST_POSTGRES_URL` names a server (a scratch database is created
//! there). Not part of the test suite: it takes minutes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use caremesh_domain::{
    Clock, Language, MemberListVisibility, PostKind, Role, SystemClock, Timestamp,
};
use caremesh_server::Config;
use caremesh_store::{GroupSettings, ImportedPost, NewGroup, NewSession, NewUser, Store};
use caremesh_store_postgres::{
    PostgresOptions, PostgresStore, create_scratch_database, drop_scratch_database,
};
use caremesh_store_sqlite::{SqliteOptions, SqliteStore};
use tokio::net::TcpListener;

struct Args {
    posts: u64,
    seconds: u64,
    clients: usize,
    runs: usize,
    backends: Vec<&'static str>,
    /// Appended to the feed's URL, e.g. `?limit=1` (then the answer's length is not checked).
    query: String,
    /// Database connections of the node (`database.max_connections`).
    pool: u32,
    /// Also measure the group's settings (`GET /api/v1/groups/{id}`): one database round trip,
    /// against the feed's two.
    group_too: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        posts: 1_000_000,
        seconds: 10,
        clients: 16,
        runs: 3,
        backends: Vec::new(),
        query: String::new(),
        pool: 8,
        group_too: false,
    };
    let mut backend = "both".to_owned();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--group-too" {
            a.group_too = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--posts" => a.posts = value.parse()?,
            "--seconds" => a.seconds = value.parse()?,
            "--clients" => a.clients = value.parse()?,
            "--runs" => a.runs = value.parse::<usize>()?.max(1),
            "--backend" => backend = value,
            "--query" => a.query = value,
            "--pool" => a.pool = value.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    let pg = std::env::var("TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty());
    a.backends = match backend.as_str() {
        "sqlite" => vec!["sqlite"],
        "postgres" if pg => vec!["postgres"],
        "both" if pg => vec!["sqlite", "postgres"],
        "both" => {
            eprintln!("TEST_POSTGRES_URL is not set: measuring SQLite only");
            vec!["sqlite"]
        }
        _ => bail!("--backend must be sqlite, postgres or both (postgres needs TEST_POSTGRES_URL)"),
    };
    Ok(a)
}

#[derive(Clone, Copy, Debug)]
struct Measure {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `clients` concurrent loops of GET `url` for `seconds`; every answer must be 200.
async fn hammer(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<Measure> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let http = http.clone();
        let url = url.to_owned();
        let token = token.map(str::to_owned);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(100_000);
            while Instant::now() < deadline {
                let t = Instant::now();
                let mut req = http.get(&url);
                if let Some(t) = &token {
                    req = req.bearer_auth(t);
                }
                let resp = req.send().await?;
                let status = resp.status();
                let body = resp.bytes().await?;
                if status != 200 {
                    bail!(
                        "{url} answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                lat.push(t.elapsed().as_micros() as u64);
            }
            Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        all.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    Ok(Measure {
        rps: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn open(
    backend: &str,
    dir: &std::path::Path,
    pool: u32,
) -> anyhow::Result<(Arc<dyn Store>, String)> {
    Ok(match backend {
        "sqlite" => {
            let url = format!("sqlite://{}/caremesh.db", dir.display());
            let s = SqliteStore::connect(&SqliteOptions {
                url: url.clone(),
                max_connections: pool,
            })
            .await?;
            s.migrate().await?;
            (Arc::new(s), url)
        }
        _ => {
            let admin = std::env::var("TEST_POSTGRES_URL")?;
            let url = create_scratch_database(&admin).await?;
            let s = PostgresStore::connect(&PostgresOptions {
                url: url.clone(),
                max_connections: pool,
            })
            .await?;
            s.migrate().await?;
            (Arc::new(s), url)
        }
    })
}

async fn analyze(backend: &str, url: &str) -> anyhow::Result<()> {
    match backend {
        "sqlite" => {
            let s = SqliteStore::connect(&SqliteOptions {
                url: url.to_owned(),
                max_connections: 1,
            })
            .await?;
            s.analyze().await?;
            s.close().await;
        }
        _ => {
            let s = PostgresStore::connect(&PostgresOptions {
                url: url.to_owned(),
                max_connections: 1,
            })
            .await?;
            s.analyze().await?;
            s.close().await;
        }
    }
    Ok(())
}

const BODIES: [&str; 4] = [
    "今天门诊时间调整：周三下午停诊，请需要复查的病友改约周四上午。术后康复锻炼请继续坚持，每天三次。",
    "Reminder: bring your latest blood test results to the follow-up visit. Tamoxifen side effects are usually mild.",
    "化疗后白细胞低怎么办？医生说要多吃高蛋白食物，大家有什么经验可以分享吗？",
    "Lymphedema exercises: raise the arm above the heart, open and close the hand twenty times, three times a day.",
];

async fn bench_backend(backend: &'static str, a: &Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (store, db_url) = open(backend, dir.path(), a.pool).await?;
    let now = SystemClock.now();
    let doctor = store
        .create_user(
            NewUser {
                username: "dr.bench".into(),
                display_name: "王医生".into(),
                role: Role::Doctor,
                password_hash: caremesh_web::auth::hash_password_blocking("bench password 123")
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            },
            now,
        )
        .await?;
    let group = store
        .create_group(
            NewGroup {
                public_id: "bench-group".into(),
                settings: GroupSettings {
                    name: "乳腺癌康复 唐山".into(),
                    condition: "乳腺癌".into(),
                    condition_code: Some("C50".into()),
                    city: "唐山".into(),
                    language: Language::ZhCn,
                    description: String::new(),
                    rules: String::new(),
                    member_list: MemberListVisibility::Moderators,
                },
                owner: doctor.id,
            },
            now,
        )
        .await?;

    let load_started = Instant::now();
    let chunk = 50_000u64;
    let first = now.as_millis() - i64::try_from(a.posts)? * 1000;
    let mut written = 0;
    while written < a.posts {
        let n = chunk.min(a.posts - written);
        let posts = (written..written + n)
            .map(|i| ImportedPost {
                public_id: format!("p{i:08}"),
                kind: if i % 10 == 0 {
                    PostKind::Announcement
                } else {
                    PostKind::Question
                },
                title: (i % 3 == 0).then(|| format!("第 {i} 号 post")),
                body: BODIES[(i % 4) as usize].to_owned(),
                publish_at: Timestamp::from_millis(first + i64::try_from(i).unwrap_or(0) * 1000),
                helpful_count: (i % 13) as u32,
            })
            .collect();
        written += store.import_posts(group.id, doctor.id, posts).await?;
    }
    let load = load_started.elapsed();
    // Statistics as a maintained node has them (PostgreSQL: autovacuum would gather them later).
    analyze(backend, &db_url).await?;
    println!(
        "[{backend}] loaded {written} posts in {:.1} s ({:.0} posts/s)",
        load.as_secs_f64(),
        written as f64 / load.as_secs_f64()
    );

    let token = "bench-session-token";
    store
        .create_session(NewSession {
            token_hash: caremesh_web::auth::hash_token(token),
            user_id: doctor.id,
            created_at: now,
            expires_at: now.plus_secs(24 * 3600),
        })
        .await?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut config = Config {
        base_url: format!("http://{addr}/").parse()?,
        listen: addr,
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.database.url = db_url.clone();
    config.database.max_connections = a.pool;
    config.log.level = "warn".into();
    config.validate()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(caremesh_server::serve(
        config,
        store.clone(),
        Arc::new(SystemClock),
        listener,
        async move {
            let _ = rx.await;
        },
    ));

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.clients)
        .build()?;
    let base = format!("http://{addr}");
    let feed = format!("{base}/api/v1/groups/{}/posts", group.public_id);
    // Correctness first: the feed answers 50 posts, newest first.
    let page: serde_json::Value = http
        .get(&feed)
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?;
    let items = page["items"].as_array().context("feed without items")?;
    anyhow::ensure!(items.len() == 50, "the feed answered {} posts", items.len());
    let feed = format!("{feed}{}", a.query);
    anyhow::ensure!(
        items[0]["id"] == format!("p{:08}", a.posts - 1),
        "the newest post is not first: {}",
        items[0]["id"]
    );
    // Warm up connections and caches.
    hammer(&http, &feed, Some(token), a.clients, 2).await?;

    let (mut base_rps, mut rps, mut p50, mut p99) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 1..=a.runs {
        let h = hammer(
            &http,
            &format!("{base}/healthz"),
            None,
            a.clients,
            a.seconds,
        )
        .await?;
        let f = hammer(&http, &feed, Some(token), a.clients, a.seconds).await?;
        println!(
            "[{backend}] run {run}: /healthz {:>8.0} req/s (p99 {:.2} ms) | feed {:>7.0} req/s, p50 {:.2} ms, p99 {:.2} ms ({:.0}% of /healthz)",
            h.rps,
            h.p99_ms,
            f.rps,
            f.p50_ms,
            f.p99_ms,
            100.0 * f.rps / h.rps
        );
        base_rps.push(h.rps);
        rps.push(f.rps);
        p50.push(f.p50_ms);
        p99.push(f.p99_ms);
    }
    if a.group_too {
        let url = format!("{base}/api/v1/groups/{}", group.public_id);
        let g = hammer(&http, &url, Some(token), a.clients, a.seconds).await?;
        println!(
            "[{backend}] group settings: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            g.rps, g.p50_ms, g.p99_ms
        );
    }
    let (b, r) = (median(base_rps), median(rps));
    println!(
        "[{backend}] median of {} runs, {} posts, {} clients, {} s each: feed {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms; /healthz {:.0} req/s; ratio {:.0}%  (target >= 2500 req/s, p99 < 10 ms)",
        a.runs,
        written,
        a.clients,
        a.seconds,
        r,
        median(p50),
        median(p99),
        b,
        100.0 * r / b
    );
    // Search is a substring scan of the group's posts (see spec/api.md): time it on this group,
    // far larger than a real one, to show its worst case.
    for q in ["白细胞", "tamoxifen", "没有这个词"] {
        let url = format!("{base}/api/v1/groups/{}/search?q={q}", group.public_id);
        let t = Instant::now();
        let n = 3;
        for _ in 0..n {
            let resp = http.get(&url).bearer_auth(token).send().await?;
            anyhow::ensure!(resp.status() == 200, "search answered {}", resp.status());
            resp.bytes().await?;
        }
        println!(
            "[{backend}] search {q:?} in {written} posts: {:.0} ms per request (one client)",
            t.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
        );
    }
    let _ = tx.send(());
    server.await??;
    drop(store);
    if backend == "postgres" {
        // A million posts take half a gigabyte: leave no scratch database behind.
        let admin = std::env::var("TEST_POSTGRES_URL")?;
        drop_scratch_database(&admin, &db_url).await?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    for backend in a.backends.clone() {
        bench_backend(backend, &a).await?;
    }
    Ok(())
}
