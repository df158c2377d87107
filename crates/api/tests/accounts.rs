//! Sign-up, log-in, sessions, CSRF, account tokens and their scopes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode, header};
use common::{Caller, TestApp};
use serde_json::json;

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
    let wrong_csrf = Caller { csrf: Some("forged".into()), ..user.browser() };
    assert_eq!(app.post("/api/v1/orgs", json!({"name": "Team"}), &wrong_csrf).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/orgs", &user.caller()).await.body.as_array().unwrap().len(), 1, "no org was created");
    assert_eq!(app.post("/api/v1/orgs", json!({"name": "Team"}), &user.browser()).await.status, StatusCode::CREATED);

    let me = app.get("/api/v1/me", &user.browser()).await;
    assert_eq!(me.body["csrf_token"], user.csrf.as_str());
    let out = app.post("/api/v1/auth/logout", json!({}), &user.browser()).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(app.get("/api/v1/me", &user.browser()).await.status, StatusCode::UNAUTHORIZED);
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
    let r = app
        .call(Method::PATCH, "/api/v1/me", Some(json!({"theme": "dark", "email_notifications": false})), &user.caller())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["theme"], "dark");
    assert_eq!(r.body["email_notifications"], false);
    let bad = app.call(Method::PATCH, "/api/v1/me", Some(json!({"theme": "neon"})), &user.caller()).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get("/api/v1/me", &user.caller()).await.body["user"]["theme"], "dark");
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
