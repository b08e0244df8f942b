//! A real `caremesh serve` process for the memory benchmarks: its own data folder and port, its
//! resident memory read from `/proc/PID/status` while the load runs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use caremesh_domain::{Clock, Role, SystemClock};
use caremesh_store::{AccountStore, NewUser};
use caremesh_store_sqlite::{SqliteOptions, SqliteStore};

/// The `caremesh` binary: `--node PATH` if given, otherwise the release build next to this
/// benchmark, built first so that it is current (with this benchmark's package too, so that
/// both builds pick the same features and neither rebuilds the other's dependencies).
pub fn node_binary(args: &[String]) -> anyhow::Result<PathBuf> {
    if let Some(i) = args.iter().position(|a| a == "--node") {
        let path = PathBuf::from(args.get(i + 1).context("--node needs a path")?);
        return Ok(path);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-q",
            "-p",
            "caremesh-server",
            "-p",
            "caremesh-bench",
        ])
        .status()
        .context("building the caremesh binary")?;
    if !status.success() {
        bail!("cargo build --release -p caremesh-server failed");
    }
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("caremesh");
    if !path.is_file() {
        bail!("{} not found; pass --node PATH", path.display());
    }
    Ok(path)
}

/// The value after `--name`, or `default`.
pub fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

pub struct Node {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

/// Resident memory of a process in MB: (now, peak since start), from `VmRSS` and `VmHWM`.
pub fn rss_mb(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Seeds accounts into a node's SQLite database before it starts (one password hash for all).
pub async fn seed_accounts(
    db: &Path,
    accounts: &[(&str, Role)],
    password: &str,
) -> anyhow::Result<()> {
    let store = SqliteStore::connect(&SqliteOptions {
        url: format!("sqlite://{}", db.display()),
        max_connections: 1,
    })
    .await?;
    store.migrate().await?;
    let hash =
        caremesh_web::auth::hash_password_blocking(password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = SystemClock.now();
    for (username, role) in accounts {
        store
            .create_user(
                NewUser {
                    username: (*username).to_owned(),
                    display_name: format!("{username} (bench)"),
                    role: *role,
                    password_hash: hash.clone(),
                },
                now,
            )
            .await?;
    }
    store.close().await;
    Ok(())
}

impl Node {
    /// Starts `caremesh serve` on a free port with SQLite in a new folder, after `seed` has
    /// filled its database; `env` adds configuration (`CAREMESH_…`).
    pub async fn start<F, Fut>(bin: &Path, env: &[(&str, String)], seed: F) -> anyhow::Result<Self>
    where
        F: FnOnce(PathBuf) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        let dir = tempfile::tempdir()?;
        seed(dir.path().join("caremesh.db")).await?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new(bin);
        cmd.arg("serve");
        for (k, _) in std::env::vars() {
            if k.starts_with("CAREMESH_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("CAREMESH_LISTEN", format!("127.0.0.1:{port}"))
            .env("CAREMESH_BASE_URL", format!("http://127.0.0.1:{port}"))
            .env("CAREMESH_DATA_DIR", dir.path())
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("starting caremesh serve")?;
        let url = format!("http://127.0.0.1:{port}/readyz");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = reqwest::get(&url).await
                && r.status() == 200
            {
                break;
            }
            if child.try_wait()?.is_some() {
                bail!("the node exited at start");
            }
            if Instant::now() > deadline {
                bail!("the node did not get ready");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            port,
            child,
            _dir: dir,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Samples the node's resident memory every 5 ms until the returned guard is stopped; the
    /// guard answers the highest `VmRSS` seen and the kernel's `VmHWM`.
    pub fn sample_rss(&self) -> Sampler {
        let pid = self.pid();
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    if let Some((now, _)) = rss_mb(pid) {
                        peak.fetch_max((now * 1024.0) as u64, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Sampler {
            pid,
            stop,
            peak,
            thread: Some(thread),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Sampler {
    pid: u32,
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// (highest sampled VmRSS, VmHWM) in MB.
    pub fn finish(mut self) -> (f64, f64) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let hwm = rss_mb(self.pid).map_or(0.0, |(_, hwm)| hwm);
        (self.peak.load(Ordering::SeqCst) as f64 / 1024.0, hwm)
    }
}
