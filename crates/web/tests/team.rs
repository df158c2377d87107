//! Teams from the browser: creating one and switching to it, inviting (the link shown
//! once), accepting from the link, the Team page and a notification, roles and who may
//! change them, removing and leaving; every refused control absent and its POST refused
//! with nothing changed; notifications with the unread count in every page's header.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{Person, World, check_html};
use serde_json::Value;

async fn members(w: &World, owner: &Person, team: &str) -> Vec<(String, String)> {
    let (_, list) = w.api(Method::GET, &format!("/api/v1/orgs/{team}/members"), None, owner).await;
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap().into(), m["role"].as_str().unwrap().into()))
        .collect()
}

#[tokio::test]
async fn a_team_is_created_switched_to_and_joined_through_its_link() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let page = w.get("/team", Some(&ada)).await;
    assert_eq!(page.status, StatusCode::OK);
    check_html(&page.html);
    page.assert_contains("Your personal organization");
    page.assert_lacks("data-testid=\"org-switch\"");
    page.assert_lacks("data-testid=\"invite-form\"");

    let bad = w.submit("/team/new", &[("name", "")], &ada).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad.testid_text("error-name").is_empty());
    check_html(&bad.html);

    let created = w.submit("/team/new", &[("name", "Acme")], &ada).await;
    assert_eq!((created.status, created.location()), (StatusCode::SEE_OTHER, "/team?notice=team_created"));
    let cookie = created.headers.get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.starts_with("tollgate_org=org_") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    let team = cookie.trim_start_matches("tollgate_org=").split(';').next().unwrap().to_string();
    let ada_team = ada.in_org(&team);
    let page = w.get("/team?notice=team_created", Some(&ada_team)).await;
    check_html(&page.html);
    page.assert_contains("Acme · you are owner");
    page.assert_contains("data-testid=\"org-switch\"");
    page.assert_contains(&format!("<option value=\"{team}\" selected>Acme</option>"));
    page.assert_contains("data-testid=\"invite-form\"");

    // Invite: the link is shown once, then never again.
    let invited =
        w.submit(&format!("/team/{team}/invite"), &[("email", "bo@example.com"), ("role", "member")], &ada_team).await;
    assert_eq!(invited.status, StatusCode::SEE_OTHER, "{}", invited.html);
    let shown = w.follow(&invited, Some(&ada_team)).await;
    assert_eq!(shown.headers["cache-control"], "no-store");
    let link = shown.testid_text("invite-link-value");
    assert!(link.starts_with("http://127.0.0.1:8080/invitations/tg_inv_"), "{link}");
    assert!(!invited.location().contains("tg_inv_"));
    shown.assert_contains("<th scope=\"row\">bo@example.com</th><td>member</td>");
    let again = w.get(invited.location().split('#').next().unwrap(), Some(&ada_team)).await;
    again.assert_lacks(&link);
    again.assert_contains("data-testid=\"invite-gone\"");

    // Bo signs up later and follows the link: log in first, then accept.
    let path = link.trim_start_matches("http://127.0.0.1:8080");
    let out = w.get(path, None).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(out.location().starts_with("/login?next=%2Finvitations%2Ftg_inv_"));
    let bo = w.person("bo@example.com").await;
    let invitation = w.get(path, Some(&bo)).await;
    assert_eq!(invitation.status, StatusCode::OK);
    check_html(&invitation.html);
    invitation.assert_contains("as <strong>bo@example.com</strong>");
    let forged = w.form(&format!("{path}/accept"), &[("csrf", "x")], Some(&bo)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let eve = w.person("eve@example.com").await;
    let wrong = w.submit(&format!("{path}/accept"), &[], &eve).await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    assert!(wrong.testid_text("invitation-error").contains("not addressed to eve@example.com"));
    check_html(&wrong.html);
    let joined = w.submit(&format!("{path}/accept"), &[], &bo).await;
    assert_eq!((joined.status, joined.location()), (StatusCode::SEE_OTHER, "/team?notice=joined"));
    assert!(joined.headers["set-cookie"].to_str().unwrap().starts_with(&format!("tollgate_org={team}")));
    assert_eq!(
        members(&w, &ada, &team).await,
        [("ada@example.com".into(), "owner".into()), ("bo@example.com".into(), "member".into())]
    );
    let bo_team = bo.in_org(&team);
    let page = w.get("/team?notice=joined", Some(&bo_team)).await;
    page.assert_contains("Acme · you are member");
    page.assert_contains("data-testid=\"team-readonly\"");
    page.assert_lacks("data-testid=\"invite-form\"");
    page.assert_lacks("data-testid=\"role-form\"");
    page.assert_lacks("data-testid=\"remove-member\"");
    page.assert_contains("data-testid=\"leave\"");

    // Switching back: the personal org, and the cookie cleared.
    let switch = w.submit("/org", &[("org", &bo.org_id), ("next", "/billing?page=2")], &bo_team).await;
    assert_eq!(switch.location(), "/billing?notice=switched");
    assert!(switch.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let forged = w.form("/org", &[("csrf", "x"), ("org", &team)], Some(&bo)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.headers.get("set-cookie").is_none());
    let not_mine = w.submit("/org", &[("org", &ada.org_id)], &bo).await;
    assert_eq!(not_mine.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_existing_account_is_told_on_the_team_page_and_by_notification_and_joins_by_the_link() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let team = w.team(&ada, "Acme").await;
    let cy = w.person("cy@example.com").await;
    let (status, made) = w
        .api(
            Method::POST,
            &format!("/api/v1/orgs/{team}/invitations"),
            Some(serde_json::json!({"email": cy.email, "role": "viewer"})),
            &ada,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = made["token"].as_str().unwrap().to_string();

    // The header of every page counts the unread notification.
    for path in ["/dashboard", "/store", "/billing", "/settings", "/team", "/publisher"] {
        let page = w.get(path, Some(&cy)).await;
        assert_eq!(page.testid_text("unread-count"), "1", "{path}");
    }
    let list = w.get("/notifications", Some(&cy)).await;
    check_html(&list.html);
    list.assert_contains("ada invited you to Acme");
    list.assert_contains("Team invitation");
    list.assert_contains("data-testid=\"unread-badge\"");
    let (_, notes) = w.api(Method::GET, "/api/v1/notifications", None, &cy).await;
    let id = notes[0]["id"].as_str().unwrap().to_string();
    let open = w.submit(&format!("/notifications/{id}/open"), &[], &cy).await;
    assert_eq!((open.status, open.location()), (StatusCode::SEE_OTHER, "/team"));
    let page = w.get("/team", Some(&cy)).await;
    page.assert_lacks("data-testid=\"unread-count\"");
    page.assert_contains("<strong>Acme</strong> invited you as viewer");
    page.assert_contains("data-testid=\"invitation-link-hint\"");
    // The listing's id does not accept; the shared link's token does.
    let invitation_id = cy_invitation(&w, &cy).await;
    let by_id = w.submit(&format!("/invitations/{invitation_id}/accept"), &[], &cy).await;
    assert_eq!(by_id.status, StatusCode::NOT_FOUND);
    assert!(!members(&w, &ada, &team).await.iter().any(|(email, _)| email == "cy@example.com"));
    let joined = w.submit(&format!("/invitations/{token}/accept"), &[], &cy).await;
    assert_eq!(joined.location(), "/team?notice=joined");
    assert!(members(&w, &ada, &team).await.contains(&("cy@example.com".into(), "viewer".into())));
}

async fn cy_invitation(w: &World, cy: &Person) -> String {
    let (_, me) = w.api(Method::GET, "/api/v1/me", None, cy).await;
    me["invitations"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn roles_decide_which_member_controls_show_and_the_api_refuses_the_rest() {
    let w = World::new().await;
    let owner = w.person("owner@example.com").await;
    let team = w.team(&owner, "Acme").await;
    let admin = w.person("admin@example.com").await;
    let member = w.person("member@example.com").await;
    let viewer = w.person("viewer@example.com").await;
    w.join(&owner, &team, &admin, "admin").await;
    w.join(&owner, &team, &member, "member").await;
    w.join(&owner, &team, &viewer, "viewer").await;

    let page = w.get("/team", Some(&owner.in_org(&team))).await;
    check_html(&page.html);
    assert_eq!(page.html.matches("data-testid=\"role-form\"").count(), 4, "an owner manages everyone");
    page.assert_contains("<option value=\"owner\">Owner: everything, including owners</option>");

    let page = w.get("/team", Some(&admin.in_org(&team))).await;
    check_html(&page.html);
    assert_eq!(page.html.matches("data-testid=\"role-form\"").count(), 3, "an admin manages all but the owner");
    assert_eq!(page.html.matches("data-testid=\"remove-member\"").count(), 2, "not the owner, not themselves");
    page.assert_lacks("<option value=\"owner\"");
    page.assert_contains("data-testid=\"invite-form\"");

    for who in [&member, &viewer] {
        let page = w.get("/team", Some(&who.in_org(&team))).await;
        page.assert_lacks("data-testid=\"role-form\"");
        page.assert_lacks("data-testid=\"invite-form\"");
        page.assert_lacks("data-testid=\"pending\"");
        page.assert_lacks("data-testid=\"rename-form\"");
    }
    let before = members(&w, &owner, &team).await;
    let m = member.in_org(&team);
    let attempts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("/team/{team}/members/{}/role", viewer.user_id), vec![("role", "admin")]),
        (format!("/team/{team}/members/{}/remove", viewer.user_id), vec![]),
        (format!("/team/{team}/invite"), vec![("email", "x@example.com"), ("role", "member")]),
        (format!("/team/{team}/rename"), vec![("name", "Mine")]),
    ];
    for (path, fields) in &attempts {
        let refused = w.submit(path, fields, &m).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        refused.assert_contains("owner or admin");
        check_html(&refused.html);
    }
    let a = admin.in_org(&team);
    let refused = w.submit(&format!("/team/{team}/members/{}/role", owner.user_id), &[("role", "viewer")], &a).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    refused.assert_contains("Only owners can grant or take away the owner role.");
    let refused =
        w.submit(&format!("/team/{team}/invite"), &[("email", "o2@example.com"), ("role", "owner")], &a).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(members(&w, &owner, &team).await, before, "nothing changed");
    let (_, pending) = w.api(Method::GET, &format!("/api/v1/orgs/{team}/invitations"), None, &owner).await;
    assert!(pending.as_array().unwrap().iter().all(|i| i["status"] != "pending"), "no invitation was made");

    // What may be done is done.
    let changed = w.submit(&format!("/team/{team}/members/{}/role", member.user_id), &[("role", "viewer")], &a).await;
    assert_eq!(changed.location(), "/team?notice=role_changed");
    assert!(members(&w, &owner, &team).await.contains(&("member@example.com".into(), "viewer".into())));
    let bad = w.submit(&format!("/team/{team}/invite"), &[("email", "nope"), ("role", "member")], &a).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad.testid_text("error-email").is_empty());
    bad.assert_contains("value=\"nope\"");
    check_html(&bad.html);
    let o = owner.in_org(&team);
    let last = w.submit(&format!("/team/{team}/members/{}/role", owner.user_id), &[("role", "admin")], &o).await;
    assert_eq!(last.status, StatusCode::CONFLICT);
    assert!(last.testid_text("member-error").contains("at least one owner"));
    check_html(&last.html);
    let invited =
        w.submit(&format!("/team/{team}/invite"), &[("email", "dee@example.com"), ("role", "admin")], &o).await;
    assert_eq!(invited.status, StatusCode::SEE_OTHER);
    let (_, pending) = w.api(Method::GET, &format!("/api/v1/orgs/{team}/invitations"), None, &owner).await;
    let inv = pending.as_array().unwrap().iter().find(|i| i["status"] == "pending").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = w.form(&format!("/team/{team}/invitations/{inv}/revoke"), &[("csrf", "x")], Some(&o)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let revoked = w.submit(&format!("/team/{team}/invitations/{inv}/revoke"), &[], &o).await;
    assert_eq!(revoked.location(), "/team?notice=invitation_revoked");
    let removed = w.submit(&format!("/team/{team}/members/{}/remove", viewer.user_id), &[], &o).await;
    assert_eq!(removed.location(), "/team?notice=member_removed");
    let renamed = w.submit(&format!("/team/{team}/rename"), &[("name", "Acme Labs")], &o).await;
    assert_eq!(renamed.location(), "/team?notice=renamed");
    let left = w.submit(&format!("/team/{team}/members/{}/remove", admin.user_id), &[], &a).await;
    assert_eq!(left.location(), "/team?notice=left_team");
    assert!(left.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let now: Vec<String> = members(&w, &owner, &team).await.into_iter().map(|(e, _)| e).collect();
    assert_eq!(now, ["owner@example.com", "member@example.com"]);
    let (_, org) = w.api(Method::GET, &format!("/api/v1/orgs/{team}"), None, &owner).await;
    assert_eq!(org["name"], Value::from("Acme Labs"));

    // A form for a team the page no longer acts in changes nothing.
    let stale = w.submit(&format!("/team/{team}/rename"), &[("name", "Stale")], &owner).await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    let outsider = w.person("out@example.com").await;
    let refused =
        w.submit(&format!("/team/{team}/members/{}/remove", member.user_id), &[], &outsider.in_org(&team)).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "the cookie does not make an outsider act in the team");
    assert_eq!(members(&w, &owner, &team).await.len(), 2);
}

#[tokio::test]
async fn notifications_are_listed_unread_first_and_marked_read() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let empty = w.get("/notifications", Some(&ada)).await;
    empty.assert_contains("No notifications yet");
    check_html(&empty.html);
    for title in ["First", "Second", "Third"] {
        w.store.notify(&ada.user_id, "agent_update", title, "Something changed.", Some("/store")).await.unwrap();
        // Notifications made in the same millisecond have no order among them.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let (_, notes) = w.api(Method::GET, "/api/v1/notifications", None, &ada).await;
    let id_of = |title: &str| {
        notes.as_array().unwrap().iter().find(|n| n["title"] == title).unwrap()["id"].as_str().unwrap().to_string()
    };
    let forged = w.form(&format!("/notifications/{}/read", id_of("First")), &[("csrf", "x")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let read = w.submit(&format!("/notifications/{}/read", id_of("Third")), &[], &ada).await;
    assert_eq!(read.location(), "/notifications?notice=read");
    let page = w.get("/notifications", Some(&ada)).await;
    check_html(&page.html);
    assert_eq!(page.testid_text("unread-count"), "2");
    assert_eq!(page.testid_text("unread-summary"), "2 unread.");
    let order: Vec<usize> =
        ["Second", "First", "Third"].iter().map(|t| page.html.find(&format!(">{t}</h2>")).unwrap()).collect();
    assert!(order[0] < order[1] && order[1] < order[2], "unread first, newest first: {order:?}");
    assert_eq!(page.html.matches("data-unread=\"true\"").count(), 2);
    page.assert_contains("Agent update");

    let eve = w.person("eve@example.com").await;
    let theirs = w.submit(&format!("/notifications/{}/read", id_of("First")), &[], &eve).await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let all = w.submit("/notifications/read", &[], &ada).await;
    assert_eq!(all.location(), "/notifications?notice=all_read");
    let page = w.get("/notifications?notice=all_read", Some(&ada)).await;
    page.assert_lacks("data-testid=\"unread-count\"");
    page.assert_lacks("data-testid=\"mark-all\"");
    page.assert_contains("Nothing unread.");
    assert_eq!(w.get("/notifications", None).await.location(), "/login?next=%2Fnotifications");
}
