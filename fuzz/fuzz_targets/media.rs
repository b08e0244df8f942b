//! An uploaded file as the node checks and cleans it (`caremesh_app::media`): the name given with
//! it, then its bytes (the input is `name NUL bytes`, or bytes alone), sniffed, then decoded and
//! encoded again (JPEG, PNG, WebP) or kept (PDF). A cleaned image must be of the kind it was
//! taken for and within the pixel limit.
#![no_main]

use caremesh_app::media;
use libfuzzer_sys::fuzz_target;

/// Small, so that each run decodes many images; the node's default is far larger.
const MAX_PIXELS: u64 = 1 << 20;
const MAX_FILE_BYTES: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let (name, bytes) = match data.iter().position(|&b| b == 0) {
        Some(i) if i <= 300 => (
            Some(String::from_utf8_lossy(&data[..i]).into_owned()),
            &data[i + 1..],
        ),
        _ => (None, data),
    };
    let Ok(kind) = media::check_upload(bytes, MAX_FILE_BYTES) else {
        return;
    };
    if let Ok(file_name) = media::upload_name(name, kind) {
        assert!(file_name.ends_with(kind.extension()), "{file_name}");
        assert!(
            !file_name.contains('/') && !file_name.contains('\\'),
            "{file_name}"
        );
    }
    let Ok((cleaned, width, height)) = media::clean_file(bytes.to_vec(), kind, MAX_PIXELS) else {
        return;
    };
    assert_eq!(media::Kind::sniff(&cleaned), Some(kind));
    if let (Some(w), Some(h)) = (width, height) {
        assert!(u64::from(w) * u64::from(h) <= MAX_PIXELS);
    }
});
