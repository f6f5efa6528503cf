//! Every operation's typed input, and what it does. A face fills these from
//! its wire format (a REST body and path, a GraphQL input object, a gRPC
//! message) and hands them to [`crate::Settle::execute`]; everything after
//! that (rules, domain validation, the store) is the same for all faces.

pub mod accounts;
pub mod api_keys;
pub mod customers;
pub mod events;
pub mod payments;
pub mod policies;
pub mod queue;
pub mod refunds;
pub mod roles;
pub mod webhook_stats;
pub mod webhooks;

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use settle_domain::metadata::Metadata;
use settle_domain::rbac::Resource;
use settle_store::ListQuery;

use crate::pipeline::Failure;
use crate::policy::ResourceAttrs;

/// The common parameters of a list: the page (limit, cursor, created
/// range), at most one equality filter as the client named it, and the
/// relations to expand. Faces parse the page; the operation checks the
/// filter, whose values are typed by resource.
#[derive(Debug, Clone, Serialize)]
pub struct ListParams {
    #[serde(skip)]
    pub query: ListQuery<()>,
    pub filter: Option<(String, String)>,
    pub expand: Vec<String>,
}

impl ListParams {
    pub fn new(query: ListQuery<()>) -> Self {
        Self {
            query,
            filter: None,
            expand: Vec::new(),
        }
    }

    /// Sets the equality filter from the ones a face offers as separate
    /// arguments (GraphQL, gRPC): at most one may be given, as on REST.
    pub fn one_filter<'a>(
        mut self,
        filters: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Self, Failure> {
        let mut given = filters.into_iter().filter_map(|(k, v)| v.map(|v| (k, v)));
        self.filter = given.next().map(|(k, v)| (k.to_owned(), v.to_owned()));
        if let Some((second, _)) = given.next() {
            return Err(Failure::invalid(
                "parameter_invalid",
                second,
                "At most one equality filter is allowed per list.",
            ));
        }
        Ok(self)
    }

    /// The same page with the resource's typed filter.
    pub fn with_filter<F>(&self, filter: Option<F>) -> ListQuery<F> {
        ListQuery {
            limit: self.query.limit,
            cursor: self.query.cursor,
            filter,
            created: self.query.created,
        }
    }
}

/// Metadata from a create request; absent means empty.
pub fn metadata(map: Option<BTreeMap<String, String>>) -> Result<Metadata, Failure> {
    Ok(Metadata::parse(map.unwrap_or_default())?)
}

/// An id given as a parameter (`source` in a body, `customer` in a filter)
/// that is malformed names nothing: 400 `resource_missing` naming it.
pub fn id_param<T>(param: &'static str, text: &str, parse: fn(&str) -> Option<T>) -> Result<T, Failure> {
    parse(text).ok_or_else(|| Failure::names_nothing(param))
}

/// 400 `parameter_invalid` naming `param`.
pub fn invalid(param: &'static str, message: impl Into<String>) -> Failure {
    Failure::invalid("parameter_invalid", param, message)
}

/// The attributes a policy sees for an operation on one object named by
/// id: `account` always (Cedar's `resource.account`), `payment` for every
/// resource but accounts, as the guard gave them before operations were
/// typed, and `id` (`resource.id` of the kinds without attributes of
/// their own, such as a customer).
pub fn object_attributes(resource: Resource, id: &str) -> ResourceAttrs {
    let id = (!id.is_empty()).then(|| id.to_owned());
    ResourceAttrs {
        account: id.clone(),
        payment: if resource == Resource::Accounts {
            None
        } else {
            id.clone()
        },
        id,
        ..ResourceAttrs::default()
    }
}

/// For optional fields that have no meaning for `null` (numbers such as
/// `amount_to_capture`): absent takes the default, an explicit `null` is a
/// 400 naming the field, so a client's bug never silently becomes "all".
pub fn not_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)?
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom("null is not allowed here; leave the field out for its default"))
}

/// For PATCH fields where `null` clears and absence keeps: `Some(None)` vs
/// `None`.
pub fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An object shown once with a secret that is never stored with it (a new
/// API key, a webhook endpoint's signing secret): the object's JSON plus
/// `secret`. An idempotent replay has only what the store kept, the object.
#[derive(Debug, Clone)]
pub struct WithSecret<T> {
    pub object: T,
    pub secret: String,
}

impl<T: Serialize> Serialize for WithSecret<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut json = serde_json::to_value(&self.object).map_err(serde::ser::Error::custom)?;
        if let Some(map) = json.as_object_mut() {
            map.insert("secret".into(), serde_json::Value::String(self.secret.clone()));
        }
        json.serialize(s)
    }
}

/// Operations on one object named by an id in the input (a path on REST):
/// the face sets it after reading the rest of the input.
pub trait Targeted: Sized {
    fn with_id(self, id: String) -> Self;
}

/// Declares an operation on the object named by the input's `id` whose
/// input is only that id: a read, a delete, an action with no parameters.
macro_rules! by_id {
    ($(#[$doc:meta])* $name:ident, $spec:path, $resource:ident, $output:ty, |$settle:ident, $ctx:ident, $id:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[serde(default, skip_deserializing)]
            pub id: String,
        }

        impl $crate::ops::Targeted for $name {
            fn with_id(mut self, id: String) -> Self {
                self.id = id;
                self
            }
        }

        impl $crate::pipeline::Operation for $name {
            type Output = $output;
            const SPEC: &'static $crate::pipeline::OperationSpec = &$spec;

            fn attributes(&self) -> $crate::policy::ResourceAttrs {
                $crate::ops::object_attributes(settle_domain::rbac::Resource::$resource, &self.id)
            }

            async fn run(
                self,
                $settle: &$crate::Settle,
                $ctx: &$crate::pipeline::OperationContext,
            ) -> Result<$output, $crate::pipeline::Failure> {
                let $id = self.id;
                let _ = &$ctx;
                Ok($body.await?)
            }
        }
    };
}

/// Declares a list of one resource whose page takes no filter.
macro_rules! plain_list {
    ($(#[$doc:meta])* $name:ident, $spec:path, $item:ty, |$settle:ident, $query:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, serde::Serialize)]
        pub struct $name(pub $crate::ops::ListParams);

        impl $crate::pipeline::Operation for $name {
            type Output = settle_store::Page<$item>;
            const SPEC: &'static $crate::pipeline::OperationSpec = &$spec;

            async fn run(
                self,
                $settle: &$crate::Settle,
                _ctx: &$crate::pipeline::OperationContext,
            ) -> Result<Self::Output, $crate::pipeline::Failure> {
                let $query = self.0.query;
                Ok($body.await?)
            }
        }
    };
}

pub(crate) use {by_id, plain_list};
