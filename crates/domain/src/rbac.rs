//! Permissions and the built-in roles. Permissions are `resource:action`; the
//! built-in roles map to permission sets here and nowhere else, so moving
//! roles into the database changes one table, not every route.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Accounts,
    Customers,
    Payments,
    Refunds,
    Events,
    Webhooks,
    ApiKeys,
    Roles,
    Policies,
    Audit,
    Queue,
}

impl Resource {
    pub const ALL: [Resource; 11] = [
        Resource::Accounts,
        Resource::Customers,
        Resource::Payments,
        Resource::Refunds,
        Resource::Events,
        Resource::Webhooks,
        Resource::ApiKeys,
        Resource::Roles,
        Resource::Policies,
        Resource::Audit,
        Resource::Queue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Accounts => "accounts",
            Resource::Customers => "customers",
            Resource::Payments => "payments",
            Resource::Refunds => "refunds",
            Resource::Events => "events",
            Resource::Webhooks => "webhooks",
            Resource::ApiKeys => "api_keys",
            Resource::Roles => "roles",
            Resource::Policies => "policies",
            Resource::Audit => "audit",
            Resource::Queue => "queue",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Read,
    Write,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
        }
    }
}

/// `resource:action`, the unit every route and role speaks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Permission {
    pub resource: Resource,
    pub action: Action,
}

impl Permission {
    pub const fn new(resource: Resource, action: Action) -> Self {
        Self { resource, action }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let (r, a) = text.split_once(':')?;
        let resource = Resource::ALL.into_iter().find(|x| x.as_str() == r)?;
        let action = [Action::Read, Action::Write].into_iter().find(|x| x.as_str() == a)?;
        Some(Self { resource, action })
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource.as_str(), self.action.as_str())
    }
}

impl serde::Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Every permission there is, in a stable order.
pub fn all_permissions() -> Vec<Permission> {
    Resource::ALL
        .iter()
        .flat_map(|r| [Action::Read, Action::Write].map(|a| Permission::new(*r, a)))
        .collect()
}

/// A role as stored: built-in ones mirror [`builtin_permissions`] and cannot
/// be edited or deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "object", rename = "role")]
pub struct Role {
    pub id: crate::ids::RoleId,
    pub name: String,
    pub permissions: Vec<Permission>,
    pub builtin: bool,
    pub version: i64,
    pub created: i64,
}

/// A role name: 1 to 64 of `a-z`, `0-9`, `_`, `-`, starting with a letter.
pub fn parse_role_name(name: &str) -> Result<String, crate::DomainError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(crate::DomainError::invalid(
            "name",
            "a role name is 1 to 64 of a-z, 0-9, _ and -, starting with a letter",
        ))
    }
}

/// Parses a permission list, sorted and without duplicates.
pub fn parse_permissions(texts: &[String]) -> Result<Vec<Permission>, crate::DomainError> {
    let mut out = Vec::with_capacity(texts.len());
    for t in texts {
        let p = Permission::parse(t).ok_or_else(|| {
            crate::DomainError::invalid(
                "permissions",
                format!("`{t}` is not a permission (resource:read or resource:write)"),
            )
        })?;
        out.push(p);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The roles that exist from the first start.
pub const BUILTIN_ROLES: [&str; 3] = ["admin", "developer", "viewer"];

/// The permission set of a built-in role; `None` for any other name.
pub fn builtin_permissions(role: &str) -> Option<Vec<Permission>> {
    use Resource::*;
    let all = |resources: &[Resource], actions: &[Action]| {
        resources
            .iter()
            .flat_map(|r| actions.iter().map(move |a| Permission::new(*r, *a)))
            .collect::<Vec<_>>()
    };
    let business = [Accounts, Customers, Payments, Refunds, Events, Webhooks];
    match role {
        "admin" => Some(all(&Resource::ALL, &[Action::Read, Action::Write])),
        "developer" => {
            let mut p = all(&business, &[Action::Read, Action::Write]);
            p.push(Permission::new(Queue, Action::Read));
            Some(p)
        }
        "viewer" => Some(all(&business, &[Action::Read])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roles() {
        let admin = builtin_permissions("admin").unwrap();
        assert_eq!(admin.len(), 22);
        let dev = builtin_permissions("developer").unwrap();
        assert!(dev.contains(&Permission::parse("queue:read").unwrap()));
        assert!(!dev.contains(&Permission::parse("api_keys:write").unwrap()));
        let viewer = builtin_permissions("viewer").unwrap();
        assert!(viewer.iter().all(|p| p.action == Action::Read));
        assert!(builtin_permissions("root").is_none());
    }

    #[test]
    fn parse_round_trips() {
        for r in Resource::ALL {
            for a in [Action::Read, Action::Write] {
                let p = Permission::new(r, a);
                assert_eq!(Permission::parse(&p.to_string()), Some(p));
            }
        }
        assert_eq!(Permission::parse("accounts"), None);
        assert_eq!(Permission::parse("accounts:delete"), None);
    }
}
