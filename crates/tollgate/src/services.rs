//! The external services of the configuration (card payments, email), attached to the
//! API's state. None is required: without them credits come from operator grants and
//! notifications stay in the web UI.

use crate::config::Config;
use anyhow::{Result, anyhow};
use std::sync::Arc;
use tollgate_api::AppState;
use tollgate_integrations::email::{EmailSender, Outbox, Smtp};
use tollgate_integrations::payments::{LocalPayments, PaymentProvider, Stripe, StripeConfig};

/// `state` with the payment provider and email sender `config` asks for.
pub fn attach(config: &Config, state: AppState) -> Result<AppState> {
    let payments: Option<Arc<dyn PaymentProvider>> = match config.payments_provider.as_str() {
        "stripe" => Some(Arc::new(
            Stripe::new(StripeConfig {
                secret_key: config.stripe_secret_key.clone().unwrap_or_default(),
                webhook_secret: config.stripe_webhook_secret.clone().unwrap_or_default(),
                api_base: config.stripe_api_base.clone(),
                product_name: "Tollgate credits".into(),
            })
            .map_err(|e| anyhow!("stripe: {e}"))?,
        )),
        "local" => {
            tracing::warn!("card payments use the local test provider: no money moves; not for production");
            Some(Arc::new(LocalPayments::new(&state.config.public_url).map_err(|e| anyhow!("payments: {e}"))?))
        }
        _ => None,
    };
    let email: Option<Arc<dyn EmailSender>> = match config.email_sender.as_str() {
        "smtp" => Some(Arc::new(
            Smtp::new(config.smtp_url.as_deref().unwrap_or_default(), &config.email_from)
                .map_err(|e| anyhow!("email: {e}"))?,
        )),
        "outbox" => Some(Arc::new(
            Outbox::new(&config.data_dir.join("outbox"), &config.email_from).map_err(|e| anyhow!("email: {e}"))?,
        )),
        _ => None,
    };
    let state = match payments {
        Some(p) => state.with_payments(p),
        None => state,
    };
    Ok(match email {
        Some(e) => state.with_email(e),
        None => state,
    })
}
