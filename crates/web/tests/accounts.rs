//! Sign-up, log-in (with throttling), log-out, and pages that need a session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{PASSWORD, World, check_html};

#[tokio::test]
async fn sign_up_signs_in_and_lands_on_the_dashboard() {
    let w = World::new().await;
    let page = w.get("/signup", None).await;
    assert_eq!(page.status, StatusCode::OK);
    check_html(&page.html);
    page.assert_contains("name=\"password\"");

    let ada = w.person("ada@example.com").await;
    let dashboard = w.get("/dashboard?notice=welcome", Some(&ada)).await;
    assert_eq!(dashboard.status, StatusCode::OK);
    dashboard.assert_contains("Signed in as ada");
    dashboard.assert_contains("Welcome!");
    check_html(&dashboard.html);
    // Signed in, the forms send the visitor on.
    let again = w.get("/signup", Some(&ada)).await;
    assert_eq!((again.status, again.location()), (StatusCode::SEE_OTHER, "/dashboard"));
}

#[tokio::test]
async fn sign_up_errors_sit_next_to_their_field_and_change_nothing() {
    let w = World::new().await;
    let page = w.auth_form("/signup", &[("name", "Ada"), ("email", "ada@example.com"), ("password", "short")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.testid_text("error-password").to_lowercase().contains("characters"), "{}", page.html);
    page.assert_contains("value=\"ada@example.com\"");
    page.assert_lacks("value=\"short\"");
    check_html(&page.html);
    assert!(w.store.user_by_email("ada@example.com").await.unwrap().is_none(), "nobody was created");

    let bad_email = w.auth_form("/signup", &[("name", "Ada"), ("email", "not-an-email"), ("password", PASSWORD)]).await;
    assert_eq!(bad_email.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad_email.testid_text("error-email").is_empty());

    w.person("ada@example.com").await;
    let taken = w.auth_form("/signup", &[("name", "Ada"), ("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert!(taken.testid_text("error-email").contains("already exists"));
}

#[tokio::test]
async fn log_in_goes_back_where_the_person_was_going_and_throttling_is_explained() {
    let w = World::new().await;
    w.person("ada@example.com").await;

    let wrong = w.auth_form("/login", &[("email", "ada@example.com"), ("password", "wrong password 1")]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.testid_text("form-error").contains("Wrong email or password"));
    wrong.assert_contains("value=\"ada@example.com\"");
    assert!(wrong.session_cookie().is_none());
    check_html(&wrong.html);

    let ok = w
        .auth_form("/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", "/agents/x?tab=reviews")])
        .await;
    assert_eq!((ok.status, ok.location()), (StatusCode::SEE_OTHER, "/agents/x?tab=reviews"));
    assert!(ok.session_cookie().is_some());
    let elsewhere = w
        .auth_form("/login", &[("email", "ada@example.com"), ("password", PASSWORD), ("next", "https://evil.example/")])
        .await;
    assert_eq!(elsewhere.location(), "/dashboard", "only local paths are followed");

    for _ in 0..5 {
        w.auth_form("/login", &[("email", "ada@example.com"), ("password", "wrong password 1")]).await;
    }
    let throttled = w.auth_form("/login", &[("email", "ada@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    let message = throttled.testid_text("form-error");
    assert!(message.contains("Too many failed log-in attempts") && message.contains("minutes"), "{message}");
}

#[tokio::test]
async fn log_out_needs_the_sessions_csrf_token() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;

    let forged = w.form("/logout", &[("csrf", "forged")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    forged.assert_contains("This form has expired");
    assert_eq!(w.get("/dashboard", Some(&ada)).await.status, StatusCode::OK, "the session lives on");

    let out = w.submit("/logout", &[], &ada).await;
    assert_eq!((out.status, out.location()), (StatusCode::SEE_OTHER, "/login?notice=logged_out"));
    assert!(out.headers.get_all("set-cookie").iter().any(|c| c.to_str().unwrap().contains("Max-Age=0")));
    let after = w.get("/dashboard", Some(&ada)).await;
    assert_eq!(
        (after.status, after.location()),
        (StatusCode::SEE_OTHER, "/login?next=%2Fdashboard&notice=session_expired"),
        "the ended session is told by the API's code"
    );
    let login = w.get("/login?notice=logged_out", None).await;
    login.assert_contains("You are logged out.");
    check_html(&login.html);
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_log_in_and_back() {
    let w = World::new().await;
    for path in [
        "/dashboard",
        "/usage/ins_x?tab=audit",
        "/billing",
        "/team",
        "/notifications",
        "/settings",
        "/publisher",
        "/publisher/new",
        "/publisher/agents/x",
        "/publisher/agents/x/versions/new",
        "/invitations/tg_inv_x",
    ] {
        let page = w.get(path, None).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        let next = form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>();
        assert_eq!(page.location(), format!("/login?next={next}"));
    }
    for form in [
        "/usage/ins_x/keys",
        "/billing/budget",
        "/billing/auto-recharge",
        "/team/new",
        "/team/org_x/invite",
        "/invitations/tg_inv_x/accept",
        "/notifications/read",
        "/settings/theme",
        "/settings/tokens",
        "/publisher/new",
        "/publisher/agents/x/versions/new",
        "/org",
    ] {
        let forged = w.form(form, &[("name", "k")], None).await;
        assert_eq!(forged.status, StatusCode::SEE_OTHER, "forms too: {form}");
        assert!(forged.location().starts_with("/login?next="), "{form}");
    }
    // The store is public.
    assert_eq!(w.get("/store", None).await.status, StatusCode::OK);
    assert_eq!(w.get("/", None).await.location(), "/store");
    let missing = w.get("/no/such/page/here", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    check_html(&missing.html);
    // The API keeps its JSON answers.
    let ada = w.person("ada@example.com").await;
    let (status, _) = w.api(Method::GET, "/api/v1/nothing", None, &ada).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn themes_follow_the_persons_setting() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let anonymous = w.get("/store", None).await;
    assert!(anonymous.html.starts_with("<!doctype html>\n<html lang=\"en\">"), "no theme chosen: the system decides");
    let new = w.get("/dashboard", Some(&ada)).await;
    assert!(new.html.starts_with("<!doctype html>\n<html lang=\"en\">"), "a new account follows the system");
    let (status, _) = w.api(Method::PATCH, "/api/v1/me", Some(serde_json::json!({"theme": "dark"})), &ada).await;
    assert_eq!(status, StatusCode::OK);
    w.get("/dashboard", Some(&ada)).await.assert_contains("<html lang=\"en\" data-theme=\"dark\">");
}

#[tokio::test]
async fn static_assets_are_hashed_and_cached() {
    let w = World::new().await;
    let page = w.get("/store", None).await;
    let css = tollgate_web::assets::url("app.css");
    page.assert_contains(&css);
    let asset = w.get(&css, None).await;
    assert_eq!(asset.status, StatusCode::OK);
    assert_eq!(asset.headers["cache-control"], "public, max-age=31536000, immutable");
    assert!(asset.headers["content-type"].to_str().unwrap().starts_with("text/css"));
    assert!(asset.html.contains("--accent"));
    let plain = w.get("/static/app.js", None).await;
    assert_eq!(plain.headers["cache-control"], "public, max-age=300");
    assert_eq!(w.get("/static/nothing.css", None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(w.get("/favicon.ico", None).await.headers["content-type"], "image/svg+xml");
}

#[tokio::test]
async fn log_in_and_sign_up_forms_from_another_site_are_refused() {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;
    let w = World::new().await;
    w.person("ada@example.com").await;
    // A form opened on this site: its token cookie and field.
    let (cookie, token) = w.form_token("/login").await;
    let post = |path: &'static str, extra: Vec<(&'static str, &'static str)>, body: String| {
        let app = w.app.clone();
        let cookie = cookie.clone();
        async move {
            let mut req = Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::HOST, "tollgate.example")
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            for (k, v) in extra {
                req = req.header(k, v);
            }
            app.oneshot(req.body(Body::from(body)).unwrap()).await.unwrap()
        }
    };
    let login = format!("email=ada%40example.com&password=correct+horse+42&csrf={token}");
    for headers in [vec![("sec-fetch-site", "cross-site")], vec![("origin", "https://evil.example")]] {
        let refused = post("/login", headers.clone(), login.clone()).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{headers:?}");
        assert!(refused.headers().get(header::SET_COOKIE).is_none(), "no session from a cross-site form");
        let signup = post(
            "/signup",
            headers,
            format!("email=eve%40example.com&password=correct+horse+42&name=Eve&csrf={token}"),
        )
        .await;
        assert_eq!(signup.status(), StatusCode::FORBIDDEN);
    }
    let eve = w.auth_form("/login", &[("email", "eve@example.com"), ("password", PASSWORD)]).await;
    assert_eq!(eve.status, StatusCode::UNAUTHORIZED, "the refused sign-up created no account");
    // The same form from this site (or from no browser at all) logs in.
    for headers in [vec![("sec-fetch-site", "same-origin")], vec![("origin", "http://tollgate.example")], vec![]] {
        let ok = post("/login", headers.clone(), login.clone()).await;
        assert_eq!(ok.status(), StatusCode::SEE_OTHER, "{headers:?}");
        assert!(ok.headers().get(header::SET_COOKIE).is_some());
    }
}
