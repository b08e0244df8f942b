//! Tests that cannot run here (no PostgreSQL server, not root, no browser) say so instead of
//! passing in silence.
//!
//! A test that returns early calls [`skip`] first: it prints the reason on standard error and, when
//! `CAREMESH_SKIP_LOG` names a file, appends one line `test name<TAB>reason` to it.
//! `scripts/test.sh` counts those lines as skipped rather than passed, and CI fails when there is
//! any. This module lives in `caremesh-store` because it is the one crate that every test
//! (conformance suites, the testkit, the binary's own tests) can reach.
#![allow(clippy::panic)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::Mutex;

/// The variable naming the file that skipped tests are appended to.
pub const LOG_VAR: &str = "CAREMESH_SKIP_LOG";

/// Records the running test as skipped, for `reason`. The test must then return.
pub fn skip(reason: &str) {
    skip_named(&current_test(), reason);
}

/// Records the test `name` as skipped, for `reason`. Each name is recorded once per process.
///
/// Panics when the log cannot be written: a skip nobody can count would pass for a success.
pub fn skip_named(name: &str, reason: &str) {
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let first = SEEN
        .lock()
        .map(|mut seen| seen.insert(name.to_owned()))
        .unwrap_or(true);
    if !first {
        return;
    }
    let clean = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    eprintln!("SKIPPED {name}: {reason}");
    let Some(path) = std::env::var_os(LOG_VAR).filter(|p| !p.is_empty()) else {
        return;
    };
    let line = format!("{}\t{}\n", clean(name), clean(reason));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!("cannot record the skipped test {name} in {LOG_VAR}={path:?}: {e}");
    }
}

/// The running test's name as `binary::path::to::test`: libtest runs every test on a thread named
/// after it, and the test binary is named after its crate or file (plus a hash, dropped here).
pub fn current_test() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|stem| match stem.rsplit_once('-') {
            Some((name, hash))
                if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                name.to_owned()
            }
            _ => stem,
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let thread = std::thread::current();
    match thread.name() {
        Some(name) if name != "main" => format!("{binary}::{name}"),
        _ => format!("{binary}::(unnamed test)"),
    }
}

/// The PostgreSQL server that tests create scratch databases on (`TEST_POSTGRES_URL`), or `None`.
/// With `TEST_REQUIRE_POSTGRES=1` (set by `scripts/with-postgres.sh`) a missing URL panics instead.
pub fn postgres_url() -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!("TEST_REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set");
            }
            None
        }
    }
}

/// [`postgres_url`] for a test that needs it: without a server the running test is recorded as
/// skipped and `None` is returned, so the test returns.
pub fn postgres_url_or_skip() -> Option<String> {
    let url = postgres_url();
    if url.is_none() {
        skip("no PostgreSQL server: TEST_POSTGRES_URL is not set");
    }
    url
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_test_is_named_after_its_binary_and_path() {
        assert_eq!(
            current_test(),
            "caremesh_store::skip::tests::the_test_is_named_after_its_binary_and_path"
        );
    }

    /// Runs only inside [`a_skip_is_appended_to_the_log_once`]'s child process.
    #[test]
    fn skipping_child() {
        if std::env::var_os("CAREMESH_SKIP_TEST_CHILD").is_some() {
            skip("a reason\twith a tab");
            skip("said twice");
        }
    }

    #[test]
    fn a_skip_is_appended_to_the_log_once() {
        let log = std::env::temp_dir().join(format!("caremesh-skip-test-{}", std::process::id()));
        std::fs::write(&log, "earlier\tline\n").unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "skip::tests::skipping_child", "--test-threads=1"])
            .env("CAREMESH_SKIP_TEST_CHILD", "1")
            .env(LOG_VAR, &log)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_file(&log).unwrap();
        assert!(status.success());
        assert_eq!(
            text,
            "earlier\tline\ncaremesh_store::skip::tests::skipping_child\ta reason with a tab\n"
        );
    }
}
