//! Attachments: images (JPEG, PNG, WebP) and PDF files uploaded into a group and served only to
//! its members (and to the nodes its content goes to).
//!
//! Images are decoded and encoded again on the blocking pool before they are stored, so that no
//! metadata of the original (EXIF, GPS position, camera serial numbers, XMP, ICC comments)
//! survives; the EXIF orientation is applied to the pixels first so photos stay upright. JPEG
//! stays JPEG (quality 85), PNG stays PNG, WebP is re-encoded losslessly (the only WebP encoder
//! available in pure Rust). Decoding is bounded against decompression bombs: an image over
//! `media.max_image_pixels` is refused from its header, before anything is decoded; the decoder
//! may allocate only what the image's size needs ([`reencode`]); and at most
//! `media.max_concurrent_decodes` images are decoded at once (others wait briefly, then get
//! `Busy`). PDF files must start with `%PDF-` and are stored as uploaded.
//!
//! Files are stored once per content under `data_dir/media/ab/abcdef…` (their SHA-256) and kept as
//! long as the group exists; the per-group quota counts every upload. Files of posts from other
//! nodes are kept the same way, within the same limits ([`MediaDir`]).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use caremesh_domain::{clean_line, group::limits};
use caremesh_store::{Attachment, NewAttachment};
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use sha2::{Digest, Sha256};

use crate::gate::Gate;
use crate::{App, AppError, AppResult, AppSettings, GroupAccess, new_public_id};

/// The content types an upload may declare.
pub const ACCEPTED_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "application/pdf"];

/// Whether an upload's declared content type (without parameters, lower case) is one the node
/// takes. What the file really is, is decided by its bytes ([`Kind::sniff`]).
pub fn accepts_content_type(declared: &str) -> bool {
    ACCEPTED_TYPES.contains(&declared)
}

/// The kinds of file a group keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Jpeg,
    Png,
    Webp,
    Pdf,
}

impl Kind {
    /// Recognised by the file's first bytes, never by what the client claims.
    pub fn sniff(bytes: &[u8]) -> Option<Kind> {
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

    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Jpeg => "image/jpeg",
            Kind::Png => "image/png",
            Kind::Webp => "image/webp",
            Kind::Pdf => "application/pdf",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Kind::Jpeg => "jpg",
            Kind::Png => "png",
            Kind::Webp => "webp",
            Kind::Pdf => "pdf",
        }
    }
}

/// Why an image could not be cleaned.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MediaError {
    #[error("the file could not be read as {0}: it is damaged or not what it claims to be")]
    Corrupt(&'static str),
    #[error("the image is {0}×{1} pixels; the limit is {2} pixels")]
    TooManyPixels(u32, u32, u64),
    #[error("the image is {0}×{1} pixels and would take {2} bytes decoded; the limit is {3} bytes")]
    TooManyBytes(u32, u32, u64, u64),
    #[error("the image could not be encoded again: {0}")]
    Encode(String),
}

impl From<MediaError> for AppError {
    fn from(e: MediaError) -> Self {
        match e {
            MediaError::Corrupt(_) => AppError::invalid_code("corrupt_file", e.to_string()),
            MediaError::TooManyPixels(..) | MediaError::TooManyBytes(..) => {
                AppError::invalid_code("image_too_large", e.to_string())
            }
            MediaError::Encode(m) => AppError::Internal(m),
        }
    }
}

/// A file of a kind the node does not take.
pub fn unsupported() -> AppError {
    AppError::UnsupportedType {
        code: "unsupported_file_type",
        message: "attachments must be JPEG, PNG or WebP images or PDF files, sent with their content type".into(),
    }
}

/// A file over `media.max_file_bytes`.
pub fn file_too_large(limit: usize) -> AppError {
    AppError::FileTooLarge {
        code: "file_too_large",
        message: format!("the file is larger than the limit of {limit} bytes"),
    }
}

/// Uploads that may wait for a decoding permit; more are refused at once.
const DECODE_MAX_WAITERS: usize = 16;
/// How long an upload waits for a decoding permit.
const DECODE_MAX_WAIT: Duration = Duration::from_secs(20);
/// A decoded image may take this many bytes per pixel of `media.max_image_pixels` (8-bit colour
/// with alpha): 16-bit images are accepted up to half the pixels.
const DECODED_BYTES_PER_PIXEL: u64 = 4;
/// What a decoder may allocate beyond the decoded pixels (its tables and row buffers).
const DECODER_SLACK_BYTES: u64 = 16 << 20;
/// PNG rows up to this long are cleaned one row at a time.
const MAX_STREAMED_ROW_BYTES: usize = 4 << 20;

/// The node's bound on image decoding: `media.max_concurrent_decodes` at once, a few uploads
/// waiting briefly, the rest `Busy`.
pub(crate) fn decode_gate(permits: usize) -> Gate {
    Gate::new(
        "image decoding",
        permits,
        DECODE_MAX_WAITERS,
        DECODE_MAX_WAIT,
    )
}

fn format_of(kind: Kind) -> Result<(ImageFormat, &'static str), MediaError> {
    match kind {
        Kind::Jpeg => Ok((ImageFormat::Jpeg, "JPEG")),
        Kind::Png => Ok((ImageFormat::Png, "PNG")),
        Kind::Webp => Ok((ImageFormat::WebP, "WebP")),
        Kind::Pdf => Err(MediaError::Corrupt("an image")),
    }
}

/// Reads only the image's header: its dimensions, refused over `max_pixels` before anything is
/// decoded (and before the upload waits for a decoding permit).
pub(crate) fn check_header(bytes: &[u8], kind: Kind, max_pixels: u64) -> Result<(), MediaError> {
    let (format, name) = format_of(kind)?;
    let (w, h) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|_| MediaError::Corrupt(name))?;
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(MediaError::TooManyPixels(w, h, max_pixels));
    }
    Ok(())
}

/// Decodes an image and encodes its pixels again, leaving every piece of metadata behind.
/// Returns the new bytes and the dimensions.
///
/// Memory: a PNG (not interlaced, without EXIF) is cleaned one row at a time and needs about
/// two rows; any other image is decoded whole, with the decoder's allocations limited to its
/// decoded size (at most `DECODED_BYTES_PER_PIXEL` bytes per pixel of `max_pixels`), and encoded
/// from that buffer without another copy of the pixels, except that turning a photo upright (EXIF
/// orientation) needs a second one.
pub(crate) fn reencode(
    bytes: &[u8],
    kind: Kind,
    max_pixels: u64,
) -> Result<(Vec<u8>, u32, u32), MediaError> {
    let (format, name) = format_of(kind)?;
    if kind == Kind::Png
        && let Some(cleaned) = png_by_rows(bytes, max_pixels)?
    {
        return Ok(cleaned);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    let budget = max_pixels.saturating_mul(DECODED_BYTES_PER_PIXEL);
    limits.max_alloc = Some(budget.saturating_add(DECODER_SLACK_BYTES));
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|_| MediaError::Corrupt(name))?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(MediaError::TooManyPixels(w, h, max_pixels));
    }
    let decoded = decoder.total_bytes();
    if decoded > budget {
        return Err(MediaError::TooManyBytes(w, h, decoded, budget));
    }
    // Now that the size is known, nothing beyond it (and the decoder's own buffers).
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(decoded.saturating_add(DECODER_SLACK_BYTES));
    decoder
        .set_limits(limits)
        .map_err(|_| MediaError::TooManyBytes(w, h, decoded, budget))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => MediaError::TooManyBytes(w, h, decoded, budget),
        _ => MediaError::Corrupt(name),
    })?;
    img.apply_orientation(orientation);
    let (width, height) = (img.width(), img.height());
    let mut out = Vec::new();
    let encoded = match kind {
        Kind::Jpeg => {
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
            match img {
                // The encoder takes these as they are; anything else becomes RGB first.
                DynamicImage::ImageRgb8(_) | DynamicImage::ImageLuma8(_) => {
                    img.write_with_encoder(encoder)
                }
                other => DynamicImage::ImageRgb8(other.into_rgb8()).write_with_encoder(encoder),
            }
        }
        Kind::Png => return write_png(img, out),
        _ => {
            let encoder = image::codecs::webp::WebPEncoder::new_lossless(&mut out);
            match img {
                DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => {
                    img.write_with_encoder(encoder)
                }
                other if other.color().has_alpha() => {
                    DynamicImage::ImageRgba8(other.into_rgba8()).write_with_encoder(encoder)
                }
                other => DynamicImage::ImageRgb8(other.into_rgb8()).write_with_encoder(encoder),
            }
        }
    };
    encoded.map_err(|e| MediaError::Encode(e.to_string()))?;
    Ok((out, width, height))
}

fn encode_error(e: impl std::fmt::Display) -> MediaError {
    MediaError::Encode(e.to_string())
}

/// A PNG cleaned row by row: each row of pixels, as stored (same colour type, bit depth and
/// palette), goes to a new file without any other chunk. `None` for the PNGs this cannot do
/// (interlaced, with EXIF that may turn the image, or rows too long): they are decoded whole.
fn png_by_rows(bytes: &[u8], max_pixels: u64) -> Result<Option<(Vec<u8>, u32, u32)>, MediaError> {
    let corrupt = |_| MediaError::Corrupt("PNG");
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(corrupt)?;
    let info = reader.info();
    let (w, h) = (info.width, info.height);
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(MediaError::TooManyPixels(w, h, max_pixels));
    }
    let row_bytes = reader.output_line_size(w).unwrap_or(usize::MAX);
    if info.interlaced || info.exif_metadata.is_some() || row_bytes > MAX_STREAMED_ROW_BYTES {
        return Ok(None);
    }
    let (color, depth) = (info.color_type, info.bit_depth);
    let palette = info.palette.as_ref().map(|p| p.to_vec());
    let trns = info.trns.as_ref().map(|t| t.to_vec());
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(color);
    encoder.set_depth(depth);
    if let Some(p) = palette {
        encoder.set_palette(p);
    }
    if let Some(t) = trns {
        encoder.set_trns(t);
    }
    let mut writer = encoder.write_header().map_err(encode_error)?;
    let mut stream = writer.stream_writer().map_err(encode_error)?;
    let mut rows = 0u32;
    while let Some(row) = reader.next_row().map_err(corrupt)? {
        std::io::Write::write_all(&mut stream, row.data()).map_err(encode_error)?;
        rows += 1;
    }
    if rows != h {
        return Err(MediaError::Corrupt("PNG"));
    }
    stream.finish().map_err(encode_error)?;
    writer.finish().map_err(encode_error)?;
    Ok(Some((out, w, h)))
}

/// A decoded image as PNG. 16-bit samples are turned big-endian in place (the `image` crate's
/// encoder would copy every pixel to do it).
fn write_png(mut img: DynamicImage, mut out: Vec<u8>) -> Result<(Vec<u8>, u32, u32), MediaError> {
    use png::{BitDepth, ColorType};
    let (width, height) = (img.width(), img.height());
    let sixteen: Option<&mut [u16]> = match &mut img {
        DynamicImage::ImageLuma16(b) => Some(b),
        DynamicImage::ImageLumaA16(b) => Some(b),
        DynamicImage::ImageRgb16(b) => Some(b),
        DynamicImage::ImageRgba16(b) => Some(b),
        _ => None,
    };
    if let Some(samples) = sixteen {
        for s in samples.iter_mut() {
            *s = s.to_be();
        }
    }
    let img = match img {
        DynamicImage::ImageRgb32F(_) => DynamicImage::ImageRgb16(img.into_rgb16()),
        DynamicImage::ImageRgba32F(_) => DynamicImage::ImageRgba16(img.into_rgba16()),
        other => other,
    };
    let (color, depth) = match img.color() {
        image::ColorType::L8 => (ColorType::Grayscale, BitDepth::Eight),
        image::ColorType::La8 => (ColorType::GrayscaleAlpha, BitDepth::Eight),
        image::ColorType::Rgb8 => (ColorType::Rgb, BitDepth::Eight),
        image::ColorType::Rgba8 => (ColorType::Rgba, BitDepth::Eight),
        image::ColorType::L16 => (ColorType::Grayscale, BitDepth::Sixteen),
        image::ColorType::La16 => (ColorType::GrayscaleAlpha, BitDepth::Sixteen),
        image::ColorType::Rgb16 => (ColorType::Rgb, BitDepth::Sixteen),
        _ => (ColorType::Rgba, BitDepth::Sixteen),
    };
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(color);
        encoder.set_depth(depth);
        let mut writer = encoder.write_header().map_err(encode_error)?;
        writer
            .write_image_data(img.as_bytes())
            .map_err(encode_error)?;
        writer.finish().map_err(encode_error)?;
    }
    Ok((out, width, height))
}

/// The path of a stored file: `media/ab/abcdef…`.
fn file_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(sha256.get(..2).unwrap_or("00")).join(sha256)
}

/// The bytes of a file kept under its SHA-256.
pub async fn read_file(app: &App, sha256: &str) -> AppResult<Vec<u8>> {
    tokio::fs::read(file_path(&app.settings.media_dir, sha256))
        .await
        .map_err(|e| AppError::internal(format!("file {sha256} unreadable: {e}")))
}

/// Writes the file under its content hash, through a temporary file and a rename, so that a
/// reader never sees half a file. A file with the same content is already there: nothing to do.
async fn write_file(dir: &Path, bytes: &[u8], sha256: &str) -> AppResult<()> {
    let path = file_path(dir, sha256);
    if tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Ok(());
    }
    let dir = path
        .parent()
        .ok_or_else(|| AppError::internal("media path without a folder"))?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| AppError::internal(format!("cannot create {}: {e}", dir.display())))?;
    let tmp = dir.join(format!("{sha256}.{}.tmp", new_public_id()?));
    tokio::fs::write(&tmp, bytes)
        .await
        .map_err(|e| AppError::internal(format!("cannot write {}: {e}", tmp.display())))?;
    tokio::fs::rename(&tmp, &path)
        .await
        .map_err(|e| AppError::internal(format!("cannot move {}: {e}", tmp.display())))?;
    Ok(())
}

/// The media directory, as files of posts and libraries from other nodes are kept in it: only
/// the kinds of file uploads may be, within the same limits.
pub struct MediaDir {
    dir: PathBuf,
    max_file_bytes: usize,
    quota: i64,
}

impl MediaDir {
    pub fn new(settings: &AppSettings) -> Self {
        Self {
            dir: settings.media_dir.clone(),
            max_file_bytes: settings.max_file_bytes,
            quota: settings.group_quota_bytes,
        }
    }
}

impl MediaDir {
    /// Checks that `bytes` are a kind of file a group may hold and keeps them under their
    /// SHA-256; answers their content type, or why they are refused.
    pub async fn keep(&self, sha256: &str, bytes: Vec<u8>) -> Result<String, String> {
        if bytes.len() > self.max_file_bytes {
            return Err(format!("larger than {} bytes", self.max_file_bytes));
        }
        let kind = Kind::sniff(&bytes).ok_or("not a JPEG, PNG, WebP or PDF file")?;
        write_file(&self.dir, &bytes, sha256)
            .await
            .map_err(|_| "cannot be written".to_owned())?;
        Ok(kind.content_type().to_owned())
    }

    /// The largest file accepted, in bytes.
    pub fn max_file_bytes(&self) -> usize {
        self.max_file_bytes
    }

    /// How many bytes of files one group may hold.
    pub fn group_quota_bytes(&self) -> i64 {
        self.quota
    }
}

/// A member uploads one file into the group: it is checked, cleaned (images are decoded and
/// encoded again, without their metadata), stored and recorded for the group against its quota.
/// The JSON API's upload and the pages' photo fields both come here; the attachment's id then
/// goes into a post or a library item.
pub async fn save_upload(
    app: &App,
    ctx: &GroupAccess,
    bytes: Vec<u8>,
    name: Option<String>,
) -> AppResult<Attachment> {
    ctx.read()?;
    let kind = check_upload(&bytes, app.settings.max_file_bytes)?;
    let max_pixels = app.settings.max_image_pixels;
    let (stored, width, height) = match kind {
        Kind::Pdf => clean_file(bytes, kind, max_pixels)?,
        image_kind => {
            // Too large by its header: refused before it waits for a decoding permit.
            check_header(&bytes, image_kind, max_pixels)?;
            app.decoding
                .run(move || clean_file(bytes, image_kind, max_pixels))
                .await?
        }
    };
    let file_name = upload_name(name, kind)?;
    let sha256 = hex::encode(Sha256::digest(&stored));
    let size = i64::try_from(stored.len()).map_err(AppError::internal)?;
    write_file(&app.settings.media_dir, &stored, &sha256).await?;
    app.store
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
                created_at: app.now(),
            },
            app.settings.group_quota_bytes,
        )
        .await
        .map_err(|e| match e.conflict_code() {
            Some("group_storage_full") => AppError::FileTooLarge {
                code: "group_storage_full",
                message: e.to_string(),
            },
            _ => e.into(),
        })
}

/// What an upload is, by its bytes: refused when it is empty, larger than `max_file_bytes`, or not
/// a kind the node takes. The first check every uploaded (untrusted) file goes through.
pub fn check_upload(bytes: &[u8], max_file_bytes: usize) -> AppResult<Kind> {
    if bytes.len() > max_file_bytes {
        return Err(file_too_large(max_file_bytes));
    }
    if bytes.is_empty() {
        return Err(AppError::invalid_code("empty_file", "the upload is empty"));
    }
    Kind::sniff(bytes).ok_or_else(unsupported)
}

/// The bytes to store for a file of `kind` ([`check_upload`]): an image decoded and encoded again
/// ([`reencode`], with its width and height), a PDF file as it is. CPU-bound: async callers run it
/// on the blocking pool.
#[allow(clippy::type_complexity)]
pub fn clean_file(
    bytes: Vec<u8>,
    kind: Kind,
    max_pixels: u64,
) -> AppResult<(Vec<u8>, Option<u32>, Option<u32>)> {
    match kind {
        Kind::Pdf => Ok((bytes, None, None)),
        image_kind => {
            let (out, w, h) = reencode(&bytes, image_kind, max_pixels)?;
            Ok((out, Some(w), Some(h)))
        }
    }
}

/// A clean file name with the extension of what the file really is.
pub fn upload_name(given: Option<String>, kind: Kind) -> AppResult<String> {
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

/// A member downloads one of the group's files: the attachment and its bytes.
pub async fn download(app: &App, ctx: &GroupAccess, aid: &str) -> AppResult<(Attachment, Vec<u8>)> {
    ctx.read()?;
    let a = app.store.attachment_by_public_id(ctx.group.id, aid).await?;
    let bytes = read_file(app, &a.sha256).await?;
    Ok((a, bytes))
}

/// A file of a group's post, for a node its content goes to (`origin`, `scheme://authority`
/// from the request's signature, which the caller has checked): for a group hosted here, nodes with an active
/// member; for a mirrored group, its host. Anyone else, and any other file: `NotFound`.
pub async fn file_for_node(
    app: &App,
    group_url: &str,
    sha256: &str,
    origin: &str,
) -> AppResult<(Attachment, Vec<u8>)> {
    let not_found = || AppError::NotFound("file");
    let group = match app.federation.local_group_id(group_url) {
        Some(pid) => match app.store.group_by_public_id(&pid).await {
            Ok(g) => Some(g),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        },
        None => app.store.group_by_remote_actor(group_url).await?,
    };
    let Some(group) = group else {
        return Err(not_found());
    };
    if !crate::outbound::may_fetch_media(app, &group, origin).await {
        return Err(not_found());
    }
    let file = app
        .store
        .attachment_by_sha(group.id, sha256)
        .await?
        .ok_or_else(not_found)?;
    let bytes = read_file(app, &file.sha256).await?;
    Ok((file, bytes))
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
    fn names_keep_their_words_and_get_the_real_extension() {
        assert_eq!(
            upload_name(Some("C:\\scans\\化验单.JPG".into()), Kind::Png).unwrap(),
            "化验单.png"
        );
        assert_eq!(upload_name(None, Kind::Pdf).unwrap(), "file.pdf");
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

    /// A PNG of `w`×`h` pixels of one colour, 16-bit RGBA or 8-bit RGB, optionally with an EXIF
    /// chunk (which sends it down the path that decodes it whole).
    fn png_of(w: u32, h: u32, sixteen: bool, exif: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut info = png::Info::with_size(w, h);
        if exif {
            info.exif_metadata = Some(b"MM\0\x2a\0\0\0\x08\0\0\0\0\0\0".to_vec().into());
        }
        let mut enc = png::Encoder::with_info(&mut out, info).unwrap();
        let (color, depth, bpp) = if sixteen {
            (png::ColorType::Rgba, png::BitDepth::Sixteen, 8)
        } else {
            (png::ColorType::Rgb, png::BitDepth::Eight, 3)
        };
        enc.set_color(color);
        enc.set_depth(depth);
        let mut writer = enc.write_header().unwrap();
        writer
            .write_image_data(&vec![0x5A; (w * h) as usize * bpp])
            .unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn pngs_are_cleaned_row_by_row_and_decoded_ones_are_limited_to_their_size() {
        for sixteen in [false, true] {
            let png = png_of(600, 500, sixteen, false);
            let (out, w, h) = reencode(&png, Kind::Png, 300_000).unwrap();
            assert_eq!((w, h), (600, 500));
            let back = image::load_from_memory(&out).unwrap();
            assert_eq!(back.color().has_alpha(), sixteen);
            assert_eq!(back.color().bytes_per_pixel(), if sixteen { 8 } else { 3 });
        }
        // Decoded whole (EXIF): 8-bit RGB fits in 4 bytes a pixel, 16-bit RGBA does not.
        let (out, ..) = reencode(&png_of(600, 500, false, true), Kind::Png, 300_000).unwrap();
        assert!(!out.windows(4).any(|w| w == b"eXIf"), "metadata removed");
        assert_eq!(
            image::load_from_memory(&out)
                .unwrap()
                .to_rgb8()
                .get_pixel(7, 7)
                .0,
            [0x5A; 3]
        );
        let e = reencode(&png_of(600, 500, true, true), Kind::Png, 300_000).unwrap_err();
        assert!(
            matches!(e, MediaError::TooManyBytes(600, 500, 2_400_000, 1_200_000)),
            "{e:?}"
        );
        assert!(matches!(
            check_header(&png_of(600, 500, false, false), Kind::Png, 299_999),
            Err(MediaError::TooManyPixels(600, 500, 299_999))
        ));
    }

    #[tokio::test]
    async fn decodes_run_one_at_a_time_and_too_large_images_are_refused_before_decoding() {
        use caremesh_domain::Role;
        let n = crate::group_fixtures::node().await;
        let doctor = n.user("dr.wang", Role::Doctor).await;
        let group = n.group(&doctor, "Stroke rehabilitation").await;
        let ctx = n.access(&doctor, &group).await;
        // Over the fixture's 1,000,000 pixels, a few kilobytes.
        let bomb = png_of(2000, 1000, false, false);
        let e = save_upload(&n.app, &ctx, bomb, None).await.unwrap_err();
        assert_eq!(e.code(), "image_too_large");
        assert_eq!(n.app.high_water_marks().1, 0, "refused before any decoding");
        assert_eq!(
            n.store.group_by_id(group.id).await.unwrap().storage_bytes,
            0
        );
        let files = std::fs::read_dir(&n.app.settings.media_dir)
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(files, 0, "nothing written to the media folder");

        // Six uploads at once (JPEGs are decoded whole): one decode at a time (the fixture's
        // limit), the others wait for their turn.
        let jpeg = |shade: u8| {
            let img = image::RgbImage::from_fn(900, 900, |x, y| {
                image::Rgb([(x % 256) as u8, (y % 256) as u8, shade])
            });
            let mut out = Vec::new();
            DynamicImage::ImageRgb8(img)
                .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                    &mut out, 80,
                ))
                .unwrap();
            out
        };
        let ctx = &ctx;
        let app = &n.app;
        let uploads = (0..6u8).map(|i| {
            let bytes = jpeg(i);
            async move { save_upload(app, ctx, bytes, None).await }
        });
        for r in futures_join_all(uploads).await {
            r.unwrap();
        }
        assert_eq!(n.app.high_water_marks().1, 1);
    }

    /// Runs the futures concurrently on the test's runtime.
    async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
    where
        F: std::future::Future,
    {
        let mut pinned: Vec<_> = futures.map(Box::pin).collect();
        let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (f, slot) in pinned.iter_mut().zip(out.iter_mut()) {
                if slot.is_none() {
                    match f.as_mut().poll(cx) {
                        std::task::Poll::Ready(v) => *slot = Some(v),
                        std::task::Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
        out.into_iter().flatten().collect()
    }

    #[tokio::test]
    async fn uploads_are_cleaned_stored_and_refused_by_their_bytes() {
        use caremesh_domain::Role;
        let n = crate::group_fixtures::node().await;
        let doctor = n.user("dr.wang", Role::Doctor).await;
        let group = n.group(&doctor, "Stroke rehabilitation").await;
        let ctx = n.access(&doctor, &group).await;
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(image::RgbImage::from_pixel(8, 4, image::Rgb([9, 9, 9])))
            .write_with_encoder(image::codecs::png::PngEncoder::new(&mut png))
            .unwrap();
        // A text chunk (like a camera's metadata) that the cleaning leaves behind.
        let mut tagged = png[..33].to_vec();
        let text = b"tEXtComment\0GPS 23.1N 113.3E";
        tagged.extend_from_slice(&u32::try_from(text.len() - 4).unwrap().to_be_bytes());
        tagged.extend_from_slice(text);
        tagged.extend_from_slice(&[0, 0, 0, 0]);
        tagged.extend_from_slice(&png[33..]);
        let a = save_upload(&n.app, &ctx, tagged.clone(), Some("scan.JPG".into()))
            .await
            .unwrap();
        assert_eq!(
            (a.content_type.as_str(), a.file_name.as_str()),
            ("image/png", "scan.png")
        );
        assert_eq!((a.width, a.height), (Some(8), Some(4)));
        let stored = read_file(&n.app, &a.sha256).await.unwrap();
        assert_eq!(Kind::sniff(&stored), Some(Kind::Png));
        assert!(!stored.windows(3).any(|w| w == b"GPS"), "metadata removed");
        let (found, bytes) = download(&n.app, &ctx, &a.public_id).await.unwrap();
        assert_eq!((found.id, bytes), (a.id, stored));

        let used = n.store.group_by_id(group.id).await.unwrap().storage_bytes;
        let e = save_upload(&n.app, &ctx, b"GIF89a....".to_vec(), None)
            .await
            .unwrap_err();
        assert!(matches!(e, AppError::UnsupportedType { .. }), "{e:?}");
        let e = save_upload(&n.app, &ctx, vec![0xFF; (1 << 20) + 1], None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "file_too_large");
        let e = save_upload(&n.app, &ctx, png[..40].to_vec(), None)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "corrupt_file");
        let after = n.store.group_by_id(group.id).await.unwrap().storage_bytes;
        assert_eq!(after, used, "refused files are not counted");
    }
}
