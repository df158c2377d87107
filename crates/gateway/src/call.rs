//! One metered call: admit it, read the request, hold its price, forward it, and stream the
//! response back through the meter. A call refused once its key is known leaves a free usage
//! record (written by the writer, off the response path).

use crate::Inner;
use crate::admit::{Admitted, Headers, Refused};
use crate::body::{MeteredBody, Observed, Shape};
use crate::credit::Refusal;
use crate::directory::{Caller, Target};
use crate::error::{GatewayError, add_headers};
use crate::meter::{MemberCall, Metering, Price, bounded};
use crate::upstream::{Outgoing, response_headers};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use tollgate_domain::Nanos;
use tollgate_domain::pricing::{Pricing, Tokens};
use tollgate_domain::secret::ordered_id;
use tollgate_domain::time::next_utc_month;
use tollgate_metering::{Message, parse_request};
use tollgate_store::calls::UsageRecord;
use tollgate_store::ledger::{AccountKind, PLATFORM};

/// What a request asks for, as far as admission and billing go.
#[derive(Debug, Clone)]
pub(crate) struct Asked {
    /// The JSON-RPC id to answer errors with.
    pub id: Option<Value>,
    /// The method recorded (`tools/call`, `notifications/initialized`, `session/stream`…).
    pub method: String,
    /// The function billed.
    pub function: String,
    /// The calls made: `(method, function, utility)` for each request (none for
    /// notifications and responses the client posts).
    pub calls: Vec<(String, String, bool)>,
    /// A batch with requests in it: each is settled as a call of its own.
    pub batch: bool,
}

impl Asked {
    /// A message that costs nothing (notifications, responses, session housekeeping).
    pub fn free(method: &str) -> Asked {
        Asked { id: None, method: method.into(), function: method.into(), calls: Vec::new(), batch: false }
    }

    /// A request to the agent outside JSON-RPC (health checks): billed as a utility call.
    pub fn utility(method: &str) -> Asked {
        Asked { calls: vec![(method.into(), method.into(), true)], ..Asked::free(method) }
    }
}

/// The protocol version a request says it speaks; without the header, MCP says to assume
/// 2025-03-26.
fn protocol_version(headers: &HeaderMap) -> &str {
    headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok()).unwrap_or("2025-03-26")
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads an MCP POST body: JSON-RPC, with batches only where the protocol version allows
/// them, and the 2026-07-28 `Mcp-Method` / `Mcp-Name` headers matching the body (an agent
/// may route by them, so a mismatch could bill one call and run another).
pub(crate) fn read_mcp(body: &[u8], headers: &HeaderMap) -> Result<Asked, (GatewayError, Option<Value>)> {
    let message = parse_request(body).map_err(|e| {
        let id = e.id().cloned();
        (GatewayError::from(e), id)
    })?;
    let invalid = |message: String| (GatewayError::InvalidRequest(message), None);
    let asked = match &message {
        Message::Request { id, call } => Asked {
            id: Some(id.clone()),
            method: call.method.clone(),
            function: call.function.clone(),
            calls: vec![(call.method.clone(), call.function.clone(), call.utility)],
            batch: false,
        },
        Message::Notification(call) => Asked::free(&call.method),
        Message::Response { id } => Asked { id: Some(id.clone()), ..Asked::free("response") },
        Message::Batch(items) => {
            let version = protocol_version(headers);
            if version != "2025-03-26" {
                return Err(invalid(format!(
                    "MCP {version} does not allow JSON-RPC batches; send one message per request"
                )));
            }
            let mut calls = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Ok(Message::Request { call, .. }) => {
                        calls.push((call.method.clone(), call.function.clone(), call.utility))
                    }
                    Ok(_) => {}
                    Err(e) => return Err(invalid(format!("batch member {i}: {e}"))),
                }
            }
            let batch = !calls.is_empty();
            Asked { id: None, method: "batch".into(), function: "batch".into(), calls, batch }
        }
    };
    if let Some(method) = header_text(headers, "mcp-method")
        && (matches!(message, Message::Batch(_)) || method != asked.method)
    {
        let message = format!("the Mcp-Method header ({method}) does not match the request body ({})", asked.method);
        return Err((GatewayError::InvalidRequest(message), asked.id));
    }
    if let Some(name) = header_text(headers, "mcp-name")
        && name != asked.function
    {
        let message = format!("the Mcp-Name header ({name}) does not match the request body ({})", asked.function);
        return Err((GatewayError::InvalidRequest(message), asked.id));
    }
    Ok(asked)
}

/// The price of one call of `function` on `version` (a utility method: the base fee).
fn price_of(version: &tollgate_store::catalog::Version, function: &str, utility: bool) -> Price {
    if utility {
        return Price { fixed: version.base_fee, per_token: None };
    }
    let listed = version.functions.iter().find(|f| f.name == function);
    match listed.map(|f| &f.pricing).or(version.default_pricing.as_ref()) {
        None => Price::free(),
        Some(Pricing::PerRequest { price }) => Price { fixed: *price, per_token: None },
        Some(p @ Pricing::PerToken { .. }) => Price { fixed: Nanos::ZERO, per_token: Some(p.clone()) },
    }
}

/// How a request is priced: one call's price (or the free call it may use), or for a batch
/// each request's own.
async fn price(
    inner: &Inner,
    admitted: &mut Admitted,
    asked: &Asked,
    now: i64,
) -> Result<(Price, Vec<MemberCall>), GatewayError> {
    let version = &admitted.target.version;
    if asked.batch {
        let members = asked
            .calls
            .iter()
            .map(|(method, function, utility)| MemberCall {
                method: method.clone(),
                function: function.clone(),
                price: price_of(version, function, *utility),
            })
            .collect();
        return Ok((Price::free(), members));
    }
    let Some((_, function, utility)) = asked.calls.first() else { return Ok((Price::free(), Vec::new())) };
    let price = price_of(version, function, *utility);
    // A free call applies to a call of a function with a free tier.
    if !*utility && let Some(f) = version.functions.iter().find(|f| &f.name == function) {
        let key = &admitted.caller.key.key;
        let free = inner
            .counters
            .reserve_free(&key.org_id, &key.agent_id, &f.name, f.free_calls, f.free_reset, now, &mut admitted.taken)
            .await?;
        if free {
            return Ok((Price::free(), Vec::new()));
        }
    }
    Ok((price, Vec::new()))
}

/// What to hold before forwarding: the call's hold, or the sum of a batch's members'.
fn hold_for_all(price: &Price, members: &[MemberCall], request_bytes: usize, output_allowance: i64) -> Nanos {
    members.iter().fold(hold_for(price, request_bytes, output_allowance), |sum, m| {
        sum.checked_add(hold_for(&m.price, request_bytes, output_allowance)).unwrap_or(Nanos(i64::MAX))
    })
}

/// What to hold before forwarding: the fixed price plus, for per-token pricing, the
/// request's input (at most one token per two bytes) and an allowance of output tokens.
fn hold_for(price: &Price, request_bytes: usize, output_allowance: i64) -> Nanos {
    let per_token = price.per_token.as_ref().and_then(|p| {
        let input = i64::try_from(request_bytes / 2 + 1).unwrap_or(i64::MAX);
        p.cost(Tokens { input, output: output_allowance, cache: 0 })
    });
    price.fixed.checked_add(per_token.unwrap_or(Nanos::ZERO)).unwrap_or(Nanos(i64::MAX))
}

/// The answer to a refused call: the error, its rate-limit headers, its request id when it
/// was recorded, and on a 401 where to find how to authenticate (RFC 9728).
pub(crate) fn respond(
    inner: &Inner,
    error: GatewayError,
    headers: &[(&'static str, String)],
    id: Option<&Value>,
    route: &Route<'_>,
) -> Response {
    let unauthorized = matches!(error, GatewayError::Unauthorized(_));
    let mut response = error.into_response_for(id);
    add_headers(&mut response, headers);
    if unauthorized {
        let metadata = format!(
            "{}/.well-known/oauth-protected-resource/{}/{}/mcp",
            inner.config.public_url.trim_end_matches('/'),
            route.agent,
            route.version
        );
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer resource_metadata=\"{metadata}\"")) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

/// When and how a call started, for its usage record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Started {
    pub at: Instant,
    pub now_ms: i64,
}

/// How many refused calls each key may still leave on record in the current minute. A
/// refusal costs the client nothing and the gateway a row, so a client looping on 429s
/// would otherwise write as fast as it can call; past the quota, refusals are answered as
/// before (with a request id) but not recorded until the next minute.
pub(crate) struct RefusalQuota {
    per_minute: u32,
    /// Key id → (minute, refusals recorded in it).
    counts: std::sync::Mutex<std::collections::HashMap<String, (i64, u32)>>,
}

impl RefusalQuota {
    /// Keys tracked before the counts of past minutes are dropped.
    const TRACKED: usize = 10_000;

    pub(crate) fn new(per_minute: u32) -> RefusalQuota {
        RefusalQuota { per_minute, counts: std::sync::Mutex::default() }
    }

    /// Takes one refusal from `key_id`'s quota for the minute of `now_ms`; false when the
    /// minute's quota is used up.
    fn take(&self, key_id: &str, now_ms: i64) -> bool {
        let minute = now_ms.div_euclid(60_000);
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if counts.len() >= Self::TRACKED && !counts.contains_key(key_id) {
            counts.retain(|_, (seen, _)| *seen == minute);
        }
        let (seen, taken) = counts.entry(key_id.to_owned()).or_insert((minute, 0));
        if *seen != minute {
            (*seen, *taken) = (minute, 0);
        }
        if *taken >= self.per_minute {
            if *taken == self.per_minute {
                tracing::warn!(
                    key = key_id,
                    per_minute = self.per_minute,
                    "refused calls past the quota are not recorded this minute"
                );
                *taken += 1;
            }
            return false;
        }
        *taken += 1;
        true
    }
}

/// Records a call refused once its key was known — a free usage record with the refusal's
/// status and code, on the caller's agent (the version asked for when it exists) — and
/// returns its request id. The writer writes it with the next batch, unless the key has
/// used up its [`RefusalQuota`] for the minute.
fn record_refusal(
    inner: &Inner,
    caller: &Caller,
    target: Option<&Target>,
    route: &Route<'_>,
    (method, function): (&str, &str),
    error: &GatewayError,
    started: Started,
) -> String {
    let key = &caller.key.key;
    let target = target.filter(|t| t.agent.id == key.agent_id);
    let request_id = ordered_id("req");
    let record = UsageRecord {
        id: request_id.clone(),
        created_at: started.now_ms,
        org_id: key.org_id.clone(),
        user_id: key.user_id.clone(),
        key_id: key.id.clone(),
        installation_id: key.installation_id.clone(),
        agent_id: key.agent_id.clone(),
        version: bounded(target.map_or(route.version, |t| t.version.version.as_str())),
        function_name: bounded(function),
        method: bounded(method),
        latency_ms: i64::try_from(started.at.elapsed().as_millis()).unwrap_or(i64::MAX),
        http_status: i64::from(error.status().as_u16()),
        error_code: Some(error.code().to_string()),
        ..UsageRecord::default()
    };
    if inner.refusals.take(&record.key_id, started.now_ms) {
        inner.writer.refused(record);
    }
    request_id
}

/// Answers a call refused at admission; recorded when the key was known.
pub(crate) fn refuse_unadmitted(
    inner: &Inner,
    refused: Refused,
    route: &Route<'_>,
    endpoint: &str,
    started: Started,
) -> Response {
    let Refused { error, mut headers, caller, target } = refused;
    if let Some(caller) = caller {
        let request_id =
            record_refusal(inner, &caller, target.as_deref(), route, (endpoint, endpoint), &error, started);
        headers.push(("x-request-id", request_id));
    }
    respond(inner, error, &headers, None, route)
}

/// Answers a call refused after admission (its body, its price, the agent's capacity):
/// what it took from the counters is given back, and it is recorded.
pub(crate) fn refuse_admitted(
    inner: &Inner,
    admitted: &mut Admitted,
    error: GatewayError,
    asked: (&str, &str, Option<&Value>),
    route: &Route<'_>,
    started: Started,
) -> Response {
    let (method, function, id) = asked;
    inner.counters.refund(std::mem::take(&mut admitted.taken));
    let target = admitted.target.clone();
    let request_id = record_refusal(inner, &admitted.caller, Some(&target), route, (method, function), &error, started);
    let mut headers = admitted.rate_headers.clone();
    headers.push(("x-request-id", request_id));
    respond(inner, error, &headers, id, route)
}

/// Where a call goes.
pub(crate) struct Route<'a> {
    pub agent: &'a str,
    pub version: &'a str,
    /// Forward to the agent's health URL instead of its endpoint.
    pub health: bool,
}

/// Holds, forwards and meters one admitted call.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn forward(
    inner: &Arc<Inner>,
    route: Route<'_>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    asked: Asked,
    mut admitted: Admitted,
    started: Started,
) -> Response {
    let what = (asked.method.as_str(), asked.function.as_str(), asked.id.as_ref());
    if admitted.target.agent.protocol != "mcp" && !route.health {
        let e = GatewayError::NotFound(format!(
            "{} speaks {}; call its /{} endpoint",
            route.agent, admitted.target.agent.protocol, admitted.target.agent.protocol
        ));
        return refuse_admitted(inner, &mut admitted, e, what, &route, started);
    }
    let Some(slot) = admitted.target.enter(inner.config.max_in_flight_per_version) else {
        let e = GatewayError::OverCapacity(inner.config.max_in_flight_per_version);
        return refuse_admitted(inner, &mut admitted, e, what, &route, started);
    };
    match hold_and_forward(inner, &route, method, headers, body, &asked, &mut admitted, started, slot).await {
        Ok(response) => response,
        Err(e) => refuse_admitted(inner, &mut admitted, e, what, &route, started),
    }
}

#[allow(clippy::too_many_arguments)]
async fn hold_and_forward(
    inner: &Arc<Inner>,
    route: &Route<'_>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    asked: &Asked,
    admitted: &mut Admitted,
    started: Started,
    slot: crate::directory::InFlight,
) -> Result<Response, GatewayError> {
    let now = started.now_ms;
    let (price, members) = price(inner, admitted, asked, now).await?;
    let caller = admitted.caller.clone();
    let target: Arc<Target> = admitted.target.clone();
    let platform_account = inner.directory.account(AccountKind::PlatformRevenue, PLATFORM).await?;
    let hold = hold_for_all(&price, &members, body.len(), inner.config.hold_output_tokens);
    let org_id = &caller.key.key.org_id;
    let reservation =
        inner.credit.reserve(org_id, &caller.org_account, hold, admitted.org.monthly_budget).await.map_err(
            |r| match r {
                Refusal::Insufficient => GatewayError::InsufficientCredits,
                Refusal::Budget => GatewayError::TooManyRequests {
                    message: "your organization budget for this month is reached".into(),
                    retry_after_secs: u64::try_from((next_utc_month(now) - now) / 1000 + 1).unwrap_or(1),
                    code: "budget_reached",
                },
                Refusal::Unavailable(detail) => {
                    tracing::error!(error = %detail, "the ledger is unreachable; refusing the call");
                    GatewayError::Unavailable("billing is unavailable right now; try again shortly".into())
                }
            },
        )?;
    let chargeable = price.charges() || members.iter().any(|m| m.price.charges());
    let request_id = ordered_id("req");
    let outgoing = Outgoing {
        method,
        uri: if route.health { target.health.as_ref() } else { target.endpoint.as_ref() },
        client_headers: &headers,
        upstream_headers: &target.upstream_headers,
        install_token: &caller.key.install_token,
        request_id: &request_id,
    };
    let sent = inner.upstream.send(outgoing, body.clone()).await;
    let mut metering = Metering {
        request_id: request_id.clone(),
        created_at: now,
        started: started.at,
        caller,
        target,
        platform_account,
        method: asked.method.clone(),
        function: asked.function.clone(),
        request_body: body,
        price,
        reservation,
        taken: std::mem::take(&mut admitted.taken),
        http_status: 0,
        sse: false,
        error_code: None,
        expects_answer: !route.health && !asked.calls.is_empty(),
        stream: inner.meter.next_stream(),
        members,
    };
    let upstream = match sent {
        Ok(response) => response,
        Err(e) => {
            metering.http_status = e.status().as_u16();
            metering.error_code = Some(e.code());
            drop(slot);
            let committed = inner.meter.finish(metering, Observed::default());
            if let Some(committed) = committed {
                let _ = committed.await;
            }
            let mut headers = admitted.rate_headers.clone();
            headers.push(("x-request-id", request_id));
            let mut response = e.into_response_for(asked.id.as_ref());
            add_headers(&mut response, &headers);
            return Ok(response);
        }
    };
    let (parts, incoming) = upstream.into_parts();
    let sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("text/event-stream"));
    metering.http_status = parts.status.as_u16();
    metering.sse = sse;
    let config = &inner.config;
    let shape = Shape {
        sse,
        idle: config.idle_timeout,
        max_events: config.max_stream_events,
        max_bytes: config.max_stream_bytes,
        chargeable,
        rpc_id: asked.id.clone(),
        slot: Some(slot),
        closing: inner.closing.clone(),
    };
    let metered = MeteredBody::new(incoming, metering, inner.meter.clone(), shape);
    let mut response = Response::new(Body::new(metered));
    *response.status_mut() = parts.status;
    response_headers(&parts.headers, response.headers_mut());
    if inner.config.durability == crate::Durability::Sync || sse {
        // Sync: the body's end waits for the charge to commit; without a length, the client
        // sees the response complete only then. SSE: the gateway may add an event.
        response.headers_mut().remove(header::CONTENT_LENGTH);
    }
    let mut extra: Headers = admitted.rate_headers.clone();
    extra.push(("x-request-id", request_id));
    if sse {
        extra.push(("x-accel-buffering", "no".into()));
        extra.push(("cache-control", "no-cache".into()));
    }
    add_headers(&mut response, &extra);
    Ok(response)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::RefusalQuota;

    #[test]
    fn the_refusal_quota_is_per_key_and_starts_anew_each_minute() {
        let quota = RefusalQuota::new(2);
        let minute = 60_000 * 1_000;
        assert_eq!([0, 1, 2, 3].map(|s| quota.take("a", minute + s * 1000)), [true, true, false, false]);
        assert!(quota.take("b", minute + 5000), "another key has its own quota");
        assert!(quota.take("a", minute + 60_000), "the next minute starts anew");
        assert!(quota.take("a", minute + 61_000));
        assert!(!quota.take("a", minute + 62_000));
    }

    #[test]
    fn the_refusal_quota_forgets_past_minutes_when_it_tracks_many_keys() {
        let quota = RefusalQuota::new(1);
        for n in 0..RefusalQuota::TRACKED {
            assert!(quota.take(&format!("k{n}"), 0));
        }
        assert!(quota.take("late", 60_000), "a new minute drops the old minute's counts");
        let tracked = quota.counts.lock().unwrap().len();
        assert_eq!(tracked, 1);
    }
}
