//! Card payments, auto-recharge and email in the real binary, on SQLite and (with
//! `TOLLGATE_TEST_POSTGRES_URL`) PostgreSQL: `tollgate serve` configured with the local
//! payment provider and the outbox takes a test payment, its background watcher
//! auto-recharges an org that falls below its threshold, and the notifications arrive as
//! `.eml` files; a Stripe configuration without its keys is refused at start. See
//! `harness/mod.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::{Server, account, databases, get, http, post, text};
use serde_json::json;
use std::time::{Duration, Instant};

/// Waits up to 20 s for `check` to hold.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The emails in the outbox: their text, oldest first.
fn outbox(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<_> = match std::fs::read_dir(dir.join("outbox")) {
        Ok(entries) => {
            entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect()
        }
        Err(_) => Vec::new(),
    };
    files.sort();
    files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect()
}

#[test]
fn serve_takes_a_test_payment_auto_recharges_and_emails_the_notifications() {
    for db in databases("payments") {
        let mut command = db.serve_command(&[]);
        command
            .env("TOLLGATE_PAYMENTS_PROVIDER", "local")
            .env("TOLLGATE_EMAIL_SENDER", "outbox")
            .env("TOLLGATE_EMAIL_FROM", "Tollgate <billing@tollgate.test>")
            .env("TOLLGATE_BILLING_WATCH_INTERVAL_MS", "200");
        let server = Server::spawn(command, db.dir.join("serve.log"));
        let base = format!("http://127.0.0.1:{}", server.port());
        let token = account(&base, "ada@example.com");
        let auth = format!("Bearer {token}");

        let started = post(&base, &token, "/api/v1/billing/checkout", json!({"amount": "25"}));
        let id = started["id"].as_str().unwrap().to_string();
        assert_eq!(started["url"], format!("{base}/billing/test-checkout/{id}"), "{}", db.name);
        let page = http(&base, "GET", &format!("/billing/test-checkout/{id}"), &[("Authorization", &auth)], "");
        assert_eq!(page.status, 303, "the page is for a signed-in browser: {}", page.body);
        let paid = http(
            &base,
            "POST",
            &format!("/api/v1/billing/payments/{id}/test-confirm"),
            &[("Authorization", &auth)],
            "",
        );
        assert_eq!(paid.status, 200, "{}", paid.body);
        assert_eq!(get(&base, &token, "/api/v1/billing/balance")["balance"], "125.000000");

        // Auto-recharge above the balance: the watcher recharges within a tick or two.
        let settings = json!({"enabled": true, "threshold": "200", "amount": "30"}).to_string();
        let r = http(&base, "PUT", "/api/v1/billing/auto-recharge", &[("Authorization", &auth)], &settings);
        assert_eq!(r.status, 200, "{}", r.body);
        eventually("the recharge", || get(&base, &token, "/api/v1/billing/balance")["balance"] == "155.000000");
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(
            get(&base, &token, "/api/v1/billing/balance")["balance"],
            "155.000000",
            "{}: once per crossing",
            db.name
        );

        eventually("three emails", || outbox(&db.dir).len() >= 3);
        let mails = outbox(&db.dir);
        assert_eq!(mails.len(), 3, "{}: {mails:#?}", db.name);
        for subject in ["Payment received", "Low balance", "Auto-recharge succeeded"] {
            assert!(mails.iter().any(|m| m.contains(&format!("Subject: {subject}\r\n"))), "{}: no {subject}", db.name);
        }
        assert!(
            mails
                .iter()
                .all(|m| m.contains("To: ada@example.com\r\n") && m.contains("From: Tollgate <billing@tollgate.test>"))
        );
        assert!(mails.iter().all(|m| !m.contains(&token)), "no secret in an email");
        server.stop();
    }
}

#[test]
fn a_stripe_configuration_without_its_keys_is_refused_at_start() {
    for db in databases("payments_config") {
        let mut command = db.serve_command(&[]);
        command.env("TOLLGATE_PAYMENTS_PROVIDER", "stripe").env("TOLLGATE_STRIPE_SECRET_KEY", "sk_test_only");
        let out = command.output().unwrap();
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{}", db.name);
        assert!(stderr.contains("needs stripe_secret_key and stripe_webhook_secret"), "{stderr}");
        assert!(!stderr.contains("sk_test_only"), "the key is not printed: {stderr}");
    }
}
