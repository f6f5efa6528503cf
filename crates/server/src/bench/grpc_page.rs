//! The page of `settle bench faces` through gRPC: `ListPayments` with the
//! same `expand` as REST's expanded page, one HTTP/2 connection per client.

use std::net::SocketAddr;
use std::sync::Arc;

use settle_grpc::pb::payment_service_client::PaymentServiceClient;
use settle_grpc::pb::{ListPaymentsRequest, Page};
use tonic::transport::{Channel, Endpoint};

/// One channel per client, and the request every client sends.
pub struct GrpcPage {
    channels: Vec<Channel>,
    authorization: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    limit: u32,
}

impl GrpcPage {
    pub async fn open(addr: SocketAddr, clients: usize, secret: &str, limit: u32) -> anyhow::Result<Self> {
        let mut channels = Vec::with_capacity(clients);
        for _ in 0..clients.max(1) {
            channels.push(Endpoint::from_shared(format!("http://{addr}"))?.connect().await?);
        }
        Ok(Self {
            channels,
            authorization: format!("Bearer {secret}").parse()?,
            limit,
        })
    }

    fn request(&self) -> tonic::Request<ListPaymentsRequest> {
        let mut request = tonic::Request::new(ListPaymentsRequest {
            page: Some(Page {
                limit: self.limit,
                starting_after: None,
            }),
            expand: ["data.customer", "data.source", "data.destination"]
                .map(str::to_owned)
                .to_vec(),
            ..Default::default()
        });
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        request
    }

    /// Fetches the page on `client`'s channel; the SQL statements it cost
    /// (from `settle-statements`), or `None` if it failed.
    pub async fn fetch(self: Arc<Self>, client: usize) -> Option<u64> {
        let channel = self.channels.get(client % self.channels.len())?.clone();
        let response = PaymentServiceClient::new(channel)
            .list_payments(self.request())
            .await
            .ok()?;
        let statements = response
            .metadata()
            .get("settle-statements")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (response.into_inner().data.len() == self.limit as usize).then_some(statements)
    }
}
