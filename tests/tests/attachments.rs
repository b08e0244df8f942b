//! Attachments over real HTTP: images are re-encoded so that EXIF and GPS never survive, PDFs are
//! checked, bad files get clear errors, sizes are limited per file and per group, and files are
//! served only to the group's members. Every scenario runs on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use caremesh_domain::Role;
use caremesh_testkit::{Backend, TestNode, on_both_backends};
use common::images::{contains, exif_segment, jpeg, jpeg_markers};
use common::{expect, get, post, world};
use image::{DynamicImage, GenericImageView};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    gps_exif_never_survives_an_upload,
    png_text_chunks_are_dropped_and_files_reach_only_members,
    pdfs_are_checked_and_downloaded_as_files,
    unsupported_and_corrupt_files_are_refused,
    sizes_are_limited_per_file_and_per_group,
    decompression_bombs_are_refused,
    only_the_upload_route_takes_large_bodies,
);

async fn upload(
    node: &TestNode,
    token: &str,
    gid: &str,
    content_type: &str,
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let resp = node
        .http
        .post(node.url(&format!("/api/v1/groups/{gid}/attachments?name={name}")))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn download(node: &TestNode, token: &str, url: &str) -> reqwest::Response {
    node.http
        .get(node.url(url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn gps_exif_never_survives_an_upload(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let plain = jpeg(64, 48);
    let mut tagged = plain[..2].to_vec();
    tagged.extend_from_slice(&exif_segment());
    tagged.extend_from_slice(&plain[2..]);
    // The test file really carries the metadata.
    assert!(jpeg_markers(&tagged).contains(&0xE1));
    assert!(contains(&tagged, b"Exif\0\0") && contains(&tagged, b"SecretCam"));

    let (status, a) = upload(
        &node,
        &w.member,
        &w.gid,
        "image/jpeg",
        "IMG_0001.JPG",
        tagged,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    assert_eq!(a["content_type"], "image/jpeg");
    assert_eq!(a["file_name"], "IMG_0001.jpg");
    // The orientation was applied to the pixels before the metadata was dropped.
    assert_eq!(
        (a["width"].as_u64(), a["height"].as_u64()),
        (Some(48), Some(64))
    );
    let resp = download(&node, &w.member, a["url"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    let stored = resp.bytes().await.unwrap().to_vec();
    assert!(
        !jpeg_markers(&stored).contains(&0xE1),
        "no APP1 (Exif/XMP) segment"
    );
    assert!(!contains(&stored, b"Exif"), "no Exif header anywhere");
    assert!(!contains(&stored, b"SecretCam"));
    assert_eq!(
        image::load_from_memory(&stored).unwrap().dimensions(),
        (48, 64)
    );
    // The file on disk is the clean one too.
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&stored));
    let on_disk = std::fs::read(
        node.config
            .data_dir
            .join("media")
            .join(&sha[..2])
            .join(&sha),
    )
    .unwrap();
    assert_eq!(on_disk, stored);

    // Attached to a post, the file shows with it in the feed.
    let aid = a["id"].as_str().unwrap();
    let p = expect(
        post(
            &node,
            &w.member,
            &format!("/api/v1/groups/{}/posts", w.gid),
            json!({"kind": "question", "body": "这是我的化验单", "attachments": [aid]}),
        )
        .await,
        201,
    );
    assert_eq!(p["attachments"][0]["id"], aid);
    let feed = expect(
        get(&node, &w.doctor, &format!("/api/v1/groups/{}/posts", w.gid)).await,
        200,
    );
    assert_eq!(feed["items"][0]["attachments"][0]["url"], a["url"]);
    node.stop().await;
}

/// A PNG with a tEXt chunk holding a secret.
fn png_with_text() -> Vec<u8> {
    let img = image::RgbaImage::from_fn(20, 10, |x, _| image::Rgba([x as u8 * 10, 0, 0, 200]));
    let mut png = Vec::new();
    DynamicImage::ImageRgba8(img)
        .write_with_encoder(image::codecs::png::PngEncoder::new(&mut png))
        .unwrap();
    // Insert a tEXt chunk after IHDR (8-byte signature + 25-byte IHDR chunk).
    let data = b"Comment\0patient Zhang San, ID 110101";
    let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(b"tEXt");
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(b"tEXt", data).to_be_bytes());
    let mut out = png[..33].to_vec();
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&png[33..]);
    out
}

fn crc32(kind: &[u8], data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in kind.iter().chain(data) {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

async fn png_text_chunks_are_dropped_and_files_reach_only_members(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let png = png_with_text();
    assert!(
        image::load_from_memory(&png).is_ok(),
        "the test PNG is valid"
    );
    assert!(contains(&png, b"Zhang San"));
    let (status, a) = upload(&node, &w.doctor, &w.gid, "image/png", "scan.png", png).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let url = a["url"].as_str().unwrap();
    let stored = download(&node, &w.member, url).await.bytes().await.unwrap();
    assert!(!contains(&stored, b"Zhang San"));
    assert!(!contains(&stored, b"tEXt"));
    let img = image::load_from_memory(&stored).unwrap();
    assert_eq!(img.dimensions(), (20, 10));
    assert!(img.color().has_alpha(), "transparency is kept");
    // Outsiders, members of other groups and anonymous users get nothing.
    assert_eq!(
        download(&node, &w.outsider, url).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        download(&node, &w.other_doctor, url).await.status(),
        StatusCode::NOT_FOUND
    );
    let anon = node.http.get(node.url(url)).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    // An attachment id does not open through another group.
    let other_url = url.replace(&w.gid, &w.other_gid);
    assert_eq!(
        download(&node, &w.other_doctor, &other_url).await.status(),
        StatusCode::NOT_FOUND
    );
    // Uploading needs membership too.
    let (status, _) = upload(
        &node,
        &w.outsider,
        &w.gid,
        "image/png",
        "x.png",
        png_with_text(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A member cannot attach someone else's upload.
    let aid = a["id"].as_str().unwrap();
    let err = expect(
        post(
            &node,
            &w.member,
            &format!("/api/v1/groups/{}/posts", w.gid),
            json!({"kind": "question", "body": "x", "attachments": [aid]}),
        )
        .await,
        409,
    );
    assert_eq!(err["error"], "attachment_unusable");
    node.stop().await;
}

fn pdf(len: usize) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n".to_vec();
    while v.len() < len.saturating_sub(6) {
        v.push(b' ');
    }
    v.extend_from_slice(b"%%EOF\n");
    v
}

async fn pdfs_are_checked_and_downloaded_as_files(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let doc = pdf(2000);
    let (status, a) = upload(
        &node,
        &w.doctor,
        &w.gid,
        "application/pdf",
        "%E9%A5%AE%E9%A3%9F%E6%8C%87%E5%AF%BC.pdf",
        doc.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    assert_eq!(a["file_name"], "饮食指导.pdf");
    assert_eq!(a["size_bytes"], 2000);
    let resp = download(&node, &w.member, a["url"].as_str().unwrap()).await;
    assert_eq!(resp.headers()["content-type"], "application/pdf");
    let disposition = resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        disposition.contains("filename*=UTF-8''%E9%A5%AE"),
        "{disposition}"
    );
    assert!(
        resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(
        resp.bytes().await.unwrap().to_vec(),
        doc,
        "PDFs are stored as uploaded"
    );
    // Saved into the library, the file stays findable by its name.
    let folder = expect(
        post(
            &node,
            &w.doctor,
            &format!("/api/v1/groups/{}/library/folders", w.gid),
            json!({"name": "资料"}),
        )
        .await,
        201,
    );
    let item = expect(
        post(
            &node,
            &w.doctor,
            &format!("/api/v1/groups/{}/library/items", w.gid),
            json!({"folder": folder["id"], "attachment": a["id"]}),
        )
        .await,
        201,
    );
    assert_eq!(item["title"], "饮食指导.pdf");
    assert_eq!(item["attachment"]["url"], a["url"]);
    node.stop().await;
}

async fn unsupported_and_corrupt_files_are_refused(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("image/gif", gif.clone(), 415, "unsupported_file_type"),
        ("image/png", gif, 415, "unsupported_file_type"),
        (
            "text/html",
            b"<html><script>alert(1)</script>".to_vec(),
            415,
            "unsupported_file_type",
        ),
        (
            "application/pdf",
            b"not a pdf at all".to_vec(),
            415,
            "unsupported_file_type",
        ),
        (
            "image/jpeg",
            [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 5].to_vec(),
            422,
            "corrupt_file",
        ),
        (
            "image/png",
            b"\x89PNG\r\n\x1a\ngarbage".to_vec(),
            422,
            "corrupt_file",
        ),
        (
            "image/webp",
            b"RIFF\x10\0\0\0WEBPVP8 garbage".to_vec(),
            422,
            "corrupt_file",
        ),
        (
            "image/jpeg",
            jpeg(32, 32)[..200].to_vec(),
            422,
            "corrupt_file",
        ),
        ("image/jpeg", Vec::new(), 422, "empty_file"),
    ];
    for (ct, bytes, status, code) in cases {
        let (got, body) = upload(&node, &w.member, &w.gid, ct, "f", bytes).await;
        assert_eq!(
            (got.as_u16(), body["error"].as_str()),
            (status, Some(code)),
            "{ct}: {body}"
        );
    }
    // Nothing was stored.
    let group = node.store.group_by_public_id(&w.gid).await.unwrap();
    assert_eq!(group.storage_bytes, 0);
    let media = node.config.data_dir.join("media");
    assert!(!media.exists() || std::fs::read_dir(&media).unwrap().next().is_none());
    node.stop().await;
}

async fn sizes_are_limited_per_file_and_per_group(b: Backend) {
    let Some(node) = TestNode::spawn_with(b, |c| {
        c.media.max_file_bytes = 4096;
        c.media.group_quota_bytes = 7000;
    })
    .await
    else {
        return;
    };
    let w = world(&node).await;
    let (status, body) = upload(
        &node,
        &w.member,
        &w.gid,
        "application/pdf",
        "big.pdf",
        pdf(5000),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (413, Some("file_too_large"))
    );
    assert!(body["message"].as_str().unwrap().contains("4096"));
    let (status, _) = upload(
        &node,
        &w.member,
        &w.gid,
        "application/pdf",
        "a.pdf",
        pdf(3000),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = upload(
        &node,
        &w.member,
        &w.gid,
        "application/pdf",
        "b.pdf",
        pdf(3001),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = upload(
        &node,
        &w.member,
        &w.gid,
        "application/pdf",
        "c.pdf",
        pdf(3002),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (413, Some("group_storage_full"))
    );
    assert_eq!(
        node.store
            .group_by_public_id(&w.gid)
            .await
            .unwrap()
            .storage_bytes,
        6001
    );
    // The quota is per group: the other group still has room.
    let (status, _) = upload(
        &node,
        &w.other_doctor,
        &w.other_gid,
        "application/pdf",
        "c.pdf",
        pdf(3002),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // A body sent without a length (chunked) is cut off at the limit as well.
    let status = chunked_upload(&node, &w.other_doctor, &w.other_gid, &pdf(5000)).await;
    assert_eq!(status, 413);
    node.stop().await;
}

/// Uploads with `Transfer-Encoding: chunked`, so that no `Content-Length` tells the size up
/// front; returns the status code.
async fn chunked_upload(node: &TestNode, token: &str, gid: &str, bytes: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(node.config.listen)
        .await
        .unwrap();
    let head = format!(
        "POST /api/v1/groups/{gid}/attachments HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/pdf\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        node.config.listen
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in bytes.chunks(1000) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0)
}

async fn decompression_bombs_are_refused(b: Backend) {
    let Some(node) = TestNode::spawn_with(b, |c| c.media.max_image_pixels = 1_000_000).await else {
        return;
    };
    let w = world(&node).await;
    // 2000 × 1000 black pixels compress to a few kilobytes but would decode to 6 MB.
    let img = image::GrayImage::new(2000, 1000);
    let mut png = Vec::new();
    DynamicImage::ImageLuma8(img)
        .write_with_encoder(image::codecs::png::PngEncoder::new(&mut png))
        .unwrap();
    assert!(png.len() < 50_000);
    let (status, body) = upload(&node, &w.member, &w.gid, "image/png", "bomb.png", png).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (422, Some("image_too_large"))
    );
    assert_eq!(
        node.store
            .group_by_public_id(&w.gid)
            .await
            .unwrap()
            .storage_bytes,
        0
    );
    node.stop().await;
}

async fn only_the_upload_route_takes_large_bodies(b: Backend) {
    let Some(node) = TestNode::spawn(b).await else {
        return;
    };
    let w = world(&node).await;
    // 1.5 MiB: over http.max_body_bytes (1 MiB), under media.max_file_bytes (10 MiB).
    let (status, body) = upload(
        &node,
        &w.member,
        &w.gid,
        "application/pdf",
        "scan.pdf",
        pdf(1_572_864),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let big_text = "字".repeat(600_000);
    let resp = node
        .http
        .post(node.url(&format!("/api/v1/groups/{}/posts", w.gid)))
        .bearer_auth(&w.member)
        .json(&json!({"kind": "question", "body": big_text}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "payload_too_large"
    );
    let _ = Role::Patient;
    node.stop().await;
}
