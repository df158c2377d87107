//! Billing: balance and what calls in flight hold, the honest "add credits" path, the
//! monthly budget against this month's spend, auto-recharge, the history with grants
//! marked and paged, and who may change what (owners and admins), in personal orgs and
//! teams; CSRF and errors next to fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{World, check_html};
use serde_json::json;

#[tokio::test]
async fn the_page_shows_the_balance_the_grant_path_and_the_history() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let page = w.get("/billing", Some(&ada)).await;
    assert_eq!(page.status, StatusCode::OK);
    check_html(&page.html);
    assert_eq!(page.testid_text("balance-value"), "$100.00");
    page.assert_contains("nothing held for calls in flight");
    page.assert_contains("Card payments are not built into Tollgate yet");
    assert_eq!(page.testid_text("grant-command"), "tollgate admin grant-credits --org ada@example.com --amount 25");
    page.assert_contains("Welcome credits <span class=\"badge free\" data-testid=\"grant-badge\">Grant</span>");
    page.assert_contains("+$100.00");
    page.assert_contains("data-testid=\"no-budget\"");
    page.assert_contains("data-testid=\"budget-form\"");
    page.assert_contains("data-testid=\"recharge-form\"");
    page.assert_lacks("name=\"card");

    // An operator's grant shows up, marked, and the history pages 25 at a time.
    for i in 0..30 {
        w.grant(&ada.org_id, &format!("1.{i:02}")).await;
    }
    let page = w.get("/billing", Some(&ada)).await;
    assert_eq!(page.testid_text("balance-value"), "$134.35");
    assert_eq!(page.html.matches("data-testid=\"transaction\"").count(), 25);
    assert_eq!(page.html.matches("data-grant=\"true\"").count(), 25);
    page.assert_contains("Credit grant");
    page.assert_contains("31 transactions · Page 1 of 2");
    page.assert_contains("href=\"/billing?page=2#history\"");
    let second = w.get("/billing?page=2", Some(&ada)).await;
    assert_eq!(second.html.matches("data-testid=\"transaction\"").count(), 6);
    second.assert_contains("Welcome credits");
    second.assert_contains("rel=\"prev\"");
    check_html(&second.html);
    let bad = w.get("/billing?page=zero", Some(&ada)).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad.testid_text("history-error").is_empty());
    check_html(&bad.html);

    let signed_out = w.get("/billing", None).await;
    assert_eq!((signed_out.status, signed_out.location()), (StatusCode::SEE_OTHER, "/login?next=%2Fbilling"));
}

#[tokio::test]
async fn the_budget_is_set_shown_against_spend_and_removed() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let saved = w.submit("/billing/budget", &[("monthly_limit", "$1,250.50")], &ada).await;
    assert_eq!((saved.status, saved.location()), (StatusCode::SEE_OTHER, "/billing?notice=budget_saved"));
    let (_, balance) = w.api(Method::GET, "/api/v1/billing/balance", None, &ada).await;
    assert_eq!(balance["monthly_budget"], "1250.500000");
    let page = w.get("/billing?notice=budget_saved", Some(&ada)).await;
    page.assert_contains("The monthly budget is saved.");
    page.assert_contains("of <strong>$1,250.50</strong> this month");
    page.assert_contains("aria-label=\"0% of the monthly budget spent\"");
    page.assert_contains("value=\"1250.50\"");
    check_html(&page.html);

    let bad = w.submit("/billing/budget", &[("monthly_limit", "lots")], &ada).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!bad.testid_text("error-monthly_limit").is_empty());
    bad.assert_contains("value=\"lots\"");
    check_html(&bad.html);
    let forged = w.form("/billing/budget", &[("csrf", "x"), ("monthly_limit", "1")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let (_, balance) = w.api(Method::GET, "/api/v1/billing/balance", None, &ada).await;
    assert_eq!(balance["monthly_budget"], "1250.500000", "unchanged");

    let removed = w.submit("/billing/budget", &[("action", "remove")], &ada).await;
    assert_eq!(removed.location(), "/billing?notice=budget_removed");
    let (_, balance) = w.api(Method::GET, "/api/v1/billing/balance", None, &ada).await;
    assert_eq!(balance["monthly_budget"], serde_json::Value::Null);
}

#[tokio::test]
async fn auto_recharge_settings_are_saved_and_said_not_to_fire_yet() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let ok =
        w.submit("/billing/auto-recharge", &[("enabled", "on"), ("threshold", "$5"), ("amount", "50")], &ada).await;
    assert_eq!(ok.location(), "/billing?notice=recharge_saved");
    let (_, balance) = w.api(Method::GET, "/api/v1/billing/balance", None, &ada).await;
    assert_eq!(balance["auto_recharge"], json!({"enabled": true, "threshold": "5.000000", "amount": "50.000000"}));
    let page = w.get("/billing", Some(&ada)).await;
    assert!(page.testid_text("recharge-current").starts_with("On: when available credits fall below"));
    page.assert_contains("it never fires");
    page.assert_contains("name=\"enabled\" value=\"on\" checked");

    let small = w.submit("/billing/auto-recharge", &[("threshold", "5"), ("amount", "1")], &ada).await;
    assert_eq!(small.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(small.testid_text("error-amount").contains("5.00"));
    small.assert_contains("value=\"1\"");
    check_html(&small.html);
    let (_, balance) = w.api(Method::GET, "/api/v1/billing/balance", None, &ada).await;
    assert_eq!(balance["auto_recharge"]["amount"], "50.000000", "unchanged");
}

#[tokio::test]
async fn only_owners_and_admins_see_and_use_the_billing_controls_of_a_team() {
    let w = World::new().await;
    let owner = w.person("owner@example.com").await;
    let team = w.team(&owner, "Acme").await;
    let admin = w.person("admin@example.com").await;
    let member = w.person("member@example.com").await;
    let viewer = w.person("viewer@example.com").await;
    w.join(&owner, &team, &admin, "admin").await;
    w.join(&owner, &team, &member, "member").await;
    w.join(&owner, &team, &viewer, "viewer").await;
    w.grant(&team, "40").await;

    for (who, admin_controls) in [(&owner, true), (&admin, true), (&member, false), (&viewer, false)] {
        let browser = who.in_org(&team);
        let page = w.get("/billing", Some(&browser)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", who.email);
        check_html(&page.html);
        assert_eq!(page.testid_text("balance-value"), "$40.00", "the team's shared credits");
        page.assert_contains("the team Acme");
        assert_eq!(page.testid_text("grant-command"), format!("tollgate admin grant-credits --org {team} --amount 25"));
        assert_eq!(page.html.contains("data-testid=\"budget-form\""), admin_controls, "{}", who.email);
        assert_eq!(page.html.contains("data-testid=\"recharge-form\""), admin_controls, "{}", who.email);
        assert_eq!(page.html.contains("data-testid=\"budget-readonly\""), !admin_controls);
    }
    for who in [&member, &viewer] {
        let browser = who.in_org(&team);
        let refused = w.submit("/billing/budget", &[("monthly_limit", "1")], &browser).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", who.email);
        refused.assert_contains("owner or admin");
        check_html(&refused.html);
        let refused = w.submit("/billing/auto-recharge", &[("threshold", "1"), ("amount", "5")], &browser).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
    let saved = w.submit("/billing/budget", &[("monthly_limit", "12")], &admin.in_org(&team)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let team_page = w.get("/billing", Some(&owner.in_org(&team))).await;
    team_page.assert_contains("of <strong>$12.00</strong> this month");
    let personal = w.get("/billing", Some(&owner)).await;
    personal.assert_contains("data-testid=\"no-budget\"");

    // Someone outside the team who names it in the cookie acts in their own org.
    let outsider = w.person("out@example.com").await;
    let page = w.get("/billing", Some(&outsider.in_org(&team))).await;
    assert_eq!(page.testid_text("balance-value"), "$100.00");
    page.assert_lacks("Acme");
}
