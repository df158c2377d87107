//! Teams: the org the UI acts in and switching it, creating a team, its members and roles,
//! invitations (invite by email with a role, the link shown once, pending ones revoked),
//! removing members, leaving, and the invitee's side (accepting from the Team page, a
//! notification or the invitation link). Each control is shown only to the roles that may
//! use it (docs/API.md), and the API refuses the rest.

use crate::Web;
use crate::client::segment;
use crate::format;
use crate::model::{Invitation, Member, NewInvitation, OrgRef};
use crate::page::{
    Browser, Chrome, FormData, FormState, PageError, PageResult, Reveal, Viewer, is_csrf, local_path, not_a_form_error,
    render_status, see_other, sentence, show_once, signed_in, with_org_cookie,
};
use crate::stash::Secret;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::json;
use std::collections::HashMap;

/// Roles from most to least powerful, with what each may do.
const ROLES: [(&str, &str); 4] = [
    ("owner", "Owner: everything, including owners"),
    ("admin", "Admin: members, billing settings, installations"),
    ("member", "Member: install agents, own keys, publish"),
    ("viewer", "Viewer: read only"),
];

pub struct RoleOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub struct MemberRow {
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: String,
    pub joined: String,
    pub me: bool,
    /// Whether the viewer may change this member's role and remove them.
    pub manage: bool,
    pub roles: Vec<RoleOption>,
    pub error: Option<String>,
}

pub struct InvitationRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub expires: String,
}

pub struct MyInvitation {
    pub org_name: String,
    pub role: String,
    pub expires: String,
}

pub struct TeamLink {
    pub id: String,
    pub name: String,
    pub role: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamTemplate {
    chrome: Chrome,
    org: OrgRef,
    role: String,
    admin: bool,
    members: Vec<MemberRow>,
    pending: Vec<InvitationRow>,
    invite: FormState,
    invite_roles: Vec<RoleOption>,
    invite_link: Option<(String, String)>,
    invite_gone: bool,
    rename: FormState,
    create: FormState,
    teams: Vec<TeamLink>,
    mine: Vec<MyInvitation>,
    general: Option<String>,
}

/// The forms as submitted, when one was refused.
#[derive(Default)]
struct Shown {
    invite: Option<FormState>,
    rename: Option<FormState>,
    create: Option<FormState>,
    /// A refusal about one member's row: (user id, message).
    member_error: Option<(String, String)>,
    general: Option<String>,
    reveal: Reveal,
}

fn role_options(current: &str, owner: bool) -> Vec<RoleOption> {
    ROLES
        .iter()
        .filter(|(r, _)| owner || *r != "owner")
        .map(|(value, label)| RoleOption { value, label, selected: *value == current })
        .collect()
}

async fn render(
    web: &Web,
    browser: &Browser,
    viewer: &Viewer,
    notice: Option<&str>,
    shown: Shown,
    status: StatusCode,
) -> PageResult {
    let org = viewer.org.clone();
    let (admin, owner) = (viewer.can_admin(), viewer.role() == "owner");
    let org_path = format!("/api/v1/orgs/{}", segment(&org.id));
    let (members, pending) = if org.personal {
        (Vec::new(), Vec::new())
    } else {
        let members: Vec<Member> = web.api.read(&browser.caller, &format!("{org_path}/members")).await?;
        let pending: Vec<Invitation> =
            if admin { web.api.read(&browser.caller, &format!("{org_path}/invitations")).await? } else { Vec::new() };
        (members, pending)
    };
    let me = &viewer.me.user.id;
    let member_rows = members
        .iter()
        .map(|m| {
            let manage = admin && (m.role != "owner" || owner);
            MemberRow {
                user_id: m.user_id.clone(),
                name: m.name.clone(),
                email: m.email.clone(),
                role: m.role.clone(),
                joined: format::date(&m.joined_at),
                me: &m.user_id == me,
                manage,
                roles: role_options(&m.role, owner),
                error: shown.member_error.as_ref().filter(|(id, _)| *id == m.user_id).map(|(_, e)| e.clone()),
            }
        })
        .collect();
    let invite_link = shown.reveal.secret().map(|s| (s.label.clone(), s.value.clone()));
    let page = TeamTemplate {
        chrome: Chrome::new("Team", "team", Some(viewer)).with_notice(notice),
        role: viewer.role().to_string(),
        admin,
        members: member_rows,
        pending: pending
            .iter()
            .filter(|i| i.status == "pending")
            .map(|i| InvitationRow {
                id: i.id.clone(),
                email: i.email.clone(),
                role: i.role.clone(),
                expires: format::date(&i.expires_at),
            })
            .collect(),
        invite: shown.invite.unwrap_or_else(|| FormState::with(&[("role", "member".into())])),
        invite_roles: role_options("", owner),
        invite_link,
        invite_gone: shown.reveal.gone(),
        rename: shown.rename.unwrap_or_else(|| FormState::with(&[("name", org.name.clone())])),
        create: shown.create.unwrap_or_default(),
        teams: viewer
            .me
            .orgs
            .iter()
            .filter(|o| !o.personal)
            .map(|o| TeamLink {
                id: o.id.clone(),
                name: o.name.clone(),
                role: o.role.clone().unwrap_or_default(),
                current: o.id == org.id,
            })
            .collect(),
        mine: viewer
            .me
            .invitations
            .iter()
            .map(|i| MyInvitation {
                org_name: i.org_name.clone(),
                role: i.role.clone(),
                expires: format::date(&i.expires_at),
            })
            .collect(),
        general: shown.general,
        org,
    };
    Ok(shown.reveal.protect(render_status(status, &page)))
}

/// `GET /team`: the org the UI acts in.
pub async fn team(State(web): State<Web>, browser: Browser, Query(q): Query<HashMap<String, String>>) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let shown = Shown { reveal: Reveal::take(&web, &browser, &q, "invitation"), ..Shown::default() };
    render(&web, &browser, &viewer, q.get("notice").map(String::as_str), shown, StatusCode::OK).await
}

/// Where to go after switching org: the same page when it shows whichever org is chosen,
/// else the dashboard (an installation's page belongs to one org).
fn switch_target(next: &str) -> String {
    let path = local_path(next, "/dashboard").split(['?', '#']).next().unwrap_or("/dashboard");
    let same = ["/dashboard", "/billing", "/team", "/publisher", "/notifications", "/settings", "/store"];
    let agent_page = path.strip_prefix("/agents/").is_some_and(|slug| !slug.is_empty() && !slug.contains('/'));
    if same.contains(&path) || agent_page { path.to_string() } else { "/dashboard".into() }
}

/// `POST /org`: acts in another org of the person's (a team, or the personal org).
pub async fn switch(State(web): State<Web>, browser: Browser, data: FormData) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    if !viewer.csrf_ok(data.csrf()) {
        return Err(csrf_refused());
    }
    let org = viewer.me.orgs.iter().find(|o| o.id == data.get("org")).ok_or(PageError::NotFound)?;
    let target = switch_target(data.get("next"));
    let sep = if target.contains('?') { '&' } else { '?' };
    let response = see_other(&format!("{target}{sep}notice=switched"));
    Ok(with_org_cookie(&web, response, (!org.personal).then_some(org.id.as_str())))
}

/// The refusal of a form without this session's CSRF token, as the API answers it.
fn csrf_refused() -> PageError {
    PageError::Failure(crate::client::Failure {
        status: StatusCode::FORBIDDEN,
        code: "csrf_token".into(),
        message: "missing or wrong X-CSRF-Token header".into(),
        field: None,
        retry_after: None,
    })
}

/// `POST /team/new`: creates a team with the viewer as owner and acts in it.
pub async fn create(State(web): State<Web>, browser: Browser, data: FormData) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let reply = web
        .api
        .post(&browser.caller.with_csrf(data.csrf()), "/api/v1/orgs", &json!({"name": data.get("name")}))
        .await?;
    if reply.ok() {
        let org: OrgRef = reply.into_json()?;
        return Ok(with_org_cookie(&web, see_other("/team?notice=team_created"), Some(&org.id)));
    }
    let f = reply.failure();
    if is_csrf(&f) || not_a_form_error(&f) {
        return Err(f.into());
    }
    let shown = Shown { create: Some(FormState::from_data(&data).fail(&f, &[], &["name"])), ..Shown::default() };
    render(&web, &browser, &viewer, None, shown, f.status).await
}

/// The viewer, checked to be acting in `org` (the forms name it, so a form from another
/// tab cannot act on the wrong team).
async fn in_org(web: &Web, browser: &Browser, org: &str) -> Result<Viewer, PageError> {
    let viewer = signed_in(web, browser).await?;
    if viewer.org.id != org {
        return Err(PageError::Failure(crate::client::Failure {
            status: StatusCode::CONFLICT,
            code: "org_changed".into(),
            message: "this page acts in another organization now; reload it and try again".into(),
            field: None,
            retry_after: None,
        }));
    }
    Ok(viewer)
}

/// `POST /team/{org}/rename`.
pub async fn rename(State(web): State<Web>, browser: Browser, Path(org): Path<String>, data: FormData) -> PageResult {
    let viewer = in_org(&web, &browser, &org).await?;
    let path = format!("/api/v1/orgs/{}", segment(&org));
    let reply =
        web.api.patch(&browser.caller.with_csrf(data.csrf()), &path, &json!({"name": data.get("name")})).await?;
    if reply.ok() {
        return Ok(see_other("/team?notice=renamed"));
    }
    let f = reply.failure();
    if is_csrf(&f) || not_a_form_error(&f) {
        return Err(f.into());
    }
    let shown = Shown { rename: Some(FormState::from_data(&data).fail(&f, &[], &["name"])), ..Shown::default() };
    render(&web, &browser, &viewer, None, shown, f.status).await
}

/// `POST /team/{org}/invite`: invites an email with a role; the link is shown once.
pub async fn invite(State(web): State<Web>, browser: Browser, Path(org): Path<String>, data: FormData) -> PageResult {
    let viewer = in_org(&web, &browser, &org).await?;
    let path = format!("/api/v1/orgs/{}/invitations", segment(&org));
    let body = json!({"email": data.get("email"), "role": data.get("role")});
    let reply = web.api.post(&browser.caller.with_csrf(data.csrf()), &path, &body).await?;
    if reply.ok() {
        let made: NewInvitation = reply.into_json()?;
        tracing::info!(invitation.id = %made.invitation.id, "invitation created from the web UI");
        let secret = Secret {
            kind: "invitation",
            about: made.invitation.id,
            label: made.invitation.email,
            value: made.accept_url,
        };
        return Ok(show_once(&web, &browser, secret, "/team", &[], "#invite-link"));
    }
    let f = reply.failure();
    if is_csrf(&f) || not_a_form_error(&f) {
        return Err(f.into());
    }
    let shown =
        Shown { invite: Some(FormState::from_data(&data).fail(&f, &[], &["email", "role"])), ..Shown::default() };
    render(&web, &browser, &viewer, None, shown, f.status).await
}

/// `POST /team/{org}/invitations/{id}/revoke`.
pub async fn revoke_invitation(
    State(web): State<Web>,
    browser: Browser,
    Path((org, id)): Path<(String, String)>,
    data: FormData,
) -> PageResult {
    in_org(&web, &browser, &org).await?;
    let path = format!("/api/v1/orgs/{}/invitations/{}", segment(&org), segment(&id));
    let reply = web.api.delete(&browser.caller.with_csrf(data.csrf()), &path).await?;
    if reply.ok() { Ok(see_other("/team?notice=invitation_revoked")) } else { Err(reply.failure().into()) }
}

/// A refusal about one member, shown in their row (a 409 such as the last owner's).
async fn member_refused(
    web: &Web,
    browser: &Browser,
    viewer: &Viewer,
    user: &str,
    f: crate::client::Failure,
) -> PageResult {
    if is_csrf(&f) || f.status != StatusCode::CONFLICT && f.status != StatusCode::UNPROCESSABLE_ENTITY {
        return Err(f.into());
    }
    let shown = Shown { member_error: Some((user.to_string(), sentence(&f.message))), ..Shown::default() };
    render(web, browser, viewer, None, shown, f.status).await
}

/// `POST /team/{org}/members/{user}/role`.
pub async fn change_role(
    State(web): State<Web>,
    browser: Browser,
    Path((org, user)): Path<(String, String)>,
    data: FormData,
) -> PageResult {
    let viewer = in_org(&web, &browser, &org).await?;
    let path = format!("/api/v1/orgs/{}/members/{}", segment(&org), segment(&user));
    let reply =
        web.api.patch(&browser.caller.with_csrf(data.csrf()), &path, &json!({"role": data.get("role")})).await?;
    if reply.ok() {
        return Ok(see_other("/team?notice=role_changed"));
    }
    member_refused(&web, &browser, &viewer, &user, reply.failure()).await
}

/// `POST /team/{org}/members/{user}/remove`: removes a member, or (for oneself) leaves.
pub async fn remove(
    State(web): State<Web>,
    browser: Browser,
    Path((org, user)): Path<(String, String)>,
    data: FormData,
) -> PageResult {
    let viewer = in_org(&web, &browser, &org).await?;
    let path = format!("/api/v1/orgs/{}/members/{}", segment(&org), segment(&user));
    let reply = web.api.delete(&browser.caller.with_csrf(data.csrf()), &path).await?;
    if reply.ok() {
        if user == viewer.me.user.id {
            return Ok(with_org_cookie(&web, see_other("/team?notice=left_team"), None));
        }
        return Ok(see_other("/team?notice=member_removed"));
    }
    member_refused(&web, &browser, &viewer, &user, reply.failure()).await
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationTemplate {
    chrome: Chrome,
    token: String,
    email: String,
    error: Option<String>,
}

/// `GET /invitations/{token}`: the invitation link; signed out, log in (or sign up) first.
pub async fn invitation(State(web): State<Web>, browser: Browser, Path(token): Path<String>) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let page = InvitationTemplate {
        chrome: Chrome::new("Join a team", "team", Some(&viewer)),
        email: viewer.me.user.email.clone(),
        token,
        error: None,
    };
    Ok(render_status(StatusCode::OK, &page))
}

/// `POST /invitations/{token or id}/accept`: joins the team and acts in it.
pub async fn accept(State(web): State<Web>, browser: Browser, Path(key): Path<String>, data: FormData) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let path = format!("/api/v1/invitations/{}/accept", segment(&key));
    let reply = web.api.post(&browser.caller.with_csrf(data.csrf()), &path, &json!({})).await?;
    if reply.ok() {
        let joined: Invitation = reply.into_json()?;
        return Ok(with_org_cookie(&web, see_other("/team?notice=joined"), Some(&joined.org_id)));
    }
    let f = reply.failure();
    if f.status != StatusCode::NOT_FOUND {
        return Err(f.into());
    }
    let message = format!(
        "This invitation is not addressed to {}, has expired, or was already used or revoked. Log in with the \
         invited email address, or ask for a new invitation.",
        viewer.me.user.email
    );
    let page = InvitationTemplate {
        chrome: Chrome::new("Join a team", "team", Some(&viewer)),
        email: viewer.me.user.email.clone(),
        token: key,
        error: Some(message),
    };
    Ok(render_status(StatusCode::NOT_FOUND, &page))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn switching_stays_on_pages_that_show_any_org() {
        assert_eq!(switch_target("/billing?page=2"), "/billing");
        assert_eq!(switch_target("/agents/echo?tab=reviews"), "/agents/echo");
        assert_eq!(switch_target("/agents/echo/install"), "/dashboard");
        assert_eq!(switch_target("/usage/ins_1?tab=settings"), "/dashboard");
        assert_eq!(switch_target("https://evil.example/"), "/dashboard");
        assert_eq!(switch_target(""), "/dashboard");
    }
}
