//! Webhook signatures in Stripe's scheme: the header `Stripe-Signature: t=<unix seconds>,
//! v1=<hex HMAC-SHA256 of "<t>.<body>" under the endpoint's signing secret>` (several
//! `v1` entries may appear while a secret is rolled; any one matching is enough). The
//! comparison is constant-time, and a timestamp further than the tolerance from now, in
//! either direction, is refused, so a captured webhook cannot be replayed later.

use super::WebhookError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tollgate_domain::secret::unhex;

/// How far a signature's timestamp may be from now, in seconds (Stripe's default).
pub const TOLERANCE_SECS: i64 = 300;

/// The largest header read; anything longer is refused unread.
const MAX_HEADER: usize = 4096;

fn mac(secret: &str, timestamp: i64, payload: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// The header value signing `payload` at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let tag = mac(secret, timestamp, payload).finalize().into_bytes();
    format!("t={timestamp},v1={}", tollgate_domain::secret::hex(&tag))
}

/// Checks `header` against `payload` at `now` (Unix seconds).
pub fn verify(
    secret: &str,
    header: Option<&str>,
    payload: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), WebhookError> {
    let header = header.filter(|h| !h.trim().is_empty()).ok_or(WebhookError::MissingSignature)?;
    if header.len() > MAX_HEADER || secret.is_empty() {
        return Err(WebhookError::BadSignature);
    }
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => {
                if timestamp.is_some() {
                    return Err(WebhookError::BadSignature);
                }
                timestamp = Some(t.parse::<i64>().map_err(|_| WebhookError::BadSignature)?);
            }
            Some(("v1", v)) => candidates.extend(unhex(v)),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(WebhookError::BadSignature)?;
    let matched = candidates.iter().any(|tag| mac(secret, timestamp, payload).verify_slice(tag).is_ok());
    if !matched {
        return Err(WebhookError::BadSignature);
    }
    if now.abs_diff(timestamp) > tolerance.unsigned_abs() {
        return Err(WebhookError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let body = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;
        let header = sign(SECRET, 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(verify(SECRET, Some(&header), body, 1_700_000_010, TOLERANCE_SECS), Ok(()));
        // Another body, another secret, another timestamp: refused.
        assert_eq!(
            verify(SECRET, Some(&header), b"{\"id\":\"evt_2\"}", 1_700_000_010, TOLERANCE_SECS),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(verify("whsec_other", Some(&header), body, 1_700_000_010, 300), Err(WebhookError::BadSignature));
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert_eq!(verify(SECRET, Some(&moved), body, 1_700_000_010, 300), Err(WebhookError::BadSignature));
        // Too old or too far ahead: refused even though the signature matches.
        assert_eq!(verify(SECRET, Some(&header), body, 1_700_000_301, 300), Err(WebhookError::Stale));
        assert_eq!(verify(SECRET, Some(&header), body, 1_699_999_699, 300), Err(WebhookError::Stale));
        assert_eq!(verify(SECRET, Some(&header), body, 1_700_000_300, 300), Ok(()));
    }

    #[test]
    fn the_header_is_read_as_stripe_writes_it() {
        let body = b"{}";
        let good = sign(SECRET, 1_700_000_000, body);
        let tag = good.split_once(",v1=").map(|(_, t)| t.to_string()).unwrap_or_default();
        // Several signatures (a rolled secret), a v0 entry, spaces: any v1 match is enough.
        let rolled = format!("t=1700000000, v1={}, v1={tag}, v0=abc", "00".repeat(32));
        assert_eq!(verify(SECRET, Some(&rolled), body, 1_700_000_000, 300), Ok(()));
        for bad in [
            "",
            "   ",
            "t=1700000000",
            &format!("v1={tag}"),
            &format!("t=abc,v1={tag}"),
            &format!("t=1700000000,t=1700000000,v1={tag}"),
            &format!("t=1700000000,v1={}", &tag[1..]),
            "t=1700000000,v1=zz",
            &format!("t=1700000000,v1={tag}{}", "0".repeat(5000)),
        ] {
            let expected =
                if bad.trim().is_empty() { WebhookError::MissingSignature } else { WebhookError::BadSignature };
            assert_eq!(verify(SECRET, Some(bad), body, 1_700_000_000, 300), Err(expected), "{bad}");
        }
        assert_eq!(verify(SECRET, None, body, 1_700_000_000, 300), Err(WebhookError::MissingSignature));
        assert_eq!(verify("", Some(&good), body, 1_700_000_000, 300), Err(WebhookError::BadSignature));
    }

    #[test]
    fn the_hmac_is_stripes() {
        // HMAC-SHA256(key = "whsec_test_secret", "1700000000.{}"), computed independently
        // (Python: hmac.new(b"whsec_test_secret", b"1700000000.{}", hashlib.sha256).hexdigest()).
        assert_eq!(sign(SECRET, 1_700_000_000, b"{}"), format!("t=1700000000,v1={}", EXPECTED));
    }

    const EXPECTED: &str = "ceb8863f7208fa249a6cd8f951e993c7563412aca65866f6272283debe143ab3";
}
