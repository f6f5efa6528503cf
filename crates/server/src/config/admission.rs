//! The admission settings, from the file and the environment: rate limits
//! per API key and class, and the adaptive concurrency limit.

use std::time::Duration;

use anyhow::{Context, bail};
use settle_core::admission::{AdmissionOptions, Rate};

/// The keys of `settle.toml` that set admission.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdmissionFile {
    /// `false` turns every rate limit off.
    enabled: Option<bool>,
    money: Option<String>,
    standard: Option<String>,
    bulk: Option<String>,
}

/// The `[concurrency]` table of `settle.toml`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConcurrencyFile {
    enabled: Option<bool>,
    min_limit: Option<u32>,
    max_limit: Option<u32>,
    tolerance: Option<f64>,
    brownout_after_ms: Option<u64>,
}

fn rate(name: &str, text: &str) -> anyhow::Result<Rate> {
    Rate::parse(text)
        .map_err(anyhow::Error::msg)
        .with_context(|| name.to_owned())
}

fn check_limits(options: &AdmissionOptions) -> anyhow::Result<()> {
    let c = &options.concurrency;
    if c.min_limit == 0 || c.max_limit < c.min_limit {
        bail!(
            "the admission limits must satisfy 1 <= min ({}) <= max ({})",
            c.min_limit,
            c.max_limit
        );
    }
    if !(c.tolerance.is_finite() && c.tolerance >= 1.0) {
        bail!(
            "the admission tolerance must be a number of at least 1, not {}",
            c.tolerance
        );
    }
    Ok(())
}

pub(super) fn apply_file(
    options: &mut AdmissionOptions,
    rates: Option<AdmissionFile>,
    concurrency: Option<ConcurrencyFile>,
) -> anyhow::Result<()> {
    if let Some(f) = rates {
        if let Some(v) = f.enabled {
            options.rate.enabled = v;
        }
        for (value, slot, name) in [
            (f.money, &mut options.rate.money, "rate_limits.money"),
            (f.standard, &mut options.rate.standard, "rate_limits.standard"),
            (f.bulk, &mut options.rate.bulk, "rate_limits.bulk"),
        ] {
            if let Some(text) = value {
                *slot = rate(name, &text)?;
            }
        }
    }
    if let Some(f) = concurrency {
        let c = &mut options.concurrency;
        c.enabled = f.enabled.unwrap_or(c.enabled);
        c.min_limit = f.min_limit.unwrap_or(c.min_limit);
        c.max_limit = f.max_limit.unwrap_or(c.max_limit);
        c.tolerance = f.tolerance.unwrap_or(c.tolerance);
        if let Some(ms) = f.brownout_after_ms {
            c.brownout_after = Duration::from_millis(ms);
        }
    }
    check_limits(options)
}

/// `on`/`off` as well as the usual flags.
fn switch(name: &str, value: &str) -> anyhow::Result<bool> {
    match value {
        "on" | "true" | "1" => Ok(true),
        "off" | "false" | "0" => Ok(false),
        other => bail!("{name} `{other}` is neither on nor off"),
    }
}

pub(super) fn apply_env(options: &mut AdmissionOptions, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
    if let Some(v) = env("SETTLE_RATE_LIMITS") {
        options.rate.enabled = switch("SETTLE_RATE_LIMITS", &v)?;
    }
    for (name, slot) in [
        ("SETTLE_RATE_LIMIT_MONEY", &mut options.rate.money),
        ("SETTLE_RATE_LIMIT_STANDARD", &mut options.rate.standard),
        ("SETTLE_RATE_LIMIT_BULK", &mut options.rate.bulk),
    ] {
        if let Some(text) = env(name) {
            *slot = rate(name, &text)?;
        }
    }
    if let Some(v) = env("SETTLE_RATE_HEARTBEAT_MS") {
        let ms: u64 = v.parse().context("SETTLE_RATE_HEARTBEAT_MS must be milliseconds")?;
        options.rate.heartbeat_every = Duration::from_millis(ms.clamp(10, 60_000));
    }
    let c = &mut options.concurrency;
    if let Some(v) = env("SETTLE_ADMISSION") {
        c.enabled = switch("SETTLE_ADMISSION", &v)?;
    }
    let number = |name: &str| -> anyhow::Result<Option<u32>> {
        env(name)
            .map(|v| {
                v.parse::<u32>()
                    .with_context(|| format!("{name} must be a whole number"))
            })
            .transpose()
    };
    if let Some(n) = number("SETTLE_ADMISSION_MIN_LIMIT")? {
        c.min_limit = n;
    }
    if let Some(n) = number("SETTLE_ADMISSION_MAX_LIMIT")? {
        c.max_limit = n;
    }
    if let Some(v) = env("SETTLE_ADMISSION_TOLERANCE") {
        c.tolerance = v.parse().context("SETTLE_ADMISSION_TOLERANCE must be a number")?;
    }
    if let Some(v) = env("SETTLE_ADMISSION_BROWNOUT_AFTER_MS") {
        let ms: u64 = v
            .parse()
            .context("SETTLE_ADMISSION_BROWNOUT_AFTER_MS must be milliseconds")?;
        c.brownout_after = Duration::from_millis(ms);
    }
    check_limits(options)
}
