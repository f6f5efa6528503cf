//! The `settle.v1` services: each method turns its message into the
//! operation REST and GraphQL run, through the same pipeline, and the
//! answer back into its message. Nothing here decides anything.

use serde_json::Value;
use settle_core::Settle;
use settle_core::ops::ListParams;
use settle_core::ops::accounts::{CreateAccount, ListAccounts, RetrieveAccount, UpdateAccount};
use settle_core::ops::customers::{CreateCustomer, DeleteCustomer, ListCustomers, RetrieveCustomer, UpdateCustomer};
use settle_core::ops::events::{ListEvents, RetrieveEvent};
use settle_core::ops::payments::{CancelPayment, CapturePayment, CreatePayment, ListPayments, RetrievePayment};
use settle_core::ops::refunds::{CreateRefund, ListRefunds, RetrieveRefund};
use settle_core::ops::webhooks::{
    CreateWebhookEndpoint, DeleteWebhookEndpoint, ListWebhookEndpoints, RetrieveWebhookEndpoint, RotateWebhookSecret,
    UpdateWebhookEndpoint,
};
use settle_domain::ids::{AccountId, CustomerId, EventId, PaymentId, RefundId, WebhookEndpointId};
use tonic::{Request, Response, Status};

use crate::call::Caller;
use crate::convert::{self, clears, metadata_patch, new_metadata, page};
use crate::pb;
use crate::pb::account_service_server::AccountService;
use crate::pb::customer_service_server::CustomerService;
use crate::pb::event_service_server::EventService;
use crate::pb::payment_service_server::PaymentService;
use crate::pb::refund_service_server::RefundService;
use crate::pb::webhook_endpoint_service_server::WebhookEndpointService;
use crate::watch::{Closing, EventStream, Watch};

/// The gRPC face: every service over one [`Settle`].
#[derive(Clone)]
pub struct Face {
    pub(crate) settle: Settle,
    pub(crate) watch: Watch,
    pub(crate) closing: Closing,
}

impl Face {
    /// Runs the operation `build` makes of `request`'s message and shows
    /// the answer as `show` says.
    async fn serve<M, O, T>(
        &self,
        request: Request<M>,
        build: impl FnOnce(M) -> Result<O, settle_core::pipeline::Failure> + Send,
        show: fn(&Value) -> T,
    ) -> Result<Response<T>, Status>
    where
        M: Send,
        O: settle_core::pipeline::Operation,
    {
        let caller = Caller::of(&request)?;
        let message = request.into_inner();
        let answer = caller.run(&self.settle, move || build(message)).await?;
        let mut response = Response::new(show(&answer));
        if let Ok(id) = caller.request_id().parse() {
            response.metadata_mut().insert("request-id", id);
        }
        Ok(response)
    }
}

#[tonic::async_trait]
impl AccountService for Face {
    async fn create_account(&self, r: Request<pb::CreateAccountRequest>) -> Result<Response<pb::Account>, Status> {
        self.serve(
            r,
            |m| {
                Ok(CreateAccount {
                    name: m.name,
                    currency: m.currency,
                    allow_negative: m.allow_negative,
                    processor: m.processor,
                    customer: m.customer,
                    metadata: new_metadata(m.metadata),
                })
            },
            convert::account,
        )
        .await
    }

    async fn get_account(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::Account>, Status> {
        self.serve(
            r,
            |m| {
                Ok(RetrieveAccount {
                    id: m.id,
                    expand: Vec::new(),
                })
            },
            convert::account,
        )
        .await
    }

    async fn list_accounts(&self, r: Request<pb::ListAccountsRequest>) -> Result<Response<pb::AccountList>, Status> {
        self.serve(
            r,
            |m| {
                let cursor = |t: &str| AccountId::parse(t).map(|i| i.uuid());
                Ok(ListAccounts(page(m.page, cursor, &[("customer", &m.customer)])?))
            },
            convert::accounts,
        )
        .await
    }

    async fn update_account(&self, r: Request<pb::UpdateAccountRequest>) -> Result<Response<pb::Account>, Status> {
        self.serve(
            r,
            |m| {
                Ok(UpdateAccount {
                    id: m.id,
                    if_version: m.expected_version,
                    name: m.name,
                    metadata: metadata_patch(m.metadata, m.metadata_remove)?,
                })
            },
            convert::account,
        )
        .await
    }
}

#[tonic::async_trait]
impl CustomerService for Face {
    async fn create_customer(&self, r: Request<pb::CreateCustomerRequest>) -> Result<Response<pb::Customer>, Status> {
        self.serve(
            r,
            |m| {
                Ok(CreateCustomer {
                    name: m.name,
                    email: m.email,
                    metadata: new_metadata(m.metadata),
                })
            },
            convert::customer,
        )
        .await
    }

    async fn get_customer(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::Customer>, Status> {
        self.serve(r, |m| Ok(RetrieveCustomer { id: m.id }), convert::customer)
            .await
    }

    async fn list_customers(&self, r: Request<pb::ListCustomersRequest>) -> Result<Response<pb::CustomerList>, Status> {
        self.serve(
            r,
            |m| {
                let cursor = |t: &str| CustomerId::parse(t).map(|i| i.uuid());
                Ok(ListCustomers(page(m.page, cursor, &[("email", &m.email)])?))
            },
            convert::customers,
        )
        .await
    }

    async fn update_customer(&self, r: Request<pb::UpdateCustomerRequest>) -> Result<Response<pb::Customer>, Status> {
        self.serve(
            r,
            |m| {
                const CLEARABLE: &[&str] = &["name", "email"];
                let name = if clears(&m.clear, CLEARABLE, "name")? {
                    Some(None)
                } else {
                    m.name.map(Some)
                };
                let email = if clears(&m.clear, CLEARABLE, "email")? {
                    Some(None)
                } else {
                    m.email.map(Some)
                };
                Ok(UpdateCustomer {
                    id: m.id,
                    if_version: m.expected_version,
                    name,
                    email,
                    metadata: metadata_patch(m.metadata, m.metadata_remove)?,
                })
            },
            convert::customer,
        )
        .await
    }

    async fn delete_customer(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::Deleted>, Status> {
        self.serve(r, |m| Ok(DeleteCustomer { id: m.id }), convert::deleted)
            .await
    }
}

#[tonic::async_trait]
impl PaymentService for Face {
    async fn create_payment(&self, r: Request<pb::CreatePaymentRequest>) -> Result<Response<pb::Payment>, Status> {
        self.serve(
            r,
            |m| {
                Ok(CreatePayment {
                    amount: m.amount,
                    currency: m.currency,
                    source: m.source,
                    destination: m.destination,
                    customer: m.customer,
                    capture: m.capture.unwrap_or(true),
                    description: m.description,
                    metadata: new_metadata(m.metadata),
                })
            },
            convert::payment,
        )
        .await
    }

    async fn get_payment(&self, r: Request<pb::GetPaymentRequest>) -> Result<Response<pb::Payment>, Status> {
        self.serve(
            r,
            |m| {
                Ok(RetrievePayment {
                    id: m.id,
                    expand: m.expand,
                })
            },
            convert::payment,
        )
        .await
    }

    async fn list_payments(&self, r: Request<pb::ListPaymentsRequest>) -> Result<Response<pb::PaymentList>, Status> {
        self.serve(
            r,
            |m| {
                let cursor = |t: &str| PaymentId::parse(t).map(|i| i.uuid());
                let filters = [
                    ("status", &m.status),
                    ("customer", &m.customer),
                    ("source", &m.source),
                    ("destination", &m.destination),
                ];
                let mut params = page(m.page, cursor, &filters)?;
                params.expand = m.expand;
                Ok(ListPayments(params))
            },
            convert::payments,
        )
        .await
    }

    async fn capture_payment(&self, r: Request<pb::CapturePaymentRequest>) -> Result<Response<pb::Payment>, Status> {
        self.serve(
            r,
            |m| {
                Ok(CapturePayment {
                    id: m.id,
                    amount_to_capture: m.amount_to_capture,
                })
            },
            convert::payment,
        )
        .await
    }

    async fn cancel_payment(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::Payment>, Status> {
        self.serve(r, |m| Ok(CancelPayment { id: m.id }), convert::payment)
            .await
    }
}

#[tonic::async_trait]
impl RefundService for Face {
    async fn create_refund(&self, r: Request<pb::CreateRefundRequest>) -> Result<Response<pb::Refund>, Status> {
        self.serve(
            r,
            |m| {
                Ok(CreateRefund {
                    payment: m.payment,
                    amount: m.amount,
                    reason: m.reason,
                })
            },
            convert::refund,
        )
        .await
    }

    async fn get_refund(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::Refund>, Status> {
        self.serve(
            r,
            |m| {
                Ok(RetrieveRefund {
                    id: m.id,
                    expand: Vec::new(),
                })
            },
            convert::refund,
        )
        .await
    }

    async fn list_refunds(&self, r: Request<pb::ListRefundsRequest>) -> Result<Response<pb::RefundList>, Status> {
        self.serve(
            r,
            |m| {
                let cursor = |t: &str| RefundId::parse(t).map(|i| i.uuid());
                Ok(ListRefunds(page(m.page, cursor, &[("payment", &m.payment)])?))
            },
            convert::refunds,
        )
        .await
    }
}

#[tonic::async_trait]
impl EventService for Face {
    async fn get_event(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::Event>, Status> {
        self.serve(r, |m| Ok(RetrieveEvent { id: m.id }), convert::event).await
    }

    async fn list_events(&self, r: Request<pb::ListEventsRequest>) -> Result<Response<pb::EventList>, Status> {
        self.serve(
            r,
            |m| {
                let cursor = |t: &str| EventId::parse(t).map(|i| i.uuid());
                let params: ListParams = page(m.page, cursor, &[("type", &m.r#type), ("object", &m.object)])?;
                Ok(ListEvents::Page(params))
            },
            convert::events,
        )
        .await
    }

    type WatchEventsStream = EventStream;

    async fn watch_events(&self, r: Request<pb::WatchEventsRequest>) -> Result<Response<EventStream>, Status> {
        let caller = Caller::of(&r)?;
        let after = r.into_inner().after_position;
        let stream = self
            .watch
            .start(&self.settle, self.closing.clone(), caller, after)
            .await?;
        Ok(Response::new(stream))
    }
}

#[tonic::async_trait]
impl WebhookEndpointService for Face {
    async fn create_webhook_endpoint(
        &self,
        r: Request<pb::CreateWebhookEndpointRequest>,
    ) -> Result<Response<pb::WebhookEndpoint>, Status> {
        self.serve(
            r,
            |m| {
                Ok(CreateWebhookEndpoint {
                    url: m.url,
                    enabled_events: m.enabled_events,
                    description: m.description,
                    metadata: new_metadata(m.metadata),
                })
            },
            convert::webhook_endpoint,
        )
        .await
    }

    async fn get_webhook_endpoint(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::WebhookEndpoint>, Status> {
        self.serve(
            r,
            |m| Ok(RetrieveWebhookEndpoint { id: m.id }),
            convert::webhook_endpoint,
        )
        .await
    }

    async fn list_webhook_endpoints(
        &self,
        r: Request<pb::ListWebhookEndpointsRequest>,
    ) -> Result<Response<pb::WebhookEndpointList>, Status> {
        self.serve(
            r,
            |m| {
                let cursor = |t: &str| WebhookEndpointId::parse(t).map(|i| i.uuid());
                Ok(ListWebhookEndpoints(page(m.page, cursor, &[])?))
            },
            convert::webhook_endpoints,
        )
        .await
    }

    async fn update_webhook_endpoint(
        &self,
        r: Request<pb::UpdateWebhookEndpointRequest>,
    ) -> Result<Response<pb::WebhookEndpoint>, Status> {
        self.serve(
            r,
            |m| {
                let description = if clears(&m.clear, &["description"], "description")? {
                    Some(None)
                } else {
                    m.description.map(Some)
                };
                Ok(UpdateWebhookEndpoint {
                    id: m.id,
                    if_version: m.expected_version,
                    url: m.url,
                    enabled_events: (!m.enabled_events.is_empty()).then_some(m.enabled_events),
                    description,
                    metadata: metadata_patch(m.metadata, m.metadata_remove)?,
                    status: m.status,
                })
            },
            convert::webhook_endpoint,
        )
        .await
    }

    async fn delete_webhook_endpoint(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::Deleted>, Status> {
        self.serve(r, |m| Ok(DeleteWebhookEndpoint { id: m.id }), convert::deleted)
            .await
    }

    async fn rotate_webhook_secret(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::WebhookEndpoint>, Status> {
        self.serve(r, |m| Ok(RotateWebhookSecret { id: m.id }), convert::webhook_endpoint)
            .await
    }
}
