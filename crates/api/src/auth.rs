//! Who is calling: a session cookie (with CSRF protection on mutations) or an account
//! token (`Authorization: Bearer tg_usr_…`, with scopes); and in which org.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use tollgate_domain::catalog::{Role, Scope};
use tollgate_domain::secret::sha256_hex;
use tollgate_domain::time::now_ms;
use tollgate_store::accounts::User;
use tollgate_store::orgs::Org;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tollgate_session";
/// The header that picks the org a request acts on (default: the caller's personal org).
pub const ORG_HEADER: &str = "x-tollgate-org";
/// Account tokens start with this.
pub const ACCOUNT_TOKEN_PREFIX: &str = "tg_usr_";

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth {
    pub user: User,
    /// `None`: every scope (a session, or a token created without scopes).
    pub scopes: Option<Vec<Scope>>,
}

/// The value of one cookie in a `Cookie` header.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Auth> {
        let now = now_ms();
        // A bearer token decides; another scheme (a proxy's `Basic`, say) is not ours and
        // leaves the session cookie to decide.
        if let Some(token) = parts.headers.get(header::AUTHORIZATION).and_then(bearer) {
            if !token.starts_with(ACCOUNT_TOKEN_PREFIX) {
                return Err(ApiError::Unauthorized(
                    "the management API takes an account token (tg_usr_…) or a session; agent keys only work on agent endpoints".into(),
                ));
            }
            let (record, user) =
                state.store.account_token_by_hash(&sha256_hex(token.as_bytes()), now).await?.ok_or_else(|| {
                    ApiError::Unauthorized("this account token is invalid, expired or revoked".into())
                })?;
            let scopes: Vec<Scope> = record.scopes.split_whitespace().filter_map(Scope::parse).collect();
            return Ok(Auth { user, scopes: (!scopes.is_empty()).then_some(scopes) });
        }
        let session = cookie(&parts.headers, SESSION_COOKIE)
            .ok_or_else(|| ApiError::Unauthorized("log in or send an account token".into()))?;
        let (user, csrf) =
            state.store.session(&sha256_hex(session.as_bytes()), now).await?.ok_or(ApiError::SessionExpired)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        if !safe && !sent.is_some_and(|s| constant_time_eq(s.as_bytes(), csrf.as_bytes())) {
            return Err(ApiError::CsrfToken);
        }
        Ok(Auth { user, scopes: None })
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive,
/// RFC 9110 §11.1), or `None` for another scheme.
pub(crate) fn bearer(value: &HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// Refuses a token that lacks `scope` (403).
    pub fn require(&self, scope: Scope) -> ApiResult<()> {
        match &self.scopes {
            Some(scopes) if !scopes.contains(&scope) => {
                Err(ApiError::Forbidden(format!("this account token lacks the {} scope", scope.as_str())))
            }
            _ => Ok(()),
        }
    }

    /// Refuses everyone but operators (403).
    pub fn require_operator(&self) -> ApiResult<()> {
        if self.user.is_operator { Ok(()) } else { Err(ApiError::Forbidden("only operators may do this".into())) }
    }
}

/// An authenticated caller acting in one org they belong to.
#[derive(Debug, Clone)]
pub struct OrgCtx {
    pub auth: Auth,
    pub org: Org,
    pub role: Role,
}

impl FromRequestParts<AppState> for OrgCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<OrgCtx> {
        let auth = Auth::from_request_parts(parts, state).await?;
        let org_id = match parts.headers.get(ORG_HEADER) {
            Some(v) => v.to_str().map_err(|_| ApiError::NotFound("organization"))?.to_string(),
            None => auth.user.personal_org_id.clone(),
        };
        org_ctx(state, auth, &org_id).await
    }
}

/// The caller in `org_id`; a non-member gets 404, as if the org did not exist.
pub(crate) async fn org_ctx(state: &AppState, auth: Auth, org_id: &str) -> ApiResult<OrgCtx> {
    let role = state.store.membership(org_id, &auth.user.id).await?.ok_or(ApiError::NotFound("organization"))?;
    let org = state.store.org(org_id).await?;
    Ok(OrgCtx { auth, org, role })
}

impl OrgCtx {
    /// Refuses viewers (403).
    pub fn require_write(&self) -> ApiResult<()> {
        if self.role.can_write() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("viewers cannot change anything in this organization".into()))
        }
    }

    /// Refuses all but owners and admins (403).
    pub fn require_admin(&self) -> ApiResult<()> {
        if self.role.can_admin() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this needs the owner or admin role".into()))
        }
    }
}

/// The client's IP address: the TCP peer the listener saw, or, when
/// `ApiConfig::trust_forwarded_for` is set (Tollgate behind a reverse proxy or load
/// balancer), the last entry of `X-Forwarded-For`, the one the proxy itself appended.
/// Earlier entries are whatever the client sent and are never used. Empty when unknown
/// (in-process tests).
pub struct ClientAddr(pub String);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<ClientAddr, Self::Rejection> {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|a| a.0.ip());
        let forwarded = state.config.trust_forwarded_for.then(|| forwarded_for_last_hop(&parts.headers)).flatten();
        Ok(ClientAddr(forwarded.or(peer).map(|ip| ip.to_string()).unwrap_or_default()))
    }
}

/// The last address in the `X-Forwarded-For` headers (`1.2.3.4`, `1.2.3.4:5678`, `::1` or
/// `[::1]:5678`), if it parses.
pub(crate) fn forwarded_for_last_hop(headers: &HeaderMap) -> Option<std::net::IpAddr> {
    let last_header = headers.get_all("x-forwarded-for").iter().next_back()?;
    let hop = last_header.to_str().ok()?.rsplit(',').next()?.trim();
    hop.parse::<std::net::IpAddr>().ok().or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn hop(values: &[&str]) -> Option<String> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")));
        }
        forwarded_for_last_hop(&headers).map(|ip| ip.to_string())
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_other_schemes_are_not_ours() {
        let token = |v: &'static str| bearer(&HeaderValue::from_static(v)).map(str::to_string);
        assert_eq!(token("Bearer tg_usr_a"), Some("tg_usr_a".into()));
        assert_eq!(token("bearer  tg_usr_a "), Some("tg_usr_a".into()));
        assert_eq!(token("BEARER tg_usr_a"), Some("tg_usr_a".into()));
        assert_eq!(token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(token("Bearer"), None);
        assert_eq!(token("Bearerx tg_usr_a"), None);
    }

    #[test]
    fn the_last_forwarded_hop_is_the_proxys_view_of_the_client() {
        assert_eq!(hop(&["203.0.113.7"]).as_deref(), Some("203.0.113.7"));
        assert_eq!(hop(&["6.6.6.6, 10.0.0.1 , 203.0.113.7"]).as_deref(), Some("203.0.113.7"));
        assert_eq!(hop(&["6.6.6.6", "203.0.113.7:5100"]).as_deref(), Some("203.0.113.7"));
        assert_eq!(hop(&["2001:db8::1"]).as_deref(), Some("2001:db8::1"));
        assert_eq!(hop(&["[2001:db8::1]:443"]).as_deref(), Some("2001:db8::1"));
        assert_eq!(hop(&[]), None);
        assert_eq!(hop(&["unknown"]), None);
        assert_eq!(hop(&["203.0.113.7, "]), None);
    }
}
