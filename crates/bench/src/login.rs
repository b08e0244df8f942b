//! Login memory benchmark (not part of the test suite): a real `caremesh` process answers 200
//! concurrent failed logins (half for unknown accounts, half wrong passwords for existing ones,
//! every one for a different account so that the per-account throttle stops none of them; the
//! per-address throttle is set high since every request comes from 127.0.0.1). It prints the
//! node's peak resident memory, how many were answered 401, 429 and 503, and the time; then, with
//! the default throttle, how many of 40 concurrent wrong guesses for one account were checked.
//!
//! `cargo run --release -p caremesh-bench --bin login-bench -- [--logins N] [--runs R] [--node PATH]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "process.rs"]
mod process;

use std::collections::BTreeMap;
use std::time::Instant;

use caremesh_domain::Role;
use process::{Node, arg, median, node_binary};
use serde_json::json;

const PASSWORD: &str = "the bench password";

/// Fires the logins at once; answers the count of each status and the seconds it took.
async fn fire(node: &Node, logins: Vec<(String, String)>) -> (BTreeMap<u16, usize>, f64) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let tasks: Vec<_> = logins
        .into_iter()
        .map(|(username, password)| {
            let http = http.clone();
            let url = node.url("/api/v1/auth/login");
            tokio::spawn(async move {
                match http
                    .post(url)
                    .json(&json!({ "username": username, "password": password }))
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                }
            })
        })
        .collect();
    let mut counts = BTreeMap::new();
    for t in tasks {
        *counts.entry(t.await.unwrap_or(0)).or_insert(0) += 1;
    }
    (counts, started.elapsed().as_secs_f64())
}

fn show(counts: &BTreeMap<u16, usize>) -> String {
    let n = |s| counts.get(&s).copied().unwrap_or(0);
    let other: usize = counts
        .iter()
        .filter(|(s, _)| ![401, 429, 503].contains(*s))
        .map(|(_, c)| c)
        .sum();
    format!(
        "401: {:>3}  429: {:>3}  503: {:>3}  other: {other}",
        n(401),
        n(429),
        n(503)
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let logins: usize = arg(&args, "--logins", 200);
    let runs: usize = arg(&args, "--runs", 3);
    let bin = node_binary(&args)?;
    println!("node: {}", bin.display());
    let existing: Vec<String> = (0..logins / 2).map(|i| format!("bench.user{i}")).collect();

    println!("\n{logins} concurrent failed logins, distinct accounts, address throttle 100000");
    let mut peaks = Vec::new();
    let mut hwms = Vec::new();
    for run in 1..=runs {
        let accounts: Vec<(&str, Role)> =
            existing.iter().map(|u| (u.as_str(), Role::Staff)).collect();
        let node = Node::start(
            &bin,
            &[("CAREMESH_AUTH__LOGIN_MAX_FAILURES", "10000".to_owned())],
            |db| async move { process::seed_accounts(&db, &accounts, PASSWORD).await },
        )
        .await?;
        let (before, _) = process::rss_mb(node.pid()).unwrap_or_default();
        let mut batch: Vec<(String, String)> = Vec::new();
        for i in 0..logins {
            if i % 2 == 0 {
                batch.push((format!("nobody{i}"), PASSWORD.to_owned()));
            } else {
                batch.push((existing[i / 2].clone(), "a wrong password".to_owned()));
            }
        }
        let sampler = node.sample_rss();
        let (counts, secs) = fire(&node, batch).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let (peak, hwm) = sampler.finish();
        let (after, _) = process::rss_mb(node.pid()).unwrap_or_default();
        println!(
            "run {run}: RSS before {before:>6.1} MB  peak {peak:>7.1} MB (VmHWM {hwm:>7.1})  after {after:>6.1} MB  {}  {secs:.2} s",
            show(&counts)
        );
        peaks.push(peak);
        hwms.push(hwm);
    }
    println!(
        "median peak RSS {:.1} MB (VmHWM {:.1} MB); target < 150 MB",
        median(peaks),
        median(hwms)
    );

    println!("\n40 concurrent wrong guesses for one account, auth.login_max_failures = 5");
    for run in 1..=runs {
        let node = Node::start(&bin, &[], |db| async move {
            process::seed_accounts(&db, &[("dr.target", Role::Doctor)], PASSWORD).await
        })
        .await?;
        let guesses = (0..40)
            .map(|i| ("dr.target".to_owned(), format!("guess number {i}")))
            .collect();
        let (counts, secs) = fire(&node, guesses).await;
        println!(
            "run {run}: {}  {secs:.2} s  (exact: 401 = 5)",
            show(&counts)
        );
    }
    Ok(())
}
