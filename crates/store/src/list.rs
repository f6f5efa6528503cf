//! Keyset pagination: a page is bounded by ids, never by an offset, so its
//! cost does not grow with depth. A `created` range becomes an id range
//! because ids are UUIDv7 (time first).

use settle_domain::ids::min_uuid_at_ms;
use uuid::Uuid;

pub const DEFAULT_LIMIT: u32 = 10;
pub const MAX_LIMIT: u32 = 100;

/// Where a page starts: Stripe's `starting_after` (older than the id) or
/// `ending_before` (newer than the id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    StartingAfter(Uuid),
    EndingBefore(Uuid),
}

impl Cursor {
    pub fn id(&self) -> Uuid {
        match self {
            Cursor::StartingAfter(id) | Cursor::EndingBefore(id) => *id,
        }
    }
}

/// `created[gte|gt|lte|lt]` in Unix seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreatedRange {
    pub gte: Option<i64>,
    pub gt: Option<i64>,
    pub lte: Option<i64>,
    pub lt: Option<i64>,
}

impl CreatedRange {
    /// The inclusive id range `[lo, hi]` this range and the cursor allow.
    /// `None` when the range is empty.
    pub fn id_bounds(&self, cursor: Option<Cursor>) -> Option<(u128, u128)> {
        let at = |secs: i64| min_uuid_at_ms((secs.max(0) as u64).saturating_mul(1000));
        let mut lo: u128 = 0;
        let mut hi: u128 = u128::MAX;
        if let Some(s) = self.gte {
            lo = lo.max(at(s));
        }
        if let Some(s) = self.gt {
            lo = lo.max(at(s.saturating_add(1)));
        }
        if let Some(s) = self.lt {
            hi = hi.min(at(s).checked_sub(1)?);
        }
        if let Some(s) = self.lte {
            hi = hi.min(at(s.saturating_add(1)).checked_sub(1)?);
        }
        match cursor {
            Some(Cursor::StartingAfter(id)) => hi = hi.min(id.as_u128().checked_sub(1)?),
            Some(Cursor::EndingBefore(id)) => lo = lo.max(id.as_u128().checked_add(1)?),
            None => {}
        }
        (lo <= hi).then_some((lo, hi))
    }
}

/// One list request. `F` is the resource's filter (at most one equality).
#[derive(Debug, Clone)]
pub struct ListQuery<F> {
    pub limit: u32,
    pub cursor: Option<Cursor>,
    pub filter: Option<F>,
    pub created: CreatedRange,
}

impl<F> ListQuery<F> {
    pub fn first(limit: u32) -> Self {
        Self {
            limit,
            cursor: None,
            filter: None,
            created: CreatedRange::default(),
        }
    }
}

/// One page, newest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_bounds() {
        let r = CreatedRange {
            gte: Some(10),
            lt: Some(20),
            ..Default::default()
        };
        let (lo, hi) = r.id_bounds(None).unwrap();
        assert_eq!(lo, min_uuid_at_ms(10_000));
        assert_eq!(hi, min_uuid_at_ms(20_000) - 1);
        let r = CreatedRange {
            gt: Some(10),
            lte: Some(10),
            ..Default::default()
        };
        assert_eq!(r.id_bounds(None), None);
        let r = CreatedRange {
            gte: Some(10),
            lte: Some(10),
            ..Default::default()
        };
        assert!(r.id_bounds(None).is_some());
    }

    #[test]
    fn cursor_bounds_exclude_the_cursor() {
        let id = Uuid::from_u128(1000);
        let (lo, hi) = CreatedRange::default()
            .id_bounds(Some(Cursor::StartingAfter(id)))
            .unwrap();
        assert_eq!((lo, hi), (0, 999));
        let (lo, hi) = CreatedRange::default()
            .id_bounds(Some(Cursor::EndingBefore(id)))
            .unwrap();
        assert_eq!((lo, hi), (1001, u128::MAX));
        assert_eq!(
            CreatedRange::default().id_bounds(Some(Cursor::StartingAfter(Uuid::nil()))),
            None
        );
    }
}
