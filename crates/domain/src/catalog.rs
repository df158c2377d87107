//! Names of the catalog and of access control: protocols, version statuses, roles, scopes.

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire and database name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The value named `text`, if any.
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

string_enum!(
    /// The protocol an agent speaks.
    Protocol { Mcp = "mcp", A2a = "a2a" }
);

string_enum!(
    /// A version's lifecycle. Deprecated versions keep working; retired ones answer 410.
    VersionStatus { Active = "active", Deprecated = "deprecated", Retired = "retired" }
);

string_enum!(
    /// A member's role in an org, strongest first.
    Role { Owner = "owner", Admin = "admin", Member = "member", Viewer = "viewer" }
);

string_enum!(
    /// What an account token may do. A token with no scopes may do everything.
    Scope {
        AccountRead = "account:read",
        AccountWrite = "account:write",
        UsageRead = "usage:read",
        BillingRead = "billing:read",
        BillingWrite = "billing:write",
        TeamRead = "team:read",
        TeamWrite = "team:write",
        AgentsRead = "agents:read",
        NotificationsRead = "notifications:read",
    }
);

impl Role {
    /// May manage members, billing settings and installations.
    pub fn can_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// May change things in the org (install, create keys, publish); viewers only read.
    pub fn can_write(self) -> bool {
        !matches!(self, Role::Viewer)
    }
}

impl VersionStatus {
    /// Whether a version may move from `self` to `to`: active ⇄ deprecated, either → retired.
    /// Retirement is final.
    pub fn can_become(self, to: VersionStatus) -> bool {
        self != VersionStatus::Retired && self != to
    }
}
