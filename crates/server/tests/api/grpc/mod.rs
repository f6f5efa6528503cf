//! gRPC on the REST port, over the same pipeline: the `settle.v1`
//! services answer what REST answers; refusals carry SPEC's code in
//! `google.rpc.ErrorInfo`; idempotency keys are shared with REST; every
//! exposed operation lets in or refuses a key as REST does; a client that
//! knows no `.proto` calls through reflection (v1 and v1alpha); health
//! answers; `WatchEvents` resumes with no gap and no duplicate, hears new
//! commits, and cuts a client that reads too slowly.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use bytes::{Buf, BufMut};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::json;
use settle::config::Config;
use settle_grpc::pb;
use settle_grpc::pb::account_service_client::AccountServiceClient;
use settle_grpc::pb::customer_service_client::CustomerServiceClient;
use settle_grpc::pb::event_service_client::EventServiceClient;
use settle_grpc::pb::payment_service_client::PaymentServiceClient;
use settle_grpc::pb::refund_service_client::RefundServiceClient;
use settle_grpc::pb::webhook_endpoint_service_client::WebhookEndpointServiceClient;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::support::{Backend, Resp, TestApp, both, eventually, run_config};

async fn channel(app: &TestApp) -> Channel {
    Endpoint::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// `message` with `key` in its `authorization` metadata.
fn authed<T>(key: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// SPEC's code of a refusal, from its `ErrorInfo`.
fn reason(status: &Status) -> String {
    let info = status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"));
    assert_eq!(info.domain, settle_grpc::status::ERROR_DOMAIN);
    info.reason
}

fn info_of(status: &Status, key: &str) -> Option<String> {
    status
        .get_details_error_info()
        .and_then(|i| i.metadata.get(key).cloned())
}

/// A REST call as the admin with one extra header.
async fn rest_with(app: &TestApp, method: reqwest::Method, path: &str, header: &[(&str, &str)], body: String) -> Resp {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.admin_key)
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in header {
        request = request.header(*name, *value);
    }
    Resp::read(request.send().await.unwrap()).await
}

/// `GetAccount` sent over a bare HTTP/2 connection with `grpc-timeout`,
/// and the status its trailers carry.
async fn with_timeout(app: &TestApp, key: &str, timeout: &str, message: pb::GetRequest) -> Status {
    use http_body_util::BodyExt;
    let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    let (mut sender, connection) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
        .await
        .unwrap();
    tokio::spawn(connection);
    let encoded = message.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
    framed.extend_from_slice(&encoded);
    let request = hyper::Request::post(format!("http://{}/settle.v1.AccountService/GetAccount", app.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {key}"))
        .header("grpc-timeout", timeout)
        .body(http_body_util::Full::new(bytes::Bytes::from(framed)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let trailers = body.collect().await.unwrap().trailers().cloned();
    // A refusal before any message may come as headers only.
    let headers = trailers.unwrap_or(parts.headers);
    Status::from_header_map(&headers).expect("a grpc-status")
}

/// Messages as bytes, for calls that know no generated type.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let n = src.remaining();
        Ok(Some(src.copy_to_bytes(n).to_vec()))
    }
}

/// Calls `path` with `body` as the message's bytes.
async fn raw_call(channel: &Channel, key: Option<&str>, path: &str, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let request = match key {
        Some(key) => authed(key, body),
        None => Request::new(body),
    };
    let path = PathAndQuery::try_from(path.to_owned()).unwrap();
    grpc.unary(request, path, Raw).await.map(|r| r.into_inner())
}

mod discovery;
mod rules;
mod services;
mod watch;
