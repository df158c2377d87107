//! Admission: who is calling, may they call this agent version now — key, installation,
//! version status, rate limits, per-key daily limits — all answered from memory.

use crate::Inner;
use crate::counters::Taken;
use crate::directory::{Caller, Target};
use crate::error::GatewayError;
use crate::ratelimit::{Decision, headers};
use std::sync::Arc;
use tollgate_domain::secret::sha256_hex;
use tollgate_domain::time::next_utc_midnight;
use tollgate_store::orgs::Org;

/// Response headers (the rate-limit ones) that go with an answer, refusals included.
pub(crate) type Headers = Vec<(&'static str, String)>;

/// A call that may proceed to its hold.
pub(crate) struct Admitted {
    pub caller: Arc<Caller>,
    pub target: Arc<Target>,
    pub org: Arc<Org>,
    pub rate_headers: Headers,
    /// What the call took from the counters (given back if it goes no further).
    pub taken: Taken,
}

/// The secret of `Authorization: Bearer <key>`.
fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?;
    let (scheme, secret) = value.split_once(' ')?;
    let secret = secret.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then_some(secret)
}

/// Checks a call up to (not including) its hold, in the order of SPEC §3: the key, the
/// agent version, the installation, rate limits, the key's daily limits. A refusal comes
/// with the rate-limit headers known by then.
pub(crate) async fn admit(
    inner: &Inner,
    authorization: Option<&str>,
    slug: &str,
    version: &str,
    now_ms: i64,
) -> Result<Admitted, (GatewayError, Headers)> {
    let (directory, counters, default_limits) = (&inner.directory, &inner.counters, inner.config.rate_limits);
    let refuse = |e: GatewayError| (e, Vec::new());
    let secret = bearer(authorization).ok_or_else(|| {
        refuse(GatewayError::Unauthorized("send your agent key as Authorization: Bearer <key>".into()))
    })?;
    if secret.starts_with("tg_usr_") {
        return Err(refuse(GatewayError::Unauthorized(
            "account tokens work on the management API only; call agents with an agent key".into(),
        )));
    }
    let caller = directory
        .key(&sha256_hex(secret.as_bytes()))
        .await
        .map_err(refuse)?
        .ok_or_else(|| refuse(GatewayError::Unauthorized("this key is not valid".into())))?;
    let key = &caller.key;
    if key.key.revoked_at.is_some() {
        return Err(refuse(GatewayError::Forbidden("this key has been revoked".into())));
    }
    let target = directory
        .target(slug, version)
        .await
        .map_err(refuse)?
        .ok_or_else(|| refuse(GatewayError::NotFound(format!("there is no agent version {slug}/{version}"))))?;
    if target.version.status == "retired" {
        return Err(refuse(GatewayError::Gone(format!(
            "{slug} {} is retired; install a newer version",
            target.version.version
        ))));
    }
    if key.agent_slug != slug {
        return Err(refuse(GatewayError::Forbidden(format!(
            "this key is for the agent {}, not {slug}",
            key.agent_slug
        ))));
    }
    if key.installation_status != "active" {
        return Err(refuse(GatewayError::Forbidden("this agent is no longer installed in your organization".into())));
    }
    let org = directory.org(&key.key.org_id).await.map_err(refuse)?;

    let configured = |own: Option<i64>, default: u64| own.map_or(default, |v| u64::try_from(v).unwrap_or(0));
    let limits = [
        configured(org.rate_limit_minute, default_limits[0]),
        configured(org.rate_limit_hour, default_limits[1]),
        configured(org.rate_limit_day, default_limits[2]),
    ];
    let decision: Decision = inner.limiter.consume(&caller.subject, limits, now_ms).await.map_err(|e| {
        tracing::error!(error = %e, "rate limiter unavailable; refusing the call (fail closed)");
        refuse(GatewayError::Unavailable("rate limiting is unavailable right now; try again shortly".into()))
    })?;
    let rate_headers = headers(&decision);
    if !decision.allowed {
        let retry_after_secs = decision.retry_after_secs.unwrap_or(1);
        return Err((
            GatewayError::TooManyRequests {
                message: "rate limit exceeded: too many requests to this agent; slow down".into(),
                retry_after_secs,
            },
            rate_headers,
        ));
    }
    let mut taken = Taken::default();
    let within = counters.admit_key(&key.key, now_ms, &mut taken).await.map_err(|e| (e, rate_headers.clone()))?;
    if !within {
        let retry_after_secs = u64::try_from((next_utc_midnight(now_ms) - now_ms) / 1000 + 1).unwrap_or(1);
        return Err((
            GatewayError::TooManyRequests {
                message: "this key's daily limit is reached; it resets at 00:00 UTC".into(),
                retry_after_secs,
            },
            rate_headers,
        ));
    }
    Ok(Admitted { caller, target, org, rate_headers, taken })
}

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn reads_bearer_secrets() {
        assert_eq!(bearer(Some("Bearer tgk_a_b")), Some("tgk_a_b"));
        assert_eq!(bearer(Some("bearer  tgk_a_b ")), Some("tgk_a_b"));
        assert_eq!(bearer(Some("BEARER x")), Some("x"));
        assert_eq!(bearer(Some("Basic dXNlcg==")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(Some("Bearer   ")), None);
        assert_eq!(bearer(None), None);
    }
}
