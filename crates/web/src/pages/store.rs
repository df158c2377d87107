//! The store: search, filters, sort and pages of agent cards, all from
//! `GET /api/v1/store/agents` with the same query parameters, so a URL can be shared.

use crate::Web;
use crate::client::query;
use crate::format;
use crate::model::{Card, StorePage};
use crate::page::{Browser, Chrome, FormState, PageResult, render_status, see_other, viewer};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use std::collections::HashMap;

/// The store's query parameters, in the order they appear in URLs.
const PARAMS: [&str; 7] = ["q", "category", "platform", "capability", "protocol", "min_trust", "sort"];

/// An agent's card.
pub struct CardView {
    pub slug: String,
    pub name: String,
    pub publisher: String,
    pub description: String,
    pub rating: String,
    pub stars: String,
    pub reviews: String,
    pub installs: String,
    pub protocol: String,
    pub category: String,
    pub cold_start: bool,
    pub freemium: bool,
    pub compliance: Vec<String>,
    pub trust: i64,
}

impl From<&Card> for CardView {
    fn from(c: &Card) -> Self {
        CardView {
            slug: c.slug.clone(),
            name: c.name.clone(),
            publisher: c.publisher.clone(),
            description: c.description.clone(),
            rating: format::rating(c.rating),
            stars: c.rating.map(format::stars).unwrap_or_default(),
            reviews: format::count(c.review_count),
            installs: format::count(c.installs),
            protocol: format::protocol(&c.protocol),
            category: c.category.clone(),
            cold_start: c.cold_start,
            freemium: c.freemium,
            compliance: c.compliance.iter().map(|x| format::compliance(x)).collect(),
            trust: c.trust_score,
        }
    }
}

/// One link of a pager.
pub struct PageLink {
    pub label: String,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "store.html")]
struct StoreTemplate {
    chrome: Chrome,
    form: FormState,
    cards: Vec<CardView>,
    total: String,
    filtered: bool,
    pages: Vec<PageLink>,
    prev: Option<String>,
    next: Option<String>,
    categories: Vec<&'static str>,
    platforms: Vec<&'static str>,
    capabilities: Vec<&'static str>,
}

/// Suggestions for the filters (any value may be typed).
pub(crate) const CATEGORIES: [&str; 8] =
    ["productivity", "communication", "security", "devtools", "analytics", "sales", "research", "data"];
pub(crate) const PLATFORMS: [&str; 6] = ["Claude Desktop", "Claude Code", "Cursor", "Windsurf", "VS Code", "ChatGPT"];
pub(crate) const CAPABILITIES: [&str; 7] =
    ["reasoning", "planning", "rag", "semantic search", "code generation", "summarization", "web search"];

/// `/store?…` with `page` and the filters of `q`.
fn href(q: &HashMap<String, String>, page: i64) -> String {
    let page = page.to_string();
    let mut pairs: Vec<(&str, &str)> =
        PARAMS.iter().map(|p| (*p, q.get(*p).map(String::as_str).unwrap_or(""))).collect();
    if page != "1" {
        pairs.push(("page", &page));
    }
    format!("/store{}", query(&pairs))
}

/// The pager for page `page` of `pages`: the first, the last and two either side.
fn pager(q: &HashMap<String, String>, page: i64, pages: i64) -> Vec<PageLink> {
    let mut out: Vec<PageLink> = Vec::new();
    let mut last = 0;
    for n in 1..=pages {
        if n == 1 || n == pages || (n - page).abs() <= 2 {
            if n > last + 1 {
                out.push(PageLink { label: "…".into(), href: String::new(), current: false });
            }
            out.push(PageLink { label: n.to_string(), href: href(q, n), current: n == page });
            last = n;
        }
    }
    out
}

/// `GET /`: the store.
pub async fn home() -> axum::response::Response {
    see_other("/store")
}

/// `GET /store`.
pub async fn store(State(web): State<Web>, browser: Browser, Query(q): Query<HashMap<String, String>>) -> PageResult {
    let viewer = viewer(&web, &browser).await?;
    let mut pairs: Vec<(&str, &str)> =
        PARAMS.iter().map(|p| (*p, q.get(*p).map(String::as_str).unwrap_or(""))).collect();
    pairs.push(("page", q.get("page").map(String::as_str).unwrap_or("")));
    let reply = web.api.get(&browser.caller, &format!("/api/v1/store/agents{}", query(&pairs))).await?;
    let mut form = FormState::with(&pairs.iter().map(|(k, v)| (*k, v.to_string())).collect::<Vec<_>>());
    let filtered = PARAMS.iter().any(|p| q.get(*p).is_some_and(|v| !v.trim().is_empty() && *p != "sort"));
    let chrome = Chrome::new("Store", "store", viewer.as_ref());
    let (status, listing) = if reply.ok() {
        (StatusCode::OK, Some(reply.into_json::<StorePage>()?))
    } else {
        let f = reply.failure();
        if f.status != StatusCode::UNPROCESSABLE_ENTITY {
            return Err(f.into());
        }
        form = form.fail(&f, &[], &PARAMS.iter().chain(["page"].iter()).copied().collect::<Vec<_>>());
        (f.status, None)
    };
    let (cards, total, pages, prev, next) = match &listing {
        Some(p) => {
            let pages = (p.total + p.per_page - 1) / p.per_page.max(1);
            let prev = (p.page > 1).then(|| href(&q, p.page - 1));
            let next = (p.page < pages).then(|| href(&q, p.page + 1));
            (p.agents.iter().map(CardView::from).collect(), p.total, pager(&q, p.page, pages), prev, next)
        }
        None => (Vec::new(), 0, Vec::new(), None, None),
    };
    let page = StoreTemplate {
        chrome,
        form,
        cards,
        total: format::count(total),
        filtered,
        pages: if pages.len() > 1 { pages } else { Vec::new() },
        prev,
        next,
        categories: CATEGORIES.to_vec(),
        platforms: PLATFORMS.to_vec(),
        capabilities: CAPABILITIES.to_vec(),
    };
    Ok(render_status(status, &page))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn pager_links_keep_the_filters() {
        let q: HashMap<String, String> =
            [("q".to_string(), "web search".to_string()), ("page".to_string(), "3".to_string())].into();
        let links = pager(&q, 5, 10);
        let labels: Vec<&str> = links.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["1", "…", "3", "4", "5", "6", "7", "…", "10"]);
        assert_eq!(links[0].href, "/store?q=web+search");
        assert_eq!(links[4].href, "/store?q=web+search&page=5");
        assert!(links[4].current);
    }
}
