//! Sign-up, log-in, sessions, CSRF, account tokens and their scopes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use common::{Caller, TestApp};
use serde_json::json;
use std::net::SocketAddr;
use tollgate_api::ApiConfig;
use tollgate_domain::Nanos;
use tollgate_domain::secret::{new_id, random_token, sha256_hex};
use tollgate_domain::time::now_ms;
use tollgate_store::StoreError;
use tollgate_store::accounts::AccountToken;
use tollgate_store::ledger::{AccountKind, PLATFORM};

#[tokio::test]
async fn signup_grants_credits_and_sets_a_safe_session_cookie() {
    let app = TestApp::new().await;
    let r = app
        .post(
            "/api/v1/auth/signup",
            json!({"email": "Ada@Example.com", "password": "correct horse 42", "name": "Ada"}),
            &Caller::default(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["user"]["email"], "ada@example.com");
    assert_eq!(r.body["org"]["role"], "owner");
    let cookie = r.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    for part in ["tollgate_session=", "HttpOnly", "SameSite=Lax", "Max-Age=604800", "Path=/"] {
        assert!(cookie.contains(part), "cookie {cookie} lacks {part}");
    }
    let session = cookie.split(';').next().unwrap().trim_start_matches("tollgate_session=").to_string();
    let browser =
        Caller { session: Some(session), csrf: r.body["csrf_token"].as_str().map(String::from), ..Caller::default() };
    let balance = app.get("/api/v1/billing/balance", &browser).await;
    assert_eq!(balance.status, StatusCode::OK);
    assert_eq!(balance.body["balance"], "100.000000");
    assert_eq!(balance.body["currency"], "USD");
    let history = app.get("/api/v1/billing/transactions", &browser).await;
    assert_eq!(history.body["total"], 1);
    assert_eq!(history.body["transactions"][0]["kind"], "signup_grant");
    assert_eq!(history.body["transactions"][0]["amount"], "100.000000");
}

#[tokio::test]
async fn bad_signups_are_refused_and_write_nothing() {
    let app = TestApp::new().await;
    let anon = Caller::default();
    let cases = [
        (
            json!({"email": "not-an-email", "password": "correct horse 42", "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "email",
        ),
        (
            json!({"email": "a@example.com", "password": "short", "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "alllowercaseletters", "name": "A"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "password",
        ),
        (
            json!({"email": "a@example.com", "password": "correct horse 42", "name": "  "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            json!({"email": "a@example.com", "password": "correct horse 42", "name": "A", "admin": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "body",
        ),
        (json!({"email": "a@example.com", "password": 42, "name": "A"}), StatusCode::UNPROCESSABLE_ENTITY, "body"),
    ];
    for (body, status, field) in cases {
        let r = app.post("/api/v1/auth/signup", body.clone(), &anon).await;
        assert_eq!(r.status, status, "{body} → {:?}", r.body);
        assert_eq!(r.body["error"]["code"], "invalid_request");
        assert_eq!(r.body["error"]["field"], field, "{body}");
        assert!(r.body["error"]["message"].as_str().unwrap().len() > 10);
    }
    let malformed =
        app.raw(Method::POST, "/api/v1/auth/signup", Some("application/json"), b"{\"email\": ".to_vec(), &anon).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.body["error"]["code"], "malformed_json");
    let huge = app
        .raw(Method::POST, "/api/v1/auth/signup", Some("application/json"), vec![b' '; 1024 * 1024 + 10], &anon)
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    let no_type = app.raw(Method::POST, "/api/v1/auth/signup", None, b"{}".to_vec(), &anon).await;
    assert_eq!(no_type.status, StatusCode::BAD_REQUEST);
    // Nothing was written: the address is still free.
    assert!(app.store.user_by_email("a@example.com").await.unwrap().is_none());
    app.user("a@example.com").await;
    let again = app
        .post(
            "/api/v1/auth/signup",
            json!({"email": "A@example.com", "password": "correct horse 42", "name": "A"}),
            &anon,
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["error"]["code"], "email_taken");
}

#[tokio::test]
async fn login_logout_and_csrf() {
    let app = TestApp::new().await;
    let user = app.user("bo@example.com").await;
    let anon = Caller::default();
    let wrong =
        app.post("/api/v1/auth/login", json!({"email": "bo@example.com", "password": "nope nope 42"}), &anon).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let unknown =
        app.post("/api/v1/auth/login", json!({"email": "nobody@example.com", "password": "nope nope 42"}), &anon).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["error"]["message"], unknown.body["error"]["message"]);
    let ok =
        app.post("/api/v1/auth/login", json!({"email": "BO@example.com", "password": "correct horse 42"}), &anon).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);

    // A cookie-authenticated mutation needs the CSRF token; reads do not.
    let no_csrf = Caller { csrf: None, ..user.browser() };
    assert_eq!(app.get("/api/v1/me", &no_csrf).await.status, StatusCode::OK);
    let refused = app.post("/api/v1/orgs", json!({"name": "Team"}), &no_csrf).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["error"]["code"], "csrf_token", "a client tells a CSRF refusal by its code");
    let wrong_csrf = Caller { csrf: Some("forged".into()), ..user.browser() };
    assert_eq!(app.post("/api/v1/orgs", json!({"name": "Team"}), &wrong_csrf).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/orgs", &user.caller()).await.body.as_array().unwrap().len(), 1, "no org was created");
    assert_eq!(app.post("/api/v1/orgs", json!({"name": "Team"}), &user.browser()).await.status, StatusCode::CREATED);

    let me = app.get("/api/v1/me", &user.browser()).await;
    assert_eq!(me.body["csrf_token"], user.csrf.as_str());
    let out = app.post("/api/v1/auth/logout", json!({}), &user.browser()).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().contains("Max-Age=0"));
    let ended = app.get("/api/v1/me", &user.browser()).await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ended.body["error"]["code"], "session_expired", "an ended session is told apart by its code");
    assert_eq!(app.get("/api/v1/orgs", &anon).await.body["error"]["code"], "unauthorized");
    // The account token still works after the session ends.
    assert_eq!(app.get("/api/v1/me", &user.caller()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn login_is_throttled_after_repeated_failures() {
    let app = TestApp::new().await;
    app.user("cy@example.com").await;
    let anon = Caller::default();
    for _ in 0..5 {
        let r = app
            .post("/api/v1/auth/login", json!({"email": "cy@example.com", "password": "guess guess 1"}), &anon)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r =
        app.post("/api/v1/auth/login", json!({"email": "cy@example.com", "password": "correct horse 42"}), &anon).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers.get(header::RETRY_AFTER).unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry));
}

#[tokio::test]
async fn account_tokens_scopes_expiry_limit_and_revocation() {
    let app = TestApp::new().await;
    let user = app.user("di@example.com").await;
    let me = user.caller();
    let bad = [
        json!({"name": "x", "scopes": ["everything"]}),
        json!({"name": "x", "expires_in_days": 7}),
        json!({"name": ""}),
    ];
    for body in bad {
        assert_eq!(
            app.post("/api/v1/tokens", body.clone(), &me).await.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
    }
    let scoped =
        app.post("/api/v1/tokens", json!({"name": "ci", "scopes": ["usage:read"], "expires_in_days": 30}), &me).await;
    assert_eq!(scoped.status, StatusCode::CREATED, "{:?}", scoped.body);
    let secret = scoped.body["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("tg_usr_"));
    assert_eq!(scoped.body["scopes"], json!(["usage:read"]));
    assert!(scoped.body["expires_at"].is_string());
    let scoped_caller = Caller { bearer: Some(secret.clone()), ..Caller::default() };
    let denied = app.get("/api/v1/billing/balance", &scoped_caller).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(denied.body["error"]["message"].as_str().unwrap().contains("billing:read"));
    let escalate = app
        .post("/api/v1/tokens", json!({"name": "more", "scopes": ["usage:read", "billing:write"]}), &scoped_caller)
        .await;
    assert_eq!(escalate.status, StatusCode::FORBIDDEN);

    // The secret is stored only as a hash.
    let listed = app.get("/api/v1/tokens", &me).await;
    assert!(!listed.body.to_string().contains(&secret));
    assert_eq!(listed.body.as_array().unwrap().len(), 2);

    // At most 10 active tokens (the harness made one).
    for i in 0..8 {
        assert_eq!(app.post("/api/v1/tokens", json!({"name": format!("t{i}")}), &me).await.status, StatusCode::CREATED);
    }
    let eleventh = app.post("/api/v1/tokens", json!({"name": "one too many"}), &me).await;
    assert_eq!(eleventh.status, StatusCode::CONFLICT);
    assert_eq!(eleventh.body["error"]["code"], "too_many_tokens");

    let id = scoped.body["id"].as_str().unwrap();
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None, &me).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get("/api/v1/me", &scoped_caller).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.post("/api/v1/tokens", json!({"name": "room again"}), &me).await.status, StatusCode::CREATED);

    // Gateway keys and garbage are refused on the management API.
    let key_caller = Caller { bearer: Some("tgk_echo_abc".into()), ..Caller::default() };
    assert_eq!(app.get("/api/v1/me", &key_caller).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me", &Caller::default()).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn profile_updates_are_validated() {
    let app = TestApp::new().await;
    let user = app.user("ed@example.com").await;
    assert_eq!(
        app.get("/api/v1/me", &user.caller()).await.body["user"]["theme"],
        "system",
        "new users follow the device"
    );
    let r = app
        .call(Method::PATCH, "/api/v1/me", Some(json!({"theme": "dark", "email_notifications": false})), &user.caller())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["theme"], "dark");
    assert_eq!(r.body["email_notifications"], false);
    let bad = app.call(Method::PATCH, "/api/v1/me", Some(json!({"theme": "neon"})), &user.caller()).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get("/api/v1/me", &user.caller()).await.body["user"]["theme"], "dark");
    let back = app.call(Method::PATCH, "/api/v1/me", Some(json!({"theme": "system"})), &user.caller()).await;
    assert_eq!((back.status, back.body["theme"].as_str()), (StatusCode::OK, Some("system")));
}

#[tokio::test]
async fn me_counts_unread_notifications_for_callers_who_may_read_them() {
    let app = TestApp::new().await;
    let user = app.user("nia@example.com").await;
    assert_eq!(app.get("/api/v1/me", &user.caller()).await.body["unread_notifications"], 0);
    for title in ["one", "two"] {
        app.store.notify(&user.id, "test", title, "", None).await.unwrap();
    }
    assert_eq!(app.get("/api/v1/me", &user.browser()).await.body["unread_notifications"], 2);
    let list = app.get("/api/v1/notifications", &user.caller()).await;
    let first = list.body[0]["id"].as_str().unwrap().to_string();
    let r = app.post("/api/v1/notifications/read", json!({"id": first}), &user.caller()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me", &user.caller()).await.body["unread_notifications"], 1);
    let scoped = app.post("/api/v1/tokens", json!({"name": "read", "scopes": ["account:read"]}), &user.caller()).await;
    let scoped = Caller { bearer: Some(scoped.body["token"].as_str().unwrap().into()), ..Caller::default() };
    let me = app.get("/api/v1/me", &scoped).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["unread_notifications"], serde_json::Value::Null, "not without notifications:read");
}

#[tokio::test]
async fn ended_sessions_are_refused_and_swept() {
    let app = TestApp::new().await;
    let user = app.user("fi@example.com").await;
    let later = tollgate_domain::time::now_ms() + 8 * 24 * 3600 * 1000;
    assert!(
        app.store
            .session(&tollgate_domain::secret::sha256_hex(user.session.as_bytes()), later)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(app.store.delete_expired_sessions(later).await.unwrap(), 1);
    assert_eq!(app.get("/api/v1/me", &user.browser()).await.status, StatusCode::UNAUTHORIZED);
}

const DAY_MS: i64 = 86_400_000;

/// An account token row for `user`, made at `created_at`, to put in the store directly
/// (the clock seam: the cap counts tokens active at the new token's `created_at`).
fn stored_token(user_id: &str, name: &str, created_at: i64, expires_at: Option<i64>) -> (AccountToken, String) {
    let secret = format!("tg_usr_{}", random_token(40).unwrap());
    let token = AccountToken {
        id: new_id("tok").unwrap(),
        user_id: user_id.into(),
        name: name.into(),
        prefix: secret.chars().take(13).collect(),
        scopes: String::new(),
        expires_at,
        revoked_at: None,
        last_used_at: None,
        created_at,
    };
    (token, secret)
}

#[tokio::test]
async fn expired_account_tokens_are_refused_and_free_their_slot() {
    let app = TestApp::new().await;
    let user = app.user("gil@example.com").await;
    let me = user.caller();
    let now = now_ms();

    // A 30-day token works until its 30th day and not after.
    let month = app.post("/api/v1/tokens", json!({"name": "month", "expires_in_days": 30}), &me).await;
    assert_eq!(month.status, StatusCode::CREATED);
    let month_hash = sha256_hex(month.body["token"].as_str().unwrap().as_bytes());
    assert!(app.store.account_token_by_hash(&month_hash, now + 29 * DAY_MS).await.unwrap().is_some());
    assert!(app.store.account_token_by_hash(&month_hash, now + 31 * DAY_MS).await.unwrap().is_none());

    // `expires_in_days: null` never expires (the harness's token was made without it).
    let never = app.post("/api/v1/tokens", json!({"name": "never", "expires_in_days": null}), &me).await;
    assert_eq!(never.status, StatusCode::CREATED);
    assert!(never.body["expires_at"].is_null());
    let far = now + 100 * 365 * DAY_MS;
    for secret in [never.body["token"].as_str().unwrap(), user.token.as_str()] {
        assert!(app.store.account_token_by_hash(&sha256_hex(secret.as_bytes()), far).await.unwrap().is_some());
    }

    // A token past its expiry gets 401, and does not count against the 10.
    let (expired, secret) = stored_token(&user.id, "old", now - 31 * DAY_MS, Some(now - DAY_MS));
    app.store.create_account_token(&expired, &sha256_hex(secret.as_bytes())).await.unwrap();
    let old = Caller { bearer: Some(secret), ..Caller::default() };
    let refused = app.get("/api/v1/me", &old).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("expired"));
    // Active now: the harness's, "month", "never"; seven more 30-day tokens make 10.
    for i in 0..7 {
        let r = app.post("/api/v1/tokens", json!({"name": format!("t{i}"), "expires_in_days": 30}), &me).await;
        assert_eq!(r.status, StatusCode::CREATED, "{i}: {:?}", r.body);
    }
    let full = app.post("/api/v1/tokens", json!({"name": "eleventh"}), &me).await;
    assert_eq!(full.status, StatusCode::CONFLICT);
    assert_eq!(full.body["error"]["code"], "too_many_tokens");

    // 31 days later the eight 30-day tokens have expired: two are active, eight slots free.
    let later = now + 31 * DAY_MS;
    for i in 0..8 {
        let (t, secret) = stored_token(&user.id, &format!("later{i}"), later, None);
        app.store.create_account_token(&t, &sha256_hex(secret.as_bytes())).await.unwrap();
    }
    let (t, secret) = stored_token(&user.id, "one too many", later, None);
    let over = app.store.create_account_token(&t, &sha256_hex(secret.as_bytes())).await;
    assert!(matches!(over, Err(StoreError::Conflict(_))), "{over:?}");
}

#[tokio::test]
async fn account_tokens_are_never_gateway_keys() {
    let app = TestApp::new().await;
    let user = app.user("hal@example.com").await;
    let publisher = app.user("pub@example.com").await;
    app.publish(&publisher.caller(), "echo-tool").await;
    let inst = app.install(&user.caller(), "echo-tool").await;
    let (_, key) = app.key(&user.caller(), &inst).await;
    let scoped = app.post("/api/v1/tokens", json!({"name": "ci", "scopes": ["usage:read"]}), &user.caller()).await;
    for token in [user.token.as_str(), scoped.body["token"].as_str().unwrap()] {
        let hash = sha256_hex(token.as_bytes());
        assert!(app.store.account_token_by_hash(&hash, now_ms()).await.unwrap().is_some(), "a live token");
        assert!(app.store.gateway_key(&hash).await.unwrap().is_none(), "an account token is no gateway key");
    }
    // …while the gateway does find the key, and the management API refuses that key.
    assert!(app.store.gateway_key(&sha256_hex(key.as_bytes())).await.unwrap().is_some());
    let as_key = Caller { bearer: Some(key), ..Caller::default() };
    assert_eq!(app.get("/api/v1/me", &as_key).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_token_cap_holds_under_concurrent_creation() {
    let app = TestApp::new().await;
    let user = app.user("ida@example.com").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let router = app.router();
        let request = Request::post("/api/v1/tokens")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", user.token))
            .body(Body::from(json!({"name": format!("parallel {i}")}).to_string()))
            .unwrap();
        tasks.spawn(common::send(router, request));
    }
    let mut statuses = Vec::new();
    while let Some(reply) = tasks.join_next().await {
        statuses.push(reply.unwrap().status);
    }
    let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((created, refused), (9, 15), "the harness's token plus 9: {statuses:?}");
    let active = app.store.account_tokens(&user.id).await.unwrap();
    assert_eq!(active.iter().filter(|t| t.revoked_at.is_none()).count(), 10);
}

#[tokio::test]
async fn the_signup_grant_is_configurable() {
    for (grant, balance, transfers) in [(Nanos(2_500_000_000), "2.500000", 1), (Nanos(0), "0.000000", 0)] {
        let app = TestApp::with_config(ApiConfig { signup_grant: grant, ..ApiConfig::default() }).await;
        let user = app.user("jo@example.com").await;
        let r = app.get("/api/v1/billing/balance", &user.caller()).await;
        assert_eq!(r.body["balance"], balance, "{grant:?}");
        let history = app.get("/api/v1/billing/transactions", &user.caller()).await;
        assert_eq!(history.body["total"], transfers, "{grant:?}: {}", history.body);
        if transfers == 1 {
            assert_eq!(history.body["transactions"][0]["kind"], "signup_grant");
            assert_eq!(history.body["transactions"][0]["amount"], balance);
        }
        let grants = app.store.ledger_account(AccountKind::Grants, PLATFORM).await.unwrap();
        assert_eq!(grants.balance, Nanos(-grant.0), "the grants account paid exactly the grant");
    }
}

/// A log-in attempt from the TCP peer `peer`, with an `X-Forwarded-For` header if given.
async fn login_from(app: &TestApp, email: &str, password: &str, peer: &str, forwarded: Option<&str>) -> StatusCode {
    let mut request = Request::post("/api/v1/auth/login").header(header::CONTENT_TYPE, "application/json");
    if let Some(f) = forwarded {
        request = request.header("x-forwarded-for", f);
    }
    let mut request = request.body(Body::from(json!({"email": email, "password": password}).to_string())).unwrap();
    let peer: SocketAddr = format!("{peer}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    app.send(request).await.status
}

const RIGHT: &str = "correct horse 42";
const WRONG: &str = "guess guess 1";

#[tokio::test]
async fn login_throttling_is_per_account_and_per_address() {
    let app = TestApp::new().await;
    app.user("victim@example.com").await;
    app.user("bystander@example.com").await;

    // Guessing one account's password from many addresses: after 5 failures the account is
    // throttled everywhere, even for the right password; other accounts are not.
    for i in 1..=5 {
        let s = login_from(&app, "victim@example.com", WRONG, &format!("198.51.100.{i}"), None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from(&app, "victim@example.com", RIGHT, "192.0.2.200", None).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login_from(&app, "bystander@example.com", RIGHT, "198.51.100.1", None).await, StatusCode::OK);

    // Many accounts from one address: after 20 failures that address is throttled, for any
    // account; other addresses are not.
    for i in 0..20 {
        let s = login_from(&app, &format!("nobody{i}@example.com"), WRONG, "203.0.113.7", None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{i}");
    }
    let throttled = login_from(&app, "bystander@example.com", RIGHT, "203.0.113.7", None).await;
    assert_eq!(throttled, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login_from(&app, "bystander@example.com", RIGHT, "203.0.113.8", None).await, StatusCode::OK);
    // Without trusted proxies, X-Forwarded-For is the client's say-so and changes nothing.
    let spoofed = login_from(&app, "bystander@example.com", RIGHT, "203.0.113.7", Some("192.0.2.1")).await;
    assert_eq!(spoofed, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_throttled_on_its_own() {
    let app = TestApp::with_config(ApiConfig { trust_forwarded_for: true, ..ApiConfig::default() }).await;
    app.user("bystander@example.com").await;
    let proxy = "10.0.0.1";
    // The proxy appends the address it saw; whatever the client put before it is ignored.
    for i in 0..20 {
        let chain = format!("192.0.2.{i}, 203.0.113.7");
        let s = login_from(&app, &format!("nobody{i}@example.com"), WRONG, proxy, Some(&chain)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{i}");
    }
    let attacker = login_from(&app, "bystander@example.com", RIGHT, proxy, Some("203.0.113.7")).await;
    assert_eq!(attacker, StatusCode::TOO_MANY_REQUESTS);
    let disguised = login_from(&app, "bystander@example.com", RIGHT, proxy, Some("198.51.100.4, 203.0.113.7")).await;
    assert_eq!(disguised, StatusCode::TOO_MANY_REQUESTS);
    // Everyone else behind the same proxy still logs in.
    assert_eq!(login_from(&app, "bystander@example.com", RIGHT, proxy, Some("198.51.100.4")).await, StatusCode::OK);
    assert_eq!(login_from(&app, "bystander@example.com", RIGHT, proxy, None).await, StatusCode::OK);
}

#[tokio::test]
async fn sign_ups_from_one_address_are_throttled_and_the_refused_one_makes_nothing() {
    let app = TestApp::new().await;
    let signup_from = |email: String, peer: &'static str| {
        let mut request = Request::post("/api/v1/auth/signup")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({"email": email, "password": RIGHT, "name": "Farm"}).to_string()))
            .unwrap();
        request.extensions_mut().insert(ConnectInfo(format!("{peer}:40000").parse::<SocketAddr>().unwrap()));
        app.send(request)
    };
    for i in 0..10 {
        assert_eq!(signup_from(format!("farm{i}@example.com"), "203.0.113.7").await.status, StatusCode::CREATED, "{i}");
    }
    let refused = signup_from("farm10@example.com".into(), "203.0.113.7").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.body["error"]["code"], "rate_limited", "{}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    assert!(app.store.user_by_email("farm10@example.com").await.unwrap().is_none(), "no account, no grant");
    // Another address signs up as usual.
    assert_eq!(signup_from("ada@example.com".into(), "198.51.100.4").await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_bearer_scheme_in_any_case_works_and_another_scheme_leaves_the_session_to_decide() {
    let app = TestApp::new().await;
    let user = app.user("ada@example.com").await;
    let me = |authorization: String, session: bool| {
        let mut request = Request::get("/api/v1/me").header(header::AUTHORIZATION, authorization);
        if session {
            request = request.header(header::COOKIE, format!("tollgate_session={}", user.session));
        }
        app.send(request.body(Body::empty()).unwrap())
    };
    assert_eq!(me(format!("bearer {}", user.token), false).await.status, StatusCode::OK);
    assert_eq!(me(format!("BEARER {}", user.token), false).await.status, StatusCode::OK);
    // A proxy's Basic credentials beside the session cookie: the session decides.
    assert_eq!(me("Basic dXNlcjpwYXNz".into(), true).await.status, StatusCode::OK);
    assert_eq!(me("Basic dXNlcjpwYXNz".into(), false).await.status, StatusCode::UNAUTHORIZED);
    // A bearer token that is not an account token is refused, session or not.
    assert_eq!(me("Bearer tg_live_nope".into(), true).await.status, StatusCode::UNAUTHORIZED);
}
