//! Settings: the theme (light, dark, the system's), the email preference, and account
//! tokens — created with scopes and an expiry and shown once (POST → 303 → GET, never on a
//! reload, never in a URL or a log line), listed, revoked; CSRF and errors next to fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{World, capture_logs, check_html};

#[tokio::test]
async fn the_theme_and_email_preference_are_saved_through_the_api() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let page = w.get("/settings", Some(&ada)).await;
    assert_eq!(page.status, StatusCode::OK);
    check_html(&page.html);
    page.assert_contains("id=\"theme-system\" name=\"theme\" value=\"system\" checked");
    page.assert_contains("id=\"email-notifications\" name=\"email_notifications\" value=\"on\" checked");
    page.assert_contains("they are also emailed to you, if the operator of this instance has set up email");

    let dark = w.submit("/settings/theme", &[("theme", "dark")], &ada).await;
    assert_eq!((dark.status, dark.location()), (StatusCode::SEE_OTHER, "/settings?notice=theme_saved"));
    let (_, me) = w.api(Method::GET, "/api/v1/me", None, &ada).await;
    assert_eq!(me["user"]["theme"], "dark");
    let after = w.get("/settings?notice=theme_saved", Some(&ada)).await;
    after.assert_contains("<html lang=\"en\" data-theme=\"dark\">");
    after.assert_contains("Your theme is saved.");
    after.assert_contains("value=\"dark\" checked");

    let back = w.submit("/settings/theme", &[("theme", "system")], &ada).await;
    assert_eq!(back.status, StatusCode::SEE_OTHER);
    assert!(w.get("/settings", Some(&ada)).await.html.starts_with("<!doctype html>\n<html lang=\"en\">"));

    let bad = w.submit("/settings/theme", &[("theme", "neon")], &ada).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.testid_text("error-theme").contains("system"));
    check_html(&bad.html);

    let off = w.submit("/settings/email", &[], &ada).await;
    assert_eq!(off.location(), "/settings?notice=email_saved");
    let (_, me) = w.api(Method::GET, "/api/v1/me", None, &ada).await;
    assert_eq!(me["user"]["email_notifications"], false);
    w.get("/settings", Some(&ada)).await.assert_lacks("value=\"on\" checked data-testid=\"email-notifications\"");
    w.submit("/settings/email", &[("email_notifications", "on")], &ada).await;
    let (_, me) = w.api(Method::GET, "/api/v1/me", None, &ada).await;
    assert_eq!(me["user"]["email_notifications"], true);

    let forged = w.form("/settings/theme", &[("csrf", "forged"), ("theme", "light")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let forged = w.form("/settings/email", &[("theme", "light")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let (_, me) = w.api(Method::GET, "/api/v1/me", None, &ada).await;
    assert_eq!(
        (me["user"]["theme"].as_str(), me["user"]["email_notifications"].as_bool()),
        (Some("system"), Some(true))
    );
}

#[tokio::test]
async fn a_new_token_is_shown_once_never_on_reload_never_in_a_log() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let (_guard, logs) = capture_logs();
    let created = w
        .submit(
            "/settings/tokens",
            &[("name", "CI"), ("scopes", "usage:read"), ("scopes", "billing:read"), ("expires", "30")],
            &ada,
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.html);
    let location = created.location().to_string();
    assert!(location.starts_with("/settings?shown=") && location.ends_with("#new-token"), "{location}");
    let shown = w.follow(&created, Some(&ada)).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.headers["cache-control"], "no-store");
    check_html(&shown.html);
    let secret = shown.testid_text("new-token-value");
    assert!(secret.starts_with("tg_usr_"), "{secret}");
    shown.assert_contains("data-copy=\"new-token-value\"");
    assert!(!location.contains(&secret["tg_usr_".len()..]));

    // The token works, with the scopes asked for, and expires in 30 days.
    let (_, tokens) = w.api(Method::GET, "/api/v1/tokens", None, &ada).await;
    let made = tokens.as_array().unwrap().iter().find(|t| t["name"] == "CI").unwrap().clone();
    assert_eq!(made["scopes"], serde_json::json!(["usage:read", "billing:read"]));
    assert!(made["expires_at"].is_string());
    let ci = common::Person { token: secret.clone(), ..ada.clone() };
    assert_eq!(w.api(Method::GET, "/api/v1/billing/balance", None, &ci).await.0, StatusCode::OK);
    assert_eq!(w.api(Method::GET, "/api/v1/tokens", None, &ci).await.0, StatusCode::FORBIDDEN);

    // A reload shows it no more and makes no other token.
    let reload = w.get(location.split('#').next().unwrap(), Some(&ada)).await;
    reload.assert_lacks(&secret);
    reload.assert_contains("data-testid=\"token-gone\"");
    let (_, tokens) = w.api(Method::GET, "/api/v1/tokens", None, &ada).await;
    assert_eq!(tokens.as_array().unwrap().len(), 2, "the harness's token and CI");
    // Nor does another session get it with the nonce.
    let nonce_url = location.split('#').next().unwrap().to_string();
    let eve = w.person("eve@example.com").await;
    w.get(&nonce_url, Some(&eve)).await.assert_lacks(&secret);

    let listed = w.get("/settings", Some(&ada)).await;
    listed.assert_contains(made["prefix"].as_str().unwrap());
    listed.assert_lacks(&secret);
    listed.assert_contains("usage:read, billing:read");
    drop(_guard);
    let logged = logs.lock().unwrap().join("\n");
    assert!(logged.contains("account token created from the web UI"), "the creation is logged: {logged}");
    assert!(!logged.contains(&secret["tg_usr_".len()..]), "the secret is in a log line:\n{logged}");

    // Revoking needs the session's token; then the token stops working.
    let id = made["id"].as_str().unwrap();
    let forged = w.form(&format!("/settings/tokens/{id}/revoke"), &[("csrf", "x")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(w.api(Method::GET, "/api/v1/billing/balance", None, &ci).await.0, StatusCode::OK);
    let revoked = w.submit(&format!("/settings/tokens/{id}/revoke"), &[], &ada).await;
    assert_eq!(revoked.location(), "/settings?notice=token_revoked#tokens");
    assert_eq!(w.api(Method::GET, "/api/v1/billing/balance", None, &ci).await.0, StatusCode::UNAUTHORIZED);
    w.get("/settings", Some(&ada)).await.assert_contains("<span class=\"badge bad\">revoked</span>");
    // Another person cannot revoke Ada's tokens.
    let (_, tokens) = w.api(Method::GET, "/api/v1/tokens", None, &ada).await;
    let harness =
        tokens.as_array().unwrap().iter().find(|t| t["name"] == "tests").unwrap()["id"].as_str().unwrap().to_string();
    let gone = w.submit(&format!("/settings/tokens/{harness}/revoke"), &[], &eve).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(w.api(Method::GET, "/api/v1/tokens", None, &ada).await.0, StatusCode::OK, "still valid");
}

#[tokio::test]
async fn bad_token_forms_keep_what_was_typed_and_create_nothing() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let blank = w.submit("/settings/tokens", &[("name", ""), ("scopes", "team:read"), ("expires", "90")], &ada).await;
    assert_eq!(blank.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!blank.testid_text("error-name").is_empty());
    blank.assert_contains("value=\"team:read\" checked");
    check_html(&blank.html);
    let expiry = w.submit("/settings/tokens", &[("name", "odd"), ("expires", "7")], &ada).await;
    assert_eq!(expiry.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(expiry.testid_text("error-expires").contains("30, 90, 365"));
    expiry.assert_contains("value=\"odd\"");
    let forged = w.form("/settings/tokens", &[("csrf", "x"), ("name", "forged")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let (_, tokens) = w.api(Method::GET, "/api/v1/tokens", None, &ada).await;
    assert_eq!(tokens.as_array().unwrap().len(), 1, "only the harness's token");
    for i in 0..9 {
        let made = w.submit("/settings/tokens", &[("name", &format!("t{i}")), ("expires", "never")], &ada).await;
        assert_eq!(made.status, StatusCode::SEE_OTHER);
    }
    let full = w.submit("/settings/tokens", &[("name", "eleventh"), ("expires", "never")], &ada).await;
    assert_eq!(full.status, StatusCode::CONFLICT);
    assert!(full.testid_text("form-error").contains("10 active tokens"));
    full.assert_contains("10 of 10 active");
}

#[tokio::test]
async fn closing_the_account_needs_the_password_and_a_tick_and_ends_everything() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let page = w.get("/settings", Some(&ada)).await;
    page.assert_contains("data-testid=\"close-form\"");
    check_html(&page.html);

    let untick = w.submit("/settings/close", &[("password", common::PASSWORD)], &ada).await;
    assert_eq!(untick.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(untick.testid_text("error-confirm").contains("Tick the box"));
    check_html(&untick.html);
    let wrong = w.submit("/settings/close", &[("password", "not my password"), ("confirm", "yes")], &ada).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.testid_text("error-password").contains("password"));
    wrong.assert_lacks("value=\"not my password\"");
    let forged = w
        .form("/settings/close", &[("csrf", "x"), ("password", common::PASSWORD), ("confirm", "yes")], Some(&ada))
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(w.get("/dashboard", Some(&ada)).await.status, StatusCode::OK, "still open");

    let team = w.team(&ada, "Shared").await;
    let bo = w.person("bo@example.com").await;
    w.join(&ada, &team, &bo, "member").await;
    let sole = w.submit("/settings/close", &[("password", common::PASSWORD), ("confirm", "yes")], &ada).await;
    assert_eq!(sole.status, StatusCode::CONFLICT);
    assert!(sole.testid_text("form-error").contains("only owner of Shared"));

    let closed = w.submit("/settings/close", &[("password", common::PASSWORD), ("confirm", "yes")], &bo).await;
    assert_eq!((closed.status, closed.location()), (StatusCode::SEE_OTHER, "/login?notice=account_closed"));
    let cookies: Vec<&str> = closed.headers.get_all("set-cookie").iter().map(|c| c.to_str().unwrap()).collect();
    assert!(cookies.iter().any(|c| c.starts_with("tollgate_session=;") && c.contains("Max-Age=0")), "{cookies:?}");
    let after = w.get("/dashboard", Some(&bo)).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "the session is over");
    assert_eq!(w.api(Method::GET, "/api/v1/me", None, &bo).await.0, StatusCode::UNAUTHORIZED, "so is the token");
    w.get("/login?notice=account_closed", None).await.assert_contains("Your account is closed.");
    let login = w.auth_form("/login", &[("email", "bo@example.com"), ("password", common::PASSWORD)]).await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
}
