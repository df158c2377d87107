//! `tollgate admin …`: the operator's commands, calling the same functions as the API.

use crate::cli::{AdminCommand, open_store};
use crate::config::Config;
use crate::serve::app_state;
use anyhow::{Context, Result, anyhow, bail};
use tollgate_api::AppState;
use tollgate_domain::Nanos;
use tollgate_domain::secret::{Sealer, random_token};
use tollgate_store::Store;

/// The API's state for these commands, which seal no upstream credential (they create
/// users and grant credits). Without a configured `encryption_key` they get a throwaway
/// one: running them on PostgreSQL needs no key, and none is written into `data_dir`.
fn admin_state(config: &Config, store: Store) -> Result<AppState> {
    let mut config = config.clone();
    if config.encryption_key.is_none() {
        config.encryption_key = Some(Sealer::generate_key_hex()?);
    }
    app_state(&config, store)
}

pub async fn run(cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::CreateUser { common, email, name, password, operator } => {
            let config = common.load(Vec::new())?;
            let (store, _) = open_store(&config).await?;
            let state = admin_state(&config, store.clone())?;
            let password = password
                .or_else(|| std::env::var("TOLLGATE_ADMIN_PASSWORD").ok())
                .context("give --password or set TOLLGATE_ADMIN_PASSWORD")?;
            let (user, org) =
                tollgate_api::service::sign_up(&state, &email, &password, &name).await.map_err(|e| anyhow!("{e}"))?;
            if operator {
                store.set_operator(&user.id, true).await?;
            }
            println!(
                "created user {} ({}) with org {}{}",
                user.email,
                user.id,
                org.id,
                if operator { ", operator" } else { "" }
            );
            Ok(())
        }
        AdminCommand::MakeOperator { common, email } => {
            let config = common.load(Vec::new())?;
            let (store, _) = open_store(&config).await?;
            let (user, _) =
                store.user_by_email(&email.trim().to_ascii_lowercase()).await?.context("no user has this email")?;
            store.set_operator(&user.id, true).await?;
            println!("{} is now an operator", user.email);
            Ok(())
        }
        AdminCommand::GrantCredits { common, org, amount, memo } => {
            let config = common.load(Vec::new())?;
            let (store, _) = open_store(&config).await?;
            let state = admin_state(&config, store.clone())?;
            let amount = Nanos::parse_usd(&amount).map_err(|e| anyhow!("--amount {e}"))?;
            if amount.0 == 0 {
                bail!("--amount must be more than 0");
            }
            let org_id = if org.contains('@') {
                let (user, _) =
                    store.user_by_email(&org.trim().to_ascii_lowercase()).await?.context("no user has this email")?;
                user.personal_org_id
            } else {
                org
            };
            let key = format!("grant:cli:{}", random_token(24)?);
            let t = tollgate_api::service::grant_credits(&state, &org_id, amount, &memo, &key)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            let balance = store.ledger_account(tollgate_store::ledger::AccountKind::OrgCredit, &org_id).await?;
            println!("granted {} USD to {org_id} (transfer {}); balance now {} USD", t.amount, t.id, balance.balance);
            Ok(())
        }
    }
}
