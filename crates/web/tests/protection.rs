//! What guards every page: the security headers, the log-in and sign-up forms' CSRF
//! token, error pages in the signed-in person's layout, redirects to log in that come back
//! to the page, controls shown only to roles that may use them, keyboard-friendly markup
//! (one tab stop per chart, tabs and plain navigation, an org switcher with a button),
//! category badges, and A2A agents that say plainly they cannot be called here yet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use common::{Page, Person, World, check_html};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

#[track_caller]
fn assert_secure(what: &str, headers: &HeaderMap) {
    let get = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("referrer-policy"), "strict-origin-when-cross-origin", "{what}");
    let csp = get("content-security-policy");
    for part in
        ["frame-ancestors 'none'", "default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'"]
    {
        assert!(csp.contains(part), "{what}: {part} in {csp:?}");
    }
    assert!(!csp.contains("script-src 'self' 'unsafe"), "{what}: no inline scripts: {csp}");
}

#[tokio::test]
async fn every_web_and_api_response_carries_the_security_headers() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    w.publish(&ada, "echo-agent").await;
    for (path, who) in [
        ("/store", None),
        ("/login", None),
        ("/agents/echo-agent?tab=integration", None),
        ("/no/such/page", None),
        ("/dashboard", None),
        ("/dashboard", Some(&ada)),
        ("/settings", Some(&ada)),
        ("/static/app.css", None),
        ("/favicon.ico", None),
        ("/api/v1/store/agents", None),
        ("/api/v1/openapi.json", None),
        ("/api/v1/me", None),
        ("/api/v1/nothing", None),
    ] {
        let page = w.get(path, who).await;
        assert_secure(path, &page.headers);
        // The pages' policy allows no inline script: none is there.
        let kind = page.headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        if kind.starts_with("text/html") {
            assert!(!page.html.contains("<script>") && !page.html.contains(" onclick="), "{path}");
            for script in page.html.split("<script").skip(1) {
                assert!(script.trim_start().starts_with("src=\"/static/"), "{path}: <script{script}");
            }
        }
    }
    let refused = w.form("/settings/theme", &[("theme", "dark")], Some(&ada)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_secure("a refused form", &refused.headers);
    let (status, _) = w.api(Method::POST, "/api/v1/orgs", Some(json!({"name": ""})), &ada).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Posts `body` to `path` with `headers`, as a browser would (no helper adds anything).
async fn raw_post(w: &World, path: &str, headers: &[(&str, &str)], body: &str) -> Page {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = w.app.clone().oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page { status, headers, html: String::from_utf8_lossy(&bytes).into() }
}

/// `path` got as a browser with the `Cookie` header `cookie`.
async fn get_with_cookie(w: &World, path: &str, cookie: &str) -> Page {
    let req = Request::builder().uri(path).header(header::COOKIE, cookie);
    let response = w.app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Page { status, headers, html: String::from_utf8_lossy(&bytes).into() }
}

#[tokio::test]
async fn log_in_and_sign_up_forms_need_their_token_and_a_forged_post_changes_nothing() {
    let w = World::new().await;
    w.person("ada@example.com").await;

    // Opening the form sets a strict, HTTP-only cookie that the form repeats.
    let page = w.get("/login", None).await;
    let set = page.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(set.starts_with("tollgate_form=") && set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let (cookie, token) = w.form_token("/login").await;
    assert_eq!(token.len(), 32);
    assert_ne!(w.form_token("/login").await.1, token, "each new visitor gets a token of their own");
    // The same browser keeps its token (two tabs both work) and gets no new cookie.
    let again = get_with_cookie(&w, "/signup", &cookie).await;
    assert!(again.headers.get(header::SET_COOKIE).is_none());
    again.assert_contains(&format!("name=\"csrf\" value=\"{token}\""));
    check_html(&again.html);

    let login = |csrf: &str| format!("email=ada%40example.com&password=correct+horse+42&csrf={csrf}");
    let signup = |csrf: &str| format!("email=eve%40example.com&password=correct+horse+42&name=Eve&csrf={csrf}");
    let (other_cookie, other_token) = w.form_token("/login").await;
    /// What is wrong, the headers sent, and the form's token.
    type Forged<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let forged: [Forged; 4] = [
        ("no cookie", vec![], &token),
        ("no token", vec![("cookie", cookie.as_str())], ""),
        ("another browser's token", vec![("cookie", cookie.as_str())], &other_token),
        ("another browser's cookie", vec![("cookie", other_cookie.as_str())], &token),
    ];
    for (what, headers, csrf) in &forged {
        let refused = raw_post(&w, "/login", headers, &login(csrf)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{what}");
        let cookies: Vec<&str> =
            refused.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert!(cookies.iter().all(|c| !c.starts_with("tollgate_session=")), "{what}: no session: {cookies:?}");
        assert!(cookies.iter().any(|c| c.starts_with("tollgate_form=")), "{what}: a new token to try again with");
        assert!(refused.testid_text("form-error").contains("nothing was done"), "{what}");
        refused.assert_contains("value=\"ada@example.com\"");
        refused.assert_lacks("correct horse");
        check_html(&refused.html);
        let refused = raw_post(&w, "/signup", headers, &signup(csrf)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{what}: sign-up");
    }
    let refused = raw_post(&w, "/signup", &[], &signup(&token)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(w.store.user_by_email("eve@example.com").await.unwrap().is_none(), "no forged post made an account");

    // The browser's own form goes through.
    let ok = raw_post(&w, "/login", &[("cookie", cookie.as_str())], &login(&token)).await;
    assert_eq!((ok.status, ok.location()), (StatusCode::SEE_OTHER, "/dashboard"));
    assert!(ok.session_cookie().is_some());
    let made = raw_post(&w, "/signup", &[("cookie", cookie.as_str())], &signup(&token)).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    assert!(w.store.user_by_email("eve@example.com").await.unwrap().is_some());
}

#[tokio::test]
async fn error_pages_keep_the_signed_in_persons_layout() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let (status, _) = w.api(Method::PATCH, "/api/v1/me", Some(json!({"theme": "dark"})), &ada).await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/agents/nothing-here", "/usage/ins_nothing", "/no/such/page", "/publisher/agents/nope"] {
        let page = w.get(path, Some(&ada)).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        check_html(&page.html);
        page.assert_contains("data-testid=\"error-page\"");
        page.assert_contains("<html lang=\"en\" data-theme=\"dark\">");
        page.assert_contains("Signed in as ada");
        page.assert_contains("data-testid=\"nav-dashboard\"");
        page.assert_contains(&format!("name=\"csrf\" value=\"{}\"", ada.csrf));
        assert_secure(path, &page.headers);
    }
    // A refused form: the "form expired" page, still in the layout.
    let forged = w.form("/settings/theme", &[("theme", "light"), ("csrf", "forged")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    forged.assert_contains("This form has expired");
    forged.assert_contains("Signed in as ada");
    // Nobody signed in: the visitor's layout.
    let page = w.get("/agents/nothing-here", None).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    page.assert_contains("data-testid=\"nav-login\"");
    page.assert_lacks("Signed in as");
}

#[tokio::test]
async fn a_redirect_to_log_in_comes_back_to_the_page() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    // Signed out: back to the page asked for, query included.
    let page = w.get("/usage/ins_x?tab=audit&q=a%20b", None).await;
    assert_eq!(page.location(), "/login?next=%2Fusage%2Fins_x%3Ftab%3Daudit%26q%3Da%2520b");

    // The session ended: the same, and the log-in page says why.
    let out = w.submit("/logout", &[], &ada).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let page = w.get("/billing?x=1", Some(&ada)).await;
    assert_eq!(page.location(), "/login?next=%2Fbilling%3Fx%3D1&notice=session_expired");
    let login = w.follow(&page, None).await;
    login.assert_contains("Your session has ended");
    login.assert_contains("name=\"next\" value=\"/billing?x=1\"");

    // A form posted after the session ended goes back to the page it was sent from.
    let cookie = ada.cookie.clone();
    let headers = [
        ("cookie", cookie.as_str()),
        ("host", "tollgate.example"),
        ("referer", "http://tollgate.example/usage/ins_x?tab=settings#keys"),
    ];
    let posted = raw_post(&w, "/usage/ins_x/keys", &headers, "name=k&csrf=x").await;
    assert_eq!(posted.location(), "/login?next=%2Fusage%2Fins_x%3Ftab%3Dsettings&notice=session_expired");
    // Only a page of this site: another site's (or none) goes to the dashboard.
    for referer in ["https://evil.example/usage/x", "http://tollgate.example//evil.example/x", "javascript:alert(1)"] {
        let headers = [("cookie", cookie.as_str()), ("host", "tollgate.example"), ("referer", referer)];
        let posted = raw_post(&w, "/usage/ins_x/keys", &headers, "name=k").await;
        assert_eq!(posted.location(), "/login?next=%2Fdashboard&notice=session_expired", "{referer}");
    }
    // And the log-in form follows only local paths.
    let (cookie, token) = w.form_token("/login?next=https://evil.example").await;
    let body = format!("email=ada%40example.com&password=correct+horse+42&csrf={token}&next=%2F%2Fevil.example");
    let ok = raw_post(&w, "/login", &[("cookie", cookie.as_str())], &body).await;
    assert_eq!(ok.location(), "/dashboard");
    let body = format!("email=ada%40example.com&password={}&csrf={token}&next=%2Fbilling%3Fx%3D1", "correct+horse+42");
    let ok = raw_post(&w, "/login", &[("cookie", cookie.as_str())], &body).await;
    assert_eq!(ok.location(), "/billing?x=1");
}

/// A team of `owner` with `admin`, `member` and `viewer`, and `agent` (published by
/// someone else) installed in it by the owner; answers the team and the installation.
async fn team_with_an_installation(w: &World, people: &[&Person; 4], agent: &str) -> (String, String) {
    let [owner, admin, member, viewer] = people;
    let team = w.team(owner, "Acme").await;
    w.join(owner, &team, admin, "admin").await;
    w.join(owner, &team, member, "member").await;
    w.join(owner, &team, viewer, "viewer").await;
    let page = w.submit(&format!("/agents/{agent}/install"), &[], &owner.in_org(&team)).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
    let id = page.location().trim_start_matches("/usage/").split('?').next().unwrap().to_string();
    (team, id)
}

#[tokio::test]
async fn controls_are_shown_only_to_roles_that_may_use_them() {
    let w = World::new().await;
    let publisher = w.person("pub@example.com").await;
    w.publish(&publisher, "echo-agent").await;
    w.publish(&publisher, "other-agent").await;
    let owner = w.person("owner@example.com").await;
    let admin = w.person("admin@example.com").await;
    let member = w.person("member@example.com").await;
    let viewer = w.person("viewer@example.com").await;
    let (team, id) = team_with_an_installation(&w, &[&owner, &admin, &member, &viewer], "echo-agent").await;
    // The member has a key of their own.
    let key = w.submit(&format!("/usage/{id}/keys"), &[("name", "mine")], &member.in_org(&team)).await;
    assert_eq!(key.status, StatusCode::SEE_OTHER, "{}", key.html);

    // (who, may install, may uninstall, may create and manage keys)
    for (who, install, uninstall, keys) in [
        (&owner, true, true, true),
        (&admin, true, true, true),
        (&member, true, false, true),
        (&viewer, false, false, false),
    ] {
        let me = who.in_org(&team);
        let other = w.get("/agents/other-agent", Some(&me)).await;
        check_html(&other.html);
        assert_eq!(other.html.contains("data-testid=\"install\""), install, "{}: Install", who.email);
        assert_eq!(other.html.contains("data-testid=\"install-readonly\""), !install, "{}", who.email);
        let installed = w.get("/agents/echo-agent", Some(&me)).await;
        installed.assert_contains("data-testid=\"installed\"");
        assert_eq!(installed.html.contains("uninstall-form"), uninstall, "{}: Uninstall on the agent", who.email);
        let settings = w.get(&format!("/usage/{id}?tab=settings"), Some(&me)).await;
        check_html(&settings.html);
        assert_eq!(settings.html.contains("uninstall-form"), uninstall, "{}: Uninstall", who.email);
        assert_eq!(settings.html.contains("create-key-form"), keys, "{}: create a key", who.email);
        assert_eq!(settings.html.contains("data-testid=\"keys-readonly\""), !keys, "{}", who.email);
        // A member sees (and manages) their own key; an admin everyone's; a viewer none.
        let revoke = settings.html.matches("data-testid=\"revoke\"").count();
        let limits = settings.html.matches("data-testid=\"limits-form\"").count();
        let expected = match who.email.as_str() {
            "owner@example.com" | "admin@example.com" | "member@example.com" => 1,
            _ => 0,
        };
        assert_eq!((revoke, limits), (expected, expected), "{}: key actions", who.email);
    }
    // What is hidden is refused anyway, and nothing changes.
    let me = viewer.in_org(&team);
    let refused = w.submit("/agents/other-agent/install", &[], &me).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
    let refused = w.submit(&format!("/usage/{id}/uninstall"), &[("confirm", "yes")], &member.in_org(&team)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    refused.assert_contains("Signed in as member");
    let (_, inst) = w.api(Method::GET, &format!("/api/v1/installations/{id}"), None, &owner).await;
    assert_eq!(inst["status"], "active");
}

#[tokio::test]
async fn keyboard_markup_tabs_charts_and_the_org_switcher() {
    let w = World::new().await;
    let publisher = w.person("pub@example.com").await;
    w.publish(&publisher, "echo-agent").await;
    let ada = w.person("ada@example.com").await;
    let id = w.install(&ada, "echo-agent").await;
    let team = w.team(&ada, "Acme").await;

    // The agent page's tabs: every panel they control is on the page.
    let page = w.get("/agents/echo-agent", Some(&ada)).await;
    assert_eq!(page.html.matches("role=\"tab\"").count(), 6);
    for controls in page.html.split("aria-controls=\"").skip(1) {
        let id = &controls[..controls.find('"').unwrap()];
        page.assert_contains(&format!("id=\"{id}\""));
    }
    // The usage page shows one section at a time: plain navigation, no tabs.
    for tab in ["details", "settings", "audit"] {
        let page = w.get(&format!("/usage/{id}?tab={tab}"), Some(&ada)).await;
        page.assert_lacks("role=\"tab");
        page.assert_lacks("aria-controls");
        page.assert_contains(&format!("id=\"tab-{tab}\" href=\"/usage/{id}?tab={tab}\" aria-current=\"page\""));
    }
    // Charts are one tab stop each; their points none.
    let details = w.get(&format!("/usage/{id}?tab=details"), Some(&ada)).await;
    for svg in details.html.split("<svg class=\"chart\"").skip(1) {
        let svg = &svg[..svg.find("</svg>").unwrap()];
        let opening = &svg[..svg.find('>').unwrap()];
        assert_eq!(svg.matches("tabindex").count(), opening.matches("tabindex").count(), "only the <svg>: {svg}");
    }
    let js = w.get(&tollgate_web::assets::url("app.js"), None).await;
    assert!(!js.html.contains("autosubmit") && !js.html.contains("\"change\""), "no select acts on change");
    assert!(js.html.contains("ArrowRight") && js.html.contains("Home"), "arrow keys for tabs and charts");
    // The org switcher switches on its button only.
    let page = w.get("/dashboard", Some(&ada.in_org(&team))).await;
    page.assert_contains("<select id=\"org-switch\" name=\"org\" data-testid=\"org-select\">");
    page.assert_contains("data-testid=\"org-submit\">Switch</button>");
}

#[tokio::test]
async fn cards_show_the_category_and_a2a_agents_say_they_cannot_be_called_yet() {
    let w = World::new().await;
    let publisher = w.person("pub@example.com").await;
    w.publish(&publisher, "echo-agent").await;
    w.list(&publisher, "planner", json!({"protocol": "a2a", "category": "research"})).await;
    w.version(&publisher, "planner", "1.0.0", "http://127.0.0.1:9/a2a", json!([])).await;

    let store = w.get("/store", None).await;
    let card = |slug: &str| {
        let at = store.html.find(&format!("data-slug=\"{slug}\"")).unwrap();
        store.html[at..at + store.html[at..].find("</article>").unwrap()].to_string()
    };
    assert!(card("planner").contains("<span class=\"badge category\" data-testid=\"card-category\">research</span>"));
    assert!(card("echo-agent").contains("data-testid=\"card-category\">devtools</span>"));

    let ada = w.person("ada@example.com").await;
    let a2a = w.get("/agents/planner?tab=integration", Some(&ada)).await;
    check_html(&a2a.html);
    a2a.assert_contains("data-testid=\"not-callable-badge\"");
    a2a.assert_contains("Calling this agent is not available yet on this instance.");
    for code in ["snippet-curl", "snippet-python", "snippet-node", "copy-endpoint", "/planner/1.0.0/a2a"] {
        a2a.assert_lacks(code);
    }
    let mcp = w.get("/agents/echo-agent?tab=integration", Some(&ada)).await;
    mcp.assert_lacks("not-callable");
    mcp.assert_contains("data-testid=\"snippet-curl\"");

    // Its installation says so too, and a new key comes without a curl line that would fail.
    let id = w.install(&ada, "planner").await;
    let made = w.submit(&format!("/usage/{id}/keys"), &[("name", "k")], &ada).await;
    let shown = w.follow(&made, Some(&ada)).await;
    shown.assert_contains("data-testid=\"not-callable\"");
    shown.assert_contains("data-testid=\"new-key-value\"");
    shown.assert_lacks("Try it with curl");
}
