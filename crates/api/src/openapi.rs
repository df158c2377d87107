//! The OpenAPI document, generated from the handlers' annotations. CI compares it with
//! the committed `docs/openapi.json` (see `tests/openapi.rs`).

use crate::routes::{accounts, billing, catalog, installs, orgs, usage};
use axum::response::IntoResponse;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tollgate management API",
        description = "Accounts, teams, catalog, installations, keys, billing and usage of a Tollgate instance. \
        Authenticate with the session cookie (plus X-CSRF-Token on mutations) or `Authorization: Bearer tg_usr_…`. \
        Errors are `{\"error\": {\"code\", \"message\"}}`. Money is USD as decimal strings."
    ),
    paths(
        accounts::signup,
        accounts::login,
        accounts::logout,
        accounts::me,
        accounts::update_me,
        accounts::close_account,
        accounts::create_token,
        accounts::list_tokens,
        accounts::revoke_token,
        orgs::list_orgs,
        orgs::create_org,
        orgs::get_org,
        orgs::rename_org,
        orgs::get_rate_limits,
        orgs::set_rate_limits,
        orgs::list_members,
        orgs::change_role,
        orgs::remove_member,
        orgs::invite,
        orgs::list_invitations,
        orgs::revoke_invitation,
        orgs::my_invitations,
        orgs::accept_invitation,
        orgs::notifications,
        orgs::mark_read,
        installs::install,
        installs::list_installations,
        installs::get_installation,
        installs::update_installation,
        installs::uninstall,
        installs::create_key,
        installs::list_keys,
        installs::update_key,
        installs::revoke_key,
        billing::balance,
        billing::transactions,
        billing::set_budget,
        billing::set_auto_recharge,
        billing::admin_grant,
    ),
    components(schemas(crate::views::ErrorBody))
)]
struct ApiDoc;

/// The whole document as pretty JSON.
pub fn openapi_json() -> String {
    let mut doc = ApiDoc::openapi();
    doc.merge(catalog::CatalogApi::openapi());
    doc.merge(usage::UsageApi::openapi());
    doc.merge(billing::payments::PaymentsApi::openapi());
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.to_pretty_json().unwrap_or_default()
}

pub(crate) async fn serve() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], openapi_json())
}
