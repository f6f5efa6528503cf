//! The configuration's layers and parsers.

use super::*;
use std::collections::HashMap;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |k| map.get(k).cloned()
}

#[test]
fn layers_override_in_order() {
    let dir = std::env::temp_dir().join(format!("settle-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("settle.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9000\"\ndata_dir = \"/from/file\"\ndb_pool_size = 4\n",
    )
    .unwrap();
    let env = env_of(&[("SETTLE_DATA_DIR", "/from/env")]);
    let flags = FlagLayer {
        listen: Some("127.0.0.1:9100".into()),
        data_dir: None,
    };
    let c = Config::load(Some(&file), &env, &flags).unwrap();
    assert_eq!(c.listen.port(), 9100);
    assert_eq!(c.data_dir, PathBuf::from("/from/env"));
    assert_eq!(c.db_pool_size, Some(4));
    std::fs::write(&file, "lisen = \"x\"\n").unwrap();
    assert!(Config::load(Some(&file), &env, &FlagLayer::default()).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn queue_settings() {
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
    assert!(parse_duration("2 days").is_err());
    let c = Config::load(None, &env_of(&[]), &FlagLayer::default()).unwrap();
    assert_eq!(
        (c.queue.backend, c.queue.lease),
        (QueueBackend::Embedded, Duration::from_secs(30))
    );
    let env = env_of(&[("NATS_URL", "nats://n:4222"), ("SETTLE_QUEUE_LEASE", "5s")]);
    let c = Config::load(None, &env, &FlagLayer::default()).unwrap();
    assert_eq!(
        (c.queue.backend, c.queue.lease),
        (QueueBackend::Nats, Duration::from_secs(5))
    );
    let env = env_of(&[("SETTLE_QUEUE", "kafka")]);
    assert!(Config::load(None, &env, &FlagLayer::default()).is_err());
}

#[test]
fn webhook_breaker_settings() {
    let c = Config::load(None, &env_of(&[]), &FlagLayer::default()).unwrap();
    let w = &c.webhooks;
    assert_eq!(
        (
            w.breaker_window,
            w.breaker_min_requests,
            w.breaker_failure_percent,
            w.breaker_cooldown
        ),
        (Duration::from_secs(30), 10, 50, Duration::from_secs(60))
    );
    let env = env_of(&[
        ("SETTLE_WEBHOOK_BREAKER_WINDOW", "10s"),
        ("SETTLE_WEBHOOK_BREAKER_MIN_REQUESTS", "20"),
        ("SETTLE_WEBHOOK_BREAKER_FAILURE_PERCENT", "75%"),
        ("SETTLE_WEBHOOK_BREAKER_COOLDOWN_MS", "1000"),
    ]);
    let c = Config::load(None, &env, &FlagLayer::default()).unwrap();
    let w = &c.webhooks;
    assert_eq!(
        (
            w.breaker_window,
            w.breaker_min_requests,
            w.breaker_failure_percent,
            w.breaker_cooldown
        ),
        (Duration::from_secs(10), 20, 75, Duration::from_secs(1))
    );
    for bad in [
        ("SETTLE_WEBHOOK_BREAKER_FAILURE_PERCENT", "0"),
        ("SETTLE_WEBHOOK_BREAKER_FAILURE_PERCENT", "101"),
        ("SETTLE_WEBHOOK_BREAKER_FAILURES", "5"),
    ] {
        assert!(
            Config::load(None, &env_of(&[bad]), &FlagLayer::default()).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn debug_hides_the_password() {
    let c = Config {
        database_url: Some("postgres://app:hunter2@db/settle".into()),
        ..Config::default()
    };
    let shown = format!("{c:?}");
    assert!(!shown.contains("hunter2"));
    assert!(shown.contains("app:***@db"));
}

#[test]
fn commit_stream_settings() {
    let c = Config::load(None, &env_of(&[]), &FlagLayer::default()).unwrap();
    assert_eq!(c.queue.poll, Duration::from_secs(1), "the safety net's default");
    assert_eq!(c.commit_listener_url(), None, "SQLite has no listener");

    let dir = std::env::temp_dir().join(format!("settle-config-poll-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("settle.toml");
    std::fs::write(&file, "queue_poll = \"5s\"\n").unwrap();
    let c = Config::load(Some(&file), &env_of(&[]), &FlagLayer::default()).unwrap();
    assert_eq!(c.queue.poll, Duration::from_secs(5));
    let env = env_of(&[("SETTLE_QUEUE_POLL", "250ms")]);
    let c = Config::load(Some(&file), &env, &FlagLayer::default()).unwrap();
    assert_eq!(
        c.queue.poll,
        Duration::from_millis(250),
        "the environment wins over the file"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    let env = env_of(&[("DATABASE_URL", "postgres://u:hunter2@db/settle")]);
    let c = Config::load(None, &env, &FlagLayer::default()).unwrap();
    assert_eq!(
        c.commit_listener_url().as_deref(),
        Some("postgres://u:hunter2@db/settle")
    );
    let env = env_of(&[
        ("DATABASE_URL", "postgres://u:hunter2@bouncer/settle"),
        ("SETTLE_DB_LISTEN_URL", "postgres://u:hunter2@db/settle"),
    ]);
    let c = Config::load(None, &env, &FlagLayer::default()).unwrap();
    assert_eq!(
        c.commit_listener_url().as_deref(),
        Some("postgres://u:hunter2@db/settle")
    );
    assert!(!format!("{c:?}").contains("hunter2"), "no password in Debug");
}

#[test]
fn admission_settings_from_file_and_environment() {
    let dir = std::env::temp_dir().join(format!("settle-admission-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("settle.toml");
    std::fs::write(
        &file,
        "[rate_limits]\nmoney = \"50/s\"\nbulk = \"600/m\"\n\n[concurrency]\nmin_limit = 8\nmax_limit = 100\n",
    )
    .unwrap();
    let env = env_of(&[("SETTLE_RATE_LIMIT_BULK", "10/s"), ("SETTLE_ADMISSION", "off")]);
    let c = Config::load(Some(&file), &env, &FlagLayer::default()).unwrap();
    let a = &c.admission;
    assert_eq!(a.rate.money.to_string(), "50/s");
    assert_eq!(a.rate.bulk.to_string(), "10/s", "the environment wins over the file");
    assert_eq!(a.rate.standard.to_string(), "20000/s");
    assert!(a.rate.enabled);
    assert_eq!((a.concurrency.min_limit, a.concurrency.max_limit), (8, 100));
    assert!(!a.concurrency.enabled);
    for bad in [
        ("SETTLE_RATE_LIMIT_MONEY", "lots"),
        ("SETTLE_RATE_LIMITS", "maybe"),
        ("SETTLE_ADMISSION_MIN_LIMIT", "0"),
        ("SETTLE_ADMISSION_MAX_LIMIT", "4"),
        ("SETTLE_ADMISSION_TOLERANCE", "0.5"),
    ] {
        let pairs = [bad];
        let env = env_of(&pairs);
        assert!(
            Config::load(Some(&file), &env, &FlagLayer::default()).is_err(),
            "{bad:?}"
        );
    }
    std::fs::write(&file, "[rate_limits]\nmony = \"1/s\"\n").unwrap();
    assert!(Config::load(Some(&file), &env_of(&[]), &FlagLayer::default()).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
