//! `/metrics` as an operator's Prometheus reads it, checked against the
//! sample rules in `ops/prometheus/settle.rules.yml`: the whole page parses
//! with an independent reader (`prometheus-parse`) and passes `promtool
//! check metrics`, and every family those rules are built on is there with
//! the type they assume, so a renamed or retyped family fails here instead
//! of leaving an alert silently empty. The rules load and pass their unit
//! tests (`settle.rules.test.yml`). Without `promtool` (Debian's
//! `prometheus` package) its checks are skipped with a notice, except under
//! `CI=true`, where that is a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use prometheus_parse::SampleType::{Counter, Gauge, Histogram};
use prometheus_parse::{LineInfo, SampleType, Scrape, Value};
use serde_json::json;
use settle::config::Config;

use crate::graphql::graphql;
use crate::support::{Backend, TestApp, both, redis_available, redis_url, run_config};
use crate::webhooks::{endpoint, receiver, settled};

const RULES: &str = "settle.rules.yml";
const RULE_TESTS: &str = "settle.rules.test.yml";

/// What the rules use (in an expression, or named in a description as the
/// place to look next) on every deployment, with the type they assume: a
/// `rate()` of a gauge or a quantile of a counter is wrong without an error.
const FAMILIES: &[(&str, SampleType)] = &[
    ("settle_requests_total", Counter),
    ("settle_request_duration_seconds", Histogram),
    ("settle_admission_limit", Gauge),
    ("settle_admission_in_flight", Gauge),
    ("settle_admission_brownout", Gauge),
    ("settle_admission_shed_total", Counter),
    ("settle_admission_queue_delay_seconds", Histogram),
    ("settle_rate_limit_checks_total", Counter),
    ("settle_queue_pending", Gauge),
    ("settle_queue_oldest_pending_seconds", Gauge),
    ("settle_queue_dead_letters", Gauge),
    ("settle_queue_relay_pending", Gauge),
    ("settle_queue_relay_lag_seconds", Gauge),
    ("settle_db_pool_max", Gauge),
    ("settle_db_pool_in_use", Gauge),
    ("settle_db_pool_waiting", Gauge),
    ("settle_db_pool_timeouts_total", Counter),
    ("settle_db_pool_acquire_wait_seconds", Histogram),
    ("settle_cache_events_total", Counter),
    ("settle_http_connections_open", Gauge),
    ("settle_http_connection_limit_reached_total", Counter),
    ("settle_http_out_requests_total", Counter),
    ("process_resident_memory_bytes", Gauge),
    ("process_open_fds", Gauge),
];

/// Shown only with a payment processor configured (`SETTLE_PROCESSOR_URL`).
const PROCESSOR_FAMILIES: &[(&str, SampleType)] = &[
    ("settle_processor_breaker_state", Gauge),
    ("settle_processor_breaker_transitions_total", Counter),
    ("settle_processor_calls_total", Counter),
];

/// Shown only with the shared cache tier (`REDIS_URL`).
const REDIS_FAMILIES: &[(&str, SampleType)] = &[
    ("settle_cache_shared_breaker_state", Gauge),
    ("settle_redis_calls_total", Counter),
    ("settle_redis_call_duration_seconds", Histogram),
];

/// The webhook delivery and telemetry families the rules' webhook alerts
/// are built on, added by the webhook observability work: until they are
/// on the page this test fails, on purpose.
const WEBHOOK_FAMILIES: &[(&str, SampleType)] = &[
    ("settle_webhook_deliveries_total", Counter),
    ("settle_webhook_attempt_duration_seconds", Histogram),
    ("settle_webhook_commit_to_receipt_seconds", Histogram),
    ("settle_webhook_breaker_state", Gauge),
    ("settle_telemetry_spans_dropped_total", Counter),
];

/// Listed per consumer only while it has messages pending or dead, so an
/// idle queue shows their type and no series.
const EMPTY_WHEN_IDLE: &[&str] = &[
    "settle_queue_pending",
    "settle_queue_oldest_pending_seconds",
    "settle_queue_dead_letters",
];

fn every_family() -> impl Iterator<Item = &'static (&'static str, SampleType)> {
    FAMILIES
        .iter()
        .chain(PROCESSOR_FAMILIES)
        .chain(REDIS_FAMILIES)
        .chain(WEBHOOK_FAMILIES)
}

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops/prometheus")
}

/// The app with every optional part whose families the rules use: a
/// payment processor (never called, as no account here is processor-backed)
/// and, where Redis runs, the shared cache tier.
async fn run_observed(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    let mut config = Config::default();
    config.queue.processor_url = Some("http://127.0.0.1:9".into());
    if redis_available() {
        config.redis_url = Some(redis_url());
    }
    run_config(backend, config, case).await;
}

both!(
    every_family_the_rules_need_is_on_the_page,
    every_family_the_rules_need_is_on_the_page_case,
    super::run_observed
);
async fn every_family_the_rules_need_is_on_the_page_case(app: &TestApp) {
    // REST and GraphQL traffic, a client error and a webhook delivered, so
    // the labelled families have series and not only their type.
    let (url, _seen) = receiver(&[200]).await;
    let (hook, _) = endpoint(app, &url, json!(["payment.succeeded"])).await;
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    app.pay(&bank, &shop, 100).await;
    assert_eq!(app.get("/v1/payments?limit=10").await.status, 200);
    let missing = app.get("/v1/accounts/acct_0000000000000000000000000Z").await;
    assert_eq!(missing.status, 404, "{}", missing.body);
    let (status, body, _) = graphql(
        app,
        &app.admin_key,
        "{ accounts(first: 1) { edges { cursor } } }",
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    settled(app, &hook, 1, "delivered").await;

    let text = page_after_delivery(app).await;
    let types = parse_lines(&text);
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("the page parses");
    check_histograms(&scrape);

    let mut needed: Vec<&(&str, SampleType)> = FAMILIES.iter().chain(PROCESSOR_FAMILIES).collect();
    if app.settle.cache().shared().is_some() {
        needed.extend(REDIS_FAMILIES);
    }
    let found = problems(&types, &scrape, needed);
    assert!(found.is_empty(), "families the rules need:\n{}", found.join("\n"));

    if let Some(lint) = promtool(&["check", "metrics"], &rules_dir(), Some(&text)) {
        assert!(
            lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
            "promtool check metrics: {}\n{}{}",
            lint.status,
            String::from_utf8_lossy(&lint.stdout),
            String::from_utf8_lossy(&lint.stderr)
        );
    }

    let found = problems(&types, &scrape, WEBHOOK_FAMILIES.iter());
    assert!(
        found.is_empty(),
        "WEBHOOK_FAMILIES, which the rules' webhook alerts need:\n{}",
        found.join("\n")
    );
}

/// `/metrics` once the delivery that just settled is counted too (it may be
/// counted a moment after it is recorded), or as it is after two seconds.
async fn page_after_delivery(app: &TestApp) -> String {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let page = app.get("/metrics").await;
        assert_eq!(page.status, 200);
        let kind = page.headers.get("content-type").and_then(|v| v.to_str().ok());
        assert_eq!(kind, Some("text/plain; version=0.0.4; charset=utf-8"));
        let text = page.body.as_str().expect("a text page").to_owned();
        let counted = text.lines().any(|l| {
            l.starts_with("settle_webhook_deliveries_total{")
                && l.contains("outcome=\"delivered\"")
                && !l.ends_with(" 0")
        });
        if counted || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads the page line by line, as `prometheus-parse`'s `Scrape` does not
/// (it skips what it cannot read): every line must be a help text, a type
/// or a sample with a number for a value, of a family typed before it and
/// typed once. Returns each family's type.
fn parse_lines(text: &str) -> BTreeMap<String, SampleType> {
    let mut types = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let at = n + 1;
        match LineInfo::parse(line) {
            LineInfo::Type {
                metric_name,
                metric_alias,
                sample_type,
            } => {
                let family = metric_alias.unwrap_or(metric_name);
                assert_ne!(sample_type, SampleType::Untyped, "line {at}: {line}");
                assert!(
                    types.insert(family.clone(), sample_type).is_none(),
                    "line {at}: {family} typed twice"
                );
            }
            LineInfo::Sample { metric_name, value, .. } => {
                assert!(value.parse::<f64>().is_ok(), "line {at}: not a number: {line}");
                assert!(
                    family_of(metric_name, &types).is_some(),
                    "line {at}: a sample of no family typed before it: {line}"
                );
            }
            LineInfo::Doc { .. } | LineInfo::Empty => {}
            LineInfo::Ignored => panic!("line {at} is not in the text format: {line:?}"),
        }
    }
    types
}

/// The family a sample belongs to: its own name, or a histogram's for its
/// `_bucket`, `_sum` and `_count` series.
fn family_of<'a>(sample: &'a str, types: &BTreeMap<String, SampleType>) -> Option<&'a str> {
    if types.contains_key(sample) {
        return Some(sample);
    }
    ["_bucket", "_sum", "_count"]
        .iter()
        .filter_map(|suffix| sample.strip_suffix(suffix))
        .find(|base| types.get(*base) == Some(&Histogram))
}

/// `histogram_quantile` needs cumulative buckets that end at `+Inf`.
fn check_histograms(scrape: &Scrape) {
    for s in &scrape.samples {
        if let Value::Histogram(buckets) = &s.value {
            assert!(
                buckets
                    .windows(2)
                    .all(|w| w[0].less_than < w[1].less_than && w[0].count <= w[1].count),
                "{} {}: buckets not cumulative: {buckets:?}",
                s.metric,
                s.labels
            );
            assert_eq!(
                buckets.last().map(|b| b.less_than),
                Some(f64::INFINITY),
                "{} {}: no +Inf bucket",
                s.metric,
                s.labels
            );
        }
    }
}

/// What is wrong with `families` on the page: missing, of another type,
/// or typed with no series (an alert on it could never fire).
fn problems<'a>(
    types: &BTreeMap<String, SampleType>,
    scrape: &Scrape,
    families: impl IntoIterator<Item = &'a (&'a str, SampleType)>,
) -> Vec<String> {
    let mut found = Vec::new();
    for &(name, kind) in families {
        match types.get(name) {
            None => found.push(format!("{name}: not on the page")),
            Some(t) if *t != kind => found.push(format!("{name}: a {t:?}, the rules need a {kind:?}")),
            Some(_) => {
                let series = scrape.samples.iter().any(|s| {
                    s.metric == name
                        && matches!(
                            (&s.value, kind),
                            (Value::Counter(_), Counter) | (Value::Gauge(_), Gauge) | (Value::Histogram(_), Histogram)
                        )
                });
                if !series && !EMPTY_WHEN_IDLE.contains(&name) {
                    found.push(format!("{name}: typed, but no series"));
                }
            }
        }
    }
    found
}

/// The settle_* and process_* families the rules file names, histograms by
/// their family name.
fn families_in_rules() -> BTreeSet<String> {
    let text = std::fs::read_to_string(rules_dir().join(RULES)).expect("the rules file");
    let histograms: BTreeSet<&str> = every_family()
        .filter(|(_, kind)| *kind == Histogram)
        .map(|(name, _)| *name)
        .collect();
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| (t.starts_with("settle_") || t.starts_with("process_")) && !t.ends_with('_'))
        .map(|t| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .filter_map(|suffix| t.strip_suffix(suffix))
                .find(|base| histograms.contains(base))
                .unwrap_or(t)
                .to_owned()
        })
        .collect()
}

/// The lists above and the rules file name the same families, so a family
/// added to a rule is checked on the page, and the lists hold no leftovers.
#[test]
fn the_lists_name_every_family_the_rules_use() {
    let used = families_in_rules();
    let listed: BTreeSet<String> = every_family().map(|(name, _)| (*name).to_owned()).collect();
    let unlisted: Vec<_> = used.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "used by {RULES} but not checked here: {unlisted:?}"
    );
    let unused: Vec<_> = listed.difference(&used).collect();
    assert!(unused.is_empty(), "checked here but not used by {RULES}: {unused:?}");
}

#[test]
fn the_rules_load_and_pass_their_unit_tests() {
    let dir = rules_dir();
    let Some(check) = promtool(&["check", "rules", "--lint-fatal", RULES], &dir, None) else {
        return;
    };
    assert!(check.status.success(), "promtool check rules:\n{}", output(&check));
    let tests = promtool(&["test", "rules", RULE_TESTS], &dir, None).expect("promtool ran once already");
    assert!(tests.status.success(), "promtool test rules:\n{}", output(&tests));
}

fn output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `promtool args` in `dir`, with `stdin` piped in; `None` (with a
/// notice) when it is not installed.
fn promtool(args: &[&str], dir: &Path, stdin: Option<&str>) -> Option<Output> {
    let child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but promtool is missing: apt-get install prometheus"
            );
            eprintln!("NOTICE: promtool not installed (apt-get install prometheus); its checks skipped");
            return None;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("write to promtool");
    }
    Some(child.wait_with_output().expect("promtool's output"))
}
