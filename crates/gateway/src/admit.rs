//! Admission: who is calling, may they call this agent version now — key, installation,
//! version status, rate limits, per-key daily limits — all answered from memory.

use crate::Inner;
use crate::counters::Taken;
use crate::directory::{Caller, Target};
use crate::error::GatewayError;
use crate::ratelimit::{Decision, headers, headers_in_force};
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

/// A call refused at admission.
pub(crate) struct Refused {
    pub error: GatewayError,
    /// The rate-limit headers: the decision's, or — refused before the limiter, or before
    /// the caller was known — the limits in force with all of them remaining.
    pub headers: Headers,
    /// The caller, once the key resolved: the refusal goes on their usage.
    pub caller: Option<Arc<Caller>>,
    /// The agent version asked for, when it exists.
    pub target: Option<Arc<Target>>,
}

/// The secret of `Authorization: Bearer <key>`.
fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?;
    let (scheme, secret) = value.split_once(' ')?;
    let secret = secret.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then_some(secret)
}

/// The org's rate limits: its own where it set them, else the operator's defaults.
pub(crate) fn limits_of(org: &Org, defaults: [u64; 3]) -> [u64; 3] {
    let configured = |own: Option<i64>, default: u64| own.map_or(default, |v| u64::try_from(v).unwrap_or(0));
    [
        configured(org.rate_limit_minute, defaults[0]),
        configured(org.rate_limit_hour, defaults[1]),
        configured(org.rate_limit_day, defaults[2]),
    ]
}

/// Checks a call up to (not including) its hold, in the order of SPEC §3: the key, the
/// agent version, the installation, rate limits, the key's daily limits — before anything
/// reads the request body. A refusal comes with the rate-limit headers (see [`Refused`]).
pub(crate) async fn admit(
    inner: &Inner,
    authorization: Option<&str>,
    slug: &str,
    version: &str,
    now_ms: i64,
) -> Result<Admitted, Refused> {
    let (directory, counters, default_limits) = (&inner.directory, &inner.counters, inner.config.rate_limits);
    let anonymous = |error: GatewayError| Refused {
        error,
        headers: headers_in_force(default_limits, now_ms),
        caller: None,
        target: None,
    };
    let secret = bearer(authorization).ok_or_else(|| {
        anonymous(GatewayError::Unauthorized("send your agent key as Authorization: Bearer <key>".into()))
    })?;
    if secret.starts_with("tg_usr_") {
        return Err(anonymous(GatewayError::Unauthorized(
            "account tokens work on the management API only; call agents with an agent key".into(),
        )));
    }
    let caller = directory
        .key(&sha256_hex(secret.as_bytes()))
        .await
        .map_err(anonymous)?
        .ok_or_else(|| anonymous(GatewayError::Unauthorized("this key is not valid".into())))?;
    let key = &caller.key;
    let org = directory.org(&key.key.org_id).await.map_err(anonymous)?;
    let limits = limits_of(&org, default_limits);
    let known = |error: GatewayError, target: Option<Arc<Target>>| Refused {
        error,
        headers: headers_in_force(limits, now_ms),
        caller: Some(caller.clone()),
        target,
    };
    if key.key.revoked_at.is_some() {
        return Err(known(GatewayError::Forbidden("this key has been revoked".into()), None));
    }
    let target =
        directory.target(slug, version).await.map_err(|e| known(e, None))?.ok_or_else(|| {
            known(GatewayError::NotFound(format!("there is no agent version {slug}/{version}")), None)
        })?;
    if key.agent_slug != slug {
        return Err(known(
            GatewayError::Forbidden(format!("this key is for the agent {}, not {slug}", key.agent_slug)),
            None,
        ));
    }
    if key.installation_status != "active" {
        let message = "this agent is no longer installed in your organization".to_string();
        return Err(known(GatewayError::Forbidden(message), Some(target)));
    }
    if target.version.status == "retired" {
        let message = format!("{slug} {} is retired; install a newer version", target.version.version);
        return Err(known(GatewayError::Gone(message), Some(target)));
    }

    let decision: Decision = match inner.limiter.consume(&caller.subject, limits, now_ms).await {
        Ok(decision) => decision,
        Err(e) => {
            tracing::error!(error = %e, "rate limiter unavailable; refusing the call (fail closed)");
            let message = "rate limiting is unavailable right now; try again shortly".to_string();
            return Err(known(GatewayError::Unavailable(message), Some(target)));
        }
    };
    let rate_headers = headers(&decision);
    let refused = |error: GatewayError, target: Arc<Target>, headers: Headers| Refused {
        error,
        headers,
        caller: Some(caller.clone()),
        target: Some(target),
    };
    if !decision.allowed {
        let retry_after_secs = decision.retry_after_secs.unwrap_or(1);
        let error = GatewayError::TooManyRequests {
            message: "rate limit exceeded: too many requests to this agent; slow down".into(),
            retry_after_secs,
            code: "rate_limited",
        };
        return Err(refused(error, target, rate_headers));
    }
    let mut taken = Taken::default();
    let within = match counters.admit_key(&key.key, now_ms, &mut taken).await {
        Ok(within) => within,
        Err(e) => return Err(refused(e, target, rate_headers)),
    };
    if !within {
        let retry_after_secs = u64::try_from((next_utc_midnight(now_ms) - now_ms) / 1000 + 1).unwrap_or(1);
        let error = GatewayError::TooManyRequests {
            message: "this key's daily limit is reached; it resets at 00:00 UTC".into(),
            retry_after_secs,
            code: "daily_limit",
        };
        return Err(refused(error, target, rate_headers));
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
