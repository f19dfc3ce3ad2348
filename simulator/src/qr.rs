//! QR matrices for the page's `<canvas>`: the payload is encoded server-side with the `qrcode`
//! crate and sent to the page as rows of `0`/`1`.

use qrcode::{Color, EcLevel, QrCode};

/// Encode `payload` into rows of '0' (light) and '1' (dark) modules, without the quiet zone.
pub fn matrix(payload: &str) -> Vec<String> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::L)
        .or_else(|_| QrCode::new(payload.as_bytes()));
    let Ok(code) = code else {
        return Vec::new();
    };
    let width = code.width();
    code.to_colors()
        .chunks(width)
        .map(|row| {
            row.iter()
                .map(|c| if *c == Color::Dark { '1' } else { '0' })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_payload_encodes_into_a_square_matrix() {
        let rows = super::matrix(&"x".repeat(200));
        assert!(rows.len() > 21);
        assert!(rows.iter().all(|r| r.len() == rows.len()));
    }
}
