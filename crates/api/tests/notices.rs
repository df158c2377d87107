//! Notifications at the events people expect, each once, to the right people of the right
//! org: a new version of an agent installed (every member of the orgs that installed it), a
//! version in use deprecated or retired (the orgs on it), a key revoked by someone else or by
//! an uninstall (its owner), an invitation; and the email of each notification for people
//! whose email toggle is on, through the outbox (`.eml` files) and SMTP (retried on
//! temporary failures, then given up). On SQLite, and on PostgreSQL when
//! `TOLLGATE_TEST_POSTGRES_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Caller, TestApp, TestUser};
use serde_json::json;
use std::sync::Arc;
use tollgate_api::ApiConfig;
use tollgate_api::tasks::{Mailed, send_emails};
use tollgate_integrations::email::{Outbox, Smtp};

async fn titles(app: &TestApp, user: &TestUser) -> Vec<String> {
    let list = app.get("/api/v1/notifications", &user.caller()).await.body;
    let mut t: Vec<String> =
        list.as_array().unwrap().iter().map(|n| n["title"].as_str().unwrap().to_string()).collect();
    t.reverse();
    t.retain(|t| !t.contains("invited you"));
    t
}

/// Publishes version `v` of `slug`.
async fn publish_version(app: &TestApp, who: &Caller, slug: &str, v: &str) {
    let r = app
        .post(
            &format!("/api/v1/agents/{slug}/versions"),
            json!({
                "version": v, "upstream_url": "http://127.0.0.1:9/mcp", "base_fee": "0.0001",
                "functions": [{"name": "echo", "pricing": {"model": "per_request", "price": "0.002"}, "free_calls": 0, "free_reset": "lifetime"}],
                "dependencies": [], "task_timeout_seconds": 300, "cold_start": false
            }),
            who,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

async fn set_status(app: &TestApp, who: &Caller, slug: &str, v: &str, status: &str) {
    let r = app
        .call(Method::PATCH, &format!("/api/v1/agents/{slug}/versions/{v}"), Some(json!({"status": status})), who)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn agent_changes_reach_every_member_of_the_orgs_using_the_agent_once() {
    let app = TestApp::new().await;
    let publisher = app.user("pub@example.com").await;
    app.publish(&publisher.caller(), "search-tool").await;
    let owner = app.user("owner@example.com").await;
    let team = app.team(&owner, "Acme").await;
    let member = app.join(&owner, &team, "member@example.com", "member").await;
    let viewer = app.join(&owner, &team, "viewer@example.com", "viewer").await;
    let pinned = app.user("pinned@example.com").await;
    let other = app.user("other@example.com").await;
    app.install(&owner.in_org(&team), "search-tool").await;
    let r =
        app.post("/api/v1/installations", json!({"agent": "search-tool", "version": "1.0.0"}), &pinned.caller()).await;
    assert_eq!(r.status, StatusCode::CREATED);

    publish_version(&app, &publisher.caller(), "search-tool", "1.1.0").await;
    for who in [&owner, &member, &viewer, &pinned] {
        assert_eq!(titles(&app, who).await, vec!["Agent search-tool 1.1.0 is out"], "{}", who.email);
    }
    for who in [&other, &publisher] {
        assert_eq!(titles(&app, who).await, Vec::<String>::new(), "{} did not install it", who.email);
    }
    let n = &app.get("/api/v1/notifications", &member.caller()).await.body[0];
    assert_eq!((n["kind"].as_str(), n["link"].as_str()), (Some("agent_update"), Some("/agents/search-tool")));

    // 1.0.0 deprecated: only the org pinned to it ("latest" is 1.1.0 now); then retired.
    set_status(&app, &publisher.caller(), "search-tool", "1.0.0", "deprecated").await;
    set_status(&app, &publisher.caller(), "search-tool", "1.0.0", "deprecated").await;
    assert_eq!(titles(&app, &pinned).await[1..], ["Agent search-tool 1.0.0 is deprecated"]);
    assert_eq!(titles(&app, &owner).await.len(), 1, "the team is on latest");
    set_status(&app, &publisher.caller(), "search-tool", "1.0.0", "retired").await;
    assert_eq!(titles(&app, &pinned).await[2..], ["Agent search-tool 1.0.0 is retired"]);

    // 1.1.0, the latest, deprecated: the team on "latest" is told; the pinned org is not.
    set_status(&app, &publisher.caller(), "search-tool", "1.1.0", "deprecated").await;
    for who in [&owner, &member, &viewer] {
        assert_eq!(titles(&app, who).await[1..], ["Agent search-tool 1.1.0 is deprecated"], "{}", who.email);
    }
    assert_eq!(titles(&app, &pinned).await.len(), 3);
    // Back to active and deprecated again: the same event, not told twice.
    set_status(&app, &publisher.caller(), "search-tool", "1.1.0", "active").await;
    set_status(&app, &publisher.caller(), "search-tool", "1.1.0", "deprecated").await;
    assert_eq!(titles(&app, &owner).await.len(), 2);
    // Uninstalled orgs hear nothing more.
    let installs = app.get("/api/v1/installations", &pinned.caller()).await.body;
    let id = installs[0]["id"].as_str().unwrap();
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/v1/installations/{id}"), None, &pinned.caller()).await.status,
        StatusCode::NO_CONTENT
    );
    publish_version(&app, &publisher.caller(), "search-tool", "2.0.0").await;
    assert_eq!(titles(&app, &pinned).await.len(), 3);
    assert_eq!(titles(&app, &owner).await.len(), 3);
}

#[tokio::test]
async fn a_key_revoked_by_someone_else_is_told_to_its_owner() {
    let app = TestApp::new().await;
    let publisher = app.user("pub@example.com").await;
    app.publish(&publisher.caller(), "search-tool").await;
    let owner = app.user("owner@example.com").await;
    let team = app.team(&owner, "Acme").await;
    let member = app.join(&owner, &team, "member@example.com", "member").await;
    let inst = app.install(&owner.in_org(&team), "search-tool").await;
    let (mine, _) = app.key(&member.in_org(&team), &inst).await;
    let (own, _) = app.key(&owner.in_org(&team), &inst).await;

    // The owner revokes their own key: nobody is told.
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/v1/keys/{own}"), None, &owner.caller()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(titles(&app, &owner).await, Vec::<String>::new());
    // The owner revokes the member's key: the member is told, by whom.
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/v1/keys/{mine}"), None, &owner.caller()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(titles(&app, &member).await, vec!["Your key for Agent search-tool was revoked"]);
    let n = &app.get("/api/v1/notifications", &member.caller()).await.body[0];
    assert_eq!(n["body"], "owner revoked your key \"k\". Calls with it are refused from now on.");
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/v1/keys/{mine}"), None, &owner.caller()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(titles(&app, &member).await.len(), 1, "revoking again tells nobody again");

    // An uninstall by the owner revokes the member's new key: told once, however many keys.
    app.key(&member.in_org(&team), &inst).await;
    app.key(&member.in_org(&team), &inst).await;
    app.key(&owner.in_org(&team), &inst).await;
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/v1/installations/{inst}"), None, &owner.caller()).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(titles(&app, &member).await.len(), 2);
    let n = &app.get("/api/v1/notifications", &member.caller()).await.body[0];
    assert_eq!(
        n["body"],
        "owner uninstalled Agent search-tool from Acme, which revoked every key of it. Calls with it are refused from now on."
    );
    assert_eq!(titles(&app, &owner).await, Vec::<String>::new());
}

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("tollgate-mail-{}", tollgate_domain::secret::random_token(8).unwrap()))
}

#[tokio::test]
async fn notifications_are_emailed_to_people_whose_email_toggle_is_on() {
    let dir = temp_dir();
    let outbox = Outbox::new(&dir, "Tollgate <noreply@tollgate.test>").unwrap();
    let config = ApiConfig { public_url: "https://tollgate.test".into(), ..ApiConfig::default() };
    let app = TestApp::with_state(config, |s| s.with_email(Arc::new(outbox))).await;
    let publisher = app.user("pub@example.com").await;
    app.publish(&publisher.caller(), "search-tool").await;
    let ada = app.user("ada@example.com").await;
    let bob = app.user("bob@example.com").await;
    let off = app.call(Method::PATCH, "/api/v1/me", Some(json!({"email_notifications": false})), &bob.caller()).await;
    assert_eq!(off.status, StatusCode::OK, "{:?}", off.body);
    let (_, ada_key) = {
        let inst = app.install(&ada.caller(), "search-tool").await;
        app.key(&ada.caller(), &inst).await
    };
    app.install(&bob.caller(), "search-tool").await;
    publish_version(&app, &publisher.caller(), "search-tool", "1.1.0").await;
    assert_eq!(titles(&app, &bob).await, vec!["Agent search-tool 1.1.0 is out"], "in the UI whatever the toggle");

    assert_eq!(send_emails(&app.state).await.unwrap(), Mailed { sent: 1, ..Mailed::default() });
    assert_eq!(send_emails(&app.state).await.unwrap(), Mailed::default(), "sent once");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(eml.contains("To: ada@example.com\r\n"), "{eml}");
    assert!(eml.contains("From: Tollgate <noreply@tollgate.test>"), "{eml}");
    assert!(eml.contains("Subject: Agent search-tool 1.1.0 is out"), "{eml}");
    assert!(eml.contains("Open: https://tollgate.test/agents/search-tool"), "{eml}");
    assert!(eml.contains("https://tollgate.test/settings"), "{eml}");
    assert!(!eml.contains(&ada_key) && !eml.contains("upstream-secret"), "no secret in an email");

    // Turned off after the notification was made: not sent, dropped.
    let inst = app.get("/api/v1/installations", &ada.caller()).await.body[0]["id"].as_str().unwrap().to_string();
    app.call(Method::DELETE, &format!("/api/v1/installations/{inst}"), None, &ada.caller()).await;
    let team = app.team(&bob, "Bobs").await;
    app.post(
        &format!("/api/v1/orgs/{team}/invitations"),
        json!({"email": "ada@example.com", "role": "member"}),
        &bob.caller(),
    )
    .await;
    app.call(Method::PATCH, "/api/v1/me", Some(json!({"email_notifications": false})), &ada.caller()).await;
    assert_eq!(send_emails(&app.state).await.unwrap(), Mailed { dropped: 1, ..Mailed::default() });
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn an_unreachable_mail_server_is_retried_later_then_given_up() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let smtp = Smtp::new(&format!("smtp://127.0.0.1:{port}"), "noreply@tollgate.test").unwrap();
    let app = TestApp::with_state(ApiConfig::default(), |s| s.with_email(Arc::new(smtp))).await;
    let owner = app.user("owner@example.com").await;
    let team = app.team(&owner, "Acme").await;
    let ada = app.user("ada@example.com").await;
    let r = app
        .post(
            &format!("/api/v1/orgs/{team}/invitations"),
            json!({"email": "ada@example.com", "role": "member"}),
            &owner.caller(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let invited = app.get("/api/v1/notifications", &ada.caller()).await.body;
    assert_eq!(invited[0]["title"], "owner invited you to Acme");
    assert_eq!(send_emails(&app.state).await.unwrap(), Mailed { deferred: 1, ..Mailed::default() });
    assert_eq!(send_emails(&app.state).await.unwrap(), Mailed::default(), "not before its retry time");
    // Attempts two to four (the queue read with a clock past each retry time); the fifth
    // is the last.
    let far = i64::MAX / 4;
    for attempt in 2..=4 {
        let due = app.store.due_emails(far, 10).await.unwrap();
        assert_eq!((due.len(), due[0].attempts), (1, attempt - 1));
        assert!(app.store.claim_email(&due[0].id, far, 0).await.unwrap());
    }
    assert_eq!(
        send_emails(&app.state).await.unwrap(),
        Mailed { dropped: 1, ..Mailed::default() },
        "given up after five tries"
    );
    assert_eq!(app.store.due_emails(far, 10).await.unwrap(), vec![]);
}
