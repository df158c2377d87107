//! Teams: invitations, roles enforced on endpoints, removal, notifications.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::TestApp;
use serde_json::json;

#[tokio::test]
async fn invite_accept_roles_and_removal() {
    let app = TestApp::new().await;
    let owner = app.user("owner@example.com").await;
    let alice = app.user("alice@example.com").await;
    let mallory = app.user("mallory@example.com").await;

    let team = app.post("/api/v1/orgs", json!({"name": "Acme"}), &owner.caller()).await;
    assert_eq!(team.status, StatusCode::CREATED);
    let org = team.body["id"].as_str().unwrap().to_string();

    // Bad invitations change nothing.
    for (body, status) in [
        (json!({"email": "nope", "role": "member"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"email": "alice@example.com", "role": "emperor"}), StatusCode::UNPROCESSABLE_ENTITY),
        (json!({"email": "owner@example.com", "role": "member"}), StatusCode::CONFLICT),
    ] {
        let r = app.post(&format!("/api/v1/orgs/{org}/invitations"), body.clone(), &owner.caller()).await;
        assert_eq!(r.status, status, "{body}: {:?}", r.body);
    }
    // Personal orgs cannot be shared.
    let personal = app
        .post(
            &format!("/api/v1/orgs/{}/invitations", owner.org_id),
            json!({"email": "alice@example.com", "role": "member"}),
            &owner.caller(),
        )
        .await;
    assert_eq!(personal.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&format!("/api/v1/orgs/{org}/invitations"), &owner.caller()).await.body.as_array().unwrap().len(),
        0
    );

    let inv = app
        .post(
            &format!("/api/v1/orgs/{org}/invitations"),
            json!({"email": "Alice@Example.com", "role": "viewer"}),
            &owner.caller(),
        )
        .await;
    assert_eq!(inv.status, StatusCode::CREATED, "{:?}", inv.body);
    let token = inv.body["token"].as_str().unwrap().to_string();
    assert!(inv.body["accept_url"].as_str().unwrap().ends_with(&token));

    // The invitee sees it; someone else cannot use it.
    let me = app.get("/api/v1/me", &alice.caller()).await;
    assert_eq!(me.body["invitations"][0]["org_name"], "Acme");
    let notes = app.get("/api/v1/notifications", &alice.caller()).await;
    assert!(notes.body[0]["title"].as_str().unwrap().contains("Acme"));
    let stolen = app.post(&format!("/api/v1/invitations/{token}/accept"), json!({}), &mallory.caller()).await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND);
    let accepted = app.post(&format!("/api/v1/invitations/{token}/accept"), json!({}), &alice.caller()).await;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
    assert_eq!(
        app.post(&format!("/api/v1/invitations/{token}/accept"), json!({}), &alice.caller()).await.status,
        StatusCode::NOT_FOUND
    );

    // A viewer reads but changes nothing.
    let as_alice = alice.in_org(&org);
    assert_eq!(app.get("/api/v1/billing/balance", &as_alice).await.status, StatusCode::OK);
    assert_eq!(
        app.get(&format!("/api/v1/orgs/{org}/members"), &alice.caller()).await.body.as_array().unwrap().len(),
        2
    );
    app.publish(&owner.in_org(&org), "team-tool").await;
    assert_eq!(
        app.post("/api/v1/installations", json!({"agent": "team-tool"}), &as_alice).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::PUT, "/api/v1/billing/budget", Some(json!({"monthly_limit": "5"})), &as_alice).await.status,
        StatusCode::FORBIDDEN
    );
    let invite_as_viewer = app
        .post(
            &format!("/api/v1/orgs/{org}/invitations"),
            json!({"email": "x@example.com", "role": "member"}),
            &alice.caller(),
        )
        .await;
    assert_eq!(invite_as_viewer.status, StatusCode::FORBIDDEN);

    // Promote to member: can install and create own keys; admin-only things stay closed.
    let promote = app
        .call(
            Method::PATCH,
            &format!("/api/v1/orgs/{org}/members/{}", alice.id),
            Some(json!({"role": "member"})),
            &owner.caller(),
        )
        .await;
    assert_eq!(promote.status, StatusCode::NO_CONTENT);
    let inst = app.install(&as_alice, "team-tool").await;
    let (key_id, _) = app.key(&as_alice, &inst).await;
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/v1/installations/{inst}"), None, &alice.caller()).await.status,
        StatusCode::FORBIDDEN
    );

    // Admins cannot make owners; the last owner cannot step down.
    app.call(
        Method::PATCH,
        &format!("/api/v1/orgs/{org}/members/{}", alice.id),
        Some(json!({"role": "admin"})),
        &owner.caller(),
    )
    .await;
    let grab = app
        .call(
            Method::PATCH,
            &format!("/api/v1/orgs/{org}/members/{}", alice.id),
            Some(json!({"role": "owner"})),
            &alice.caller(),
        )
        .await;
    assert_eq!(grab.status, StatusCode::FORBIDDEN);
    let step_down = app
        .call(
            Method::PATCH,
            &format!("/api/v1/orgs/{org}/members/{}", owner.id),
            Some(json!({"role": "member"})),
            &owner.caller(),
        )
        .await;
    assert_eq!(step_down.status, StatusCode::CONFLICT);
    assert_eq!(step_down.body["error"]["code"], "last_owner");

    // Removing a member revokes their keys in the org.
    let removed =
        app.call(Method::DELETE, &format!("/api/v1/orgs/{org}/members/{}", alice.id), None, &owner.caller()).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    assert!(app.store.key(&key_id).await.unwrap().revoked_at.is_some());
    assert_eq!(app.get("/api/v1/billing/balance", &as_alice).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get(&format!("/api/v1/orgs/{org}/members"), &owner.caller()).await.body.as_array().unwrap().len(),
        1
    );
}
