//! The rules every face shares, on gRPC: refusals with SPEC's codes in
//! `ErrorInfo`, deadlines, idempotency keys shared with REST and GraphQL,
//! and the same allow/deny as REST per role.

use super::*;

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
