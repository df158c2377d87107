//! The background tasks `tollgate serve` runs beside the server, off the gateway's hot
//! path: the billing watcher (low balances, auto-recharge, budget alerts, recharges the
//! provider never answered) and the mailer (the email queue). Each look is one function
//! the tests call directly; [`run`] repeats them every `watch_interval`. Replicas may all
//! run them: every step is claimed in the database, once.

use crate::error::ApiResult;
use crate::state::AppState;
use crate::{notify, payments};
use std::future::Future;
use tollgate_domain::Nanos;
use tollgate_domain::time::{now_ms, utc_month_start};
use tollgate_integrations::email::{Email, EmailError};

/// A recharge the provider has not answered for this long is given up (a payment that
/// went through after all is still credited when its webhook arrives).
pub const RECHARGE_TIMEOUT_MS: i64 = 60 * 60 * 1000;

/// An email is tried this many times at most.
pub const EMAIL_ATTEMPTS: i64 = 5;

/// What one look of the watcher did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watched {
    /// Orgs that fell below their low-balance threshold.
    pub low_balances: usize,
    /// Recharges started.
    pub recharges: usize,
    /// Budget alerts sent.
    pub budget_alerts: usize,
    /// Recharges given up for want of an answer.
    pub timed_out: usize,
}

/// One look at balances, recharges and budgets.
pub async fn watch_billing(state: &AppState) -> ApiResult<Watched> {
    let mut done = Watched::default();
    let now = now_ms();
    let month = utc_month_start(now);
    for crossing in state.store.balance_crossings(state.config.low_balance).await? {
        let org = state.store.org(&crossing.org_id).await?;
        let recharge = crossing.recharge.filter(|_| state.payments.is_some() && crossing.in_flight.is_none());
        let notice =
            notify::low_balance(state, &org, crossing.balance, crossing.threshold, recharge.map(|r| r.amount), now);
        state.store.notify_audience(&tollgate_store::notices::Audience::OrgAdmins(org.id.clone()), &notice).await?;
        done.low_balances += 1;
        let (Some(settings), Some(provider)) = (recharge, state.payments.as_ref()) else { continue };
        if let Some(limit) = settings.monthly_limit {
            let status = state.store.recharge_status(&org.id, month).await?;
            if status.this_month.checked_add(settings.amount).is_none_or(|total| total > limit) {
                let notice = notify::recharge_limited(state, &org, limit, month);
                state
                    .store
                    .notify_audience(&tollgate_store::notices::Audience::OrgAdmins(org.id.clone()), &notice)
                    .await?;
                continue;
            }
        }
        if payments::check_amount(state, "amount", settings.amount).is_err() {
            tracing::warn!(org.id = %org.id, "auto-recharge amount outside the purchase limits; not charged");
            continue;
        }
        let Some(payment) = state.store.begin_recharge(&org.id, provider.name(), settings.amount).await? else {
            continue;
        };
        tracing::info!(org.id = %org.id, payment.id = %payment.id, "auto-recharge started");
        payments::charge_recharge(state, provider.as_ref(), &payment).await?;
        done.recharges += 1;
    }
    for stale in state.store.stale_recharges(now - RECHARGE_TIMEOUT_MS).await? {
        let org = state.store.org(&stale.org_id).await?;
        let notice =
            notify::payment_failed(state, &org, &stale, "the payment provider did not confirm it within an hour");
        if state
            .store
            .end_payment(&stale.id, "failed", Some("no confirmation from the payment provider"), Some(&notice))
            .await?
        {
            done.timed_out += 1;
        }
    }
    for watch in state.store.budgets_to_watch(month).await? {
        let spent = state.store.spend_since(&watch.account_id, month).await?;
        let level = budget_level(spent, watch.limit);
        if level <= watch.alerted {
            continue;
        }
        let org = state.store.org(&watch.org_id).await?;
        let notice = notify::budget(state, &org, spent, watch.limit, level, month);
        if state.store.budget_alert(&org.id, month, watch.limit, level, &notice).await? {
            done.budget_alerts += 1;
        }
    }
    Ok(done)
}

/// 100 when `spent` reached `limit`, 80 past 80% of it, else 0.
fn budget_level(spent: Nanos, limit: Nanos) -> i64 {
    let (spent, limit) = (i128::from(spent.0), i128::from(limit.0));
    if spent >= limit {
        100
    } else if spent * 100 >= limit * 80 {
        80
    } else {
        0
    }
}

/// What one pass of the mailer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailed {
    pub sent: usize,
    /// To be tried again later.
    pub deferred: usize,
    /// Given up, or no longer wanted.
    pub dropped: usize,
}

/// The email of a notification: its words and a link, never anything of a call.
fn email_of(state: &AppState, to: &str, title: &str, body: &str, link: Option<&str>) -> Email {
    let base = state.config.public_url.trim_end_matches('/');
    let open = link.map(|l| format!("\nOpen: {base}{l}\n")).unwrap_or_default();
    Email {
        to: to.to_string(),
        subject: title.to_string(),
        text: format!(
            "{title}\n\n{body}\n{open}\n--\nYou get this email because email notifications are on for your account. \
             Turn them off in Settings: {base}/settings\n"
        ),
    }
}

/// Sends the emails due now (when email is set up).
pub async fn send_emails(state: &AppState) -> ApiResult<Mailed> {
    let mut done = Mailed::default();
    let Some(sender) = &state.email else { return Ok(done) };
    let now = now_ms();
    for due in state.store.due_emails(now, 50).await? {
        if !due.wanted {
            state.store.finish_email(&due.id, "skipped").await?;
            done.dropped += 1;
            continue;
        }
        // Backoff: 1, 2, 4, 8 minutes between attempts.
        let retry_at = now + 60_000 * (1 << due.attempts.clamp(0, 10));
        if !state.store.claim_email(&due.id, now, retry_at).await? {
            continue;
        }
        match sender.send(&email_of(state, &due.to, &due.title, &due.body, due.link.as_deref())).await {
            Ok(()) => {
                state.store.finish_email(&due.id, "sent").await?;
                done.sent += 1;
            }
            Err(e) => {
                let give_up = matches!(e, EmailError::Permanent(_)) || due.attempts + 1 >= EMAIL_ATTEMPTS;
                tracing::warn!(notification.id = %due.id, error = %e, give_up, "an email was not sent");
                if give_up {
                    state.store.finish_email(&due.id, "failed").await?;
                    done.dropped += 1;
                } else {
                    done.deferred += 1;
                }
            }
        }
    }
    Ok(done)
}

/// Runs the watcher and the mailer every `watch_interval` until `shutdown` ends. A failed
/// look is logged and tried again at the next tick.
pub async fn run(state: AppState, shutdown: impl Future<Output = ()>) {
    let mut tick = tokio::time::interval(state.config.watch_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {
                match watch_billing(&state).await {
                    Ok(w) if w != Watched::default() => tracing::info!(
                        low_balances = w.low_balances, recharges = w.recharges, budget_alerts = w.budget_alerts,
                        timed_out = w.timed_out, "billing watched"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "the billing watcher failed"),
                }
                if let Err(e) = send_emails(&state).await {
                    tracing::warn!(error = %e, "the mailer failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_levels() {
        let limit = Nanos(50_000_000_000);
        assert_eq!(budget_level(Nanos(0), limit), 0);
        assert_eq!(budget_level(Nanos(39_999_999_999), limit), 0);
        assert_eq!(budget_level(Nanos(40_000_000_000), limit), 80);
        assert_eq!(budget_level(Nanos(49_999_999_999), limit), 80);
        assert_eq!(budget_level(Nanos(50_000_000_000), limit), 100);
        assert_eq!(budget_level(Nanos(i64::MAX), Nanos(i64::MAX - 1)), 100);
    }
}
