use std::time::{Duration, Instant};

use settle_domain::ids::ApiKeyId;

use super::*;
use crate::pipeline::registry;

fn fixed(limit: u32) -> Admission {
    Admission::new(ConcurrencyOptions {
        min_limit: limit,
        max_limit: limit,
        initial_limit: limit,
        ..ConcurrencyOptions::default()
    })
}

#[test]
fn operations_fall_in_the_classes_the_issue_names() {
    assert_eq!(registry::CREATE_PAYMENT.class(), Class::Money);
    assert_eq!(registry::CAPTURE_PAYMENT.class(), Class::Money);
    assert_eq!(registry::CANCEL_PAYMENT.class(), Class::Money);
    assert_eq!(registry::CREATE_REFUND.class(), Class::Money);
    assert_eq!(registry::RETRIEVE_PAYMENT.class(), Class::Standard);
    assert_eq!(registry::CREATE_ACCOUNT.class(), Class::Standard);
    assert_eq!(registry::LIST_PAYMENTS.class(), Class::Bulk);
    assert_eq!(registry::REPLAY_WEBHOOKS.class(), Class::Bulk);
    assert_eq!(registry::QUEUE_SUMMARY.class(), Class::Bulk);
}

#[test]
fn rates_parse_and_refuse_nonsense() {
    assert_eq!(Rate::parse("100/s"), Ok(Rate::per_second(100)));
    assert_eq!(Rate::parse(" 60 / m ").map(|r| r.per), Ok(Duration::from_secs(60)));
    assert_eq!(Rate::parse("5/h").map(|r| r.to_string()), Ok("5/h".to_owned()));
    for bad in ["", "100", "0/s", "-1/s", "10/d", "x/s", "10/"] {
        assert!(Rate::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn gcra_allows_the_burst_then_spaces_requests() {
    let rate = Rate::per_second(3);
    let mut tat = 0;
    let now = 1_000_000;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let (verdict, next) = gcra(tat, now, rate);
        assert!(verdict.allowed);
        remaining.push(verdict.remaining);
        tat = next;
    }
    assert_eq!(remaining, [2, 1, 0]);
    let (refused, same) = gcra(tat, now, rate);
    assert!(!refused.allowed);
    assert_eq!(same, tat, "a refusal takes nothing");
    assert_eq!(refused.retry_after, Duration::from_micros(333_332));
    assert_eq!(refused.reset, Duration::from_micros(999_999));
    let (later, _) = gcra(tat, now + 333_333, rate);
    assert!(later.allowed, "one interval later one more fits");
    assert_eq!(later.remaining, 0);
}

#[tokio::test]
async fn buckets_are_per_key_and_class() {
    let limiter = RateLimiter::new(RateOptions {
        money: Rate::parse("2/m").unwrap(),
        ..RateOptions::default()
    });
    let (a, b) = (
        ApiKeyId::from_uuid(uuid::Uuid::new_v4()),
        ApiKeyId::from_uuid(uuid::Uuid::new_v4()),
    );
    for _ in 0..2 {
        assert!(limiter.check(a, Class::Money).await.unwrap().is_ok());
    }
    let refused = limiter.check(a, Class::Money).await.unwrap().unwrap_err();
    assert_eq!((refused.status, refused.code), (429, "rate_limited"));
    assert_eq!(refused.retry_after, Some(30));
    assert!(
        limiter.check(b, Class::Money).await.unwrap().is_ok(),
        "another key has its own bucket"
    );
    assert!(
        limiter.check(a, Class::Standard).await.unwrap().is_ok(),
        "another class too"
    );
    let off = RateLimiter::new(RateOptions {
        enabled: false,
        ..RateOptions::default()
    });
    assert!(off.check(a, Class::Money).await.is_none());
}

#[tokio::test]
async fn the_tightest_verdict_is_noted_for_the_headers() {
    let limiter = RateLimiter::new(RateOptions {
        money: Rate::parse("5/m").unwrap(),
        ..RateOptions::default()
    });
    let key = ApiKeyId::from_uuid(uuid::Uuid::new_v4());
    let slot = VerdictSlot::default();
    note_rate_verdicts(slot.clone(), async {
        limiter.check(key, Class::Standard).await;
        limiter.check(key, Class::Money).await;
        limiter.check(key, Class::Standard).await;
    })
    .await;
    let noted = slot.lock().unwrap().verdict.unwrap();
    assert_eq!((noted.limit, noted.remaining), (5, 4));
    let headers = noted.headers();
    assert_eq!(headers[0], ("ratelimit-limit", "5".to_owned()));
    assert_eq!(headers[2], ("ratelimit-reset", "12".to_owned()));
}

#[test]
fn lists_are_shed_first_then_single_reads_then_money() {
    let admission = fixed(10);
    let now = Instant::now();
    let mut held: Vec<_> = (0..5)
        .map(|_| admission.try_admit(Class::Money, now).unwrap())
        .collect();
    assert_eq!(
        admission.try_admit(Class::Bulk, now).unwrap_err(),
        Shed::Overloaded(Class::Bulk)
    );
    held.push(admission.try_admit(Class::Standard, now).unwrap());
    held.push(admission.try_admit(Class::Standard, now).unwrap());
    held.push(admission.try_admit(Class::Standard, now).unwrap());
    assert_eq!(
        admission.try_admit(Class::Standard, now).unwrap_err(),
        Shed::Overloaded(Class::Standard)
    );
    held.push(admission.try_admit(Class::Money, now).unwrap());
    held.push(admission.try_admit(Class::Money, now).unwrap());
    assert_eq!(
        admission.try_admit(Class::Money, now).unwrap_err(),
        Shed::Overloaded(Class::Money)
    );
    drop(held);
    assert!(
        admission.try_admit(Class::Bulk, now).is_ok(),
        "permits come back when dropped"
    );
    let seen = admission.snapshot();
    assert_eq!(seen.shed, [1, 1, 1]);
    assert_eq!(seen.admitted, [7, 3, 1]);
    assert_eq!(seen.in_flight, [0, 0, 0]);
    let failure = Shed::Overloaded(Class::Bulk).failure();
    assert_eq!(
        (failure.status, failure.code, failure.retry_after),
        (503, "overloaded", Some(1))
    );
}

#[test]
fn turned_off_it_admits_everything() {
    let admission = Admission::new(ConcurrencyOptions {
        enabled: false,
        min_limit: 1,
        max_limit: 1,
        ..ConcurrencyOptions::default()
    });
    let now = Instant::now();
    let held: Vec<_> = (0..50)
        .map(|_| admission.try_admit(Class::Bulk, now).unwrap())
        .collect();
    assert_eq!(admission.snapshot().in_flight[2], 50);
    drop(held);
}

#[test]
fn under_pressure_latency_past_the_tolerance_shrinks_the_limit_and_good_latency_grows_it() {
    let admission = Admission::new(ConcurrencyOptions {
        min_limit: 4,
        max_limit: 1000,
        initial_limit: 100,
        ..ConcurrencyOptions::default()
    });
    for _ in 0..5 {
        for _ in 0..10 {
            admission.sample(Class::Money, Duration::from_millis(2));
        }
        admission.tick_now();
    }
    assert_eq!(admission.limit(), 100, "far below the limit it is not tuned");
    for _ in 0..20 {
        for _ in 0..10 {
            admission.sample(Class::Money, Duration::from_millis(20));
        }
        admission.tick_now();
    }
    assert_eq!(
        admission.limit(),
        100,
        "slow, but far below the limit: not tuned either"
    );
    for _ in 0..20 {
        for _ in 0..10 {
            admission.sample(Class::Money, Duration::from_millis(20));
        }
        admission.note_demand();
        admission.tick_now();
    }
    let shrunk = admission.limit();
    assert!(shrunk < 20, "ten times the baseline shrinks the limit: {shrunk}");
    for _ in 0..20 {
        for _ in 0..10 {
            admission.sample(Class::Money, Duration::from_millis(2));
        }
        admission.note_demand();
        admission.tick_now();
    }
    assert!(
        admission.limit() > shrunk,
        "good latency under demand grows it: {}",
        admission.limit()
    );
}

#[test]
fn a_list_slower_than_a_payment_is_not_congestion() {
    let tuned = Admission::new(ConcurrencyOptions {
        min_limit: 4,
        max_limit: 1000,
        initial_limit: 50,
        ..ConcurrencyOptions::default()
    });
    for tick in 0..10 {
        for _ in 0..10 {
            tuned.sample(Class::Money, Duration::from_millis(2));
            tuned.sample(Class::Bulk, Duration::from_millis(40));
        }
        // The first tick sets the baselines; ticks that shed never do.
        if tick > 0 {
            tuned.note_demand();
        }
        tuned.tick_now();
    }
    assert!(
        tuned.limit() > 50,
        "each class is measured against its own baseline: {}",
        tuned.limit()
    );
}

#[test]
fn latency_held_under_shedding_never_becomes_the_baseline() {
    let admission = Admission::new(ConcurrencyOptions {
        min_limit: 4,
        max_limit: 1000,
        initial_limit: 100,
        ..ConcurrencyOptions::default()
    });
    for _ in 0..10 {
        admission.sample(Class::Money, Duration::from_millis(2));
    }
    admission.tick_now();
    for _ in 0..30 {
        for _ in 0..10 {
            admission.sample(Class::Money, Duration::from_millis(30));
        }
        admission.note_demand();
        admission.tick_now();
    }
    assert_eq!(
        admission.limit(),
        4,
        "fifteen times the unshed baseline: down to the floor"
    );
}

#[test]
fn sustained_shedding_turns_the_brownout_on() {
    let admission = Admission::new(ConcurrencyOptions {
        min_limit: 2,
        max_limit: 2,
        initial_limit: 2,
        brownout_after: Duration::ZERO,
        ..ConcurrencyOptions::default()
    });
    let now = Instant::now();
    let held = [
        admission.try_admit(Class::Money, now).unwrap(),
        admission.try_admit(Class::Money, now).unwrap(),
    ];
    assert_eq!(
        admission.try_admit(Class::Standard, now).unwrap_err(),
        Shed::Overloaded(Class::Standard)
    );
    admission.tick_now();
    assert_eq!(
        admission.try_admit(Class::Money, now).unwrap_err(),
        Shed::Overloaded(Class::Money)
    );
    admission.tick_now();
    assert!(admission.snapshot().brownout);
    drop(held);
    assert_eq!(
        admission.try_admit(Class::Bulk, now).unwrap_err(),
        Shed::Brownout(Class::Bulk)
    );
    assert!(
        admission.try_admit(Class::Standard, now).is_ok(),
        "single reads are still served"
    );
    assert_eq!(admission.snapshot().browned_out[2], 1);
}
