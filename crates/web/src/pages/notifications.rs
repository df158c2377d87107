//! Notifications: the person's list (unread first), opening one (which marks it read),
//! and marking one or all read, over `/api/v1/notifications`. The unread count is in the
//! header of every page (from `/api/v1/me`).

use crate::Web;
use crate::client::segment;
use crate::format;
use crate::model::Notification;
use crate::page::{Browser, Chrome, FormData, PageResult, local_path, render_status, see_other, signed_in};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::json;
use std::collections::HashMap;

pub struct Item {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub time: String,
    pub unread: bool,
    pub link: bool,
}

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsTemplate {
    chrome: Chrome,
    items: Vec<Item>,
    unread: usize,
}

/// How a notification's kind reads.
fn kind_label(kind: &str) -> String {
    match kind {
        "invitation" => "Team invitation".into(),
        "low_balance" => "Low balance".into(),
        "auto_recharge" => "Auto-recharge".into(),
        "agent_update" => "Agent update".into(),
        "deprecation" => "Deprecation".into(),
        "rate_limit" => "Rate limit".into(),
        other => crate::page::sentence(&other.replace('_', " ")).trim_end_matches('.').to_string(),
    }
}

async fn list(web: &Web, browser: &Browser) -> Result<Vec<Notification>, crate::page::PageError> {
    Ok(web.api.read(&browser.caller, "/api/v1/notifications").await?)
}

/// `GET /notifications`: unread first, then the rest, each newest first.
pub async fn notifications(
    State(web): State<Web>,
    browser: Browser,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let mut all = list(&web, &browser).await?;
    all.sort_by_key(|n| n.read);
    let items: Vec<Item> = all
        .iter()
        .map(|n| Item {
            id: n.id.clone(),
            kind: kind_label(&n.kind),
            title: n.title.clone(),
            body: n.body.clone(),
            time: format::time(&n.created_at),
            unread: !n.read,
            link: n.link.as_deref().is_some_and(|l| local_path(l, "") == l),
        })
        .collect();
    let page = NotificationsTemplate {
        chrome: Chrome::new("Notifications", "notifications", Some(&viewer))
            .with_notice(q.get("notice").map(String::as_str)),
        unread: items.iter().filter(|i| i.unread).count(),
        items,
    };
    Ok(render_status(StatusCode::OK, &page))
}

/// `POST /notifications/{id}/read`.
pub async fn mark_read(State(web): State<Web>, browser: Browser, Path(id): Path<String>, data: FormData) -> PageResult {
    signed_in(&web, &browser).await?;
    let reply =
        web.api.post(&browser.caller.with_csrf(data.csrf()), "/api/v1/notifications/read", &json!({"id": id})).await?;
    if reply.ok() { Ok(see_other("/notifications?notice=read")) } else { Err(reply.failure().into()) }
}

/// `POST /notifications/read`: every unread one.
pub async fn mark_all_read(State(web): State<Web>, browser: Browser, data: FormData) -> PageResult {
    signed_in(&web, &browser).await?;
    let reply = web.api.post(&browser.caller.with_csrf(data.csrf()), "/api/v1/notifications/read", &json!({})).await?;
    if reply.ok() { Ok(see_other("/notifications?notice=all_read")) } else { Err(reply.failure().into()) }
}

/// `POST /notifications/{id}/open`: marks it read and goes to its link (a local path).
pub async fn open(State(web): State<Web>, browser: Browser, Path(id): Path<String>, data: FormData) -> PageResult {
    signed_in(&web, &browser).await?;
    let caller = browser.caller.with_csrf(data.csrf());
    let reply = web.api.post(&caller, "/api/v1/notifications/read", &json!({"id": id})).await?;
    if !reply.ok() {
        return Err(reply.failure().into());
    }
    let link = list(&web, &browser).await?.into_iter().find(|n| n.id == id).and_then(|n| n.link);
    Ok(see_other(local_path(link.as_deref().unwrap_or(""), &format!("/notifications#n-{}", segment(&id)))))
}
