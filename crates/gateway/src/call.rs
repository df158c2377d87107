//! One metered call: read the request, admit it, hold its price, forward it, and stream the
//! response back through the meter.

use crate::Inner;
use crate::admit::{Admitted, Headers, admit};
use crate::body::{MeteredBody, Observed};
use crate::credit::Refusal;
use crate::directory::Target;
use crate::error::{GatewayError, add_headers};
use crate::meter::{Metering, Price};
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
use tollgate_domain::time::{next_utc_month, now_ms};
use tollgate_metering::{Message, parse_request};
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
}

impl Asked {
    /// A message that costs nothing (notifications, responses, session housekeeping).
    pub fn free(method: &str) -> Asked {
        Asked { id: None, method: method.into(), function: method.into(), calls: Vec::new() }
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
            Asked { id: None, method: "batch".into(), function: "batch".into(), calls }
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

/// How the calls of a request are priced, and whether one of them may be free.
async fn price(inner: &Inner, admitted: &mut Admitted, asked: &Asked, now: i64) -> Result<Price, GatewayError> {
    let version = &admitted.target.version;
    let mut price = Price::free();
    for (_, function, utility) in &asked.calls {
        if *utility {
            price.fixed = price.fixed.checked_add(version.base_fee).unwrap_or(price.fixed);
            continue;
        }
        let listed = version.functions.iter().find(|f| &f.name == function);
        match listed.map(|f| &f.pricing).or(version.default_pricing.as_ref()) {
            None => {}
            Some(Pricing::PerRequest { price: p }) => price.fixed = price.fixed.checked_add(*p).unwrap_or(price.fixed),
            Some(p @ Pricing::PerToken { .. }) => {
                price.per_token.get_or_insert_with(|| p.clone());
            }
        }
        // A free call applies to a single call of a function with a free tier.
        if let (1, Some(f)) = (asked.calls.len(), listed) {
            let key = &admitted.caller.key.key;
            let free = inner
                .counters
                .reserve_free(&key.org_id, &key.agent_id, &f.name, f.free_calls, f.free_reset, now, &mut admitted.taken)
                .await?;
            if free {
                return Ok(Price { fixed: Nanos::ZERO, per_token: None });
            }
        }
    }
    Ok(price)
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

/// The answer to a refused call: the error, its rate-limit headers, and on a 401 where to
/// find how to authenticate (RFC 9728).
pub(crate) fn refuse(
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

/// Where a call goes.
pub(crate) struct Route<'a> {
    pub agent: &'a str,
    pub version: &'a str,
    /// Forward to the agent's health URL instead of its endpoint.
    pub health: bool,
}

/// Admits, holds, forwards and meters one call.
pub(crate) async fn forward(
    inner: &Arc<Inner>,
    route: Route<'_>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    asked: Asked,
) -> Response {
    let started = Instant::now();
    let now = now_ms();
    let id = asked.id.as_ref();
    let authorization = header_text(&headers, "authorization");
    let admitted = admit(inner, authorization, route.agent, route.version, now).await;
    let mut admitted = match admitted {
        Ok(a) => a,
        Err((e, rate_headers)) => return refuse(inner, e, &rate_headers, id, &route),
    };
    if admitted.target.agent.protocol != "mcp" && !route.health {
        let e = GatewayError::NotFound(format!(
            "{} speaks {}; call its /{} endpoint",
            route.agent, admitted.target.agent.protocol, admitted.target.agent.protocol
        ));
        inner.counters.refund(std::mem::take(&mut admitted.taken));
        return refuse(inner, e, &admitted.rate_headers, id, &route);
    }
    match hold_and_forward(inner, &route, method, headers, body, asked.clone(), &mut admitted, started, now).await {
        Ok(response) => response,
        Err(e) => {
            inner.counters.refund(std::mem::take(&mut admitted.taken));
            refuse(inner, e, &admitted.rate_headers, asked.id.as_ref(), &route)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn hold_and_forward(
    inner: &Arc<Inner>,
    route: &Route<'_>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    asked: Asked,
    admitted: &mut Admitted,
    started: Instant,
    now: i64,
) -> Result<Response, GatewayError> {
    let price = price(inner, admitted, &asked, now).await?;
    let caller = admitted.caller.clone();
    let target: Arc<Target> = admitted.target.clone();
    let platform_account = inner.directory.account(AccountKind::PlatformRevenue, PLATFORM).await?;
    let hold = hold_for(&price, body.len(), inner.config.hold_output_tokens);
    let org_id = &caller.key.key.org_id;
    let reservation =
        inner.credit.reserve(org_id, &caller.org_account, hold, admitted.org.monthly_budget).await.map_err(
            |r| match r {
                Refusal::Insufficient => GatewayError::InsufficientCredits,
                Refusal::Budget => GatewayError::TooManyRequests {
                    message: "your organization budget for this month is reached".into(),
                    retry_after_secs: u64::try_from((next_utc_month(now) - now) / 1000 + 1).unwrap_or(1),
                },
                Refusal::Unavailable(detail) => {
                    tracing::error!(error = %detail, "the ledger is unreachable; refusing the call");
                    GatewayError::Unavailable("billing is unavailable right now; try again shortly".into())
                }
            },
        )?;
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
        started,
        caller,
        target,
        platform_account,
        method: asked.method,
        function: asked.function,
        request_body: body,
        price,
        reservation,
        taken: std::mem::take(&mut admitted.taken),
        http_status: 0,
        sse: false,
        error_code: None,
        expects_answer: !route.health && !asked.calls.is_empty(),
        stream: inner.meter.next_stream(),
    };
    let upstream = match sent {
        Ok(response) => response,
        Err(e) => {
            metering.http_status = e.status().as_u16();
            metering.error_code = Some(e.code());
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
    let metered = MeteredBody::new(
        incoming,
        metering,
        inner.meter.clone(),
        sse,
        config.idle_timeout,
        config.max_stream_events,
        config.max_stream_bytes,
    );
    let mut response = Response::new(Body::new(metered));
    *response.status_mut() = parts.status;
    response_headers(&parts.headers, response.headers_mut());
    if inner.config.durability == crate::Durability::Sync {
        // The body's end waits for the charge to commit; without a length, the client
        // sees the response complete only then.
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
