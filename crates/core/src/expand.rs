//! `expand[]` (Stripe's semantics): a field holding an object's id is
//! replaced by the object itself, nested up to four levels
//! (`data.payment.source.customer` on a list counts `data`). Served by
//! batched loads: one statement per kind of object per level, whatever the
//! page size, never one per object. An expanded object is shown only when
//! the key may read it (its resource's read permission, then policies); a
//! refusal names the permission rather than silently leaving the id.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;
use settle_domain::ids::{AccountId, CustomerId, PaymentId, RefundId};
use settle_domain::rbac::{Action, Permission, Resource};

use crate::Settle;
use crate::ops::object_attributes;
use crate::pipeline::{Failure, OperationContext};

/// How deep an expansion may go, counting `data` on lists.
pub const MAX_DEPTH: usize = 4;

/// The objects expansion knows, and the fields that point at them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Account,
    Customer,
    Payment,
    Refund,
    LedgerEntry,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Customer => "customer",
            Kind::Payment => "payment",
            Kind::Refund => "refund",
            Kind::LedgerEntry => "ledger entry",
        }
    }

    /// What `field` of this kind holds the id of, if it may be expanded.
    fn relation(self, field: &str) -> Option<Kind> {
        match (self, field) {
            (Kind::Payment, "customer") | (Kind::Account, "customer") => Some(Kind::Customer),
            (Kind::Payment, "source" | "destination") | (Kind::LedgerEntry, "account") => Some(Kind::Account),
            (Kind::Refund, "payment") | (Kind::LedgerEntry, "payment") => Some(Kind::Payment),
            (Kind::LedgerEntry, "refund") => Some(Kind::Refund),
            _ => None,
        }
    }

    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Payment => &["customer", "source", "destination"],
            Kind::Account => &["customer"],
            Kind::Refund => &["payment"],
            Kind::LedgerEntry => &["account", "payment", "refund"],
            Kind::Customer => &[],
        }
    }

    fn resource(self) -> Resource {
        match self {
            Kind::Account | Kind::LedgerEntry => Resource::Accounts,
            Kind::Customer => Resource::Customers,
            Kind::Payment => Resource::Payments,
            Kind::Refund => Resource::Refunds,
        }
    }
}

/// The fields to expand under one object, each with what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node(BTreeMap<String, (Kind, Node)>);

/// A checked set of `expand[]` paths for objects of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expansion {
    root: Kind,
    tree: Node,
}

fn refuse(message: String) -> Failure {
    Failure::invalid("parameter_invalid", "expand", message)
}

impl Expansion {
    /// Checks `paths` for objects of `root`, shown alone or (`list`) as the
    /// `data` of a page. `None` when there is nothing to expand.
    pub fn parse(root: Kind, list: bool, paths: &[String]) -> Result<Option<Self>, Failure> {
        if paths.is_empty() {
            return Ok(None);
        }
        let mut tree = Node::default();
        for path in paths {
            let segments: Vec<&str> = path.split('.').collect();
            if segments.len() > MAX_DEPTH {
                return Err(refuse(format!(
                    "`{path}` is deeper than {MAX_DEPTH} levels; expand less at once."
                )));
            }
            let rest = if list {
                match segments.split_first() {
                    Some((&"data", rest)) if !rest.is_empty() => rest,
                    _ => {
                        return Err(refuse(format!(
                            "`{path}`: on a list, expand the objects of the page, e.g. `data.{}`.",
                            root.fields().first().copied().unwrap_or("customer")
                        )));
                    }
                }
            } else {
                &segments[..]
            };
            let (mut kind, mut node) = (root, &mut tree);
            for field in rest {
                let Some(target) = kind.relation(field) else {
                    return Err(refuse(format!(
                        "`{path}`: `{field}` cannot be expanded on a {}{}",
                        kind.name(),
                        match kind.fields() {
                            [] => " (it has nothing to expand).".to_owned(),
                            fields => format!("; it can expand {}.", fields.join(", ")),
                        }
                    )));
                };
                let entry = node.0.entry((*field).to_owned()).or_insert((target, Node::default()));
                kind = target;
                node = &mut entry.1;
            }
        }
        Ok(Some(Self { root, tree }))
    }
}

/// One place an id waits to become an object: the index of the top-level
/// object, the JSON pointer to the field, and what to expand beneath it.
struct Slot<'a> {
    top: usize,
    pointer: String,
    kind: Kind,
    below: &'a Node,
}

impl Settle {
    /// Expands `objects` (serialized objects of the expansion's root kind)
    /// level by level: at each level one load per kind of object.
    pub async fn expand(
        &self,
        ctx: &OperationContext,
        expansion: &Expansion,
        mut objects: Vec<Value>,
    ) -> Result<Vec<Value>, Failure> {
        let mut slots: Vec<Slot<'_>> = (0..objects.len())
            .map(|top| Slot {
                top,
                pointer: String::new(),
                kind: expansion.root,
                below: &expansion.tree,
            })
            .collect();
        while !slots.is_empty() {
            // The fields of this level, each with the id it holds now.
            let mut wanted: Vec<(Slot<'_>, String)> = Vec::new();
            for slot in &slots {
                for (field, (kind, below)) in &slot.below.0 {
                    let pointer = format!("{}/{field}", slot.pointer);
                    if let Some(Value::String(id)) = objects[slot.top].pointer(&pointer) {
                        let next = Slot {
                            top: slot.top,
                            pointer,
                            kind: *kind,
                            below,
                        };
                        wanted.push((next, id.clone()));
                    }
                }
            }
            let mut by_kind: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
            for (slot, id) in &wanted {
                by_kind.entry(slot.kind).or_default().push(id.clone());
            }
            // Each object with how many fields it goes into: the last one
            // takes it, the others a copy (most objects fill one field).
            let mut uses: HashMap<(Kind, &str), usize> = HashMap::new();
            for (slot, id) in &wanted {
                *uses.entry((slot.kind, id.as_str())).or_default() += 1;
            }
            let mut loaded: HashMap<(Kind, String), (Value, usize)> = HashMap::new();
            for (kind, ids) in by_kind {
                for (id, object) in self.load_for_expansion(ctx, kind, ids).await? {
                    let n = uses.get(&(kind, id.as_str())).copied().unwrap_or(0);
                    loaded.insert((kind, id), (object, n));
                }
            }
            let mut next_level = Vec::new();
            for (slot, id) in wanted {
                let key = (slot.kind, id);
                let object = match loaded.get_mut(&key) {
                    None => continue, // gone since: the id stays
                    Some((object, left)) if *left > 1 => {
                        *left -= 1;
                        object.clone()
                    }
                    Some(_) => match loaded.remove(&key) {
                        Some((object, _)) => object,
                        None => continue,
                    },
                };
                if let Some(field) = objects[slot.top].pointer_mut(&slot.pointer) {
                    *field = object;
                }
                if !slot.below.0.is_empty() {
                    next_level.push(slot);
                }
            }
            slots = next_level;
        }
        Ok(objects)
    }

    /// The objects of `kind` with these ids, as JSON by id, in one
    /// statement, after checking the key may read each of them.
    async fn load_for_expansion(
        &self,
        ctx: &OperationContext,
        kind: Kind,
        mut ids: Vec<String>,
    ) -> Result<Vec<(String, Value)>, Failure> {
        let permission = Permission::new(kind.resource(), Action::Read);
        if !ctx.principal.allows(permission) {
            return Err(crate::ServiceError::Forbidden(permission).into());
        }
        ids.sort();
        ids.dedup();
        let objects = match kind {
            Kind::Account => json_by_id(
                self.store
                    .accounts_by_ids(&ids.iter().filter_map(|i| AccountId::parse(i)).collect::<Vec<_>>())
                    .await?,
            ),
            Kind::Customer => json_by_id(
                self.store
                    .customers_by_ids(&ids.iter().filter_map(|i| CustomerId::parse(i)).collect::<Vec<_>>())
                    .await?,
            ),
            Kind::Payment => json_by_id(
                self.store
                    .payments_by_ids(&ids.iter().filter_map(|i| PaymentId::parse(i)).collect::<Vec<_>>())
                    .await?,
            ),
            Kind::Refund => json_by_id(
                self.store
                    .refunds_by_ids(&ids.iter().filter_map(|i| RefundId::parse(i)).collect::<Vec<_>>())
                    .await?,
            ),
            Kind::LedgerEntry => Ok(Vec::new()),
        }?;
        for (id, _) in &objects {
            self.check_policy(
                &ctx.engine,
                &ctx.principal,
                permission,
                &object_attributes(kind.resource(), id),
            )?;
        }
        Ok(objects)
    }
}

/// Each object's JSON by the id it shows (read back from the JSON: no
/// second formatting of the id).
fn json_by_id<T: Serialize>(objects: Vec<T>) -> Result<Vec<(String, Value)>, Failure> {
    objects
        .iter()
        .map(|o| {
            let json = serde_json::to_value(o).map_err(|_| Failure::internal())?;
            let id = json.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
            Ok((id, json))
        })
        .collect()
}

/// An object as shown: its JSON as read (through the read cache), or with
/// relations expanded. `T` names what it is; the JSON is what a client gets.
#[derive(Debug, Clone)]
pub struct Shown<T> {
    /// The object's JSON as read, and how the cache answered.
    pub read: crate::cache::Cached,
    /// The JSON with relations expanded, when `expand[]` asked for any.
    pub expanded: Option<Value>,
    kind: std::marker::PhantomData<fn() -> T>,
}

impl<T> Shown<T> {
    /// An object read through the cache, nothing expanded.
    pub fn cached(read: crate::cache::Cached) -> Self {
        Shown {
            read,
            expanded: None,
            kind: std::marker::PhantomData,
        }
    }

    /// The object's version, for `ETag` and `If-Match` (`None` for objects
    /// never edited).
    pub fn version(&self) -> Option<i64> {
        self.read.version
    }
}

impl<T> Serialize for Shown<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.expanded {
            Some(json) => json.serialize(s),
            None => {
                let raw: &serde_json::value::RawValue =
                    serde_json::from_slice(&self.read.json).map_err(serde::ser::Error::custom)?;
                raw.serialize(s)
            }
        }
    }
}

/// A page as shown: its objects, or their JSON with relations expanded.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub page: settle_store::Page<T>,
    pub expanded: Option<Vec<Value>>,
}

/// As a page: `{"data", "has_more"}`, the data expanded or not.
impl<T: Serialize> Serialize for Listed<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Listed", 2)?;
        match &self.expanded {
            Some(data) => st.serialize_field("data", data)?,
            None => st.serialize_field("data", &self.page.data)?,
        }
        st.serialize_field("has_more", &self.page.has_more)?;
        st.end()
    }
}

impl Settle {
    /// `object` with `paths` expanded (a retrieve's `expand[]`).
    pub async fn show<T>(
        &self,
        ctx: &OperationContext,
        kind: Kind,
        paths: &[String],
        read: crate::cache::Cached,
    ) -> Result<Shown<T>, Failure> {
        let Some(expansion) = Expansion::parse(kind, false, paths)? else {
            return Ok(Shown::cached(read));
        };
        if crate::cache::only_cached_now() {
            // Expanding reads the database, which overload keeps this read from.
            return Err(crate::ServiceError::NotCached.into());
        }
        let json = serde_json::from_slice(&read.json).map_err(|_| Failure::internal())?;
        let mut out = self.expand(ctx, &expansion, vec![json]).await?;
        let mut shown = Shown::cached(read);
        shown.expanded = out.pop();
        Ok(shown)
    }

    /// `page` with `paths` (each starting `data.`) expanded.
    pub async fn show_page<T: Serialize>(
        &self,
        ctx: &OperationContext,
        kind: Kind,
        paths: &[String],
        page: settle_store::Page<T>,
    ) -> Result<Listed<T>, Failure> {
        let Some(expansion) = Expansion::parse(kind, true, paths)? else {
            return Ok(Listed { page, expanded: None });
        };
        let json = page
            .data
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Failure::internal())?;
        let expanded = self.expand(ctx, &expansion, json).await?;
        Ok(Listed {
            page,
            expanded: Some(expanded),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn paths_follow_relations_and_stop_at_four_levels() {
        assert!(Expansion::parse(Kind::Payment, false, &[]).unwrap().is_none());
        assert!(Expansion::parse(Kind::Payment, false, &paths(&["customer", "source.customer"])).is_ok());
        assert!(Expansion::parse(Kind::Refund, true, &paths(&["data.payment.source.customer"])).is_ok());
        let deep = Expansion::parse(
            Kind::LedgerEntry,
            true,
            &paths(&["data.refund.payment.source.customer"]),
        );
        assert_eq!(deep.unwrap_err().param.as_deref(), Some("expand"));
        let unknown = Expansion::parse(Kind::Payment, false, &paths(&["amount"])).unwrap_err();
        assert_eq!((unknown.status, unknown.param.as_deref()), (400, Some("expand")));
        let bare_on_list = Expansion::parse(Kind::Payment, true, &paths(&["customer"])).unwrap_err();
        assert_eq!(bare_on_list.param.as_deref(), Some("expand"));
        assert!(Expansion::parse(Kind::Customer, false, &paths(&["account"])).is_err());
    }

    #[test]
    fn repeated_and_shared_prefixes_merge() {
        let e = Expansion::parse(
            Kind::Refund,
            false,
            &paths(&["payment", "payment.source", "payment.destination", "payment"]),
        )
        .unwrap()
        .unwrap();
        let (kind, below) = &e.tree.0["payment"];
        assert_eq!(*kind, Kind::Payment);
        assert_eq!(below.0.len(), 2);
    }
}
