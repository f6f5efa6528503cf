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
