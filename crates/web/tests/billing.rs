//! Billing: balance and what calls in flight hold, adding credits (the local provider's
//! test checkout and the result on return; a provider that fails; without a provider, the
//! operator's grant path), the monthly budget against this month's spend, auto-recharge
//! and what it did, the history with grants and card payments marked and paged, and who
//! may change what (owners and admins), in personal orgs and teams; CSRF and errors next
//! to fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{World, check_html};
use serde_json::json;
use std::sync::Arc;
use tollgate_api::{ApiConfig, AppState};
use tollgate_domain::secret::Sealer;
use tollgate_integrations::payments::{LocalPayments, PaymentProvider, Stripe, StripeConfig};
use tollgate_store::testing::TestStore;

const PUBLIC: &str = "http://127.0.0.1:8080";

/// A world whose instance takes card payments through `provider`.
async fn world_with(provider: Arc<dyn PaymentProvider>) -> World {
    let store = TestStore::new().await.unwrap();
    let sealer = Sealer::from_hex(&Sealer::generate_key_hex().unwrap()).unwrap();
    let config = ApiConfig { public_url: PUBLIC.into(), ..ApiConfig::default() };
    let state = AppState::new(store.store.clone(), config, sealer.clone()).with_payments(provider);
    let app = tollgate_api::router(state.clone())
        .merge(tollgate_web::router(state.clone(), tollgate_web::WebConfig::default()));
    World { store, state, app, sealer }
}

async fn local_world() -> World {
    world_with(Arc::new(LocalPayments::new(PUBLIC).unwrap())).await
}

#[tokio::test]
async fn the_page_shows_the_balance_the_grant_path_and_the_history() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let page = w.get("/billing", Some(&ada)).await;
    assert_eq!(page.status, StatusCode::OK);
    check_html(&page.html);
    assert_eq!(page.testid_text("balance-value"), "$100.00");
    page.assert_contains("nothing held for calls in flight");
    page.assert_contains("Card payments are not set up on this instance");
    page.assert_contains("data-testid=\"recharge-off\"");
    page.assert_lacks("data-testid=\"checkout-form\"");
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
async fn auto_recharge_settings_are_saved_and_said_not_to_fire_without_card_payments() {
    let w = World::new().await;
    let ada = w.person("ada@example.com").await;
    let ok =
        w.submit("/billing/auto-recharge", &[("enabled", "on"), ("threshold", "$5"), ("amount", "50")], &ada).await;
    assert_eq!(ok.location(), "/billing?notice=recharge_saved");
    let (_, balance) = w.api(Method::GET, "/api/v1/billing/balance", None, &ada).await;
    assert_eq!(balance["auto_recharge"], json!({"enabled": true, "threshold": "5.000000", "amount": "50.000000"}));
    let page = w.get("/billing", Some(&ada)).await;
    assert!(page.testid_text("recharge-current").starts_with("On: when the balance falls below"));
    page.assert_contains("card payments are not set up on this instance, so it does not fire");
    assert_eq!(page.testid_text("recharge-last"), "Last recharge: none yet. This month: $0.00.");
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

#[tokio::test]
async fn credits_are_bought_through_the_test_checkout_and_the_result_shown_on_return() {
    let w = local_world().await;
    let ada = w.person("ada@example.com").await;
    let page = w.get("/billing", Some(&ada)).await;
    assert_eq!(page.status, StatusCode::OK);
    check_html(&page.html);
    page.assert_contains("data-testid=\"checkout-form\"");
    page.assert_contains("no card is charged and no money moves");
    page.assert_contains("between $5.00 and $10,000.00 at a time");
    page.assert_contains("data-testid=\"no-card\"");
    page.assert_lacks("data-testid=\"grant-command\"");

    // The form sends the person to the provider's page: here, the test checkout.
    let started = w.submit("/billing/checkout", &[("amount", "$30")], &ada).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.html);
    let url = started.location().to_string();
    assert!(url.starts_with(&format!("{PUBLIC}/billing/test-checkout/pay_")), "{url}");
    let path = url.trim_start_matches(PUBLIC).to_string();
    let id = path.rsplit('/').next().unwrap().to_string();
    let checkout = w.get(&path, Some(&ada)).await;
    assert_eq!(checkout.status, StatusCode::OK);
    check_html(&checkout.html);
    assert!(checkout.testid_text("test-label").contains("no card is asked for, none is charged"));
    assert_eq!(checkout.testid_text("test-amount"), "$30.00");
    assert_eq!(checkout.testid_text("test-pay"), "Pay $30.00 (test)");
    checkout.assert_lacks("name=\"card");
    assert_eq!(w.get("/billing", Some(&ada)).await.testid_text("balance-value"), "$100.00", "nothing before paying");

    // A forged confirmation does nothing; the real one pays once and comes back.
    let forged = w.form(&path, &[("csrf", "x")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let paid = w.submit(&path, &[], &ada).await;
    assert_eq!(
        (paid.status, paid.location()),
        (StatusCode::SEE_OTHER, format!("/billing?payment={id}#add-credits").as_str())
    );
    let back = w.get(&format!("/billing?payment={id}"), Some(&ada)).await;
    check_html(&back.html);
    back.assert_contains("data-status=\"succeeded\"");
    back.assert_contains("Payment received: $30.00 was added to the balance.");
    assert_eq!(back.testid_text("balance-value"), "$130.00");
    back.assert_contains("Card payment <span class=\"badge\" data-testid=\"card-badge\">Card</span>");
    back.assert_contains("+$30.00");
    back.assert_lacks("data-testid=\"no-card\"");
    let again = w.submit(&path, &[], &ada).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "a second confirmation goes back to the result");
    assert_eq!(w.get("/billing", Some(&ada)).await.testid_text("balance-value"), "$130.00", "paid once");
    let closed = w.get(&path, Some(&ada)).await;
    assert_eq!(closed.testid_text("test-closed"), "This test payment is already succeeded.");
    closed.assert_lacks("data-testid=\"test-pay\"");

    // Leaving the checkout: said so, nothing charged.
    let left = w.submit("/billing/checkout", &[("amount", "10")], &ada).await;
    let left_id = left.location().rsplit('/').next().unwrap().to_string();
    let page = w.get(&format!("/billing?payment={left_id}&canceled=1"), Some(&ada)).await;
    page.assert_contains("data-status=\"canceled\"");
    page.assert_contains("You left the checkout; the $10.00 payment was not made and nothing was charged.");
    // Someone else's payment id shows nothing of it.
    let bob = w.person("bob@example.com").await;
    let theirs = w.get(&format!("/billing?payment={id}"), Some(&bob)).await;
    theirs.assert_contains("This payment is not one of yours");
    theirs.assert_lacks("$30.00");
    assert_eq!(w.get(&path, Some(&bob)).await.status, StatusCode::NOT_FOUND);
    assert_eq!(w.submit(&path, &[], &bob).await.status, StatusCode::NOT_FOUND);

    // Refusals next to the field, the amount kept.
    for (amount, says) in
        [("2", "between $5.00 and $10,000.00"), ("lots", "decimal number"), ("5.001", "whole number of cents")]
    {
        let bad = w.submit("/billing/checkout", &[("amount", amount)], &ada).await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{amount}");
        assert!(bad.testid_text("error-amount").contains(says), "{amount}: {}", bad.testid_text("error-amount"));
        bad.assert_contains(&format!("value=\"{amount}\""));
        check_html(&bad.html);
    }
    let forged = w.form("/billing/checkout", &[("csrf", "x"), ("amount", "10")], Some(&ada)).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn only_owners_and_admins_buy_credits_for_a_team() {
    let w = local_world().await;
    let owner = w.person("owner@example.com").await;
    let team = w.team(&owner, "Acme").await;
    let member = w.person("member@example.com").await;
    w.join(&owner, &team, &member, "member").await;
    let page = w.get("/billing", Some(&member.in_org(&team))).await;
    page.assert_contains("data-testid=\"checkout-readonly\"");
    page.assert_lacks("data-testid=\"checkout-form\"");
    let refused = w.submit("/billing/checkout", &[("amount", "10")], &member.in_org(&team)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    refused.assert_contains("owner or admin");
    let bought = w.submit("/billing/checkout", &[("amount", "10")], &owner.in_org(&team)).await;
    assert_eq!(bought.status, StatusCode::SEE_OTHER);
    let path = bought.location().trim_start_matches(PUBLIC).to_string();
    // A member reaches the test page of the team's payment but may not pay it.
    assert_eq!(w.submit(&path, &[], &member.in_org(&team)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(w.submit(&path, &[], &owner.in_org(&team)).await.status, StatusCode::SEE_OTHER);
    assert_eq!(w.get("/billing", Some(&member.in_org(&team))).await.testid_text("balance-value"), "$10.00");
}

#[tokio::test]
async fn a_payment_provider_that_does_not_answer_is_said_so_on_the_form() {
    let stripe = Stripe::new(StripeConfig {
        secret_key: "sk_test".into(),
        webhook_secret: "whsec".into(),
        api_base: "http://127.0.0.1:9".into(),
        product_name: "Tollgate credits".into(),
    })
    .unwrap();
    let w = world_with(Arc::new(stripe)).await;
    let ada = w.person("ada@example.com").await;
    let page = w.get("/billing", Some(&ada)).await;
    page.assert_contains("on Stripe's secure checkout page");
    page.assert_lacks("data-testid=\"test-payments\"");
    let down = w.submit("/billing/checkout", &[("amount", "25")], &ada).await;
    assert_eq!(down.status, StatusCode::BAD_GATEWAY);
    assert!(down.testid_text("form-error").contains("nothing was charged"), "{}", down.html);
    down.assert_contains("value=\"25\"");
    check_html(&down.html);
}

#[tokio::test]
async fn auto_recharge_shows_what_it_did() {
    let w = local_world().await;
    let ada = w.person("ada@example.com").await;
    // No card yet: the recharge fails, and the page says why.
    let saved = w
        .submit(
            "/billing/auto-recharge",
            &[("enabled", "on"), ("threshold", "120"), ("amount", "20"), ("monthly_limit", "")],
            &ada,
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    tollgate_api::tasks::watch_billing(&w.state).await.unwrap();
    let page = w.get("/billing", Some(&ada)).await;
    check_html(&page.html);
    assert!(page.testid_text("recharge-current").starts_with("On: when the balance falls below"));
    let failure = page.testid_text("recharge-failure");
    assert!(
        failure.starts_with("Last failure: No card is saved; buy credits once with a card to save one ("),
        "{failure}"
    );
    assert!(failure.ends_with("— 1 since the last success."), "{failure}");
    page.assert_contains("data-testid=\"no-card\"");

    // After a purchase (the test card saved), the next crossing recharges.
    let started = w.submit("/billing/checkout", &[("amount", "5")], &ada).await;
    let path = started.location().trim_start_matches(PUBLIC).to_string();
    w.submit(&path, &[], &ada).await;
    let limited = w
        .submit(
            "/billing/auto-recharge",
            &[("enabled", "on"), ("threshold", "120"), ("amount", "20"), ("monthly_limit", "100")],
            &ada,
        )
        .await;
    assert_eq!(limited.status, StatusCode::SEE_OTHER);
    tollgate_api::tasks::watch_billing(&w.state).await.unwrap();
    let page = w.get("/billing", Some(&ada)).await;
    assert_eq!(page.testid_text("balance-value"), "$125.00");
    let last = page.testid_text("recharge-last");
    assert!(last.starts_with("Last recharge: $20.00 on ") && last.ends_with("This month: $20.00."), "{last}");
    page.assert_contains("buy <strong>$20.00</strong>, at most $100.00 a month.");
    page.assert_contains("value=\"100.00\"");
    page.assert_contains("Auto-recharge (test payment, no card charged)");

    let bad = w
        .submit(
            "/billing/auto-recharge",
            &[("enabled", "on"), ("threshold", "120"), ("amount", "20"), ("monthly_limit", "10")],
            &ada,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.testid_text("error-monthly_limit").contains("at least the amount of one recharge"));
    check_html(&bad.html);
}
