//! Small helpers: clocks and random ids.

use base64::Engine as _;
use rand::Rng as _;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

/// Seconds since the Unix epoch.
pub fn now_s() -> i64 {
    (now_ms() / 1000) as i64
}

/// An upper-case hex id like the ones WhatsApp Web's `MsgKey.newId()` makes (`bytes` random bytes).
pub fn hex_id(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02X}", rng.random::<u8>()))
        .collect()
}

/// `n` random decimal digits (first one non-zero).
pub fn digits(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|i| {
            let lo = if i == 0 { 1 } else { 0 };
            char::from(b'0' + rng.random_range(lo..10u8))
        })
        .collect()
}

/// Standard base64 of `n` random bytes.
pub fn random_b64(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rng().fill(&mut buf[..]);
    base64::engine::general_purpose::STANDARD.encode(buf)
}

/// A pairing code: 8 characters from WhatsApp's unambiguous alphabet.
pub fn pairing_code() -> String {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTVWXYZ";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_upper_case_hex_of_the_requested_length() {
        let id = hex_id(10);
        assert_eq!(id.len(), 20);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
        );
    }

    #[test]
    fn pairing_codes_have_eight_characters() {
        assert_eq!(pairing_code().len(), 8);
    }
}
