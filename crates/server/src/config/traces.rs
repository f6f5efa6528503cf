//! Trace export, configured only by OpenTelemetry's standard variables so
//! that Settle drops into an existing collector setup unchanged. Off unless
//! an OTLP endpoint is given.

use std::time::Duration;

use anyhow::{Context, bail};
use settle_trace::Sampler;

/// How spans leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf` (OpenTelemetry's default): POST to `/v1/traces`.
    HttpProtobuf,
    /// `grpc`: the collector's `TraceService/Export`.
    Grpc,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TraceConfig {
    /// Where spans go: for `http/protobuf` the full traces URL, for `grpc`
    /// the collector's address.
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    /// `OTEL_SERVICE_NAME` (default `settle`).
    pub service_name: String,
    pub sampler: Sampler,
    /// Spans waiting for export at most (`OTEL_BSP_MAX_QUEUE_SIZE`); more
    /// are dropped and counted, never waited for.
    pub queue: usize,
    /// Spans per export at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
    pub batch: usize,
    /// The longest a span waits for its batch (`OTEL_BSP_SCHEDULE_DELAY`, ms).
    pub delay: Duration,
    /// One export's limit (`OTEL_EXPORTER_OTLP_TIMEOUT`, ms).
    pub timeout: Duration,
}

fn number(env: &dyn Fn(&str) -> Option<String>, name: &str, default: u64, range: (u64, u64)) -> anyhow::Result<u64> {
    match env(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (range.0..=range.1).contains(n))
            .with_context(|| format!("{name} must be a number from {} to {}", range.0, range.1)),
    }
}

/// The trace export the environment asks for; `None` when it asks for none.
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Option<TraceConfig>> {
    let flag = |name: &str| env(name).map(|v| v.trim().to_ascii_lowercase());
    if flag("OTEL_SDK_DISABLED").as_deref() == Some("true") {
        return Ok(None);
    }
    match flag("OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => bail!("OTEL_TRACES_EXPORTER `{other}` is not supported: use `otlp` or `none`"),
    }
    let protocol = match flag("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| flag("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .as_deref()
    {
        None | Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
        Some("grpc") => OtlpProtocol::Grpc,
        Some(other) => bail!("OTEL_EXPORTER_OTLP_PROTOCOL `{other}` is not supported: use `http/protobuf` or `grpc`"),
    };
    let specific = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").filter(|v| !v.trim().is_empty());
    let general = env("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.trim().is_empty());
    let endpoint = match (specific, general, protocol) {
        (Some(url), _, _) => url.trim().to_owned(),
        // The general variable is a base: HTTP appends the signal's path.
        (None, Some(base), OtlpProtocol::HttpProtobuf) => format!("{}/v1/traces", base.trim().trim_end_matches('/')),
        (None, Some(base), OtlpProtocol::Grpc) => base.trim().to_owned(),
        (None, None, _) => return Ok(None),
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        bail!("the OTLP endpoint must be an http:// or https:// URL (got `{endpoint}`)");
    }
    if protocol == OtlpProtocol::Grpc && endpoint.starts_with("https://") {
        bail!("OTLP over gRPC is supported without TLS only; use `http/protobuf` for an https:// collector");
    }
    let sampler = match env("OTEL_TRACES_SAMPLER") {
        None => Sampler::default(),
        Some(name) => Sampler::parse(&name, env("OTEL_TRACES_SAMPLER_ARG").as_deref()).map_err(anyhow::Error::msg)?,
    };
    let queue = number(env, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, (1, 1_000_000))? as usize;
    let batch = number(env, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, (1, 1_000_000))? as usize;
    Ok(Some(TraceConfig {
        endpoint,
        protocol,
        service_name: env("OTEL_SERVICE_NAME")
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "settle".to_owned()),
        sampler,
        queue,
        batch: batch.min(queue),
        delay: Duration::from_millis(number(env, "OTEL_BSP_SCHEDULE_DELAY", 5000, (1, 3_600_000))?),
        timeout: Duration::from_millis(number(env, "OTEL_EXPORTER_OTLP_TIMEOUT", 10_000, (1, 3_600_000))?),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> anyhow::Result<Option<TraceConfig>> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        from_env(&|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn off_without_an_endpoint_and_on_with_one() {
        assert_eq!(with(&[]).unwrap(), None);
        let c = with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")])
            .unwrap()
            .unwrap();
        assert_eq!(c.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(
            (c.protocol, c.service_name.as_str()),
            (OtlpProtocol::HttpProtobuf, "settle")
        );
        assert_eq!(c.sampler, Sampler::default());
        let g = with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "payments"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(g.endpoint, "http://collector:4317");
        assert_eq!((g.protocol, g.service_name.as_str()), (OtlpProtocol::Grpc, "payments"));
        assert_eq!(g.sampler, Sampler::Ratio(0.5));
        let disabled = with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ]);
        assert_eq!(disabled.unwrap(), None);
    }

    #[test]
    fn bad_settings_are_refused_at_start_up() {
        for vars in [
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                ("OTEL_TRACES_SAMPLER", "maybe"),
            ],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
            ],
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
        ] {
            assert!(with(&vars).is_err(), "{vars:?}");
        }
    }
}
