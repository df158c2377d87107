//! An agent's page: the hero with Install / Uninstall, and six tabs (Description,
//! Integration, Use cases, Data & privacy, Reviews, Support). Every tab is on the page;
//! `?tab=` says which one shows, so each tab is a link that works without JavaScript.

use crate::Web;
use crate::client::{Caller, Failure, query, segment};
use crate::format;
use crate::model::{AgentDetail, Governance, Installation, Review, ReviewPage, Version};
use crate::page::{
    Browser, Chrome, FormData, FormState, PageError, PageResult, Viewer, param, render_status, see_other, signed_in,
    viewer,
};
use crate::snippets::{KEY_PLACEHOLDER, Snippets, Target, snippets};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use tollgate_domain::trust::Governance as Declared;

/// The tabs: key in `?tab=`, and label.
const TABS: [(&str, &str); 6] = [
    ("description", "Description"),
    ("integration", "Integration"),
    ("use-cases", "Use cases"),
    ("privacy", "Data & privacy"),
    ("reviews", "Reviews"),
    ("support", "Support"),
];

pub struct TabLink {
    pub key: &'static str,
    pub label: &'static str,
    pub href: String,
    pub selected: bool,
}

pub struct FunctionRow {
    pub name: String,
    pub price: String,
    /// "10 free calls (monthly)".
    pub free: Option<String>,
}

pub struct VersionBlock {
    pub version: String,
    pub status: String,
    pub endpoint: String,
    pub base_fee: String,
    pub functions: Vec<FunctionRow>,
    pub default_pricing: Option<String>,
    pub dependencies: Vec<String>,
    pub task_timeout: String,
    pub cold_start: bool,
    pub published: String,
    pub code_href: String,
    pub shown: bool,
}

pub struct TrustRow {
    pub what: &'static str,
    pub points: i64,
    pub max: i64,
}

pub struct StarBar {
    pub stars: usize,
    pub count: i64,
    pub percent: i64,
}

pub struct ReviewItem {
    pub author: String,
    pub stars: String,
    pub rating: i64,
    pub body: String,
    pub date: String,
    pub edited: bool,
}

#[derive(Template)]
#[template(path = "agent.html")]
struct AgentTemplate {
    chrome: Chrome,
    a: AgentDetail,
    tab: String,
    tabs: Vec<TabLink>,
    description: Vec<String>,
    rating: String,
    stars: String,
    reviews_count: String,
    installs: String,
    updated: String,
    protocol: String,
    signed_in: bool,
    installed: Option<String>,
    install_versions: Vec<String>,
    install_error: Option<String>,
    versions: Vec<VersionBlock>,
    code: Option<(String, Snippets)>,
    governance: Vec<(&'static str, String)>,
    compliance: Vec<String>,
    trust: Vec<TrustRow>,
    star_bars: Vec<StarBar>,
    reviews: Vec<ReviewItem>,
    reviews_prev: Option<String>,
    reviews_next: Option<String>,
    mine: bool,
    /// The viewer is in the agent's publisher org (no review form, a console link).
    publishes: bool,
    review_form: FormState,
    /// The viewer may install in the org the UI acts in (not a viewer there).
    can_install: bool,
    /// The viewer may uninstall there (owner or admin).
    can_uninstall: bool,
    /// The org the UI acts in.
    org_name: String,
    /// Whether this instance's gateway can call the agent (A2A agents: not yet).
    callable: bool,
}

/// How `v`'s functions read.
fn version_block(slug: &str, v: &Version, shown: &str) -> VersionBlock {
    VersionBlock {
        version: v.version.clone(),
        status: v.status.clone(),
        endpoint: v.endpoint.clone(),
        base_fee: format::money(&v.base_fee),
        functions: v
            .functions
            .iter()
            .map(|f| FunctionRow {
                name: f.name.clone(),
                price: format::pricing(&f.pricing),
                free: (f.free_calls > 0).then(|| {
                    let per = if f.free_reset == "monthly" { " a month" } else { "" };
                    format!("{} free calls{per}", format::count(f.free_calls))
                }),
            })
            .collect(),
        default_pricing: v.default_pricing.as_ref().map(format::pricing),
        dependencies: v.dependencies.iter().map(|d| format!("{} {}", d.agent, d.version)).collect(),
        task_timeout: format::seconds(v.task_timeout_seconds),
        cold_start: v.cold_start,
        published: format::date(&v.created_at),
        code_href: format!("/agents/{slug}{}#code", query(&[("tab", "integration"), ("version", &v.version)])),
        shown: v.version == shown,
    }
}

/// The governance declaration as label and value.
fn governance_rows(g: &Governance) -> Vec<(&'static str, String)> {
    let or_none = |list: &[String]| if list.is_empty() { "Not declared".to_string() } else { list.join(", ") };
    let text = |o: &Option<String>| o.clone().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "Not declared".into());
    vec![
        (
            "Data collected",
            if g.collects_no_data { "None: the agent collects no data".into() } else { or_none(&g.data_collected) },
        ),
        ("Storage region", text(&g.storage_region)),
        ("Storage provider", text(&g.storage_provider)),
        (
            "Retention",
            match g.retention_days {
                None => "Not declared".into(),
                Some(0) => "Not retained".into(),
                Some(1) => "1 day".into(),
                Some(d) => format!("{} days", format::count(d)),
            },
        ),
        (
            "Used for training",
            match g.training_use {
                None => "Not declared".into(),
                Some(true) => "Yes, user data may train models".into(),
                Some(false) => "No, user data never trains models".into(),
            },
        ),
        ("Security measures", or_none(&g.security_measures)),
    ]
}

/// What the trust score is made of: each part scored by the domain's own rule on a
/// declaration holding only that part; what is left of the total is measured uptime.
pub fn trust_rows(g: &Governance, total: i64) -> Vec<TrustRow> {
    let score = |d: Declared| d.trust_score(None);
    let list = |v: &[String]| v.to_vec();
    let has = |name: &str| g.compliance.iter().any(|c| c == name);
    let only = |name: &str| if has(name) { vec![name.to_string()] } else { Vec::new() };
    let parts: Vec<(&'static str, i64, i64)> = vec![
        (
            "Data collected declared",
            score(Declared {
                data_collected: list(&g.data_collected),
                collects_no_data: g.collects_no_data,
                ..Declared::default()
            }),
            score(Declared { data_collected: vec!["x".into()], ..Declared::default() }),
        ),
        (
            "Storage region declared",
            score(Declared { storage_region: g.storage_region.clone(), ..Declared::default() }),
            score(Declared { storage_region: Some("x".into()), ..Declared::default() }),
        ),
        (
            "Storage provider declared",
            score(Declared { storage_provider: g.storage_provider.clone(), ..Declared::default() }),
            score(Declared { storage_provider: Some("x".into()), ..Declared::default() }),
        ),
        (
            "Retention period declared",
            score(Declared { retention_days: g.retention_days, ..Declared::default() }),
            score(Declared { retention_days: Some(0), ..Declared::default() }),
        ),
        (
            "Training use declared (more when user data is not used)",
            score(Declared { training_use: g.training_use, ..Declared::default() }),
            score(Declared { training_use: Some(false), ..Declared::default() }),
        ),
        (
            "Security measures",
            score(Declared { security_measures: list(&g.security_measures), ..Declared::default() }),
            score(Declared { security_measures: vec!["x".into()], ..Declared::default() }),
        ),
        (
            "GDPR",
            score(Declared { compliance: only("gdpr"), ..Declared::default() }),
            score(Declared { compliance: vec!["gdpr".into()], ..Declared::default() }),
        ),
        (
            "SOC 2",
            score(Declared { compliance: only("soc2"), ..Declared::default() }),
            score(Declared { compliance: vec!["soc2".into()], ..Declared::default() }),
        ),
        (
            "HIPAA",
            score(Declared { compliance: only("hipaa"), ..Declared::default() }),
            score(Declared { compliance: vec!["hipaa".into()], ..Declared::default() }),
        ),
    ];
    let declared: i64 = parts.iter().map(|p| p.1).sum();
    let uptime_max = Declared::default().trust_score(Some(1000));
    let mut rows: Vec<TrustRow> = parts.into_iter().map(|(what, points, max)| TrustRow { what, points, max }).collect();
    rows.push(TrustRow {
        what: "Measured 30-day uptime",
        points: (total - declared).clamp(0, uptime_max),
        max: uptime_max,
    });
    rows
}

/// The active installation of `slug` in the viewer's org, if any.
async fn installation_of(web: &Web, caller: &Caller, slug: &str) -> Result<Option<Installation>, PageError> {
    let all: Vec<Installation> = web.api.read(caller, "/api/v1/installations").await?;
    Ok(all.into_iter().find(|i| i.agent == slug && i.status == "active"))
}

/// The agent page with `tab` showing, a review form (as typed, with errors) and an
/// install error when a form was just refused.
struct Shown {
    tab: String,
    review_form: Option<FormState>,
    install_error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
}

async fn page(
    web: &Web,
    browser: &Browser,
    viewer: Option<&Viewer>,
    slug: &str,
    q: &HashMap<String, String>,
    shown: Shown,
) -> PageResult {
    let slug_path = segment(slug);
    let a: AgentDetail = web.api.read(&browser.caller, &format!("/api/v1/store/agents/{slug_path}")).await?;
    let review_page = param(q, "page");
    let reviews: ReviewPage = web
        .api
        .read(&browser.caller, &format!("/api/v1/agents/{slug_path}/reviews{}", query(&[("page", review_page)])))
        .await
        .or_else(|f: Failure| {
            if f.status == StatusCode::UNPROCESSABLE_ENTITY {
                Ok(ReviewPage { reviews: Vec::new(), page: 1, per_page: 10, total: 0, rating: a.rating.clone() })
            } else {
                Err(f)
            }
        })?;
    let (mine, installed, publishes) = match viewer {
        Some(_) => {
            let mine = web.api.get(&browser.caller, &format!("/api/v1/agents/{slug_path}/reviews/mine")).await?;
            let mine: Option<Review> = if mine.ok() { Some(mine.into_json()?) } else { None };
            // The publisher's own view answers only members of the agent's publisher org,
            // whom the API does not let review it.
            let publishes = web.api.get(&browser.caller, &format!("/api/v1/agents/{slug_path}")).await?.ok();
            (mine, installation_of(web, &browser.caller, slug).await?, publishes)
        }
        None => (None, None, false),
    };
    let tab = TABS.iter().find(|(k, _)| *k == shown.tab).map(|(k, _)| *k).unwrap_or("description");
    let tabs = TABS
        .iter()
        .map(|(key, label)| TabLink {
            key,
            label,
            href: format!("/agents/{slug_path}?tab={key}"),
            selected: *key == tab,
        })
        .collect();
    let wanted = param(q, "version");
    let code_version = a
        .versions
        .iter()
        .find(|v| v.version == wanted)
        .or_else(|| a.versions.iter().find(|v| Some(&v.version) == a.latest_version.as_ref()))
        .or_else(|| a.versions.first());
    let code = code_version.map(|v| {
        let target = Target {
            endpoint: &v.endpoint,
            protocol: &v.protocol,
            function: v.functions.first().map(|f| f.name.as_str()),
            cold_start: v.cold_start,
            key: KEY_PLACEHOLDER,
        };
        (v.version.clone(), snippets(&target))
    });
    let shown_version = code.as_ref().map(|c| c.0.clone()).unwrap_or_default();
    let total_reviews = reviews.rating.count.max(1);
    let star_bars = (1..=5)
        .rev()
        .map(|stars| {
            let count = reviews.rating.stars.get(stars - 1).copied().unwrap_or(0);
            StarBar { stars, count, percent: count * 100 / total_reviews }
        })
        .collect();
    let review_href = |p: i64| format!("/agents/{slug_path}{}", query(&[("tab", "reviews"), ("page", &p.to_string())]));
    let pages = (reviews.total + reviews.per_page - 1) / reviews.per_page.max(1);
    let review_form = shown.review_form.unwrap_or_else(|| match &mine {
        Some(r) => FormState::with(&[("rating", r.rating.to_string()), ("body", r.body.clone())]),
        None => FormState::default(),
    });
    let mut chrome = Chrome::new(&a.name, "store", viewer).with_notice(q.get("notice").map(String::as_str));
    if let Some(n) = &shown.notice {
        chrome = chrome.with_error(n);
    }
    let template = AgentTemplate {
        chrome,
        tab: tab.to_string(),
        tabs,
        description: a.description.split("\n\n").map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect(),
        rating: format::rating(a.rating.average),
        stars: a.rating.average.map(format::stars).unwrap_or_default(),
        reviews_count: format::count(a.rating.count),
        installs: format::count(a.installs),
        updated: format::date(&a.updated_at),
        protocol: format::protocol(&a.protocol),
        signed_in: viewer.is_some(),
        installed: installed.map(|i| i.id),
        install_versions: a.versions.iter().filter(|v| v.status == "active").map(|v| v.version.clone()).collect(),
        install_error: shown.install_error,
        versions: a.versions.iter().map(|v| version_block(&slug_path, v, &shown_version)).collect(),
        code,
        governance: governance_rows(&a.governance),
        compliance: a.governance.compliance.iter().map(|c| format::compliance(c)).collect(),
        trust: trust_rows(&a.governance, a.trust_score),
        star_bars,
        reviews: reviews
            .reviews
            .iter()
            .map(|r| ReviewItem {
                author: r.author.clone(),
                stars: format::stars(r.rating as f64),
                rating: r.rating,
                body: r.body.clone(),
                date: format::date(&r.created_at),
                edited: r.updated_at != r.created_at,
            })
            .collect(),
        reviews_prev: (reviews.page > 1).then(|| review_href(reviews.page - 1)),
        reviews_next: (reviews.page < pages).then(|| review_href(reviews.page + 1)),
        mine: mine.is_some(),
        publishes,
        review_form,
        can_install: viewer.is_some_and(Viewer::can_write),
        can_uninstall: viewer.is_some_and(Viewer::can_admin),
        org_name: viewer.map(|v| v.org.name.clone()).unwrap_or_default(),
        callable: a.protocol != "a2a" || web.config.a2a_calls,
        a,
    };
    Ok(render_status(shown.status, &template))
}

/// `GET /agents/{slug}?tab=…`.
pub async fn agent(
    State(web): State<Web>,
    browser: Browser,
    Path(slug): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let viewer = viewer(&web, &browser).await?;
    let shown = Shown {
        tab: param(&q, "tab").to_string(),
        review_form: None,
        install_error: None,
        notice: None,
        status: StatusCode::OK,
    };
    page(&web, &browser, viewer.as_ref(), &slug, &q, shown).await
}

/// `POST /agents/{slug}/install`: installs the chosen version in the viewer's org.
pub async fn install(State(web): State<Web>, browser: Browser, Path(slug): Path<String>, data: FormData) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let version = match data.get("version").trim() {
        "" => "latest",
        v => v,
    };
    let body = json!({"agent": slug, "version": version});
    let reply = web.api.post(&browser.caller.with_csrf(data.csrf()), "/api/v1/installations", &body).await?;
    if reply.ok() {
        let inst: Installation = reply.into_json()?;
        return Ok(see_other(&format!("/usage/{}?tab=settings&notice=installed", segment(&inst.id))));
    }
    let f = reply.failure();
    if crate::page::is_csrf(&f) {
        return Err(PageError::Failure(f));
    }
    let shown = Shown {
        tab: "integration".into(),
        review_form: None,
        install_error: Some(crate::page::sentence(&f.message)),
        notice: None,
        status: f.status,
    };
    page(&web, &browser, Some(&viewer), &slug, &HashMap::new(), shown).await
}

/// `POST /agents/{slug}/review`: writes, edits (`existing=1`) or deletes
/// (`action=delete`) the viewer's review.
pub async fn review(State(web): State<Web>, browser: Browser, Path(slug): Path<String>, data: FormData) -> PageResult {
    let viewer = signed_in(&web, &browser).await?;
    let caller = browser.caller.with_csrf(data.csrf());
    let path = format!("/api/v1/agents/{}/reviews", segment(&slug));
    let done = |notice: &str| see_other(&format!("/agents/{}?tab=reviews&notice={notice}", segment(&slug)));
    if data.get("action") == "delete" {
        let reply = web.api.delete(&caller, &path).await?;
        return if reply.ok() { Ok(done("review_deleted")) } else { Err(reply.failure().into()) };
    }
    let form = FormState::from_data(&data);
    let rating = data.get("rating").trim().parse::<i64>();
    let reply = match rating {
        Ok(rating) => {
            let body = json!({"rating": rating, "body": data.get("body")});
            let reply = if data.get("existing") == "1" {
                web.api.put(&caller, &path, &body).await?
            } else {
                web.api.post(&caller, &path, &body).await?
            };
            if reply.ok() {
                return Ok(done("review_saved"));
            }
            reply
        }
        Err(_) => {
            let mut form = form;
            form.errors.insert("rating".into(), "Choose from 1 to 5 stars.".into());
            return page(&web, &browser, Some(&viewer), &slug, &HashMap::new(), review_shown(form)).await;
        }
    };
    let f = reply.failure();
    if crate::page::is_csrf(&f) {
        return Err(PageError::Failure(f));
    }
    let form = form.fail(&f, &[], &["rating", "body"]);
    let mut shown = review_shown(form);
    shown.status = f.status;
    page(&web, &browser, Some(&viewer), &slug, &HashMap::new(), shown).await
}

fn review_shown(form: FormState) -> Shown {
    Shown {
        tab: "reviews".into(),
        review_form: Some(form),
        install_error: None,
        notice: None,
        status: StatusCode::UNPROCESSABLE_ENTITY,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_trust_breakdown_adds_up_to_the_score() {
        let g = Governance {
            data_collected: vec!["prompts".into()],
            collects_no_data: false,
            storage_region: Some("eu-west-1".into()),
            storage_provider: None,
            retention_days: Some(30),
            training_use: Some(true),
            compliance: vec!["gdpr".into(), "soc2".into()],
            security_measures: vec![],
        };
        let declared = Declared {
            data_collected: g.data_collected.clone(),
            storage_region: g.storage_region.clone(),
            retention_days: g.retention_days,
            training_use: g.training_use,
            compliance: g.compliance.clone(),
            ..Declared::default()
        };
        let total = declared.trust_score(Some(900));
        let rows = trust_rows(&g, total);
        assert_eq!(rows.iter().map(|r| r.points).sum::<i64>(), total);
        assert_eq!(rows.iter().map(|r| r.max).sum::<i64>(), 100, "the parts' maxima are the whole scale");
        let points = |what: &str| rows.iter().find(|r| r.what.starts_with(what)).unwrap().points;
        assert_eq!((points("Training"), points("Storage provider"), points("SOC 2")), (5, 0, 15));
        assert_eq!(points("Measured"), 13);

        // Declaring that nothing is collected counts as a declaration, in the score and
        // in its breakdown alike.
        let nothing = Governance { data_collected: vec![], collects_no_data: true, ..g.clone() };
        let declared = Declared { data_collected: vec![], collects_no_data: true, ..declared };
        let rows = trust_rows(&nothing, declared.trust_score(None));
        assert_eq!(rows.iter().map(|r| r.points).sum::<i64>(), declared.trust_score(None));
        assert_eq!(rows.iter().find(|r| r.what.starts_with("Data collected")).unwrap().points, 10);
        assert_eq!(governance_rows(&nothing)[0].1, "None: the agent collects no data");
    }
}
