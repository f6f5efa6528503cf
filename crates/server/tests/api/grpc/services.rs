//! Every `settle.v1` service against what REST answers.

use super::*;

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
