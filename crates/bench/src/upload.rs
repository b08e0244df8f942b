//! Upload memory benchmark (not part of the test suite): a real `caremesh` process receives 8
//! concurrent uploads of a worst-case image — a single-colour 16-bit RGBA PNG just under
//! `media.max_image_pixels` (about 300 KB that decode to 320 MB) — and the benchmark prints the
//! node's peak resident memory, the answers and the time.
//!
//! `cargo run --release -p caremesh-bench --bin upload-bench -- [--uploads N] [--runs R]
//! [--pixels P] [--depth 8|16] [--node PATH]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "process.rs"]
mod process;

use std::collections::BTreeMap;
use std::time::Instant;

use caremesh_domain::Role;
use process::{Node, arg, median, node_binary};
use serde_json::{Value, json};

const PASSWORD: &str = "the bench password";

/// A single-colour RGBA PNG of about `pixels` pixels (a square), written row by row.
fn worst_png(pixels: u64, depth: u8) -> (Vec<u8>, u32) {
    let side = (pixels as f64).sqrt().floor() as u32;
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, side, side);
    enc.set_color(png::ColorType::Rgba);
    let bytes_per_pixel = if depth == 16 {
        enc.set_depth(png::BitDepth::Sixteen);
        8
    } else {
        enc.set_depth(png::BitDepth::Eight);
        4
    };
    enc.set_compression(png::Compression::High);
    enc.set_filter(png::Filter::Up);
    let mut writer = enc.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let row = vec![0x7Fu8; side as usize * bytes_per_pixel];
    for _ in 0..side {
        std::io::Write::write_all(&mut stream, &row).unwrap();
    }
    stream.finish().unwrap();
    writer.finish().unwrap();
    (out, side)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let uploads: usize = arg(&args, "--uploads", 8);
    let runs: usize = arg(&args, "--runs", 3);
    let pixels: u64 = arg(&args, "--pixels", 40_000_000);
    let depth: u8 = arg(&args, "--depth", 16);
    let bin = node_binary(&args)?;
    println!("node: {}", bin.display());
    let (png, side) = worst_png(pixels, depth);
    println!(
        "image: {side}×{side} ({} pixels), {depth}-bit RGBA, one colour, {} bytes as PNG; {uploads} uploads at once",
        u64::from(side) * u64::from(side),
        png.len()
    );
    let mut peaks = Vec::new();
    for run in 1..=runs {
        let node = Node::start(
            &bin,
            &[("CAREMESH_MEDIA__MAX_IMAGE_PIXELS", pixels.to_string())],
            |db| async move {
                process::seed_accounts(&db, &[("dr.bench", Role::Doctor)], PASSWORD).await
            },
        )
        .await?;
        let http = reqwest::Client::new();
        let login: Value = http
            .post(node.url("/api/v1/auth/login"))
            .json(&json!({ "username": "dr.bench", "password": PASSWORD }))
            .send()
            .await?
            .json()
            .await?;
        let token = login["token"].as_str().unwrap().to_owned();
        let group: Value = http
            .post(node.url("/api/v1/groups"))
            .bearer_auth(&token)
            .json(&json!({
                "name": "乳腺癌康复 唐山",
                "condition": "乳腺癌",
                "condition_code": "C50",
                "city": "唐山",
                "language": "zh-CN",
                "description": "术后康复与随访教育",
                "rules": "互相尊重；不发广告。",
                "member_list": "members",
            }))
            .send()
            .await?
            .json()
            .await?;
        let gid = group["id"].as_str().unwrap().to_owned();
        let (before, _) = process::rss_mb(node.pid()).unwrap_or_default();
        let sampler = node.sample_rss();
        let started = Instant::now();
        let tasks: Vec<_> = (0..uploads)
            .map(|i| {
                let http = http.clone();
                let url = node.url(&format!(
                    "/api/v1/groups/{gid}/attachments?name=scan{i}.png"
                ));
                let (token, body) = (token.clone(), png.clone());
                tokio::spawn(async move {
                    match http
                        .post(url)
                        .bearer_auth(token)
                        .header("content-type", "image/png")
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    }
                })
            })
            .collect();
        let mut counts: BTreeMap<u16, usize> = BTreeMap::new();
        for t in tasks {
            *counts.entry(t.await.unwrap_or(0)).or_insert(0) += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let (peak, hwm) = sampler.finish();
        let (after, _) = process::rss_mb(node.pid()).unwrap_or_default();
        println!(
            "run {run}: RSS before {before:>6.1} MB  peak {peak:>7.1} MB (VmHWM {hwm:>7.1})  after {after:>6.1} MB  answers {counts:?}  {secs:.2} s"
        );
        peaks.push(peak);
    }
    println!("median peak RSS {:.1} MB; target < 300 MB", median(peaks));
    Ok(())
}
