//! Secrets: random tokens, SHA-256 digests, argon2id password hashes and the sealing of
//! upstream credentials with a key from configuration.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a secret operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the operating system's random source failed")]
    Random,
    #[error("the encryption key must be 64 hex characters (32 bytes)")]
    BadKey,
    #[error("a sealed value could not be opened: wrong key or corrupted data")]
    Open,
    #[error("password hashing failed")]
    Hash,
}

/// `n` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|_| SecretError::Random)?;
    Ok(buf)
}

/// A random base62 string of `len` characters (≈5.95 bits each).
pub fn random_token(len: usize) -> Result<String, SecretError> {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random_bytes::<64>()? {
            // Rejection sampling keeps every character equally likely.
            if b < 248 && out.len() < len {
                out.push(BASE62[usize::from(b % 62)] as char);
            }
        }
    }
    Ok(out)
}

/// A prefixed random identifier, e.g. `org_4fK2…` (16 base62 characters, ≈95 bits).
pub fn new_id(prefix: &str) -> Result<String, SecretError> {
    Ok(format!("{prefix}_{}", random_token(16)?))
}

/// An identifier that sorts by creation time: `prefix_` + the Unix milliseconds in 8 base62
/// characters + 8 base62 characters of a process-wide sequence (47 bits) that starts at a
/// random point. For the ids written on every call and every ledger transfer: they are not
/// secrets; sequential ids keep the database's indexes appending instead of inserting at
/// random places, and ids one process makes within one millisecond still sort in the order
/// they were made, so lists ordered by time and then id show that order (with a byte-wise
/// collation, as SQLite's and PostgreSQL's `C` ones are). Unique in practice: replicas'
/// sequences start at independent random points of 2^47, so two ids collide only if two
/// processes reach the same point of the sequence in the same millisecond.
pub fn ordered_id(prefix: &str) -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    const MASK: u64 = (1 << 47) - 1;
    static START: OnceLock<u64> = OnceLock::new();
    static MADE: AtomicU64 = AtomicU64::new(0);
    let start = *START.get_or_init(|| {
        let from_os = random_bytes::<8>().map(u64::from_le_bytes).ok();
        // Without the OS source, mix the time and a stack address.
        let marker = 0u8;
        from_os.unwrap_or_else(|| crate::time::now_ms() as u64 ^ (&marker as *const u8 as u64).rotate_left(32))
    });
    let time = u64::try_from(crate::time::now_ms()).unwrap_or(0);
    let sequence = start.wrapping_add(MADE.fetch_add(1, Ordering::Relaxed)) & MASK;
    let mut out = String::with_capacity(prefix.len() + 17);
    out.push_str(prefix);
    out.push('_');
    push_base62(&mut out, time);
    push_base62(&mut out, sequence);
    out
}

/// Pushes the low part of `n` as 8 base62 digits, most significant first, so that the
/// digits sort as the numbers do (62^8 > 2^47).
fn push_base62(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 8];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    for d in digits {
        out.push(d as char);
    }
}

/// Lowercase hex SHA-256 of `data`: how keys, tokens and sessions are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// The bytes of hex `text` (either case); `None` when it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(|_| SecretError::Hash)?;
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|_| SecretError::Hash)
}

/// Whether `password` matches a stored argon2id hash.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// Seals and opens values (upstream credentials) with ChaCha20-Poly1305 under a
/// 32-byte key from configuration. A sealed value is `v1:` + hex(nonce ‖ ciphertext).
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(…)")
    }
}

impl Sealer {
    /// A sealer from a 64-character hex key.
    pub fn from_hex(key_hex: &str) -> Result<Sealer, SecretError> {
        let key = unhex(key_hex.trim()).filter(|k| k.len() == 32).ok_or(SecretError::BadKey)?;
        Ok(Sealer { cipher: ChaCha20Poly1305::new(Key::from_slice(&key)) })
    }

    /// A fresh random key, as hex.
    pub fn generate_key_hex() -> Result<String, SecretError> {
        Ok(hex(&random_bytes::<32>()?))
    }

    /// Encrypts `plain` under a random nonce.
    pub fn seal(&self, plain: &[u8]) -> Result<String, SecretError> {
        let nonce = random_bytes::<12>()?;
        let sealed = self.cipher.encrypt(Nonce::from_slice(&nonce), plain).map_err(|_| SecretError::Open)?;
        Ok(format!("v1:{}{}", hex(&nonce), hex(&sealed)))
    }

    /// Decrypts a value made by [`Sealer::seal`] with the same key.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let bytes = sealed.strip_prefix("v1:").and_then(unhex).ok_or(SecretError::Open)?;
        if bytes.len() < 12 {
            return Err(SecretError::Open);
        }
        let (nonce, body) = bytes.split_at(12);
        self.cipher.decrypt(Nonce::from_slice(nonce), body).map_err(|_| SecretError::Open)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_base62() {
        let a = random_token(32).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_token(32).unwrap());
    }

    #[test]
    fn ordered_ids_sort_by_time_and_do_not_repeat() {
        let first = ordered_id("req");
        assert_eq!(first.len(), "req_".len() + 16);
        assert!(first[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        let many: std::collections::HashSet<String> = (0..100_000).map(|_| ordered_id("req")).collect();
        assert_eq!(many.len(), 100_000);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = ordered_id("req");
        assert!(later > first, "{later} sorts after {first}");
        // Made one after another, on any thread, within one millisecond or not: in order.
        let mut made = vec![later];
        for _ in 0..10_000 {
            made.push(ordered_id("req"));
        }
        made.push(std::thread::spawn(|| ordered_id("req")).join().unwrap());
        made.push(ordered_id("req"));
        assert!(made.windows(2).all(|w| w[0] < w[1]), "ids sort in the order they were made");
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn passwords_round_trip() {
        let hash = hash_password("correct horse 42").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse 42", &hash));
        assert!(!verify_password("correct horse 43", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn sealing_round_trips_and_detects_the_wrong_key() {
        let sealer = Sealer::from_hex(&Sealer::generate_key_hex().unwrap()).unwrap();
        let sealed = sealer.seal(b"Bearer upstream-secret").unwrap();
        assert!(!sealed.contains("upstream-secret"));
        assert_eq!(sealer.open(&sealed).unwrap(), b"Bearer upstream-secret");
        let other = Sealer::from_hex(&Sealer::generate_key_hex().unwrap()).unwrap();
        assert!(other.open(&sealed).is_err());
        assert!(Sealer::from_hex("abc").is_err());
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
