//! The `caremesh` binary as hospital IT uses it: start a node from nothing, stop it with SIGTERM,
//! and the admin commands with their errors and exit codes. On SQLite always, on PostgreSQL when
//! `TEST_POSTGRES_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_caremesh");

/// A `caremesh` command with a clean environment: no stray `CAREMESH_*` variables from the caller.
fn caremesh(data_dir: &Path, db_url: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("CAREMESH_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("CAREMESH_DATA_DIR", data_dir)
        .env("CAREMESH_DATABASE__URL", db_url)
        .env("RUST_LOG", "warn")
        .args(args);
    cmd
}

fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn postgres_url() -> Option<String> {
    let admin = caremesh_store::skip::postgres_url_or_skip()?;
    Some(
        caremesh_store_postgres::create_scratch_database(&admin)
            .await
            .unwrap(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn serve_from_nothing_and_stop_on_sigterm(db_url: &str, dir: &Path) {
    let port = free_port();
    // A new SQLite node needs nothing but the command; an empty PostgreSQL database becomes a node
    // only when told (`--init`).
    let args: &[&str] = if db_url.is_empty() {
        &["serve"]
    } else {
        let refused = run(caremesh(dir, db_url, &["serve"]), None);
        assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
        assert!(
            text(&refused.stderr).contains("--init"),
            "{}",
            text(&refused.stderr)
        );
        &["--init", "serve"]
    };
    let mut cmd = caremesh(dir, db_url, args);
    cmd.env("CAREMESH_LISTEN", format!("127.0.0.1:{port}"))
        .env("CAREMESH_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("CAREMESH_LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let client = reqwest::Client::new();
    let ready_url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client.get(&ready_url).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "node did not become ready");
        assert!(child.try_wait().unwrap().is_none(), "node exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if db_url.is_empty() {
        assert!(
            dir.join("caremesh.db").is_file(),
            "SQLite database created in data_dir"
        );
    }
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "node did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut logs).unwrap();
    let first = logs
        .lines()
        .find(|l| l.contains("listening"))
        .expect("a start-up log line");
    let parsed: serde_json::Value = serde_json::from_str(first).expect("JSON log lines");
    assert_eq!(parsed["level"], "INFO");
    assert!(logs.contains("caremesh node stopped"), "{logs}");
}

/// Runs a future to completion on a runtime of its own thread (the admin tests are synchronous,
/// and on PostgreSQL already inside a runtime).
fn on_own_runtime<F: std::future::Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(f)
        })
        .join()
        .unwrap()
    })
}

/// `caremesh serve` on the database the admin commands used, stopped when dropped.
struct Node {
    child: std::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Node {
    fn start(dir: &Path, db_url: &str) -> Self {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut cmd = caremesh(dir, db_url, &["serve"]);
        cmd.env("CAREMESH_LISTEN", format!("127.0.0.1:{port}"))
            .env("CAREMESH_BASE_URL", &base)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut node = Self {
            child: cmd.spawn().unwrap(),
            base,
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        on_own_runtime(async {
            loop {
                if let Ok(r) = node.http.get(node.url("/readyz")).send().await
                    && r.status() == 200
                {
                    break;
                }
                assert!(Instant::now() < deadline, "node did not become ready");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        assert!(
            node.child.try_wait().unwrap().is_none(),
            "node exited early"
        );
        node
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The session token, or the status of the refusal.
    async fn login(&self, username: &str, password: &str) -> Result<String, u16> {
        let resp = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .unwrap();
        if !resp.status().is_success() {
            return Err(resp.status().as_u16());
        }
        let body: serde_json::Value = resp.json().await.unwrap();
        Ok(body["token"].as_str().unwrap().to_owned())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin_commands(db_url: &str, dir: &Path) {
    let cm = |args: &[&str]| caremesh(dir, db_url, args);
    let out = run(
        cm(&[
            "create-admin",
            "--username",
            "admin",
            "--display-name",
            "院办管理员",
            "--password-stdin",
        ]),
        Some("an admin password\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("created admin account admin"));

    // The same name again: a clear error and exit code 1, nothing changed.
    let again = run(
        cm(&["create-admin", "--username", "admin", "--password-stdin"]),
        Some("another password\n"),
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already taken"),
        "{}",
        text(&again.stderr)
    );

    let short = run(
        cm(&["create-admin", "--username", "admin2", "--password-stdin"]),
        Some("short\n"),
    );
    assert_eq!(short.status.code(), Some(1));
    assert!(
        text(&short.stderr).contains("password"),
        "{}",
        text(&short.stderr)
    );

    let doctor = run(
        cm(&[
            "account",
            "create",
            "--role",
            "doctor",
            "--username",
            "dr.wang",
            "--display-name",
            "王医生",
        ]),
        None,
    );
    assert!(doctor.status.success(), "{}", text(&doctor.stderr));
    let first_password = text(&doctor.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once): "))
        .expect("the generated password")
        .to_owned();

    let bad_role = run(
        cm(&["account", "create", "--role", "patient", "--username", "p1"]),
        None,
    );
    assert_eq!(bad_role.status.code(), Some(2), "clap usage errors exit 2");

    let cred = run(
        cm(&[
            "credential",
            "set",
            "--username",
            "dr.wang",
            "--title",
            "主任医师",
            "--specialty",
            "心内科",
            "--licence-number",
            "110108",
            "--checked-on",
            "2026-11-20",
            "--valid-until",
            "2027-11-19",
        ]),
        None,
    );
    assert!(cred.status.success(), "{}", text(&cred.stderr));
    let cred_admin = run(
        cm(&[
            "credential",
            "set",
            "--username",
            "admin",
            "--title",
            "x",
            "--specialty",
            "y",
            "--licence-number",
            "1",
            "--checked-on",
            "2026-11-20",
        ]),
        None,
    );
    assert_eq!(cred_admin.status.code(), Some(1));
    assert!(text(&cred_admin.stderr).contains("only be recorded for doctors"));
    let bad_date = run(
        cm(&[
            "credential",
            "set",
            "--username",
            "dr.wang",
            "--title",
            "x",
            "--specialty",
            "y",
            "--licence-number",
            "1",
            "--checked-on",
            "20/11/2026",
        ]),
        None,
    );
    assert_eq!(bad_date.status.code(), Some(2));

    let reset = run(
        cm(&[
            "account",
            "reset-password",
            "--username",
            "dr.wang",
            "--password-stdin",
        ]),
        Some("a new doctor password\n"),
    );
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    let missing = run(
        cm(&["account", "reset-password", "--username", "nobody"]),
        None,
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("no account named"));

    // What the commands stored, as the node then serves it: the credential as recorded (valid
    // through the last day given), and the doctor's new password, not the first one.
    let node = Node::start(dir, db_url);
    on_own_runtime(async {
        let admin = node.login("admin", "an admin password").await.unwrap();
        let account: serde_json::Value = node
            .http
            .get(node.url("/api/v1/admin/accounts/dr.wang"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let cred = &account["credential"];
        assert_eq!(cred["title"], "主任医师", "{account}");
        assert_eq!(cred["specialty"], "心内科");
        assert_eq!(cred["licence_number"], "110108");
        assert_eq!(cred["checked_on"], "2026-11-20");
        assert_eq!(cred["valid_until"], "2027-11-20T00:00:00.000Z");
        assert_eq!(cred["revoked_at"], serde_json::Value::Null);
        assert_eq!(
            node.login("dr.wang", &first_password).await.unwrap_err(),
            401,
            "the password before the reset no longer logs in"
        );
        node.login("dr.wang", "a new doctor password")
            .await
            .expect("the new password logs in");
    });
    drop(node);

    let mut invite_cmd = cm(&[
        "invite",
        "--by",
        "admin",
        "--label",
        "ward 3",
        "--max-uses",
        "20",
    ]);
    invite_cmd.env("CAREMESH_BASE_URL", "https://caremesh.hospital.example");
    let invite = run(invite_cmd, None);
    assert!(invite.status.success(), "{}", text(&invite.stderr));
    assert!(text(&invite.stdout).contains("link: https://caremesh.hospital.example/join/"));
    let not_admin = run(cm(&["invite", "--by", "dr.wang"]), None);
    assert_eq!(not_admin.status.code(), Some(1));

    let disable = run(cm(&["account", "disable", "--username", "dr.wang"]), None);
    assert!(disable.status.success());
    let list = run(cm(&["account", "list", "--json"]), None);
    assert!(list.status.success());
    let rows: Vec<serde_json::Value> = text(&list.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "dr.wang"]);
    assert_eq!(rows[1]["disabled"], true);
    assert!(
        !text(&list.stdout).contains("argon2"),
        "password hashes never printed"
    );

    let migrate = run(cm(&["migrate"]), None);
    assert!(migrate.status.success(), "{}", text(&migrate.stderr));

    // Partners: added by URL or domain, listed, removed; bad input refused.
    let add = run(
        cm(&["partner", "add", "https://caremesh.hospital-b.example"]),
        None,
    );
    assert!(add.status.success(), "{}", text(&add.stderr));
    let add = run(cm(&["partner", "add", "hospital-c.example"]), None);
    assert!(add.status.success());
    let bad = run(cm(&["partner", "add", "ftp://x.example"]), None);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("http"), "{}", text(&bad.stderr));
    let list = text(&run(cm(&["partner", "list"]), None).stdout);
    assert!(
        list.contains("caremesh.hospital-b.example") && list.contains("hospital-c.example"),
        "{list}"
    );
    let remove = run(cm(&["partner", "remove", "hospital-c.example"]), None);
    assert!(remove.status.success());
    let again = run(cm(&["partner", "remove", "hospital-c.example"]), None);
    assert_eq!(again.status.code(), Some(1));
    assert!(!text(&run(cm(&["partner", "list"]), None).stdout).contains("hospital-c"));

    // Keys: the node has one; rotation makes a new one, keeps the old one (retired) and queues
    // the announcement to every partner.
    let keys = text(&run(cm(&["keys", "list"]), None).stdout);
    assert_eq!(keys.lines().count(), 1, "{keys}");
    assert!(keys.contains("#main-key") && keys.contains("current"));
    let rotate = run(cm(&["keys", "rotate"]), None);
    assert!(rotate.status.success(), "{}", text(&rotate.stderr));
    assert!(text(&rotate.stdout).contains("announced to 1 partner(s)"));
    let keys = text(&run(cm(&["keys", "list"]), None).stdout);
    assert_eq!(keys.lines().count(), 2, "{keys}");
    assert!(keys.contains("retired"));
    let status = text(&run(cm(&["outbox", "status"]), None).stdout);
    assert!(
        status.contains("caremesh.hospital-b.example: 1 pending, 0 parked"),
        "{status}"
    );
    let parked = run(cm(&["outbox", "parked"]), None);
    assert!(parked.status.success() && parked.stdout.is_empty());
    let retry = run(cm(&["outbox", "retry", "--all"]), None);
    assert!(text(&retry.stdout).contains("0 parked deliveries queued again"));
    let retry_none = run(cm(&["outbox", "retry"]), None);
    assert_eq!(
        retry_none.status.code(),
        Some(2),
        "an id or --all is required"
    );

    let target = dir.join("backup.db");
    // A group's file, and one still being written.
    let sha = "ab".repeat(32);
    std::fs::create_dir_all(dir.join("media/ab")).unwrap();
    std::fs::write(dir.join("media/ab").join(&sha), b"%PDF-1.4 handout").unwrap();
    std::fs::write(dir.join("media/ab").join(format!("{sha}.x.tmp")), b"half").unwrap();
    let backup = run(cm(&["backup", "--to", target.to_str().unwrap()]), None);
    if db_url.is_empty() {
        assert!(backup.status.success(), "{}", text(&backup.stderr));
        assert!(target.is_file());
        // The groups' files are copied beside it, unfinished ones left out.
        let media = dir.join("backup.db.media");
        assert_eq!(
            std::fs::read(media.join("ab").join(&sha)).unwrap(),
            b"%PDF-1.4 handout"
        );
        assert!(!media.join("ab").join(format!("{sha}.x.tmp")).exists());
        assert!(
            text(&backup.stdout).contains("(1 files)"),
            "{}",
            text(&backup.stdout)
        );
        // The copy is a working database: a node's CLI reads the same accounts from it.
        let copy_url = format!("sqlite://{}", target.display());
        let listed = run(
            caremesh(dir, &copy_url, &["account", "list", "--json"]),
            None,
        );
        assert_eq!(text(&listed.stdout).lines().count(), 2);
        let again = run(cm(&["backup", "--to", target.to_str().unwrap()]), None);
        assert_eq!(again.status.code(), Some(1), "never overwrites");
    } else {
        assert_eq!(backup.status.code(), Some(1));
        assert!(text(&backup.stderr).contains("pg_dump"));
    }
}

fn config_errors_exit_2_and_name_the_key(dir: &Path) {
    let mut unknown = caremesh(dir, "", &["serve"]);
    unknown.env("CAREMESH_GROUPS__MAX_MEMBRS", "10");
    let unknown = run(unknown, None);
    assert_eq!(unknown.status.code(), Some(2));
    let err = text(&unknown.stderr).to_lowercase();
    assert!(err.contains("max_membrs"), "{err}");

    let file = dir.join("bad.toml");
    std::fs::write(&file, "[groups]\nmax_members = 0\n").unwrap();
    let mut invalid = caremesh(dir, "", &["serve"]);
    invalid.arg("--config").arg(&file);
    let invalid = run(invalid, None);
    assert_eq!(invalid.status.code(), Some(2));
    assert!(
        text(&invalid.stderr).contains("groups.max_members"),
        "{}",
        text(&invalid.stderr)
    );

    let mut shown = caremesh(dir, "", &["config"]);
    shown.env("CAREMESH_HOSPITAL_NAME", "唐山市人民医院");
    let shown = run(shown, None);
    assert!(shown.status.success());
    assert!(text(&shown.stdout).contains("hospital_name = \"唐山市人民医院\""));
}

#[tokio::test]
async fn sqlite_node_starts_from_nothing_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    serve_from_nothing_and_stop_on_sigterm("", &dir.path().join("fresh")).await;
}

#[tokio::test]
async fn postgres_node_starts_and_stops_on_sigterm() {
    let Some(url) = postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    serve_from_nothing_and_stop_on_sigterm(&url, dir.path()).await;
}

#[test]
fn sqlite_admin_commands() {
    let dir = tempfile::tempdir().unwrap();
    admin_commands("", dir.path());
}

#[tokio::test]
async fn postgres_admin_commands() {
    let Some(url) = postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let init = run(caremesh(dir.path(), &url, &["--init", "migrate"]), None);
    assert!(init.status.success(), "{}", text(&init.stderr));
    tokio::task::spawn_blocking(move || admin_commands(&url, dir.path()))
        .await
        .unwrap();
}

/// The node's store, as the commands above left it.
async fn open_store(db_url: &str, dir: &Path) -> std::sync::Arc<dyn caremesh_store::Store> {
    if db_url.is_empty() {
        let url = format!("sqlite://{}/caremesh.db", dir.display());
        std::sync::Arc::new(
            caremesh_store_sqlite::SqliteStore::connect(&caremesh_store_sqlite::SqliteOptions {
                url,
                max_connections: 1,
            })
            .await
            .unwrap(),
        )
    } else {
        std::sync::Arc::new(
            caremesh_store_postgres::PostgresStore::connect(
                &caremesh_store_postgres::PostgresOptions {
                    url: db_url.to_owned(),
                    max_connections: 1,
                },
            )
            .await
            .unwrap(),
        )
    }
}

/// A partner's queue that failed and waits for its next attempt an hour from now is tried now
/// with `outbox retry PEER`: it is due at once, its deliveries still pending, none parked.
fn outbox_retry_of_a_waiting_queue(db_url: &str, dir: &Path) {
    use caremesh_domain::{Clock as _, SystemClock};
    let cm = |args: &[&str]| caremesh(dir, db_url, args);
    let add = run(cm(&["partner", "add", "https://hospital-b.example"]), None);
    assert!(add.status.success(), "{}", text(&add.stderr));
    let rotate = run(cm(&["keys", "rotate"]), None);
    assert!(rotate.status.success(), "{}", text(&rotate.stderr));
    let later = SystemClock.now().plus_secs(3600);
    on_own_runtime(async {
        let store = open_store(db_url, dir).await;
        let now = SystemClock.now();
        let leased = store
            .lease_due_peers("test", now, now.plus_secs(30), 10)
            .await
            .unwrap();
        assert_eq!(leased, ["hospital-b.example"]);
        let head = store
            .pending_entries("hospital-b.example", 1)
            .await
            .unwrap()[0]
            .id;
        store
            .record_delivery(
                head,
                "test",
                caremesh_store::DeliveryResult::Retry {
                    error: "connection refused".into(),
                    retry_at: later,
                },
                now,
            )
            .await
            .unwrap();
        store
            .release_peer("hospital-b.example", "test")
            .await
            .unwrap();
    });
    let status = text(&run(cm(&["outbox", "status"]), None).stdout);
    assert!(
        status.contains("hospital-b.example: 1 pending, 0 parked, 1 consecutive failures"),
        "{status}"
    );

    let before = SystemClock.now();
    let retry = run(cm(&["outbox", "retry", "hospital-b.example"]), None);
    assert!(retry.status.success(), "{}", text(&retry.stderr));
    assert!(
        text(&retry.stdout).contains("hospital-b.example: 1 pending deliveries due now"),
        "{}",
        text(&retry.stdout)
    );
    on_own_runtime(async {
        let store = open_store(db_url, dir).await;
        let queues = store.peer_queues().await.unwrap();
        let q = queues
            .iter()
            .find(|q| q.peer == "hospital-b.example")
            .unwrap();
        assert!(
            q.next_attempt_at >= before && q.next_attempt_at <= SystemClock.now(),
            "due now, not at {later:?}: {q:?}"
        );
        assert_eq!((q.pending, q.parked), (1, 0));
        let now = SystemClock.now();
        assert_eq!(
            store
                .lease_due_peers("test", now, now.plus_secs(30), 10)
                .await
                .unwrap(),
            ["hospital-b.example"]
        );
    });
    // Given by its base URL too; a node that is no queue of this one is refused.
    let by_url = run(
        cm(&["outbox", "retry", "https://hospital-b.example/"]),
        None,
    );
    assert!(by_url.status.success(), "{}", text(&by_url.stderr));
    let unknown = run(cm(&["outbox", "retry", "hospital-z.example"]), None);
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown.stdout));
    let both = run(
        cm(&["outbox", "retry", "hospital-b.example", "--all"]),
        None,
    );
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn sqlite_outbox_retry_of_a_waiting_queue() {
    let dir = tempfile::tempdir().unwrap();
    let init = run(caremesh(dir.path(), "", &["--init", "migrate"]), None);
    assert!(init.status.success(), "{}", text(&init.stderr));
    outbox_retry_of_a_waiting_queue("", dir.path());
}

#[tokio::test]
async fn postgres_outbox_retry_of_a_waiting_queue() {
    let Some(url) = postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let init = run(caremesh(dir.path(), &url, &["--init", "migrate"]), None);
    assert!(init.status.success(), "{}", text(&init.stderr));
    tokio::task::spawn_blocking(move || outbox_retry_of_a_waiting_queue(&url, dir.path()))
        .await
        .unwrap();
}

#[test]
fn config_errors() {
    let dir = tempfile::tempdir().unwrap();
    config_errors_exit_2_and_name_the_key(dir.path());
}

/// An empty `caremesh.db` (a restore gone wrong, a file truncated by hand) would start as a new
/// node with a new key and no accounts: it is refused unless `--init` says so, and another
/// program's database is refused always, untouched.
#[test]
fn an_empty_or_foreign_sqlite_file_is_not_started_as_a_new_node() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("caremesh.db");
    std::fs::write(&db, b"").unwrap();
    for args in [&["serve"][..], &["migrate"], &["account", "list"]] {
        let refused = run(caremesh(dir.path(), "", args), None);
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
        let err = text(&refused.stderr);
        assert!(err.contains("is empty") && err.contains("--init"), "{err}");
    }
    let keys = run(caremesh(dir.path(), "", &["keys", "list"]), None);
    assert_eq!(keys.status.code(), Some(1), "no key was made");
    let init = run(caremesh(dir.path(), "", &["--init", "migrate"]), None);
    assert!(init.status.success(), "{}", text(&init.stderr));
    // Now it is a node's database: it opens without the flag.
    let listed = run(caremesh(dir.path(), "", &["account", "list"]), None);
    assert!(listed.status.success(), "{}", text(&listed.stderr));

    // Another program's database, with the flag or without.
    let other = tempfile::tempdir().unwrap();
    let db = other.path().join("caremesh.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("create table patients(name text)")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("insert into patients values ('张三')")
            .execute(&mut c)
            .await
            .unwrap();
    });
    for args in [&["serve"][..], &["--init", "serve"]] {
        let refused = run(caremesh(other.path(), "", args), None);
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
        assert!(
            text(&refused.stderr).contains("not Caremesh's"),
            "{}",
            text(&refused.stderr)
        );
    }
    let kept: (i64,) = rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .connect()
            .await
            .unwrap();
        sqlx::query_as("select count(*) from sqlite_master where type = 'table'")
            .fetch_one(&mut c)
            .await
            .unwrap()
    });
    assert_eq!(kept.0, 1, "nothing was added to another program's database");
}
