//! Sends spans to an OpenTelemetry collector over OTLP (`http/protobuf`
//! or `grpc`). Requests never wait for it: a span goes into a bounded
//! queue or, when the queue is full, is dropped and counted; one task
//! sends the queue in batches, one export at a time, each bounded by the
//! export timeout. An unreachable or hanging collector therefore costs
//! dropped spans (shown at `/metrics`), never a slower request.

mod proto;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use prost::Message;
use settle_trace::{ExportStats, STATS, SpanRecord, SpanSink};
use tokio::sync::{Notify, mpsc};

use crate::config::traces::{OtlpProtocol, TraceConfig};

/// The gRPC method every OTLP collector serves.
const GRPC_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

struct QueueSink {
    queue: mpsc::Sender<SpanRecord>,
}

impl SpanSink for QueueSink {
    fn take(&self, span: SpanRecord) {
        if self.queue.try_send(span).is_err() {
            ExportStats::add(&STATS.dropped_queue_full, 1);
        }
    }
}

/// How batches reach the collector.
enum Transport {
    Http { client: reqwest::Client, url: String },
    Grpc(tonic::client::Grpc<tonic::transport::Channel>),
}

impl Transport {
    fn new(config: &TraceConfig, tls: &settle_core::tls::OutgoingTls) -> anyhow::Result<Self> {
        Ok(match config.protocol {
            OtlpProtocol::HttpProtobuf => Transport::Http {
                client: reqwest::Client::builder()
                    .tls_backend_preconfigured(tls.client_config().map_err(anyhow::Error::msg)?)
                    .timeout(config.timeout)
                    .connect_timeout(config.timeout)
                    .build()
                    .context("cannot build the OTLP client")?,
                url: config.endpoint.clone(),
            },
            OtlpProtocol::Grpc => {
                let channel = tonic::transport::Endpoint::from_shared(config.endpoint.clone())
                    .context("the OTLP gRPC endpoint is not a valid URI")?
                    .connect_timeout(config.timeout)
                    .timeout(config.timeout)
                    .connect_lazy();
                Transport::Grpc(tonic::client::Grpc::new(channel))
            }
        })
    }

    async fn export(&mut self, request: proto::ExportTraceServiceRequest) -> Result<i64, String> {
        match self {
            Transport::Http { client, url } => {
                let response = client
                    .post(url.as_str())
                    .header("content-type", "application/x-protobuf")
                    .body(request.encode_to_vec())
                    .send()
                    .await
                    .map_err(|e| format!("cannot reach the collector: {e}"))?;
                let status = response.status();
                let body = response.bytes().await.unwrap_or_default();
                if !status.is_success() {
                    return Err(format!("the collector answered {status}"));
                }
                let answer = proto::ExportTraceServiceResponse::decode(body).unwrap_or_default();
                Ok(answer.partial_success.map_or(0, |p| p.rejected_spans))
            }
            Transport::Grpc(grpc) => {
                grpc.ready()
                    .await
                    .map_err(|e| format!("cannot reach the collector: {e}"))?;
                let codec = tonic_prost::ProstCodec::<
                    proto::ExportTraceServiceRequest,
                    proto::ExportTraceServiceResponse,
                >::default();
                let path = tonic::codegen::http::uri::PathAndQuery::from_static(GRPC_EXPORT);
                let answer = grpc
                    .unary(tonic::Request::new(request), path, codec)
                    .await
                    .map_err(|s| format!("the collector answered {:?}: {}", s.code(), s.message()))?;
                Ok(answer.into_inner().partial_success.map_or(0, |p| p.rejected_spans))
            }
        }
    }
}

/// Asking the exporter to send everything queued now, and its answer.
struct Flush {
    ask: Notify,
    done: Notify,
}

static FLUSH: OnceLock<Flush> = OnceLock::new();

/// Sends the spans still queued (at shutdown), waiting at most `wait`.
pub async fn flush(wait: Duration) {
    if let Some(f) = FLUSH.get() {
        f.ask.notify_one();
        let _ = tokio::time::timeout(wait, f.done.notified()).await;
    }
}

/// Turns tracing on for this process and starts the exporting task.
pub fn start(config: &TraceConfig, tls: &settle_core::tls::OutgoingTls) -> anyhow::Result<()> {
    let transport = Transport::new(config, tls)?;
    let (queue, spans) = mpsc::channel(config.queue);
    if FLUSH
        .set(Flush {
            ask: Notify::new(),
            done: Notify::new(),
        })
        .is_err()
    {
        // Tracing is process-wide: the first start wins.
        return Ok(());
    }
    settle_trace::install(Arc::new(QueueSink { queue }), config.sampler);
    tokio::spawn(export(spans, transport, config.clone()));
    tracing::info!(
        endpoint = %crate::config::redact_url(&config.endpoint),
        protocol = ?config.protocol,
        service = %config.service_name,
        "exporting traces over OTLP"
    );
    Ok(())
}

/// Sends batches: as soon as one is full, or when its first span has
/// waited the schedule delay.
async fn export(mut spans: mpsc::Receiver<SpanRecord>, mut transport: Transport, config: TraceConfig) {
    let Some(flush) = FLUSH.get() else { return };
    let mut batch = Vec::with_capacity(config.batch);
    let mut last_warning: Option<tokio::time::Instant> = None;
    let mut flushing = false;
    loop {
        if !flushing {
            tokio::select! {
                n = spans.recv_many(&mut batch, config.batch) => if n == 0 { return },
                () = flush.ask.notified() => flushing = true,
            }
        }
        if flushing {
            // Whatever is queued now, batch by batch, then say so.
            while batch.len() < config.batch {
                match spans.try_recv() {
                    Ok(span) => batch.push(span),
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                flushing = false;
                flush.done.notify_one();
                continue;
            }
        } else {
            let deadline = tokio::time::Instant::now() + config.delay;
            while batch.len() < config.batch {
                let room = config.batch - batch.len();
                tokio::select! {
                    got = tokio::time::timeout_at(deadline, spans.recv_many(&mut batch, room)) => match got {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    },
                    () = flush.ask.notified() => {
                        flushing = true;
                        break;
                    }
                }
            }
        }
        let sent = batch.len();
        let request = proto::request(&config.service_name, &batch);
        batch.clear();
        let outcome = match tokio::time::timeout(config.timeout, transport.export(request)).await {
            Ok(result) => result,
            Err(_) => Err(format!("the collector did not answer within {:?}", config.timeout)),
        };
        match outcome {
            Ok(rejected) => {
                let rejected = usize::try_from(rejected.max(0)).unwrap_or(0).min(sent);
                ExportStats::add(&STATS.exported, sent - rejected);
                ExportStats::add(&STATS.dropped_export_failed, rejected);
            }
            Err(e) => {
                ExportStats::add(&STATS.dropped_export_failed, sent);
                // One line a minute at most: a collector that is down
                // must not flood the log.
                let now = tokio::time::Instant::now();
                if last_warning.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
                    last_warning = Some(now);
                    tracing::warn!(error = %e, spans = sent, "could not export spans; they are dropped");
                }
            }
        }
    }
}
