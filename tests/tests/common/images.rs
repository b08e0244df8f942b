//! Test images: small JPEGs, and an Exif segment with a camera name and a GPS position to prove
//! that uploads lose them.
#![allow(clippy::unwrap_used, dead_code)]

use image::DynamicImage;

pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 4) as u8, 128])
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, 90,
        ))
        .unwrap();
    out
}

/// An APP1 Exif segment: the camera make "SecretCam", orientation 6 (rotate 90° clockwise to
/// show), and a GPS position (latitude N 39° 37' 45.12", Tangshan).
pub fn exif_segment() -> Vec<u8> {
    fn entry(t: &mut Vec<u8>, tag: u16, typ: u16, count: u32, value: [u8; 4]) {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&typ.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&value);
    }
    let mut t = Vec::new();
    t.extend_from_slice(b"MM\0\x2a");
    t.extend_from_slice(&8u32.to_be_bytes());
    // IFD0 at 8: three entries (8 + 2 + 36 + 4 = 50).
    t.extend_from_slice(&3u16.to_be_bytes());
    entry(&mut t, 0x010F, 2, 10, 50u32.to_be_bytes()); // Make
    entry(&mut t, 0x0112, 3, 1, [0, 6, 0, 0]); // Orientation
    entry(&mut t, 0x8825, 4, 1, 60u32.to_be_bytes()); // GPS IFD
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), 50);
    t.extend_from_slice(b"SecretCam\0");
    // GPS IFD at 60: two entries (60 + 2 + 24 + 4 = 90).
    t.extend_from_slice(&2u16.to_be_bytes());
    entry(&mut t, 0x0001, 2, 2, *b"N\0\0\0"); // GPSLatitudeRef
    entry(&mut t, 0x0002, 5, 3, 90u32.to_be_bytes()); // GPSLatitude
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), 90);
    for (num, den) in [(39u32, 1u32), (37, 1), (4512, 100)] {
        t.extend_from_slice(&num.to_be_bytes());
        t.extend_from_slice(&den.to_be_bytes());
    }
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&t);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&u16::try_from(payload.len() + 2).unwrap().to_be_bytes());
    seg.extend_from_slice(&payload);
    seg
}

/// The JPEG markers before the image data (APPn segments and tables).
pub fn jpeg_markers(bytes: &[u8]) -> Vec<u8> {
    let mut markers = Vec::new();
    let mut i = 2;
    while i + 4 <= bytes.len() && bytes[i] == 0xFF {
        let marker = bytes[i + 1];
        markers.push(marker);
        if marker == 0xDA {
            break;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        i += 2 + len;
    }
    markers
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A JPEG that carries [`exif_segment`] (camera name and GPS position) right after its start.
pub fn jpeg_with_gps(width: u32, height: u32) -> Vec<u8> {
    let plain = jpeg(width, height);
    let mut tagged = plain[..2].to_vec();
    tagged.extend_from_slice(&exif_segment());
    tagged.extend_from_slice(&plain[2..]);
    tagged
}
