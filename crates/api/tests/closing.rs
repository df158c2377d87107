//! Closing an account (`DELETE /api/v1/me`): confirmed by the password; sessions, tokens
//! and keys stop at once (the gateway's caches are told); teams with others in them are
//! left; reviews stay, anonymized; the ledger is untouched and balanced; refused, with
//! nothing changed, for the only owner of a shared team or while agents are published.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Caller, TestApp};
use serde_json::json;
use std::sync::{Arc, Mutex};
use tollgate_domain::secret::sha256_hex;
use tollgate_store::changes::Change;

#[tokio::test]
async fn closing_stops_everything_the_person_could_do_and_keeps_the_ledger() {
    let app = TestApp::new().await;
    let publisher = app.user("pub@example.com").await;
    app.publish(&publisher.caller(), "echo-agent").await;
    let owner = app.user("owner@example.com").await;
    let team = app.post("/api/v1/orgs", json!({"name": "Shared"}), &owner.caller()).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ada = app.user("ada@example.com").await;
    let inv = app
        .post(
            &format!("/api/v1/orgs/{team}/invitations"),
            json!({"email": ada.email, "role": "admin"}),
            &owner.caller(),
        )
        .await;
    let token = inv.body["token"].as_str().unwrap();
    assert_eq!(
        app.post(&format!("/api/v1/invitations/{token}/accept"), json!({}), &ada.caller()).await.status,
        StatusCode::OK
    );
    let solo = app.post("/api/v1/orgs", json!({"name": "Just me"}), &ada.caller()).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let personal_inst = app.install(&ada.caller(), "echo-agent").await;
    let (_, personal_key) = app.key(&ada.caller(), &personal_inst).await;
    let team_inst = app.install(&ada.in_org(&team), "echo-agent").await;
    let (_, team_key) = app.key(&ada.in_org(&team), &team_inst).await;
    let (_, owners_key) = app.key(&owner.in_org(&team), &team_inst).await;
    let solo_inst = app.install(&ada.in_org(&solo), "echo-agent").await;
    let review =
        app.post("/api/v1/agents/echo-agent/reviews", json!({"rating": 5, "body": "Great"}), &ada.caller()).await;
    assert_eq!(review.status, StatusCode::CREATED);
    app.store.notify(&ada.id, "test", "hello", "", None).await.unwrap();
    let seen: Arc<Mutex<Vec<Change>>> = Arc::default();
    let sink = seen.clone();
    app.store.on_change(Arc::new(move |c: &Change| sink.lock().unwrap().push(c.clone())));

    let wrong = app.call(Method::DELETE, "/api/v1/me", Some(json!({"password": "not it at all"})), &ada.caller()).await;
    assert_eq!(
        (wrong.status, wrong.body["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("password"))
    );
    let no_csrf = Caller { session: Some(ada.session.clone()), ..Caller::default() };
    let forged = app.call(Method::DELETE, "/api/v1/me", Some(json!({"password": "correct horse 42"})), &no_csrf).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/me", &ada.caller()).await.status, StatusCode::OK, "nothing changed yet");

    let closed =
        app.call(Method::DELETE, "/api/v1/me", Some(json!({"password": "correct horse 42"})), &ada.browser()).await;
    assert_eq!(closed.status, StatusCode::NO_CONTENT, "{:?}", closed.body);
    assert!(closed.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));

    // Nothing of hers works any more: session, token, log-in, keys.
    assert_eq!(app.get("/api/v1/me", &ada.browser()).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/me", &ada.caller()).await.status, StatusCode::UNAUTHORIZED);
    let login = app
        .post("/api/v1/auth/login", json!({"email": ada.email, "password": "correct horse 42"}), &Caller::default())
        .await;
    assert_eq!(login.status, StatusCode::UNAUTHORIZED);
    for (key, told) in [
        (&personal_key, Change::Installation(personal_inst.clone())),
        (&team_key, Change::Key(sha256_hex(team_key.as_bytes()))),
    ] {
        let found = app.store.gateway_key(&sha256_hex(key.as_bytes())).await.unwrap().unwrap();
        assert!(found.key.revoked_at.is_some(), "her keys are revoked");
        assert!(seen.lock().unwrap().contains(&told), "and the caches are told: {told:?}");
    }
    let owners = app.store.gateway_key(&sha256_hex(owners_key.as_bytes())).await.unwrap().unwrap();
    assert!(owners.key.revoked_at.is_none(), "the team's other keys keep working");
    assert_eq!(app.store.installation(&personal_inst).await.unwrap().status, "uninstalled");
    assert_eq!(app.store.installation(&solo_inst).await.unwrap().status, "uninstalled");
    assert_eq!(app.store.installation(&team_inst).await.unwrap().status, "active", "the team keeps its agents");
    let members = app.get(&format!("/api/v1/orgs/{team}/members"), &owner.caller()).await;
    assert_eq!(members.body.as_array().unwrap().len(), 1, "she left the team");
    assert!(seen.lock().unwrap().contains(&Change::Member(team.clone(), ada.id.clone())));

    // Her review stays, without her name; the ledger is balanced and untouched.
    let reviews = app.get("/api/v1/agents/echo-agent/reviews", &Caller::default()).await;
    assert_eq!(reviews.body["reviews"][0]["author"], "Deleted user");
    assert!(!reviews.body.to_string().contains("ada"));
    let (sum, consistent) = app.store.ledger_audit().await.unwrap();
    assert_eq!((sum, consistent), (0, true));
    let credit = app.store.ledger_account(tollgate_store::ledger::AccountKind::OrgCredit, &ada.org_id).await.unwrap();
    assert_eq!(credit.balance.to_usd_string(), "100.000000", "nothing moved");
    assert!(app.store.user_by_email(&ada.email).await.unwrap().is_none(), "the email is free again");
    let again = app.user("ada@example.com").await;
    assert_ne!(again.id, ada.id);
}

#[tokio::test]
async fn the_only_owner_of_a_shared_team_and_a_publisher_cannot_close_yet() {
    let app = TestApp::new().await;
    let ada = app.user("ada@example.com").await;
    let team = app.post("/api/v1/orgs", json!({"name": "Shared"}), &ada.caller()).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bo = app.user("bo@example.com").await;
    let inv = app
        .post(&format!("/api/v1/orgs/{team}/invitations"), json!({"email": bo.email, "role": "member"}), &ada.caller())
        .await;
    let token = inv.body["token"].as_str().unwrap();
    app.post(&format!("/api/v1/invitations/{token}/accept"), json!({}), &bo.caller()).await;
    let body = json!({"password": "correct horse 42"});
    let refused = app.call(Method::DELETE, "/api/v1/me", Some(body.clone()), &ada.caller()).await;
    assert_eq!((refused.status, refused.body["error"]["code"].as_str()), (StatusCode::CONFLICT, Some("sole_owner")));
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("Shared"));
    assert_eq!(app.get("/api/v1/me", &ada.caller()).await.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/v1/orgs/{team}/members"), &ada.caller()).await.body.as_array().unwrap().len(), 2);

    // Bo, a member, may close: Ada's team loses a member, nothing else.
    assert_eq!(
        app.call(Method::DELETE, "/api/v1/me", Some(body.clone()), &bo.caller()).await.status,
        StatusCode::NO_CONTENT
    );
    app.publish(&ada.caller(), "ada-tool").await;
    let refused = app.call(Method::DELETE, "/api/v1/me", Some(body.clone()), &ada.caller()).await;
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("publishes_agents"))
    );
    assert!(refused.body["error"]["message"].as_str().unwrap().contains("ada-tool"));
    let retire = app
        .call(
            Method::PATCH,
            "/api/v1/agents/ada-tool/versions/1.0.0",
            Some(json!({"status": "retired"})),
            &ada.caller(),
        )
        .await;
    assert_eq!(retire.status, StatusCode::OK);
    let scoped = app.post("/api/v1/tokens", json!({"name": "r", "scopes": ["account:read"]}), &ada.caller()).await;
    let scoped = Caller { bearer: Some(scoped.body["token"].as_str().unwrap().into()), ..Caller::default() };
    assert_eq!(app.call(Method::DELETE, "/api/v1/me", Some(body.clone()), &scoped).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.call(Method::DELETE, "/api/v1/me", Some(body), &ada.caller()).await.status, StatusCode::NO_CONTENT);
}
