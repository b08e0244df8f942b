//! QR codes of invite links, rendered on the server as SVG or PNG.

use qrcode::{Color, EcLevel, QrCode};

use crate::error::{ApiError, ApiResult};

/// Modules of white border around the code, as the QR standard asks.
const QUIET_ZONE: u32 = 4;
/// Pixels per module in the PNG: 8 makes a typical invite code about 400 px wide, sharp on phones.
const PNG_SCALE: u32 = 8;

fn code(text: &str) -> ApiResult<QrCode> {
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(ApiError::internal)
}

pub fn svg(text: &str) -> ApiResult<String> {
    Ok(code(text)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

pub fn png(text: &str) -> ApiResult<Vec<u8>> {
    let code = code(text)?;
    let modules = u32::try_from(code.width()).map_err(ApiError::internal)?;
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET_ZONE) * PNG_SCALE;
    let img = image::GrayImage::from_fn(side, side, |x, y| {
        let (mx, my) = (x / PNG_SCALE, y / PNG_SCALE);
        let dark = mx >= QUIET_ZONE
            && my >= QUIET_ZONE
            && mx < QUIET_ZONE + modules
            && my < QUIET_ZONE + modules
            && colors
                .get(((my - QUIET_ZONE) * modules + (mx - QUIET_ZONE)) as usize)
                .is_some_and(|c| *c == Color::Dark);
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
        .map_err(ApiError::internal)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn svg_and_png_render() {
        let s = svg("http://127.0.0.1:8080/group-invite/abc").unwrap();
        assert!(s.starts_with("<?xml") && s.contains("<svg"), "{s}");
        let p = png("http://127.0.0.1:8080/group-invite/abc").unwrap();
        let img = image::load_from_memory(&p).unwrap();
        assert!(img.width() >= 200);
        assert_eq!(img.width(), img.height());
    }
}
