//! The usage API: report, audit log, row detail and CSV export, over usage records written
//! through the gateway's own write path (`Store::settle_calls`). Every number is checked
//! against a computation over the same records in this file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{StatusCode, header};
use common::{Caller, TestApp, TestUser};
use serde_json::{Value, json};
use tollgate_domain::Nanos;
use tollgate_domain::time::{next_utc_month, now_ms, parse_instant, rfc3339, utc_month_start};
use tollgate_store::calls::{Charge, SettledCall, UsageRecord};
use tollgate_store::ledger::{AccountKind, PLATFORM};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const SAY_HI: &str = "say \"hi\", loud";
const FORMULA: &str = "=HYPERLINK(\"x\")";

/// 2026-03-02T00:00:00Z: the first day of the five-day range most checks use.
fn d0() -> i64 {
    parse_instant("2026-03-02").unwrap()
}

/// The five-day range as a query string (`to` is a date: through the end of that day).
const RANGE: &str = "from=2026-03-02&to=2026-03-06";

/// A key, and what a record made with it belongs to.
#[derive(Clone, Debug)]
struct Key {
    id: String,
    name: String,
    prefix: String,
    user_id: String,
    email: String,
    org_id: String,
    installation_id: String,
    agent_id: String,
}

/// What the test's price list says a successful call costs (the versions published below).
fn price(function: &str, method: &str, (input, output, cache): (i64, i64, i64)) -> i64 {
    match (function, method) {
        ("summarize", _) => input * 2_000 + output * 4_000 + cache * 500,
        ("translate", _) => 5_000_000,
        (SAY_HI, _) => 1_000_000,
        (_, "tools/list") => 100_000,
        _ => 0,
    }
}

/// One call to record.
struct Spec<'a> {
    id: &'a str,
    at: i64,
    key: &'a Key,
    function: &'a str,
    method: &'a str,
    tokens: (i64, i64, i64),
    counted: (i64, i64),
    latency: i64,
    status: i64,
    error: Option<&'a str>,
    free: bool,
    divergent: bool,
}

impl Spec<'_> {
    fn ok<'a>(
        id: &'a str,
        at: i64,
        key: &'a Key,
        function: &'a str,
        tokens: (i64, i64, i64),
        latency: i64,
    ) -> Spec<'a> {
        Spec {
            id,
            at,
            key,
            function,
            method: if function == "tools/list" { "tools/list" } else { "tools/call" },
            tokens,
            counted: (tokens.0, tokens.1),
            latency,
            status: 200,
            error: None,
            free: false,
            divergent: false,
        }
    }

    fn record(&self) -> UsageRecord {
        let failed = self.error.is_some() || self.status >= 400;
        let cost = if failed || self.free { 0 } else { price(self.function, self.method, self.tokens) };
        UsageRecord {
            id: self.id.into(),
            created_at: self.at,
            org_id: self.key.org_id.clone(),
            user_id: self.key.user_id.clone(),
            key_id: self.key.id.clone(),
            installation_id: self.key.installation_id.clone(),
            agent_id: self.key.agent_id.clone(),
            version: "1.0.0".into(),
            function_name: self.function.into(),
            method: self.method.into(),
            input_tokens: self.tokens.0,
            output_tokens: self.tokens.1,
            cache_tokens: self.tokens.2,
            counted_input_tokens: self.counted.0,
            counted_output_tokens: self.counted.1,
            latency_ms: self.latency,
            http_status: self.status,
            error_code: self.error.map(str::to_string),
            cost: Nanos(cost),
            fee: Nanos(cost / 5),
            free_tier: self.free,
            divergent: self.divergent,
            ..UsageRecord::default()
        }
    }
}

/// A publisher, a team (owner, member, viewer) with two installations and three keys, and
/// another org with its own installation and calls.
struct World {
    app: TestApp,
    owner: TestUser,
    member: TestUser,
    viewer: TestUser,
    other: TestUser,
    team: String,
    summarizer: String,
    searcher: String,
    other_inst: String,
    owner_key: Key,
    member_key: Key,
    search_key: Key,
    /// The team's records, every one.
    records: Vec<UsageRecord>,
    /// The other org's records.
    others: Vec<UsageRecord>,
    now: i64,
}

async fn publish(app: &TestApp, who: &Caller, slug: &str, base_fee: &str, functions: Value) {
    let agent = json!({
        "slug": slug, "name": format!("Agent {slug}"), "description": "An agent for usage tests.",
        "category": "devtools", "protocol": "mcp", "platforms": ["Cursor"], "capabilities": ["testing"],
        "tags": [], "use_cases": [], "governance": {}, "support": {}
    });
    let r = app.post("/api/v1/agents", agent, who).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let version = json!({
        "version": "1.0.0", "upstream_url": "http://127.0.0.1:9/mcp", "upstream_headers": {}, "base_fee": base_fee,
        "functions": functions, "dependencies": [], "task_timeout_seconds": 300, "cold_start": false
    });
    let r = app.post(&format!("/api/v1/agents/{slug}/versions"), version, who).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

async fn join(app: &TestApp, owner: &TestUser, team: &str, who: &TestUser, role: &str) {
    let inv = app
        .post(&format!("/api/v1/orgs/{team}/invitations"), json!({"email": who.email, "role": role}), &owner.caller())
        .await;
    assert_eq!(inv.status, StatusCode::CREATED, "{:?}", inv.body);
    let token = inv.body["token"].as_str().unwrap();
    let r = app.post(&format!("/api/v1/invitations/{token}/accept"), json!({}), &who.caller()).await;
    assert!(r.status.is_success(), "{:?}", r.body);
}

async fn key(app: &TestApp, who: &TestUser, org: &str, inst: &str, agent: &str, name: &str) -> Key {
    let r = app.post(&format!("/api/v1/installations/{inst}/keys"), json!({"name": name}), &who.in_org(org)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    Key {
        id: r.body["id"].as_str().unwrap().into(),
        name: name.into(),
        prefix: r.body["prefix"].as_str().unwrap().into(),
        user_id: who.id.clone(),
        email: who.email.clone(),
        org_id: org.into(),
        installation_id: inst.into(),
        agent_id: app.store.agent_by_slug(agent).await.unwrap().id,
    }
}

/// Writes `records` as the gateway does: charged ones with their transfers.
async fn settle(app: &TestApp, records: &[UsageRecord], publisher_org: &str) {
    let publisher = app.store.ledger_account(AccountKind::PublisherEarnings, publisher_org).await.unwrap();
    let platform = app.store.ledger_account(AccountKind::PlatformRevenue, PLATFORM).await.unwrap();
    let mut calls = Vec::new();
    for r in records {
        let org = app.store.ledger_account(AccountKind::OrgCredit, &r.org_id).await.unwrap();
        let charge = (r.cost.0 > 0).then(|| Charge {
            org_account: org.id.clone(),
            lease: None,
            publisher_account: publisher.id.clone(),
            platform_account: platform.id.clone(),
        });
        calls.push(SettledCall { record: r.clone(), charge });
    }
    let settled = app.store.settle_calls(&calls).await.unwrap();
    assert_eq!(settled.records, records.len());
}

async fn world() -> World {
    let app = TestApp::new().await;
    let publisher = app.user("publisher@example.com").await;
    let owner = app.user("owner@example.com").await;
    let member = app.user("member@example.com").await;
    let viewer = app.user("viewer@example.com").await;
    let other = app.user("other@example.com").await;
    publish(
        &app,
        &publisher.caller(),
        "summarizer",
        "0.0001",
        json!([
            {"name": "summarize", "pricing": {"model": "per_token", "input_per_million": "2.00",
             "output_per_million": "4.00", "cache_per_million": "0.50"}, "free_calls": 5, "free_reset": "lifetime"},
            {"name": "translate", "pricing": {"model": "per_request", "price": "0.005"}, "free_calls": 3, "free_reset": "monthly"},
        ]),
    )
    .await;
    publish(
        &app,
        &publisher.caller(),
        "searcher",
        "0",
        json!([{"name": SAY_HI, "pricing": {"model": "per_request", "price": "0.001"}, "free_calls": 0}]),
    )
    .await;

    let team = app.post("/api/v1/orgs", json!({"name": "Usage team"}), &owner.caller()).await.body["id"]
        .as_str()
        .unwrap()
        .to_string();
    join(&app, &owner, &team, &member, "member").await;
    join(&app, &owner, &team, &viewer, "viewer").await;
    let summarizer = app.install(&owner.in_org(&team), "summarizer").await;
    let searcher = app.install(&owner.in_org(&team), "searcher").await;
    let other_inst = app.install(&other.caller(), "summarizer").await;
    let owner_key = key(&app, &owner, &team, &summarizer, "summarizer", "owner laptop").await;
    let member_key = key(&app, &member, &team, &summarizer, "summarizer", "ci-runner").await;
    let search_key = key(&app, &owner, &team, &searcher, "searcher", "search bot").await;
    let other_key = key(&app, &other, &other.org_id, &other_inst, "summarizer", "other key").await;

    let now = now_ms();
    let month = utc_month_start(now);
    let t = |day: i64, hour: i64, min: i64| d0() + day * DAY + hour * HOUR + min * MIN;
    let (a, m, s) = (&owner_key, &member_key, &search_key);
    let specs = vec![
        Spec::ok("req_01", t(0, 1, 0), a, "summarize", (1000, 500, 200), 120),
        Spec {
            divergent: true,
            counted: (2600, 1000),
            ..Spec::ok("req_02", t(0, 1, 30), a, "summarize", (2000, 1000, 0), 340)
        },
        Spec::ok("req_03", t(0, 5, 0), m, "translate", (300, 100, 0), 80),
        Spec::ok("req_04", t(0, 5, 10), m, "tools/list", (10, 400, 0), 15),
        Spec {
            status: 502,
            error: Some("upstream_error"),
            ..Spec::ok("req_05", t(1, 2, 0), a, "summarize", (500, 0, 0), 2000)
        },
        Spec { error: Some("agent_error"), ..Spec::ok("req_06", t(1, 3, 0), m, "summarize", (400, 20, 0), 95) },
        Spec { free: true, ..Spec::ok("req_07", t(1, 9, 0), a, "translate", (50, 50, 0), 60) },
        Spec { free: true, ..Spec::ok("req_08", t(2, 0, 0), m, "summarize", (800, 300, 0), 210) },
        Spec::ok("req_09", t(2, 12, 0), s, SAY_HI, (20, 30, 0), 45),
        Spec::ok("req_10", t(2, 12, 1), s, FORMULA, (5, 5, 0), 30),
        Spec {
            status: 504,
            error: Some("upstream_timeout"),
            ..Spec::ok("req_11", t(3, 23, 0), s, SAY_HI, (20, 0, 0), 30_000)
        },
        Spec::ok("req_12", t(3, 23, 59), a, "summarize", (5000, 2500, 1000), 800),
        Spec {
            status: 429,
            error: Some("daily_limit"),
            ..Spec::ok("req_13", t(4, 6, 0), m, "summarize", (0, 0, 0), 1)
        },
        Spec::ok("req_14", t(4, 7, 0), a, "translate", (10, 10, 0), 70),
        // Just outside the range on either side.
        Spec::ok("req_15", d0() - 1, a, "summarize", (100, 50, 0), 100),
        Spec::ok("req_16", t(5, 0, 0), a, "translate", (1, 1, 0), 50),
        // Recent calls: the default range and the free quota of this month.
        Spec { free: true, ..Spec::ok("req_17", month.max(now - HOUR), a, "translate", (5, 5, 0), 40) },
        Spec { free: true, ..Spec::ok("req_18", month - DAY, a, "translate", (5, 5, 0), 40) },
        Spec { free: true, ..Spec::ok("req_19", now - 2 * HOUR, m, "summarize", (100, 100, 0), 90) },
        Spec::ok("req_20", now - 3 * DAY, s, SAY_HI, (10, 10, 0), 20),
    ];
    let records: Vec<UsageRecord> = specs.iter().map(Spec::record).collect();
    let o = &other_key;
    let others: Vec<UsageRecord> = [
        Spec { free: true, ..Spec::ok("oth_1", now - HOUR, o, "summarize", (10, 10, 0), 5) },
        Spec { free: true, ..Spec::ok("oth_2", t(1, 0, 0), o, "summarize", (10, 10, 0), 5) },
        Spec { free: true, ..Spec::ok("oth_3", month.max(now - 30 * MIN), o, "translate", (10, 10, 0), 5) },
        Spec::ok("oth_4", t(2, 1, 0), o, "summarize", (7000, 7000, 7000), 9_999),
    ]
    .iter()
    .map(Spec::record)
    .collect();
    tollgate_api::service::grant_credits(&app.state, &team, Nanos(50_000_000_000), "test", "usage-test-team")
        .await
        .unwrap();
    // Two batches, as two group commits would write them.
    settle(&app, &records[..10], &publisher.org_id).await;
    settle(&app, &records[10..], &publisher.org_id).await;
    settle(&app, &others, &publisher.org_id).await;
    World {
        app,
        owner,
        member,
        viewer,
        other,
        team,
        summarizer,
        searcher,
        other_inst,
        owner_key,
        member_key,
        search_key,
        records,
        others,
        now,
    }
}

fn failed(r: &UsageRecord) -> bool {
    r.error_code.is_some() || r.http_status >= 400
}

fn in_range(records: &[UsageRecord], from: i64, to: i64) -> Vec<&UsageRecord> {
    records.iter().filter(|r| r.created_at >= from && r.created_at < to).collect()
}

/// The whole of 2026, `[from, to)`.
fn year_2026() -> (i64, i64) {
    (parse_instant("2026-01-01").unwrap(), parse_instant("2027-01-01").unwrap())
}

fn usd(nanos: i64) -> String {
    Nanos(nanos).to_usd_string()
}

/// The nearest-rank percentile of `latencies`, computed the textbook way.
fn percentile(latencies: &[i64], p: f64) -> i64 {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.max(1) - 1]
}

/// A JSON number equal to `expected` up to JSON's decimal round trip.
fn close(got: &Value, expected: f64) {
    let got = got.as_f64().unwrap_or(f64::NAN);
    assert!((got - expected).abs() <= 1e-9 * expected.abs().max(1.0), "{got} is not {expected}");
}

/// Checks the totals of a report against `set`.
fn check_totals(body: &Value, set: &[&UsageRecord]) {
    let calls = set.len() as i64;
    let errors = set.iter().filter(|r| failed(r)).count() as i64;
    let spend: i64 = set.iter().map(|r| r.cost.0).sum();
    let sum = |f: fn(&UsageRecord) -> i64| set.iter().map(|r| f(r)).sum::<i64>();
    assert_eq!(body["calls"], calls, "{body}");
    assert_eq!(body["errors"], errors);
    close(&body["error_rate"], errors as f64 / calls as f64);
    assert_eq!(body["free_tier_calls"], set.iter().filter(|r| r.free_tier).count() as i64);
    assert_eq!(body["divergent_calls"], set.iter().filter(|r| r.divergent).count() as i64);
    assert_eq!(body["spend"], usd(spend));
    assert_eq!(
        body["tokens"],
        json!({
            "input": sum(|r| r.input_tokens), "output": sum(|r| r.output_tokens), "cache": sum(|r| r.cache_tokens),
            "counted_input": sum(|r| r.counted_input_tokens), "counted_output": sum(|r| r.counted_output_tokens),
        })
    );
    let latencies: Vec<i64> = set.iter().map(|r| r.latency_ms).collect();
    let latency = &body["latency_ms"];
    close(&latency["average"], latencies.iter().sum::<i64>() as f64 / calls as f64);
    for (name, p) in [("p50", 50.0), ("p95", 95.0), ("p99", 99.0)] {
        assert_eq!(latency[name], percentile(&latencies, p), "{name} of {latencies:?}");
    }
    // The cost split: per-token parts from billed tokens × the published prices, the rest per request.
    let charged: Vec<&&UsageRecord> = set.iter().filter(|r| r.cost.0 > 0).collect();
    let per_token: Vec<&&&UsageRecord> = charged.iter().filter(|r| r.function_name == "summarize").collect();
    let input: i64 = per_token.iter().map(|r| r.input_tokens * 2_000).sum();
    let output: i64 = per_token.iter().map(|r| r.output_tokens * 4_000).sum();
    let cache: i64 = per_token.iter().map(|r| r.cache_tokens * 500).sum();
    let requests: i64 = charged.iter().filter(|r| r.function_name != "summarize").map(|r| r.cost.0).sum();
    assert_eq!(input + output + cache + requests, spend);
    assert_eq!(
        body["cost"],
        json!({"input": usd(input), "output": usd(output), "cache": usd(cache), "requests": usd(requests)})
    );
}

fn free_quota_expected(w: &World, agent_id: &str, function: &str, free_calls: i64, monthly: bool) -> Value {
    let since = if monthly { utc_month_start(w.now) } else { 0 };
    let used = w
        .records
        .iter()
        .filter(|r| r.free_tier && r.agent_id == agent_id && r.function_name == function && r.created_at >= since)
        .count() as i64;
    json!({
        "installation_id": w.summarizer, "agent": "summarizer", "function": function, "free_calls": free_calls,
        "reset": if monthly { "monthly" } else { "lifetime" }, "used": used, "remaining": (free_calls - used).max(0),
        "resets_at": if monthly { Value::from(rfc3339(next_utc_month(w.now))) } else { Value::Null },
    })
}

#[tokio::test]
async fn report_totals_series_cost_split_and_free_quota() {
    let w = world().await;
    let (app, team) = (&w.app, &w.team);
    let owner = w.owner.in_org(team);
    let (from, to) = (d0(), d0() + 5 * DAY);
    let set = in_range(&w.records, from, to);
    assert_eq!(set.len(), 14);

    let r = app.get(&format!("/api/v1/usage?{RANGE}"), &owner).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let body = &r.body;
    assert_eq!(body["org_id"], team.as_str());
    assert_eq!(body["installation_id"], Value::Null);
    assert_eq!(
        (body["from"].as_str().unwrap(), body["to"].as_str().unwrap()),
        ("2026-03-02T00:00:00Z", "2026-03-07T00:00:00Z")
    );
    assert_eq!(body["bucket"], "day");
    check_totals(body, &set);

    // One point per day, each checked against the records of that day.
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.len(), 5);
    for (i, point) in series.iter().enumerate() {
        let day = in_range(&w.records, from + i as i64 * DAY, from + (i as i64 + 1) * DAY);
        let lat: i64 = day.iter().map(|r| r.latency_ms).sum();
        assert_eq!(point["start"], rfc3339(from + i as i64 * DAY));
        assert_eq!(point["calls"], day.len() as i64);
        assert_eq!(point["errors"], day.iter().filter(|r| failed(r)).count() as i64);
        assert_eq!(point["spend"], usd(day.iter().map(|r| r.cost.0).sum()));
        close(&point["average_latency_ms"], lat as f64 / day.len() as f64);
    }

    // Per key and per installation, highest spend first.
    let by_key = body["by_key"].as_array().unwrap();
    assert_eq!(by_key.len(), 3);
    for key in [&w.owner_key, &w.member_key, &w.search_key] {
        let mine: Vec<_> = set.iter().filter(|r| r.key_id == key.id).collect();
        let row = by_key.iter().find(|k| k["key_id"] == key.id.as_str()).unwrap();
        assert_eq!(row["name"], key.name.as_str());
        assert_eq!(row["member_id"], key.user_id.as_str());
        assert_eq!(row["member_email"], key.email.as_str());
        assert_eq!(row["calls"], mine.len() as i64);
        assert_eq!(row["errors"], mine.iter().filter(|r| failed(r)).count() as i64);
        assert_eq!(row["spend"], usd(mine.iter().map(|r| r.cost.0).sum()));
        assert_eq!(row["input_tokens"], mine.iter().map(|r| r.input_tokens).sum::<i64>());
        assert!(row["prefix"].as_str().unwrap().starts_with("tgk_"));
    }
    let spends: Vec<i64> = by_key.iter().map(|k| Nanos::parse_usd(k["spend"].as_str().unwrap()).unwrap().0).collect();
    assert!(spends.windows(2).all(|w| w[0] >= w[1]), "{spends:?}");
    let by_inst = body["by_installation"].as_array().unwrap();
    assert_eq!(by_inst.len(), 2);
    for (inst, slug) in [(&w.summarizer, "summarizer"), (&w.searcher, "searcher")] {
        let mine: Vec<_> = set.iter().filter(|r| &r.installation_id == inst).collect();
        let row = by_inst.iter().find(|i| i["installation_id"] == inst.as_str()).unwrap();
        assert_eq!(row["agent"], slug);
        assert_eq!(row["calls"], mine.len() as i64);
        assert_eq!(row["spend"], usd(mine.iter().map(|r| r.cost.0).sum()));
    }

    // Free quota left now: lifetime counts every free call ever, monthly those since the 1st.
    let summarize = free_quota_expected(&w, &w.owner_key.agent_id, "summarize", 5, false);
    let translate = free_quota_expected(&w, &w.owner_key.agent_id, "translate", 3, true);
    assert_eq!(summarize["used"], 2, "req_08 and req_19; the other org's free calls are not ours");
    assert_eq!(translate["used"], 1, "req_17 only: req_07 and req_18 are in earlier months");
    assert_eq!(body["free_quota"], json!([summarize, translate]));

    // One installation: only its records, and its free quota.
    let r = app.get(&format!("/api/v1/usage?{RANGE}&installation={}", w.searcher), &owner).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let searcher: Vec<&UsageRecord> = set.iter().copied().filter(|r| r.installation_id == w.searcher).collect();
    assert_eq!(searcher.len(), 3);
    check_totals(&r.body, &searcher);
    assert_eq!(r.body["installation_id"], w.searcher.as_str());
    assert_eq!(r.body["free_quota"], json!([]));
    assert_eq!(r.body["by_key"].as_array().unwrap().len(), 1);
    let r = app.get(&format!("/api/v1/usage?{RANGE}&installation={}", w.summarizer), &owner).await;
    check_totals(&r.body, &set.iter().copied().filter(|r| r.installation_id == w.summarizer).collect::<Vec<_>>());
    assert_eq!(r.body["free_quota"], json!([summarize, translate]));

    // Hourly buckets (the default up to two days): 24 points for one day.
    let r = app.get("/api/v1/usage?from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z", &owner).await;
    assert_eq!(r.body["bucket"], "hour");
    let hours = r.body["series"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    for (i, point) in hours.iter().enumerate() {
        let hour = in_range(&w.records, from + i as i64 * HOUR, from + (i as i64 + 1) * HOUR);
        assert_eq!(point["start"], rfc3339(from + i as i64 * HOUR));
        assert_eq!(point["calls"], hour.len() as i64, "hour {i}");
        assert_eq!(point["spend"], usd(hour.iter().map(|r| r.cost.0).sum()));
    }
    assert_eq!(hours[1]["calls"], 2);
    assert_eq!(hours[5]["calls"], 2);
    // Day buckets when asked for, even over a short range; RFC 3339 with an offset.
    let r = app.get("/api/v1/usage?from=2026-03-02T01:00:00%2B01:00&to=2026-03-04T00:00:00Z&bucket=day", &owner).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["from"], "2026-03-02T00:00:00Z");
    assert_eq!(r.body["series"].as_array().unwrap().len(), 2);
    check_totals(&r.body, &in_range(&w.records, d0(), d0() + 2 * DAY));

    // No range: the last 30 days.
    let r = app.get("/api/v1/usage", &owner).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let now = now_ms();
    let recent = in_range(&w.records, now - 30 * DAY, now);
    assert!(recent.len() >= 3, "req_17, req_19 and req_20 at least");
    check_totals(&r.body, &recent);
    assert_eq!(r.body["series"].as_array().unwrap().len(), 31, "30 days cut across 31 UTC days");

    // An empty range: zeros and nulls, not errors.
    let r = app.get("/api/v1/usage?from=2020-01-01&to=2020-01-01", &owner).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!((r.body["calls"].as_i64(), r.body["error_rate"].as_f64()), (Some(0), Some(0.0)));
    assert_eq!(r.body["latency_ms"], json!({"average": null, "p50": null, "p95": null, "p99": null}));
    assert_eq!(r.body["spend"], "0.000000");
    assert_eq!(r.body["series"].as_array().unwrap().len(), 24);

    // Spend agrees with the ledger: every charged record has its transfers.
    let account = app.store.ledger_account(AccountKind::OrgCredit, team).await.unwrap();
    let total: i64 = w.records.iter().map(|r| r.cost.0).sum();
    assert_eq!(app.store.spend_since(&account.id, 0).await.unwrap(), Nanos(total));
    let everything = app.get("/api/v1/usage?from=2026-01-01&to=2026-12-31", &owner).await;
    check_totals(&everything.body, &in_range(&w.records, year_2026().0, year_2026().1));
}

/// Which records an audit filter keeps.
type Keep<'a> = Box<dyn Fn(&UsageRecord) -> bool + 'a>;

/// The ids of `set`, newest first.
fn newest_first(set: &[&UsageRecord]) -> Vec<String> {
    let mut sorted = set.to_vec();
    sorted.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    sorted.iter().map(|r| r.id.clone()).collect()
}

fn ids(body: &Value) -> Vec<String> {
    body["rows"].as_array().unwrap().iter().map(|r| r["request_id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn audit_pages_filters_search_and_detail() {
    let w = world().await;
    let app = &w.app;
    let owner = w.owner.in_org(&w.team);
    let set = in_range(&w.records, d0(), d0() + 5 * DAY);
    let all = newest_first(&set);

    // Pages, newest first, without overlap.
    let mut seen = Vec::new();
    for page in 1..=4 {
        let r = app.get(&format!("/api/v1/usage/audit?{RANGE}&per_page=5&page={page}"), &owner).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(
            (r.body["page"].as_i64(), r.body["per_page"].as_i64(), r.body["total"].as_i64()),
            (Some(page), Some(5), Some(14))
        );
        assert_eq!(r.body["rows"].as_array().unwrap().len(), [5, 5, 4, 0][page as usize - 1]);
        seen.extend(ids(&r.body));
    }
    assert_eq!(seen, all);
    let default = app.get(&format!("/api/v1/usage/audit?{RANGE}"), &owner).await;
    assert_eq!(default.body["per_page"], 25);
    assert_eq!(ids(&default.body), all);

    // Filters, each against the same filter over the records.
    let key_name = w.member_key.name.to_uppercase();
    let keys = [&w.owner_key, &w.member_key, &w.search_key];
    // The search: the term in the function, method, request id, key name or prefix, ignoring case.
    let found = |term: &str| -> Keep {
        let term = term.to_lowercase();
        Box::new(move |r: &UsageRecord| {
            let key = keys.iter().find(|k| k.id == r.key_id).unwrap();
            [&r.function_name, &r.method, &r.id, &key.name, &key.prefix]
                .iter()
                .any(|f| f.to_lowercase().contains(&term))
        })
    };
    let cases: Vec<(String, Keep)> = vec![
        ("status=error".into(), Box::new(failed)),
        ("status=success".into(), Box::new(|r| !failed(r))),
        ("status=502".into(), Box::new(|r| r.http_status == 502)),
        ("status=200".into(), Box::new(|r| r.http_status == 200)),
        (format!("key={}", w.member_key.id), Box::new(|r| r.key_id == w.member_key.id)),
        (format!("member={}", w.member.id), Box::new(|r| r.user_id == w.member.id)),
        (format!("installation={}", w.searcher), Box::new(|r| r.installation_id == w.searcher)),
        ("function=translate".into(), Box::new(|r| r.function_name == "translate")),
        ("free_tier=true".into(), Box::new(|r| r.free_tier)),
        ("free_tier=false".into(), Box::new(|r| !r.free_tier)),
        ("divergent=true".into(), Box::new(|r| r.divergent)),
        ("q=SUMM".into(), found("summ")),
        ("q=req_03".into(), found("req_03")),
        ("q=tools%2Flist".into(), found("tools/list")),
        (format!("q={}", key_name.replace(' ', "%20")), found(&w.member_key.name)),
        (format!("q={}", w.search_key.prefix), found(&w.search_key.prefix)),
        ("q=%22hi%22".into(), found("\"hi\"")),
        ("q=%25".into(), found("%")),
        ("q=_".into(), found("_")),
        ("q=%20%20".into(), Box::new(|_| true)),
        (
            format!("installation={}&status=error&key={}", w.summarizer, w.owner_key.id),
            Box::new(|r| r.installation_id == w.summarizer && failed(r) && r.key_id == w.owner_key.id),
        ),
    ];
    for (query, keep) in &cases {
        let expected: Vec<&UsageRecord> = set.iter().copied().filter(|r| keep(r)).collect();
        let r = app.get(&format!("/api/v1/usage/audit?{RANGE}&{query}"), &owner).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
        assert_eq!(ids(&r.body), newest_first(&expected), "{query}");
        assert_eq!(r.body["total"], expected.len() as i64, "{query}");
    }

    // A row carries every column of the audit log.
    let r = app.get(&format!("/api/v1/usage/audit?{RANGE}&q=req_02"), &owner).await;
    let row = &r.body["rows"][0];
    let (_, transfer) = app.store.usage_record("req_02").await.unwrap().unwrap();
    assert!(transfer.is_some());
    let rec = w.records.iter().find(|r| r.id == "req_02").unwrap();
    let prefix = row["key_prefix"].as_str().unwrap().to_string();
    assert!(prefix.starts_with("tgk_summarizer_"));
    assert_eq!(
        *row,
        json!({
            "request_id": "req_02", "time": "2026-03-02T01:30:00Z", "installation_id": w.summarizer,
            "agent": "summarizer", "agent_name": "Agent summarizer", "version": "1.0.0", "function": "summarize",
            "method": "tools/call", "key_id": w.owner_key.id, "key_name": "owner laptop", "key_prefix": prefix,
            "member_id": w.owner.id, "member_name": "owner", "member_email": "owner@example.com",
            "input_tokens": 2000, "output_tokens": 1000, "cache_tokens": 0,
            "counted_input_tokens": 2600, "counted_output_tokens": 1000, "latency_ms": 340, "status": 200,
            "success": true, "error_code": null, "cost": usd(rec.cost.0), "free_tier": false, "divergent": true,
            "parent_task_id": null, "transfer_id": transfer,
        })
    );
    assert_eq!(usd(rec.cost.0), "0.008000");

    // The detail of one row; a failed call has its error code and no charge.
    let r = app.get("/api/v1/usage/audit/req_11", &owner).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        (&r.body["status"], &r.body["success"], &r.body["error_code"], &r.body["cost"], &r.body["transfer_id"]),
        (&json!(504), &json!(false), &json!("upstream_timeout"), &json!("0.000000"), &Value::Null)
    );
    assert_eq!(r.body["function"], SAY_HI);
    // A viewer sees the call, but not the key of another member.
    let viewer = app.get("/api/v1/usage/audit/req_11", &w.viewer.in_org(&w.team)).await;
    let mut redacted = r.body.clone();
    for field in ["key_id", "key_name", "key_prefix"] {
        assert!(redacted[field].is_string());
        redacted[field] = Value::Null;
    }
    assert_eq!(viewer.body, redacted);
    for id in ["no-such-call", "oth_4"] {
        let r = app.get(&format!("/api/v1/usage/audit/{id}"), &owner).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}");
        assert_eq!(r.body["error"]["code"], "not_found");
    }
    // Outside its org a call is not found either, even for a member of both orgs.
    assert_eq!(app.get("/api/v1/usage/audit/req_11", &w.owner.caller()).await.status, StatusCode::NOT_FOUND);
}

/// Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field, mut quoted) = (Vec::new(), Vec::new(), String::new(), false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

#[tokio::test]
async fn csv_export_quotes_fields_and_names_the_file() {
    let w = world().await;
    let app = &w.app;
    let owner = w.owner.in_org(&w.team);
    let set = in_range(&w.records, d0(), d0() + 5 * DAY);

    let r = app.get(&format!("/api/v1/usage/audit.csv?{RANGE}"), &owner).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        r.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"tollgate-usage-2026-03-02-to-2026-03-06.csv\""
    );
    assert_eq!(r.headers["x-tollgate-export-rows"], "14");
    assert_eq!(r.headers["x-tollgate-export-truncated"], "false");
    let text = r.body.as_str().unwrap().to_string();
    assert!(text.ends_with("\r\n") && !text.replace("\r\n", "").contains('\r'));
    assert!(text.contains(",\"say \"\"hi\"\", loud\","), "RFC 4180 quoting: {text}");
    let rows = parse_csv(&text);
    assert_eq!(
        rows[0].join(","),
        "time,request_id,installation_id,agent,version,function,method,key_name,key_prefix,member,input_tokens,\
         output_tokens,cache_tokens,counted_input_tokens,counted_output_tokens,latency_ms,status,error_code,cost_usd,\
         free_tier,divergent"
    );
    assert_eq!(rows.len(), 15);
    assert!(rows.iter().all(|r| r.len() == 21));
    let col = |name: &str| rows[0].iter().position(|c| c == name).unwrap();
    assert_eq!(rows[1..].iter().map(|r| r[col("request_id")].clone()).collect::<Vec<_>>(), newest_first(&set));
    for row in &rows[1..] {
        let rec = w.records.iter().find(|r| r.id == row[col("request_id")]).unwrap();
        let function = if rec.function_name == FORMULA { format!("'{FORMULA}") } else { rec.function_name.clone() };
        assert_eq!(row[col("time")], rfc3339(rec.created_at));
        assert_eq!(row[col("function")], function, "a formula is never run by a spreadsheet");
        assert_eq!(row[col("method")], rec.method);
        assert_eq!(row[col("input_tokens")], rec.input_tokens.to_string());
        assert_eq!(row[col("cache_tokens")], rec.cache_tokens.to_string());
        assert_eq!(row[col("counted_input_tokens")], rec.counted_input_tokens.to_string());
        assert_eq!(row[col("latency_ms")], rec.latency_ms.to_string());
        assert_eq!(row[col("status")], rec.http_status.to_string());
        assert_eq!(row[col("error_code")], rec.error_code.clone().unwrap_or_default());
        assert_eq!(row[col("cost_usd")], usd(rec.cost.0));
        assert_eq!(row[col("free_tier")], rec.free_tier.to_string());
        assert_eq!(row[col("divergent")], rec.divergent.to_string());
        assert_eq!(row[col("agent")], if rec.installation_id == w.searcher { "searcher" } else { "summarizer" });
        let key = [&w.owner_key, &w.member_key, &w.search_key].into_iter().find(|k| k.id == rec.key_id).unwrap();
        assert_eq!(
            (row[col("key_name")].as_str(), row[col("member")].as_str()),
            (key.name.as_str(), key.email.as_str())
        );
    }

    // One installation; the audit filters apply too.
    let r = app.get(&format!("/api/v1/usage/audit.csv?{RANGE}&installation={}", w.searcher), &owner).await;
    assert_eq!(r.headers["x-tollgate-export-rows"], "3");
    assert_eq!(parse_csv(r.body.as_str().unwrap()).len(), 4);
    let r = app.get(&format!("/api/v1/usage/audit.csv?{RANGE}&status=error"), &owner).await;
    assert_eq!(parse_csv(r.body.as_str().unwrap()).len(), 1 + set.iter().filter(|r| failed(r)).count());
    // Nothing in range: just the header.
    let r = app.get("/api/v1/usage/audit.csv?from=2020-01-01&to=2020-01-01", &owner).await;
    assert_eq!(r.body.as_str().unwrap().lines().count(), 1);
    assert_eq!(
        r.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"tollgate-usage-2020-01-01-to-2020-01-01.csv\""
    );
    // Errors are the JSON envelope, not CSV.
    let r = app.get(&format!("/api/v1/usage/audit.csv?installation={}", w.other_inst), &owner).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["error"]["code"], "not_found");
}

#[tokio::test]
async fn csv_export_reads_past_one_chunk_in_order() {
    let app = TestApp::new().await;
    let publisher = app.user("p@example.com").await;
    let user = app.user("u@example.com").await;
    publish(&app, &publisher.caller(), "bulk", "0", json!([])).await;
    let inst = app.install(&user.caller(), "bulk").await;
    let k = key(&app, &user, &user.org_id, &inst, "bulk", "bulk key").await;
    // 2,345 calls, several sharing each millisecond, so the chunks' cursor must use the id too.
    let records: Vec<UsageRecord> = (0..2_345)
        .map(|i| Spec::ok(&format!("bulk_{i:05}"), d0() + (i / 3) as i64, &k, "echo", (1, 1, 0), 1).record())
        .collect();
    settle(&app, &records, &publisher.org_id).await;
    let r = app.get(&format!("/api/v1/usage/audit.csv?{RANGE}"), &user.caller()).await;
    assert_eq!(r.headers["x-tollgate-export-rows"], "2345");
    let rows = parse_csv(r.body.as_str().unwrap());
    let got: Vec<String> = rows[1..].iter().map(|r| r[1].clone()).collect();
    assert_eq!(got, newest_first(&records.iter().collect::<Vec<_>>()));
}

#[tokio::test]
async fn percentiles_of_many_calls() {
    let app = TestApp::new().await;
    let publisher = app.user("p@example.com").await;
    let user = app.user("u@example.com").await;
    publish(&app, &publisher.caller(), "timed", "0", json!([])).await;
    let inst = app.install(&user.caller(), "timed").await;
    let k = key(&app, &user, &user.org_id, &inst, "timed", "timer").await;
    for n in [1_usize, 2, 7, 200] {
        let records: Vec<UsageRecord> = (0..n)
            .map(|i| {
                let latency = ((i * 37) % n + 1) as i64 * 3;
                Spec::ok(&format!("t{n}_{i}"), d0() + n as i64 * DAY + i as i64, &k, "echo", (0, 0, 0), latency)
                    .record()
            })
            .collect();
        settle(&app, &records, &publisher.org_id).await;
        let day = rfc3339(d0() + n as i64 * DAY);
        let next = rfc3339(d0() + (n as i64 + 1) * DAY);
        let r = app.get(&format!("/api/v1/usage?from={day}&to={next}"), &user.caller()).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        check_totals(&r.body, &records.iter().collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn bad_queries_get_clear_errors() {
    let w = world().await;
    let app = &w.app;
    let owner = w.owner.in_org(&w.team);
    for (path, field) in [
        ("/api/v1/usage?from=2026-03-06&to=2026-03-02", "from"),
        ("/api/v1/usage?from=2026-03-02T10:00:00Z&to=2026-03-02T10:00:00Z", "from"),
        ("/api/v1/usage?from=2025-01-01&to=2026-03-01", "to"),
        ("/api/v1/usage?from=yesterday", "from"),
        ("/api/v1/usage?to=2026-02-30", "to"),
        ("/api/v1/usage?from=1969-12-31", "from"),
        ("/api/v1/usage?from=2026-03-02T10:00:00+01:00", "from"),
        ("/api/v1/usage?bucket=week", "bucket"),
        ("/api/v1/usage?from=2026-01-01&to=2026-03-01&bucket=hour", "bucket"),
        ("/api/v1/usage/audit?page=0", "page"),
        ("/api/v1/usage/audit?page=two", "page"),
        ("/api/v1/usage/audit?per_page=101", "per_page"),
        ("/api/v1/usage/audit?status=teapot", "status"),
        ("/api/v1/usage/audit?status=700", "status"),
        ("/api/v1/usage/audit?free_tier=maybe", "free_tier"),
        ("/api/v1/usage/audit?divergent=2", "divergent"),
        ("/api/v1/usage/audit.csv?from=2026-03-06&to=2026-03-01", "from"),
        ("/api/v1/usage/audit.csv?from=2025-01-01&to=2026-06-01", "to"),
    ] {
        let r = app.get(path, &owner).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {:?}", r.body);
        assert_eq!(r.body["error"]["code"], "invalid_request", "{path}");
        assert_eq!(r.body["error"]["field"], field, "{path}: {:?}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().len() > 10);
    }
    let long = "x".repeat(201);
    let r = app.get(&format!("/api/v1/usage/audit?q={long}"), &owner).await;
    assert_eq!((r.status, &r.body["error"]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("q")));

    // An installation of another org answers exactly like one that does not exist.
    for base in ["/api/v1/usage", "/api/v1/usage/audit", "/api/v1/usage/audit.csv"] {
        let missing = app.get(&format!("{base}?installation=inst_nope"), &owner).await;
        let foreign = app.get(&format!("{base}?installation={}", w.other_inst), &owner).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{base}");
        assert_eq!(foreign.status, StatusCode::NOT_FOUND, "{base}");
        assert_eq!(missing.body, foreign.body, "{base}");
        assert_eq!(missing.body["error"]["message"], "installation not found");
    }
}

#[tokio::test]
async fn scopes_roles_and_tenants() {
    let w = world().await;
    let app = &w.app;
    let team = &w.team;
    let paths = [
        format!("/api/v1/usage?{RANGE}"),
        format!("/api/v1/usage/audit?{RANGE}"),
        format!("/api/v1/usage/audit.csv?{RANGE}"),
        "/api/v1/usage/audit/req_01".to_string(),
    ];
    let token = |scopes: Value| {
        let browser = w.owner.browser();
        async move {
            let r = app.post("/api/v1/tokens", json!({"name": "scoped", "scopes": scopes}), &browser).await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            r.body["token"].as_str().unwrap().to_string()
        }
    };
    let billing_only =
        Caller { bearer: Some(token(json!(["billing:read"])).await), org: Some(team.clone()), ..Caller::default() };
    let usage_only =
        Caller { bearer: Some(token(json!(["usage:read"])).await), org: Some(team.clone()), ..Caller::default() };
    let owner_view = app.get(&paths[0], &w.owner.in_org(team)).await.body;
    for path in &paths {
        let r = app.get(path, &billing_only).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert!(r.body["error"]["message"].as_str().unwrap().contains("usage:read"));
        assert_eq!(app.get(path, &usage_only).await.status, StatusCode::OK, "{path}");
        assert_eq!(app.get(path, &w.viewer.in_org(team)).await.status, StatusCode::OK, "viewers read: {path}");
        assert_eq!(app.get(path, &w.member.in_org(team)).await.status, StatusCode::OK, "{path}");
        assert_eq!(app.get(path, &Caller::default()).await.status, StatusCode::UNAUTHORIZED, "{path}");
        let outsider = app.get(path, &w.other.in_org(team)).await;
        assert_eq!(outsider.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(outsider.body["error"]["code"], "not_found");
    }
    // The browser session reads too (GET needs no CSRF token).
    assert_eq!(app.get(&paths[0], &Caller { org: Some(team.clone()), ..w.owner.browser() }).await.body, owner_view);

    // The other org sees its own calls and nothing of the team's.
    let mine = app.get("/api/v1/usage?from=2026-01-01&to=2026-12-31", &w.other.caller()).await;
    check_totals(&mine.body, &in_range(&w.others, year_2026().0, year_2026().1));
    let quota = mine.body["free_quota"].as_array().unwrap();
    assert_eq!((quota[0]["function"].as_str(), quota[0]["used"].as_i64()), (Some("summarize"), Some(2)));
    assert_eq!((quota[1]["function"].as_str(), quota[1]["used"].as_i64()), (Some("translate"), Some(1)));
    let audit = app.get("/api/v1/usage/audit?from=2026-01-01&to=2026-12-31&per_page=100", &w.other.caller()).await;
    assert_eq!(audit.body["total"], 4);
    let csv = app.get("/api/v1/usage/audit.csv?from=2026-01-01&to=2026-12-31", &w.other.caller()).await;
    for body in [mine.body.to_string(), audit.body.to_string(), csv.body.to_string()] {
        for secret in [team, &w.summarizer, &w.searcher, &w.owner_key.id, &w.member_key.id, &"req_".to_string()] {
            assert!(!body.contains(secret.as_str()), "the other org sees {secret}");
        }
    }
    // The team's personal-org neighbour: the owner's personal org has no usage at all.
    let personal = app.get("/api/v1/usage?from=2026-01-01&to=2026-12-31", &w.owner.caller()).await;
    assert_eq!(
        (personal.body["calls"].as_i64(), personal.body["free_quota"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );
}

#[tokio::test]
async fn members_and_viewers_see_only_their_own_keys() {
    let w = world().await;
    let app = &w.app;
    let (owner, member, viewer) = (w.owner.in_org(&w.team), w.member.in_org(&w.team), w.viewer.in_org(&w.team));
    let set = in_range(&w.records, d0(), d0() + 5 * DAY);

    // The same calls and totals for every role; key details only where the key listing shows them.
    let full = app.get(&format!("/api/v1/usage?{RANGE}"), &owner).await.body;
    for (who, own) in [(&member, Some(&w.member_key)), (&viewer, None)] {
        let r = app.get(&format!("/api/v1/usage?{RANGE}"), who).await;
        check_totals(&r.body, &set);
        assert_eq!(r.body["series"], full["series"]);
        for k in r.body["by_key"].as_array().unwrap() {
            let mine = own.is_some_and(|own| k["member_id"] == own.user_id.as_str());
            assert_eq!(k["key_id"].is_string(), mine, "{k}");
            assert_eq!(k["name"].is_string(), mine, "{k}");
            assert_eq!(k["prefix"].is_string(), mine, "{k}");
        }
        let audit = app.get(&format!("/api/v1/usage/audit?{RANGE}"), who).await;
        assert_eq!(ids(&audit.body), newest_first(&set));
        for row in audit.body["rows"].as_array().unwrap() {
            let mine = own.is_some_and(|own| row["member_id"] == own.user_id.as_str());
            assert_eq!(row["key_name"].is_string(), mine, "{row}");
            assert_eq!(row["key_prefix"].is_string(), mine, "{row}");
        }
        let csv = app.get(&format!("/api/v1/usage/audit.csv?{RANGE}"), who).await;
        let text = csv.body.as_str().unwrap();
        assert_eq!(text.contains(&w.member_key.name), own.is_some(), "{text}");
        assert!(!text.contains(&w.owner_key.name) && !text.contains(&w.search_key.name));
    }
    // Searching by key name cannot find another member's key.
    let owner_key = w.owner_key.name.replace(' ', "%20");
    let r = app.get(&format!("/api/v1/usage/audit?{RANGE}&q={owner_key}"), &member).await;
    assert_eq!(r.body["total"], 0);
    let r = app.get(&format!("/api/v1/usage/audit?{RANGE}&q={owner_key}"), &owner).await;
    assert_eq!(r.body["total"], set.iter().filter(|r| r.key_id == w.owner_key.id).count() as i64);
    let r = app.get(&format!("/api/v1/usage/audit?{RANGE}&q={}", w.member_key.name), &member).await;
    assert_eq!(r.body["total"], set.iter().filter(|r| r.key_id == w.member_key.id).count() as i64);
    // The rest of the search works as for anyone.
    let r = app.get(&format!("/api/v1/usage/audit?{RANGE}&q=translate"), &viewer).await;
    assert_eq!(r.body["total"], set.iter().filter(|r| r.function_name == "translate").count() as i64);
}
