//! Teams: invitations, roles enforced on endpoints, removal, notifications.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Reply, TestApp, TestUser};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};

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
    // An account's email is not proof of owning the address: only the shared link's token
    // accepts, not the invitation's id that the listing shows.
    let id = me.body["invitations"][0]["id"].as_str().unwrap();
    let by_id = app.post(&format!("/api/v1/invitations/{id}/accept"), json!({}), &alice.caller()).await;
    assert_eq!(by_id.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/me", &alice.caller()).await.body["invitations"].as_array().unwrap().len(), 1);
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

/// A team with one member of each role, an installation and keys, for the role matrix.
struct Team {
    app: TestApp,
    org: String,
    owner: TestUser,
    admin: TestUser,
    member: TestUser,
    /// Another member, whose keys the matrix tries to change.
    other: TestUser,
    viewer: TestUser,
    installation: String,
    /// The key each of owner, admin, member and viewer made (the viewer's while a member).
    own_keys: [String; 4],
    /// A key of `other`.
    others_key: String,
    fresh: AtomicUsize,
}

/// The four roles, in the order of the matrix's columns.
const ROLES: [&str; 4] = ["owner", "admin", "member", "viewer"];

impl Team {
    async fn new() -> Team {
        let app = TestApp::new().await;
        let owner = app.user("owner@example.com").await;
        let team = app.post("/api/v1/orgs", json!({"name": "Acme"}), &owner.caller()).await;
        let org = team.body["id"].as_str().unwrap().to_string();
        app.publish(&owner.in_org(&org), "team-tool").await;
        let installation = app.install(&owner.in_org(&org), "team-tool").await;
        let mut t = Team {
            org,
            installation,
            admin: owner.clone(),
            member: owner.clone(),
            other: owner.clone(),
            viewer: owner.clone(),
            owner,
            own_keys: Default::default(),
            others_key: String::new(),
            fresh: AtomicUsize::new(0),
            app,
        };
        t.admin = t.join("admin@example.com", "admin").await;
        t.member = t.join("member@example.com", "member").await;
        t.other = t.join("other@example.com", "member").await;
        t.viewer = t.join("viewer@example.com", "member").await;
        for (i, who) in [&t.owner, &t.admin, &t.member, &t.viewer].into_iter().enumerate() {
            t.own_keys[i] = t.app.key(&who.in_org(&t.org), &t.installation).await.0;
        }
        t.others_key = t.app.key(&t.other.in_org(&t.org), &t.installation).await.0;
        let demote = t.set_role(&t.viewer.id, "viewer").await;
        assert_eq!(demote.status, StatusCode::NO_CONTENT);
        t
    }

    /// Signs `email` up and has the owner bring them in with `role`.
    async fn join(&self, email: &str, role: &str) -> TestUser {
        let user = self.app.user(email).await;
        let path = format!("/api/v1/orgs/{}/invitations", self.org);
        let inv = self.app.post(&path, json!({"email": email, "role": "member"}), &self.owner.caller()).await;
        assert_eq!(inv.status, StatusCode::CREATED, "{:?}", inv.body);
        let token = inv.body["token"].as_str().unwrap();
        let accepted = self.app.post(&format!("/api/v1/invitations/{token}/accept"), json!({}), &user.caller()).await;
        assert_eq!(accepted.status, StatusCode::OK);
        if role != "member" {
            assert_eq!(self.set_role(&user.id, role).await.status, StatusCode::NO_CONTENT);
        }
        user
    }

    async fn set_role(&self, user: &str, role: &str) -> Reply {
        let path = format!("/api/v1/orgs/{}/members/{user}", self.org);
        self.app.call(Method::PATCH, &path, Some(json!({"role": role})), &self.owner.caller()).await
    }

    /// A new name, unique in this test.
    fn fresh(&self, what: &str) -> String {
        format!("{what}-{}", self.fresh.fetch_add(1, Ordering::Relaxed))
    }

    fn user(&self, role: &str) -> &TestUser {
        match role {
            "owner" => &self.owner,
            "admin" => &self.admin,
            "member" => &self.member,
            _ => &self.viewer,
        }
    }

    /// Everything a refused request might have changed, as the owner sees it.
    async fn snapshot(&self) -> Value {
        let me = self.owner.in_org(&self.org);
        let org = &self.org;
        let mut all = json!({
            "org": self.app.get(&format!("/api/v1/orgs/{org}"), &me).await.body,
            "members": self.app.get(&format!("/api/v1/orgs/{org}/members"), &me).await.body,
            "invitations": self.app.get(&format!("/api/v1/orgs/{org}/invitations"), &me).await.body,
            "balance": self.app.get("/api/v1/billing/balance", &me).await.body,
            "installations": self.app.get("/api/v1/installations?all=true", &me).await.body,
        });
        let ids: Vec<String> =
            all["installations"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect();
        for id in ids {
            all[format!("keys {id}")] = self.app.get(&format!("/api/v1/installations/{id}/keys"), &me).await.body;
        }
        all
    }

    /// Runs `action` as `role` (preparing whatever fresh target it needs first, as the
    /// owner) and returns the reply with the snapshot taken just before it.
    async fn attempt(&self, action: Action, role: &str) -> (Reply, Value) {
        let actor = self.user(role);
        let who = actor.in_org(&self.org);
        let org = &self.org;
        let inst = &self.installation;
        let owner = self.owner.in_org(org);
        let (method, path, body) = match action {
            Action::ReadOrg => (Method::GET, format!("/api/v1/orgs/{org}/members"), None),
            Action::ReadBalance => (Method::GET, "/api/v1/billing/balance".into(), None),
            Action::ListInstallations => (Method::GET, "/api/v1/installations".into(), None),
            Action::Install => {
                let slug = self.fresh("tool");
                self.app.publish(&self.owner.caller(), &slug).await;
                (Method::POST, "/api/v1/installations".into(), Some(json!({"agent": slug})))
            }
            Action::Uninstall => {
                let slug = self.fresh("gone");
                self.app.publish(&self.owner.caller(), &slug).await;
                let id = self.app.install(&owner, &slug).await;
                (Method::DELETE, format!("/api/v1/installations/{id}"), None)
            }
            Action::SetTaskTimeout => {
                (Method::PATCH, format!("/api/v1/installations/{inst}"), Some(json!({"task_timeout_seconds": 600})))
            }
            Action::CreateKey => {
                (Method::POST, format!("/api/v1/installations/{inst}/keys"), Some(json!({"name": "new"})))
            }
            Action::PatchOwnKey => {
                let key = &self.own_keys[ROLES.iter().position(|r| *r == role).unwrap()];
                (Method::PATCH, format!("/api/v1/keys/{key}"), Some(json!({"name": "renamed"})))
            }
            Action::RevokeOwnKey => {
                let key = match role {
                    "viewer" => self.own_keys[3].clone(),
                    _ => self.app.key(&who, inst).await.0,
                };
                (Method::DELETE, format!("/api/v1/keys/{key}"), None)
            }
            Action::PatchOthersKey => (
                Method::PATCH,
                format!("/api/v1/keys/{}", self.others_key),
                Some(
                    json!({"daily_limits": {"requests": 1, "input_tokens": 0, "output_tokens": 0, "cache_tokens": 0}}),
                ),
            ),
            Action::RevokeOthersKey => {
                let key = self.app.key(&self.other.in_org(org), inst).await.0;
                (Method::DELETE, format!("/api/v1/keys/{key}"), None)
            }
            Action::SetBudget => {
                (Method::PUT, "/api/v1/billing/budget".into(), Some(json!({"monthly_limit": "50.00"})))
            }
            Action::SetAutoRecharge => (
                Method::PUT,
                "/api/v1/billing/auto-recharge".into(),
                Some(json!({"enabled": true, "threshold": "10.00", "amount": "25.00"})),
            ),
            Action::Invite => {
                let email = format!("{}@example.com", self.fresh("invitee"));
                (
                    Method::POST,
                    format!("/api/v1/orgs/{org}/invitations"),
                    Some(json!({"email": email, "role": "member"})),
                )
            }
            Action::InviteOwner => {
                let email = format!("{}@example.com", self.fresh("co-owner"));
                (
                    Method::POST,
                    format!("/api/v1/orgs/{org}/invitations"),
                    Some(json!({"email": email, "role": "owner"})),
                )
            }
            Action::ListInvitations => (Method::GET, format!("/api/v1/orgs/{org}/invitations"), None),
            Action::RevokeInvitation => {
                let email = format!("{}@example.com", self.fresh("revoked"));
                let path = format!("/api/v1/orgs/{org}/invitations");
                let inv = self.app.post(&path, json!({"email": email, "role": "member"}), &owner).await;
                let id = inv.body["invitation"]["id"].as_str().unwrap().to_string();
                (Method::DELETE, format!("/api/v1/orgs/{org}/invitations/{id}"), None)
            }
            Action::RenameOrg => (Method::PATCH, format!("/api/v1/orgs/{org}"), Some(json!({"name": "Renamed"}))),
            Action::ChangeRole => {
                let target = self.join(&format!("{}@example.com", self.fresh("target")), "member").await;
                (Method::PATCH, format!("/api/v1/orgs/{org}/members/{}", target.id), Some(json!({"role": "viewer"})))
            }
            Action::MakeOwner => {
                let target = self.join(&format!("{}@example.com", self.fresh("target")), "member").await;
                (Method::PATCH, format!("/api/v1/orgs/{org}/members/{}", target.id), Some(json!({"role": "owner"})))
            }
            Action::RemoveMember => {
                let target = self.join(&format!("{}@example.com", self.fresh("target")), "member").await;
                (Method::DELETE, format!("/api/v1/orgs/{org}/members/{}", target.id), None)
            }
            Action::RemoveOwner => {
                let target = self.join(&format!("{}@example.com", self.fresh("target")), "owner").await;
                (Method::DELETE, format!("/api/v1/orgs/{org}/members/{}", target.id), None)
            }
        };
        let before = self.snapshot().await;
        (self.app.call(method, &path, body, &who).await, before)
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    ReadOrg,
    ReadBalance,
    ListInstallations,
    Install,
    Uninstall,
    SetTaskTimeout,
    CreateKey,
    PatchOwnKey,
    RevokeOwnKey,
    PatchOthersKey,
    RevokeOthersKey,
    SetBudget,
    SetAutoRecharge,
    Invite,
    InviteOwner,
    ListInvitations,
    RevokeInvitation,
    RenameOrg,
    ChangeRole,
    MakeOwner,
    RemoveMember,
    RemoveOwner,
}

/// The roles table of docs/API.md, endpoint by endpoint: the status each of owner,
/// admin, member and viewer gets.
const MATRIX: &[(Action, [u16; 4])] = &[
    (Action::ReadOrg, [200, 200, 200, 200]),
    (Action::ReadBalance, [200, 200, 200, 200]),
    (Action::ListInstallations, [200, 200, 200, 200]),
    (Action::Install, [201, 201, 201, 403]),
    (Action::CreateKey, [201, 201, 201, 403]),
    (Action::PatchOwnKey, [200, 200, 200, 403]),
    (Action::RevokeOwnKey, [204, 204, 204, 403]),
    (Action::PatchOthersKey, [200, 200, 403, 403]),
    (Action::RevokeOthersKey, [204, 204, 403, 403]),
    (Action::Uninstall, [204, 204, 403, 403]),
    (Action::SetTaskTimeout, [200, 200, 403, 403]),
    (Action::SetBudget, [200, 200, 403, 403]),
    (Action::SetAutoRecharge, [200, 200, 403, 403]),
    (Action::Invite, [201, 201, 403, 403]),
    (Action::ListInvitations, [200, 200, 403, 403]),
    (Action::RevokeInvitation, [204, 204, 403, 403]),
    (Action::RenameOrg, [200, 200, 403, 403]),
    (Action::ChangeRole, [204, 204, 403, 403]),
    (Action::RemoveMember, [204, 204, 403, 403]),
    (Action::InviteOwner, [201, 403, 403, 403]),
    (Action::MakeOwner, [204, 403, 403, 403]),
    (Action::RemoveOwner, [204, 403, 403, 403]),
];

#[tokio::test]
async fn every_role_gets_what_the_roles_table_says_and_refusals_change_nothing() {
    let t = Team::new().await;
    // Lower roles first, so a refusal is checked before anyone changed the thing.
    for (action, statuses) in MATRIX {
        for (i, role) in ROLES.iter().enumerate().rev() {
            let (r, before) = t.attempt(*action, role).await;
            assert_eq!(r.status.as_u16(), statuses[i], "{action:?} as {role}: {:?}", r.body);
            if r.status == StatusCode::FORBIDDEN {
                assert_eq!(r.body["error"]["code"], "forbidden");
                assert_eq!(t.snapshot().await, before, "{action:?} as {role} was refused but changed something");
            }
        }
    }
    // What the allowed calls did.
    let org = t.app.get(&format!("/api/v1/orgs/{}", t.org), &t.owner.caller()).await;
    assert_eq!(org.body["name"], "Renamed");
    let balance = t.app.get("/api/v1/billing/balance", &t.owner.in_org(&t.org)).await;
    assert_eq!(balance.body["monthly_budget"], "50.000000");
    let inst = t.app.get(&format!("/api/v1/installations/{}", t.installation), &t.owner.caller()).await;
    assert_eq!(inst.body["task_timeout_seconds"], 600);
}

#[tokio::test]
async fn members_see_their_own_keys_and_admins_see_all() {
    let t = Team::new().await;
    let keys = format!("/api/v1/installations/{}/keys", t.installation);
    let owners_of = |r: &Reply| -> Vec<String> {
        let mut ids: Vec<String> =
            r.body.as_array().unwrap().iter().map(|k| k["user_id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        ids
    };
    let mut everyone = vec![t.owner.id.clone(), t.admin.id.clone(), t.member.id.clone(), t.viewer.id.clone()];
    everyone.push(t.other.id.clone());
    everyone.sort();
    for role in ["owner", "admin"] {
        assert_eq!(owners_of(&t.app.get(&keys, &t.user(role).caller()).await), everyone, "{role}");
    }
    for role in ["member", "viewer"] {
        let user = t.user(role);
        let r = t.app.get(&keys, &user.caller()).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(owners_of(&r), vec![user.id.clone()], "a {role} sees only their own key");
    }
    // A member cannot reach another member's key, by listing or by id.
    let r = t.app.call(Method::DELETE, &format!("/api/v1/keys/{}", t.others_key), None, &t.member.caller()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(t.app.store.key(&t.others_key).await.unwrap().revoked_at.is_none());
}

#[tokio::test]
async fn marking_a_notification_read_needs_it_to_be_yours() {
    let app = TestApp::new().await;
    let owner = app.user("owner@example.com").await;
    let alice = app.user("alice@example.com").await;
    let mallory = app.user("mallory@example.com").await;
    let team = app.post("/api/v1/orgs", json!({"name": "Acme"}), &owner.caller()).await;
    let org = team.body["id"].as_str().unwrap();
    let invite = json!({"email": "alice@example.com", "role": "member"});
    app.post(&format!("/api/v1/orgs/{org}/invitations"), invite, &owner.caller()).await;
    let notes = app.get("/api/v1/notifications", &alice.caller()).await;
    let id = notes.body[0]["id"].as_str().unwrap().to_string();
    assert_eq!(notes.body[0]["read"], false);

    for (who, id) in [(&mallory, id.as_str()), (&alice, "ntf_no_such_thing")] {
        let r = app.post("/api/v1/notifications/read", json!({"id": id}), &who.caller()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
        assert_eq!(r.body["error"]["code"], "not_found");
    }
    assert_eq!(app.get("/api/v1/notifications", &alice.caller()).await.body[0]["read"], false);

    for _ in 0..2 {
        let r = app.post("/api/v1/notifications/read", json!({"id": id}), &alice.caller()).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "marking it read twice is fine: {:?}", r.body);
    }
    assert_eq!(app.get("/api/v1/notifications", &alice.caller()).await.body[0]["read"], true);
    assert_eq!(
        app.post("/api/v1/notifications/read", json!({}), &mallory.caller()).await.status,
        StatusCode::NO_CONTENT
    );
}
