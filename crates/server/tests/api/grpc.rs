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

async fn the_services_serve_what_rest_serves_case(app: &TestApp) {
    let ch = channel(app).await;
    let key = app.admin_key.clone();
    let mut customers = CustomerServiceClient::new(ch.clone());
    let mut accounts = AccountServiceClient::new(ch.clone());
    let mut payments = PaymentServiceClient::new(ch.clone());
    let mut refunds = RefundServiceClient::new(ch.clone());
    let mut events = EventServiceClient::new(ch.clone());

    let ada = customers
        .create_customer(authed(
            &key,
            pb::CreateCustomerRequest {
                name: Some("Ada".into()),
                email: None,
                metadata: HashMap::from([("tier".into(), "gold".into())]),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(ada.id.starts_with("cus_"), "{ada:?}");
    let rest = app.get(&format!("/v1/customers/{}", ada.id)).await;
    assert_eq!(rest.body["name"], "Ada");
    assert_eq!(rest.body["metadata"]["tier"], "gold");

    let open = |name: &str, allow_negative: bool| pb::CreateAccountRequest {
        name: name.into(),
        currency: "usd".into(),
        allow_negative,
        processor: false,
        customer: None,
        metadata: HashMap::new(),
    };
    let bank = accounts
        .create_account(authed(&key, open("bank", true)))
        .await
        .unwrap()
        .into_inner();
    let shop = accounts
        .create_account(authed(&key, open("shop", false)))
        .await
        .unwrap()
        .into_inner();

    let held = payments
        .create_payment(authed(
            &key,
            pb::CreatePaymentRequest {
                amount: 1000,
                currency: "usd".into(),
                source: bank.id.clone(),
                destination: shop.id.clone(),
                customer: Some(ada.id.clone()),
                capture: Some(false),
                description: Some("held".into()),
                metadata: HashMap::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let captured = payments
        .capture_payment(authed(
            &key,
            pb::CapturePaymentRequest {
                id: held.id.clone(),
                amount_to_capture: Some(600),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(captured.amount_captured, 600);
    let refund = refunds
        .create_refund(authed(
            &key,
            pb::CreateRefundRequest {
                payment: held.id.clone(),
                amount: Some(100),
                reason: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refund.amount, 100);
    let got = payments
        .get_payment(authed(
            &key,
            pb::GetPaymentRequest {
                id: held.id.clone(),
                expand: vec![],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let rest = app.get(&format!("/v1/payments/{}", held.id)).await.body;
    assert_eq!(got.status, rest["status"].as_str().unwrap());
    assert_eq!(got.amount_refunded, rest["amount_refunded"].as_i64().unwrap());
    assert_eq!(got.amount_refunded, 100);
    assert_eq!(got.version, rest["version"].as_i64().unwrap());
    assert_eq!(got.customer.as_deref(), Some(ada.id.as_str()));
    let balance = accounts
        .get_account(authed(&key, pb::GetRequest { id: shop.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .balance;
    assert_eq!(balance, 500, "captured 600, refunded 100");

    // expand as REST's expand[]: the related objects in the answer.
    let expanded = payments
        .get_payment(authed(
            &key,
            pb::GetPaymentRequest {
                id: held.id.clone(),
                expand: vec!["customer".into(), "source".into()],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(expanded.customer.as_deref(), Some(ada.id.as_str()));
    assert_eq!(expanded.customer_expanded.unwrap().name.as_deref(), Some("Ada"));
    assert_eq!(expanded.source_expanded.unwrap().id, bank.id);
    assert_eq!(expanded.source, bank.id);
    assert!(expanded.destination_expanded.is_none());
    let page = payments
        .list_payments(authed(
            &key,
            pb::ListPaymentsRequest {
                expand: vec!["data.destination".into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.data[0].destination_expanded.as_ref().unwrap().id, shop.id);
    let unknown = payments
        .get_payment(authed(
            &key,
            pb::GetPaymentRequest {
                id: held.id.clone(),
                expand: vec!["merchant".into()],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(info_of(&unknown, "param").as_deref(), Some("expand"));

    let listed = payments
        .list_payments(authed(
            &key,
            pb::ListPaymentsRequest {
                customer: Some(ada.id.clone()),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.data.len(), 1);
    assert!(!listed.has_more);
    let two_filters = payments
        .list_payments(authed(
            &key,
            pb::ListPaymentsRequest {
                customer: Some(ada.id.clone()),
                status: Some("succeeded".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(two_filters.code(), Code::InvalidArgument);

    // Pages follow REST's keyset cursor.
    let first = accounts
        .list_accounts(authed(
            &key,
            pb::ListAccountsRequest {
                page: Some(pb::Page {
                    limit: 1,
                    starting_after: None,
                }),
                customer: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.data.len(), 1);
    assert!(first.has_more);
    let rest = app
        .get(&format!("/v1/accounts?limit=1&starting_after={}", first.data[0].id))
        .await;
    let second = accounts
        .list_accounts(authed(
            &key,
            pb::ListAccountsRequest {
                page: Some(pb::Page {
                    limit: 1,
                    starting_after: Some(first.data[0].id.clone()),
                }),
                customer: None,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.data[0].id, rest.body["data"][0]["id"].as_str().unwrap());

    let of_payment = events
        .list_events(authed(
            &key,
            pb::ListEventsRequest {
                object: Some(held.id.clone()),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!of_payment.data.is_empty());
    let event = events
        .get_event(authed(
            &key,
            pb::GetRequest {
                id: of_payment.data[0].id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let data = event.data.expect("the object as stored");
    let object = match &data.fields["object"].kind {
        Some(prost_types::value::Kind::StructValue(s)) => s.clone(),
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        &object.fields["id"].kind,
        Some(prost_types::value::Kind::StringValue(id)) if *id == held.id
    ));

    // An edit with a version the account moved on from is refused as REST
    // refuses a stale If-Match.
    let stale = accounts
        .update_account(authed(
            &key,
            pb::UpdateAccountRequest {
                id: shop.id.clone(),
                expected_version: Some(shop.version + 7),
                name: Some("renamed".into()),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    let rest = rest_with(
        app,
        reqwest::Method::PATCH,
        &format!("/v1/accounts/{}", shop.id),
        &[("if-match", &format!("\"{}\"", shop.version + 7))],
        json!({"name": "renamed"}).to_string(),
    )
    .await;
    assert_eq!(reason(&stale), rest.code(), "{stale:?} / {}", rest.body);
    assert_eq!(
        info_of(&stale, "http_status").unwrap(),
        rest.status.as_u16().to_string()
    );
    let renamed = accounts
        .update_account(authed(
            &key,
            pb::UpdateAccountRequest {
                id: shop.id.clone(),
                expected_version: Some(shop.version),
                name: Some("renamed".into()),
                metadata: HashMap::from([("k".into(), "v".into())]),
                metadata_remove: vec![],
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.name, "renamed");
    assert_eq!(renamed.metadata["k"], "v");

    let updated = customers
        .update_customer(authed(
            &key,
            pb::UpdateCustomerRequest {
                id: ada.id.clone(),
                email: Some("ada@example.com".into()),
                clear: vec!["name".into()],
                metadata_remove: vec!["tier".into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.name, None);
    assert_eq!(updated.email.as_deref(), Some("ada@example.com"));
    assert!(updated.metadata.is_empty());
    let lone = customers
        .create_customer(authed(&key, pb::CreateCustomerRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let gone = customers
        .delete_customer(authed(&key, pb::GetRequest { id: lone.id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert!(gone.deleted);
    assert_eq!(app.get(&format!("/v1/customers/{}", lone.id)).await.status, 404);
}
both!(
    the_services_serve_what_rest_serves,
    the_services_serve_what_rest_serves_case
);

async fn webhook_endpoints_show_their_secret_once_case(app: &TestApp) {
    let key = app.admin_key.clone();
    let mut endpoints = WebhookEndpointServiceClient::new(channel(app).await);
    let created = endpoints
        .create_webhook_endpoint(authed(
            &key,
            pb::CreateWebhookEndpointRequest {
                url: "https://example.com/hooks".into(),
                enabled_events: vec!["payment.succeeded".into()],
                description: Some("orders".into()),
                metadata: HashMap::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let secret = created.secret.clone().expect("shown at creation");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let read = endpoints
        .get_webhook_endpoint(authed(&key, pb::GetRequest { id: created.id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.secret, None, "never shown again");
    assert_eq!(read.enabled_events, vec!["payment.succeeded".to_owned()]);
    let rotated = endpoints
        .rotate_webhook_secret(authed(&key, pb::GetRequest { id: created.id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert!(rotated.secret.is_some_and(|s| s != secret));
    let disabled = endpoints
        .update_webhook_endpoint(authed(
            &key,
            pb::UpdateWebhookEndpointRequest {
                id: created.id.clone(),
                status: Some("disabled".into()),
                clear: vec!["description".into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(disabled.status, "disabled");
    assert_eq!(disabled.description, None);
    let bad_clear = endpoints
        .update_webhook_endpoint(authed(
            &key,
            pb::UpdateWebhookEndpointRequest {
                id: created.id.clone(),
                clear: vec!["url".into()],
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_clear.code(), Code::InvalidArgument);
    assert_eq!(info_of(&bad_clear, "param").as_deref(), Some("clear"));
    let listed = endpoints
        .list_webhook_endpoints(authed(&key, pb::ListWebhookEndpointsRequest::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.data.len(), 1);
    let deleted = endpoints
        .delete_webhook_endpoint(authed(&key, pb::GetRequest { id: created.id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
}
both!(
    webhook_endpoints_show_their_secret_once,
    webhook_endpoints_show_their_secret_once_case
);

/// Refusals: the code REST would give, SPEC's code in `ErrorInfo`, and no
/// `INTERNAL` for anything the client sent.
async fn refusals_carry_spec_codes_case(app: &TestApp) {
    let ch = channel(app).await;
    let key = app.admin_key.clone();
    let mut payments = PaymentServiceClient::new(ch.clone());
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;

    let anonymous = payments
        .get_payment(Request::new(pb::GetPaymentRequest {
            id: "pay_x".into(),
            expand: vec![],
        }))
        .await
        .unwrap_err();
    let rest = app.call(reqwest::Method::GET, "/v1/payments/pay_x", None, None).await;
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(reason(&anonymous), rest.code());

    let negative = payments
        .create_payment(authed(
            &key,
            pb::CreatePaymentRequest {
                amount: -5,
                currency: "usd".into(),
                source: bank.clone(),
                destination: shop.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    let rest = app
        .post(
            "/v1/payments",
            json!({"amount": -5, "currency": "usd", "source": bank, "destination": shop}),
        )
        .await;
    assert_eq!(negative.code(), Code::InvalidArgument);
    assert_eq!(reason(&negative), rest.code());
    assert_eq!(info_of(&negative, "param").as_deref(), Some("amount"));
    assert!(info_of(&negative, "request_id").is_some_and(|id| id.starts_with("req_")));

    let overdrawn = payments
        .create_payment(authed(
            &key,
            pb::CreatePaymentRequest {
                amount: 5,
                currency: "usd".into(),
                source: shop.clone(),
                destination: bank.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    let rest = app
        .post(
            "/v1/payments",
            json!({"amount": 5, "currency": "usd", "source": shop, "destination": bank}),
        )
        .await;
    assert_eq!(reason(&overdrawn), rest.code());
    assert_eq!(
        info_of(&overdrawn, "http_status").unwrap(),
        rest.status.as_u16().to_string()
    );

    let missing = payments
        .get_payment(authed(
            &key,
            pb::GetPaymentRequest {
                id: "pay_0".into(),
                expand: vec![],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // grpc-timeout is the pipeline's deadline (sent by hand: tonic's
    // client would give up on its own before the server could answer).
    let late = with_timeout(app, &key, "1n", pb::GetRequest { id: shop.clone() }).await;
    assert_eq!(late.code(), Code::DeadlineExceeded, "{late:?}");
    assert_eq!(reason(&late), "deadline_exceeded");
    let mut garbled = authed(&key, pb::GetRequest { id: shop.clone() });
    garbled.metadata_mut().insert("grpc-timeout", "soon".parse().unwrap());
    let garbled = AccountServiceClient::new(ch.clone())
        .get_account(garbled)
        .await
        .unwrap_err();
    assert_eq!(garbled.code(), Code::InvalidArgument);
    assert_eq!(info_of(&garbled, "param").as_deref(), Some("grpc-timeout"));
    let mut roomy = authed(&key, pb::GetRequest { id: shop.clone() });
    roomy.set_timeout(Duration::from_secs(20));
    AccountServiceClient::new(ch.clone()).get_account(roomy).await.unwrap();

    // Bytes that are not the method's message: the client's error.
    let junk = raw_call(
        &ch,
        Some(&key),
        "/settle.v1.PaymentService/CreatePayment",
        vec![0xff, 0xff, 0xff, 0xff],
    )
    .await
    .unwrap_err();
    assert_eq!(junk.code(), Code::InvalidArgument, "{junk:?}");
    assert_eq!(reason(&junk), "malformed_message");
    // A field of the wrong wire type (amount as a string).
    let wrong_type = raw_call(
        &ch,
        Some(&key),
        "/settle.v1.PaymentService/CreatePayment",
        vec![0x0a, 0x02, b'1', b'0'],
    )
    .await
    .unwrap_err();
    assert_eq!(wrong_type.code(), Code::InvalidArgument, "{wrong_type:?}");
    // Past the request size limit (REST's body limit): refused unread.
    let huge = raw_call(
        &ch,
        Some(&key),
        "/settle.v1.CustomerService/CreateCustomer",
        vec![0u8; settle_core::pipeline::MAX_REQUEST_BYTES + 1],
    )
    .await
    .unwrap_err();
    assert_eq!(huge.code(), Code::OutOfRange, "{huge:?}");
    let unknown = raw_call(&ch, Some(&key), "/settle.v1.PaymentService/Teleport", vec![])
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::Unimplemented);
    // The service is still there.
    assert_eq!(app.get("/v1/accounts").await.status, 200);
}
both!(refusals_carry_spec_codes, refusals_carry_spec_codes_case);

/// One idempotency key, whichever face sends it (gRPC, REST, GraphQL):
/// the same parameters replay the first answer; different ones are refused.
async fn idempotency_keys_are_shared_with_rest_case(app: &TestApp) {
    let key = app.admin_key.clone();
    let mut payments = PaymentServiceClient::new(channel(app).await);
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    let with_key = |amount: i64, idem: &str| {
        let mut r = authed(
            &key,
            pb::CreatePaymentRequest {
                amount,
                currency: "usd".into(),
                source: bank.clone(),
                destination: shop.clone(),
                ..Default::default()
            },
        );
        r.metadata_mut().insert("idempotency-key", idem.parse().unwrap());
        r
    };
    let rest = rest_with(
        app,
        reqwest::Method::POST,
        "/v1/payments",
        &[("idempotency-key", "order-1")],
        json!({"amount": 500, "currency": "usd", "source": bank, "destination": shop}).to_string(),
    )
    .await;
    assert_eq!(rest.status, 200, "{}", rest.body);
    let again = payments
        .create_payment(with_key(500, "order-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.id, rest.id(), "a replay of REST's payment");
    let changed = payments.create_payment(with_key(501, "order-1")).await.unwrap_err();
    let rest_changed = rest_with(
        app,
        reqwest::Method::POST,
        "/v1/payments",
        &[("idempotency-key", "order-1")],
        json!({"amount": 501, "currency": "usd", "source": bank, "destination": shop}).to_string(),
    )
    .await;
    assert_eq!(reason(&changed), rest_changed.code());
    assert_eq!(reason(&changed), "idempotency_key_reused");

    let first = payments
        .create_payment(with_key(700, "order-2"))
        .await
        .unwrap()
        .into_inner();
    let rest = rest_with(
        app,
        reqwest::Method::POST,
        "/v1/payments",
        &[("idempotency-key", "order-2")],
        json!({"amount": 700, "currency": "usd", "source": bank, "destination": shop}).to_string(),
    )
    .await;
    assert_eq!(rest.id(), first.id, "a replay of gRPC's payment");
    // And GraphQL: the third face replays the same payment.
    let graphql = app
        .client
        .post(app.url("/graphql"))
        .bearer_auth(&key)
        .json(&json!({
            "query": "mutation($input: CreatePaymentInput!) { createPayment(input: $input, idempotencyKey: \"order-2\") { id } }",
            "variables": {"input": {"amount": 700, "currency": "usd", "source": bank, "destination": shop}},
        }))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(graphql["data"]["createPayment"]["id"], first.id.as_str(), "{graphql}");
    let balance = app.get(&format!("/v1/accounts/{shop}")).await.body["balance"].clone();
    assert_eq!(balance, 1200, "two payments, not five");
}
both!(
    idempotency_keys_are_shared_with_rest,
    idempotency_keys_are_shared_with_rest_case
);

/// Every method of `settle.proto` is an exposed operation of the registry,
/// and for each and every built-in role the key is let in or refused alike
/// on gRPC and REST, a refusal naming the same permission.
async fn the_same_key_gets_the_same_answer_as_on_rest_case(app: &TestApp) {
    use settle_core::pipeline::registry::by_name;
    let descriptors = prost_types::FileDescriptorSet::decode(settle_grpc::DESCRIPTOR_SET).unwrap();
    let methods: BTreeSet<String> = descriptors
        .file
        .iter()
        .filter(|f| f.package() == "settle.v1")
        .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
        .flat_map(|(package, s)| {
            s.method
                .iter()
                .map(move |m| format!("/{package}.{}/{}", s.name(), m.name()))
        })
        .filter(|m| !m.ends_with("/WatchEvents"))
        .collect();
    let exposed: BTreeSet<String> = settle_grpc::EXPOSED.iter().map(|(_, m)| (*m).to_owned()).collect();
    assert_eq!(methods, exposed, "every method is one operation");

    let ch = channel(app).await;
    let mut checked = 0;
    for role in ["admin", "developer", "viewer"] {
        let key = app.key(role).await;
        for (operation, method) in settle_grpc::EXPOSED {
            let spec = by_name(operation).unwrap_or_else(|| panic!("{operation} is not registered"));
            let rest = app.operation_as(operation, &key).await;
            // The empty message: every field at its default.
            let grpc = raw_call(&ch, Some(&key), method, Vec::new()).await;
            let grpc_denied = matches!(&grpc, Err(s) if s.code() == Code::PermissionDenied);
            assert_eq!(
                rest.status == 403,
                grpc_denied,
                "{role} {operation}: REST {} {}, gRPC {grpc:?}",
                rest.status,
                rest.body
            );
            if let Err(status) = &grpc {
                assert_ne!(status.code(), Code::Unimplemented, "{method}");
                assert_ne!(status.code(), Code::Internal, "{method}: {status:?}");
                if grpc_denied {
                    assert!(
                        status.message().contains(&spec.permission.to_string()),
                        "{operation}: {status:?}"
                    );
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, settle_grpc::EXPOSED.len() * 3);
}
both!(
    the_same_key_gets_the_same_answer_as_on_rest,
    the_same_key_gets_the_same_answer_as_on_rest_case
);

/// Asks reflection, in the protocol version of module `$v`, for the
/// services and for the file descriptors that define `$symbol`.
macro_rules! reflect {
    ($v:ident, $ch:expr, $symbol:expr) => {{
        use tonic_reflection::pb::$v::ServerReflectionRequest;
        use tonic_reflection::pb::$v::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$v::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$v::server_reflection_response::MessageResponse;
        let mut client = ServerReflectionClient::new($ch.clone());
        let mut ask = async |m: MessageRequest| {
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(m),
            };
            let mut answers = client
                .server_reflection_info(futures::stream::iter([request]))
                .await
                .unwrap()
                .into_inner();
            answers.message().await.unwrap().unwrap().message_response
        };
        let services: Vec<String> = match ask(MessageRequest::ListServices(String::new())).await {
            Some(MessageResponse::ListServicesResponse(l)) => l.service.into_iter().map(|s| s.name).collect(),
            other => panic!("{other:?}"),
        };
        // As grpcurl does: the file that defines the symbol, then each
        // import it names that the answer did not already hold.
        let mut files: Vec<prost_types::FileDescriptorProto> = Vec::new();
        let mut asking = vec![MessageRequest::FileContainingSymbol($symbol.into())];
        while let Some(request) = asking.pop() {
            let got = match ask(request).await {
                Some(MessageResponse::FileDescriptorResponse(f)) => f.file_descriptor_proto,
                other => panic!("{other:?}"),
            };
            for bytes in got {
                let file = prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap();
                if files.iter().all(|f| f.name() != file.name()) {
                    files.push(file);
                }
            }
            for file in &files {
                for import in &file.dependency {
                    if files.iter().all(|f| f.name() != import) {
                        asking.push(MessageRequest::FileByFilename(import.clone()));
                    }
                }
            }
        }
        (services, files)
    }};
}

/// A client with no `.proto`: it learns the services and messages through
/// reflection, builds its request from the descriptors and reads the answer
/// the same way; in both versions of the reflection protocol.
async fn a_client_without_the_proto_calls_through_reflection_case(app: &TestApp) {
    let ch = channel(app).await;
    for v1alpha in [true, false] {
        let (services, files) = if v1alpha {
            reflect!(v1alpha, ch, "settle.v1.CustomerService")
        } else {
            reflect!(v1, ch, "settle.v1.CustomerService")
        };
        for wanted in [
            "settle.v1.PaymentService",
            "settle.v1.EventService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(services.iter().any(|s| s == wanted), "{wanted} in {services:?}");
        }
        let set = prost_types::FileDescriptorSet { file: files };
        assert!(
            set.file.iter().any(|f| f.name() == "google/protobuf/struct.proto"),
            "imports included"
        );
        let pool = DescriptorPool::from_file_descriptor_set(set).unwrap();
        let service = pool.get_service_by_name("settle.v1.CustomerService").unwrap();
        let method = service.methods().find(|m| m.name() == "CreateCustomer").unwrap();
        let mut input = DynamicMessage::new(method.input());
        let name = format!("reflected-{v1alpha}");
        input.set_field_by_name("name", prost_reflect::Value::String(name.clone()));
        let path = format!("/{}/{}", service.full_name(), method.name());
        let bytes = raw_call(&ch, Some(&app.admin_key), &path, input.encode_to_vec())
            .await
            .unwrap();
        let output = DynamicMessage::decode(method.output(), bytes.as_slice()).unwrap();
        let id = output.get_field_by_name("id").unwrap().as_str().unwrap().to_owned();
        assert!(id.starts_with("cus_"), "{id}");
        assert_eq!(
            app.get(&format!("/v1/customers/{id}")).await.body["name"],
            name.as_str()
        );
    }
}
both!(
    a_client_without_the_proto_calls_through_reflection,
    a_client_without_the_proto_calls_through_reflection_case
);

async fn health_answers_serving_case(app: &TestApp) {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let mut health = HealthClient::new(channel(app).await);
    let answer = health
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status(), ServingStatus::Serving);
}
both!(health_answers_serving, health_answers_serving_case);

async fn pay(app: &TestApp, bank: &str, shop: &str, amount: i64) -> String {
    let pay = app
        .post(
            "/v1/payments",
            json!({"amount": amount, "currency": "usd", "source": bank, "destination": shop}),
        )
        .await;
    assert_eq!(pay.status, 200, "{}", pay.body);
    pay.id()
}

/// Every event REST lists, once the sequencer has numbered them all.
async fn numbered_events(app: &TestApp) -> usize {
    eventually(Duration::from_secs(20), "every event numbered", || async {
        let page = app.get("/v1/events?after_position=0&limit=100").await.body;
        let numbered = page["data"].as_array().unwrap().len();
        let all = app.get("/v1/events?limit=100").await.body["data"]
            .as_array()
            .unwrap()
            .len();
        (numbered == all).then_some(all)
    })
    .await
}

async fn next_event(stream: &mut tonic::Streaming<pb::Event>) -> pb::Event {
    tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("an event within 20 s")
        .expect("no error")
        .expect("the stream goes on")
}

/// Read part of the stream, go away, come back from the last position
/// read: every event once, in commit order; and a commit made while
/// watching arrives without the client asking again.
async fn watch_events_resumes_with_no_gap_and_no_duplicate_case(app: &TestApp) {
    let key = app.admin_key.clone();
    let mut events = EventServiceClient::new(channel(app).await);
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    for amount in 1..=3 {
        pay(app, &bank, &shop, amount).await;
    }
    numbered_events(app).await;
    let mut positions = Vec::new();
    let mut stream = events
        .watch_events(authed(&key, pb::WatchEventsRequest { after_position: 0 }))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..3 {
        positions.push(next_event(&mut stream).await.position.unwrap());
    }
    drop(stream);
    for amount in 4..=6 {
        pay(app, &bank, &shop, amount).await;
    }
    let total = numbered_events(app).await;
    let resume = *positions.last().unwrap();
    let mut stream = events
        .watch_events(authed(&key, pb::WatchEventsRequest { after_position: resume }))
        .await
        .unwrap()
        .into_inner();
    while positions.len() < total {
        positions.push(next_event(&mut stream).await.position.unwrap());
    }
    let expected: Vec<i64> = (1..=total as i64).collect();
    assert_eq!(positions, expected, "every position once, in order");

    // Live: a payment made now reaches the open stream.
    let live = pay(app, &bank, &shop, 7).await;
    let event = next_event(&mut stream).await;
    assert_eq!(event.position, Some(total as i64 + 1));
    let data = event.data.unwrap();
    let Some(prost_types::value::Kind::StructValue(object)) = &data.fields["object"].kind else {
        panic!("{data:?}");
    };
    assert!(matches!(&object.fields["id"].kind, Some(prost_types::value::Kind::StringValue(id)) if *id == live));

    let refused = events
        .watch_events(authed(&key, pb::WatchEventsRequest { after_position: -1 }))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let viewer_without_events = events
        .watch_events(Request::new(pb::WatchEventsRequest { after_position: 0 }))
        .await
        .unwrap_err();
    assert_eq!(viewer_without_events.code(), Code::Unauthenticated);
}
both!(
    watch_events_resumes_with_no_gap_and_no_duplicate,
    watch_events_resumes_with_no_gap_and_no_duplicate_case
);

async fn slow_watchers(backend: Backend, case: impl AsyncFnOnce(&TestApp)) {
    let mut config = Config::default();
    config.grpc_watch.buffer = 2;
    config.grpc_watch.slow_client_grace = Duration::from_millis(300);
    run_config(backend, config, case).await
}

/// A client that stops reading is cut once its buffer stayed full past the
/// grace, with a status naming where to resume; resuming there misses
/// nothing.
async fn a_client_that_reads_too_slowly_is_cut_case(app: &TestApp) {
    let bank = app.account("bank", "usd", true).await;
    let shop = app.account("shop", "usd", false).await;
    for amount in 1..=40 {
        pay(app, &bank, &shop, amount).await;
    }
    numbered_events(app).await;
    // A small window: the server can put little on the wire for a client
    // that does not read.
    let ch = Endpoint::from_shared(format!("http://{}", app.addr))
        .unwrap()
        .initial_stream_window_size(Some(1024))
        .connect()
        .await
        .unwrap();
    let mut events = EventServiceClient::new(ch);
    let mut stream = events
        .watch_events(authed(&app.admin_key, pb::WatchEventsRequest { after_position: 0 }))
        .await
        .unwrap()
        .into_inner();
    let mut last = next_event(&mut stream).await.position.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cut = loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .unwrap()
        {
            Ok(Some(event)) => {
                let position = event.position.unwrap();
                assert_eq!(position, last + 1, "no gap before the cut");
                last = position;
            }
            Ok(None) => panic!("the stream ended without saying why"),
            Err(status) => break status,
        }
    };
    assert_eq!(cut.code(), Code::ResourceExhausted, "{cut:?}");
    assert_eq!(reason(&cut), "slow_consumer");
    assert!(
        cut.message().contains(&format!("after_position = {last}")),
        "{} names {last}",
        cut.message()
    );
    let mut resumed = events
        .watch_events(authed(&app.admin_key, pb::WatchEventsRequest { after_position: last }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_event(&mut resumed).await.position, Some(last + 1));
}

both!(
    a_client_that_reads_too_slowly_is_cut,
    a_client_that_reads_too_slowly_is_cut_case,
    super::slow_watchers
);

/// SIGTERM with a watcher connected: the stream ends at once with
/// `UNAVAILABLE` and the position to resume from, and the process exits
/// well before its 30 s shutdown timeout instead of waiting for a client
/// that would never leave.
#[tokio::test]
async fn shutdown_ends_open_streams() {
    use std::process::{Command, Stdio};
    let dir = crate::support::temp_dir("settle_grpc_shutdown");
    let secret = crate::cli::admin_secret(&dir);
    let port = crate::support::free_port();
    let child = crate::cli::settle(&dir, None)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = crate::support::Server(child);
    let base = format!("http://127.0.0.1:{port}");
    crate::support::wait_ready(&base).await;
    let channel = Endpoint::from_shared(base).unwrap().connect().await.unwrap();
    let mut accounts = AccountServiceClient::new(channel.clone());
    let open = pb::CreateAccountRequest {
        name: "a".into(),
        currency: "usd".into(),
        ..Default::default()
    };
    accounts.create_account(authed(&secret, open)).await.unwrap();
    let mut stream = EventServiceClient::new(channel)
        .watch_events(authed(&secret, pb::WatchEventsRequest { after_position: 0 }))
        .await
        .unwrap()
        .into_inner();
    let first = next_event(&mut stream).await.position.unwrap();
    let pid = server.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = std::time::Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream ends when shutdown begins")
        .unwrap_err();
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(
        ended.message().contains(&format!("after_position = {first}")),
        "{ended:?}"
    );
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "settle still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(dir);
}
