//! Attachments: images (JPEG, PNG, WebP) and PDF files uploaded into a group and served only to
//! its members.
//!
//! Images are decoded and encoded again on the blocking pool before they are stored, so that no
//! metadata of the original (EXIF, GPS position, camera serial numbers, XMP, ICC comments)
//! survives; the EXIF orientation is applied to the pixels first so photos stay upright. JPEG
//! stays JPEG (quality 85), PNG stays PNG, WebP is re-encoded losslessly (the only WebP encoder
//! available in pure Rust). Decoding is bounded by `media.max_image_pixels` against decompression
//! bombs. PDF files must start with `%PDF-` and are stored as uploaded.
//!
//! Files are stored once per content under `data_dir/media/ab/abcdef…` (their SHA-256) and kept as
//! long as the group exists; the per-group quota counts every upload.

use std::io::Cursor;
use std::path::PathBuf;

use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use caremesh_domain::{Timestamp, clean_line, group::limits};
use caremesh_store::{Attachment, NewAttachment};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::groups::GroupCtx;
use crate::state::AppState;
use caremesh_app::new_public_id;

/// The upload route. `lib.rs` lets its bodies be as large as `media.max_file_bytes`.
pub const UPLOAD_ROUTE: &str = "/api/v1/groups/{gid}/attachments";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(UPLOAD_ROUTE, post(upload))
        .route("/api/v1/groups/{gid}/attachments/{aid}", get(download))
}

/// Whether a request is an upload, which has its own body limit.
pub fn is_upload(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST
        && path
            .strip_prefix("/api/v1/groups/")
            .and_then(|rest| rest.strip_suffix("/attachments"))
            .is_some_and(|gid| !gid.is_empty() && !gid.contains('/'))
}

#[derive(Serialize)]
pub struct AttachmentView {
    pub id: String,
    pub content_type: String,
    pub file_name: String,
    pub size_bytes: i64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub created_at: Timestamp,
    /// Where members download it.
    pub url: String,
}

impl AttachmentView {
    pub fn new(a: Attachment, group_public_id: &str) -> Self {
        Self {
            url: format!(
                "/api/v1/groups/{group_public_id}/attachments/{}",
                a.public_id
            ),
            id: a.public_id,
            content_type: a.content_type,
            file_name: a.file_name,
            size_bytes: a.size_bytes,
            width: a.width,
            height: a.height,
            created_at: a.created_at,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Jpeg,
    Png,
    Webp,
    Pdf,
}

impl Kind {
    /// Recognised by the file's first bytes, never by what the client claims.
    fn sniff(bytes: &[u8]) -> Option<Kind> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Kind::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Kind::Png)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Kind::Webp)
        } else if bytes.starts_with(b"%PDF-") {
            Some(Kind::Pdf)
        } else {
            None
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Webp => "image/webp",
            Kind::Pdf => "application/pdf",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Kind::Jpeg => "jpg",
            Kind::Png => "png",
            Kind::Webp => "webp",
            Kind::Pdf => "pdf",
        }
    }
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
enum MediaError {
    #[error("the file could not be read as {0}: it is damaged or not what it claims to be")]
    Corrupt(&'static str),
    #[error("the image is {0}×{1} pixels; the limit is {2} pixels")]
    TooManyPixels(u32, u32, u64),
    #[error("the image could not be encoded again: {0}")]
    Encode(String),
}

impl From<MediaError> for ApiError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::Corrupt(_) => ApiError::unprocessable("corrupt_file", e.to_string()),
            MediaError::TooManyPixels(..) => {
                ApiError::unprocessable("image_too_large", e.to_string())
            }
            MediaError::Encode(m) => ApiError::internal(m),
        }
    }
}

/// Decodes an image and encodes its pixels again, leaving every piece of metadata behind.
/// Returns the new bytes and the dimensions.
fn reencode(bytes: &[u8], kind: Kind, max_pixels: u64) -> Result<(Vec<u8>, u32, u32), MediaError> {
    let (format, name) = match kind {
        Kind::Jpeg => (ImageFormat::Jpeg, "JPEG"),
        Kind::Png => (ImageFormat::Png, "PNG"),
        Kind::Webp => (ImageFormat::WebP, "WebP"),
        Kind::Pdf => return Err(MediaError::Corrupt("an image")),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    // Room for the decoded pixels (up to 4 bytes each, 16-bit PNGs 8) and the decoder's buffers.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|_| MediaError::Corrupt(name))?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(MediaError::TooManyPixels(w, h, max_pixels));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => MediaError::TooManyPixels(w, h, max_pixels),
        _ => MediaError::Corrupt(name),
    })?;
    img.apply_orientation(orientation);
    let mut out = Vec::new();
    let encoded = match kind {
        Kind::Jpeg => DynamicImage::ImageRgb8(img.to_rgb8()).write_with_encoder(
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85),
        ),
        Kind::Png => img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out)),
        _ => {
            let img = if img.color().has_alpha() {
                DynamicImage::ImageRgba8(img.to_rgba8())
            } else {
                DynamicImage::ImageRgb8(img.to_rgb8())
            };
            img.write_with_encoder(image::codecs::webp::WebPEncoder::new_lossless(&mut out))
        }
    };
    encoded.map_err(|e| MediaError::Encode(e.to_string()))?;
    Ok((out, img.width(), img.height()))
}

/// The path of a stored file: `media/ab/abcdef…`.
fn stored_path(state: &AppState, sha256: &str) -> PathBuf {
    file_path(&state.settings.media_dir, sha256)
}

fn file_path(dir: &std::path::Path, sha256: &str) -> PathBuf {
    dir.join(sha256.get(..2).unwrap_or("00")).join(sha256)
}

/// The bytes of a file kept under its SHA-256.
pub(crate) async fn read_file(state: &AppState, sha256: &str) -> ApiResult<Vec<u8>> {
    tokio::fs::read(stored_path(state, sha256))
        .await
        .map_err(|e| ApiError::internal(format!("file {sha256} unreadable: {e}")))
}

/// The media directory, as the federation layer keeps the files of posts from other nodes in
/// it: only the kinds of file uploads may be, within the same limits.
pub struct MediaDir {
    dir: PathBuf,
    max_file_bytes: usize,
    quota: i64,
}

impl MediaDir {
    pub fn new(settings: &crate::state::WebSettings) -> Self {
        Self {
            dir: settings.media_dir.clone(),
            max_file_bytes: settings.max_file_bytes,
            quota: settings.group_quota_bytes,
        }
    }
}

#[async_trait::async_trait]
impl caremesh_federation::media::MediaFiles for MediaDir {
    async fn keep(&self, sha256: &str, bytes: Vec<u8>) -> Result<String, String> {
        if bytes.len() > self.max_file_bytes {
            return Err(format!("larger than {} bytes", self.max_file_bytes));
        }
        let kind = Kind::sniff(&bytes).ok_or("not a JPEG, PNG, WebP or PDF file")?;
        write_file(&self.dir, &bytes, sha256)
            .await
            .map_err(|_| "cannot be written".to_owned())?;
        Ok(kind.content_type().to_owned())
    }

    fn max_file_bytes(&self) -> usize {
        self.max_file_bytes
    }

    fn group_quota_bytes(&self) -> i64 {
        self.quota
    }
}

/// Writes the file under its content hash, through a temporary file and a rename, so that a
/// reader never sees half a file. A file with the same content is already there: nothing to do.
async fn store_file(state: &AppState, bytes: &[u8], sha256: &str) -> ApiResult<()> {
    write_file(&state.settings.media_dir, bytes, sha256).await
}

async fn write_file(dir: &std::path::Path, bytes: &[u8], sha256: &str) -> ApiResult<()> {
    let path = file_path(dir, sha256);
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Ok(());
    }
    let dir = path
        .parent()
        .ok_or_else(|| ApiError::internal("media path without a folder"))?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| ApiError::internal(format!("cannot create {}: {e}", dir.display())))?;
    let tmp = dir.join(format!("{sha256}.{}.tmp", new_public_id()?));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| ApiError::internal(format!("cannot write {}: {e}", tmp.display())))?;
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot move {}: {e}", tmp.display())))?;
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// The file's name as the uploader knows it (shown to members when they download it).
    name: Option<String>,
}

/// Uploads one file as the raw request body (`Content-Type: image/jpeg`, `image/png`,
/// `image/webp` or `application/pdf`). Answers `201` with the attachment; its id then goes into a
/// post's `attachments` or a library item.
async fn upload(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<AttachmentView>)> {
    ctx.read()?;
    let limit = state.settings.max_file_bytes;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if !matches!(
        declared.as_deref(),
        Some("image/jpeg" | "image/png" | "image/webp" | "application/pdf")
    ) {
        return Err(unsupported());
    }
    let bytes = to_bytes(body, limit)
        .await
        .map_err(|_| file_too_large(limit))?;
    let attachment = save_upload(&state, &ctx, bytes, q.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(AttachmentView::new(attachment, &ctx.group.public_id)),
    ))
}

/// Checks one uploaded file, cleans it (images are decoded and encoded again, without their
/// metadata), stores it and records it for the group against its quota. The JSON API's upload and
/// the pages' photo fields both come here. The caller has checked that the asker may post.
pub async fn save_upload(
    state: &AppState,
    ctx: &GroupCtx,
    bytes: axum::body::Bytes,
    name: Option<String>,
) -> ApiResult<Attachment> {
    let limit = state.settings.max_file_bytes;
    if bytes.len() > limit {
        return Err(file_too_large(limit));
    }
    if bytes.is_empty() {
        return Err(ApiError::unprocessable("empty_file", "the upload is empty"));
    }
    let kind = Kind::sniff(&bytes).ok_or_else(unsupported)?;
    let (stored, width, height) = match kind {
        Kind::Pdf => (bytes.to_vec(), None, None),
        image_kind => {
            let max_pixels = state.settings.max_image_pixels;
            let (out, w, h) =
                tokio::task::spawn_blocking(move || reencode(&bytes, image_kind, max_pixels))
                    .await
                    .map_err(ApiError::internal)??;
            (out, Some(w), Some(h))
        }
    };
    let file_name = upload_name(name, kind)?;
    let sha256 = hex::encode(Sha256::digest(&stored));
    let size = i64::try_from(stored.len()).map_err(ApiError::internal)?;
    store_file(state, &stored, &sha256).await?;
    state
        .store
        .add_attachment(
            NewAttachment {
                public_id: new_public_id()?,
                group_id: ctx.group.id,
                uploaded_by: ctx.user.id,
                content_type: kind.content_type().to_owned(),
                file_name,
                size_bytes: size,
                sha256,
                width,
                height,
                created_at: state.clock.now(),
            },
            state.settings.group_quota_bytes,
        )
        .await
        .map_err(|e| match e.conflict_code() {
            Some("group_storage_full") => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "group_storage_full",
                e.to_string(),
            ),
            _ => e.into(),
        })
}

fn unsupported() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_file_type",
        "attachments must be JPEG, PNG or WebP images or PDF files, sent with their content type",
    )
}

pub fn file_too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "file_too_large",
        format!("the file is larger than the limit of {limit} bytes"),
    )
}

/// A clean file name with the extension of what the file really is.
fn upload_name(given: Option<String>, kind: Kind) -> ApiResult<String> {
    let base = match given {
        Some(n) if !n.trim().is_empty() => {
            // Only the last path component: names are shown, never used as paths.
            let last = n.rsplit(['/', '\\']).next().unwrap_or("").to_owned();
            clean_line("name", &last, limits::FILE_NAME)?
        }
        _ => "file".to_owned(),
    };
    let stem = match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
        _ => base,
    };
    Ok(format!("{stem}.{}", kind.extension()))
}

/// `filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266), so Chinese names survive.
fn content_disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn download(
    State(state): State<AppState>,
    ctx: GroupCtx,
    ApiPath((_gid, aid)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    ctx.read()?;
    let a = state
        .store
        .attachment_by_public_id(ctx.group.id, &aid)
        .await?;
    let bytes = tokio::fs::read(stored_path(&state, &a.sha256))
        .await
        .map_err(|e| ApiError::internal(format!("attachment {} unreadable: {e}", a.public_id)))?;
    // PDFs are downloaded, never shown inline: browser PDF viewers run scripts.
    let disposition = if a.content_type == "application/pdf" {
        "attachment"
    } else {
        "inline"
    };
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&a.content_type).map_err(ApiError::internal)?,
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&content_disposition(disposition, &a.file_name))
            .map_err(ApiError::internal)?,
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn files_are_recognised_by_their_bytes() {
        assert_eq!(Kind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Kind::Jpeg));
        assert_eq!(Kind::sniff(b"\x89PNG\r\n\x1a\nxxxx"), Some(Kind::Png));
        assert_eq!(Kind::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Kind::Webp));
        assert_eq!(Kind::sniff(b"%PDF-1.7\n"), Some(Kind::Pdf));
        assert_eq!(Kind::sniff(b"<html>"), None);
        assert_eq!(Kind::sniff(b"GIF89a"), None);
    }

    #[test]
    fn upload_paths_are_recognised() {
        let post = axum::http::Method::POST;
        assert!(is_upload(&post, "/api/v1/groups/abc/attachments"));
        assert!(!is_upload(&post, "/api/v1/groups/abc/attachments/x"));
        assert!(!is_upload(&post, "/api/v1/groups//attachments"));
        assert!(!is_upload(&post, "/api/v1/groups/a/b/attachments"));
        assert!(!is_upload(
            &axum::http::Method::GET,
            "/api/v1/groups/abc/attachments"
        ));
    }

    #[test]
    fn names_keep_their_words_and_get_the_real_extension() {
        assert_eq!(
            upload_name(Some("C:\\scans\\化验单.JPG".into()), Kind::Png).unwrap(),
            "化验单.png"
        );
        assert_eq!(upload_name(None, Kind::Pdf).unwrap(), "file.pdf");
        assert_eq!(
            content_disposition("inline", "化验 a.png"),
            "inline; filename=\"__ a.png\"; filename*=UTF-8''%E5%8C%96%E9%AA%8C%20a.png"
        );
    }

    #[test]
    fn images_round_trip_and_bombs_are_refused() {
        let img = image::RgbImage::from_fn(64, 32, |x, _| image::Rgb([x as u8 * 4, 0, 0]));
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(img.clone())
            .write_with_encoder(image::codecs::png::PngEncoder::new(&mut png))
            .unwrap();
        let (out, w, h) = reencode(&png, Kind::Png, 1_000_000).unwrap();
        assert_eq!((w, h), (64, 32));
        assert_eq!(Kind::sniff(&out), Some(Kind::Png));
        let err = reencode(&png, Kind::Png, 1000).unwrap_err();
        assert!(matches!(err, MediaError::TooManyPixels(64, 32, 1000)));
        let mut webp = Vec::new();
        DynamicImage::ImageRgb8(img)
            .write_with_encoder(image::codecs::webp::WebPEncoder::new_lossless(&mut webp))
            .unwrap();
        let (out, ..) = reencode(&webp, Kind::Webp, 1_000_000).unwrap();
        assert_eq!(Kind::sniff(&out), Some(Kind::Webp));
        assert!(matches!(
            reencode(&png[..40], Kind::Png, 1_000_000),
            Err(MediaError::Corrupt("PNG"))
        ));
    }
}
