//! The benchmarks' HTTP client: one keep-alive HTTP/1.1 connection per
//! simulated client and requests whose bytes are built once, so the client
//! (which shares the machine's cores with the server it measures) spends as
//! little as a load generator such as wrk would. A general client (reqwest)
//! cost about a third of the measured rate on a 2-core machine.

use std::net::SocketAddr;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::sync::Mutex;

/// One connection per client, each used by its client alone.
pub struct Connections {
    conns: Vec<Mutex<SendRequest<Full<Bytes>>>>,
}

/// A request to send again and again.
#[derive(Clone)]
pub struct Prepared {
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl Prepared {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: Method::GET,
            path: path.into(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn post_json(path: impl Into<String>, body: &serde_json::Value) -> anyhow::Result<Self> {
        Ok(Self {
            method: Method::POST,
            path: path.into(),
            headers: vec![("content-type", "application/json".into())],
            body: Bytes::from(serde_json::to_vec(body)?),
        })
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn request(&self, host: &str) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut req = Request::builder()
            .method(self.method.clone())
            .uri(&self.path)
            .header("host", host);
        for (name, value) in &self.headers {
            req = req.header(*name, value);
        }
        Ok(req.body(Full::new(self.body.clone()))?)
    }
}

impl Connections {
    /// Opens `clients` connections to `addr`.
    pub async fn open(addr: SocketAddr, clients: usize) -> anyhow::Result<Self> {
        let mut conns = Vec::with_capacity(clients);
        for _ in 0..clients {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .with_context(|| format!("connect to {addr}"))?;
            stream.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            conns.push(Mutex::new(sender));
        }
        Ok(Self { conns })
    }

    /// Sends `prepared` on client `client`'s connection; true for a 2xx
    /// whose body arrived whole.
    pub async fn send(&self, client: usize, host: &str, prepared: &Prepared) -> bool {
        let Some(conn) = self.conns.get(client) else {
            return false;
        };
        let Ok(req) = prepared.request(host) else {
            return false;
        };
        let mut sender = conn.lock().await;
        if sender.ready().await.is_err() {
            return false;
        }
        match sender.send_request(req).await {
            Ok(res) if res.status().is_success() => res.into_body().collect().await.is_ok(),
            Ok(res) => {
                let _ = res.into_body().collect().await;
                false
            }
            Err(_) => false,
        }
    }
}

/// The baseline of a read: a bare axum handler answering `GET /payment`
/// with `body` as JSON, nothing else. Abort the handle to stop it.
pub async fn bare_handler(body: Bytes) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let bare = axum::Router::new().route(
        "/payment",
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((addr, tokio::spawn(async move { axum::serve(listener, bare).await })))
}

/// The newest payment served at `addr`: its id and the body a read of it
/// answers (what a read bench asks for, and what its bare baseline sends).
pub async fn newest_payment(addr: SocketAddr, secret: &str) -> anyhow::Result<(String, Bytes)> {
    let http = reqwest::Client::new();
    let list: serde_json::Value = http
        .get(format!("http://{addr}/v1/payments?limit=1"))
        .bearer_auth(secret)
        .send()
        .await?
        .json()
        .await?;
    let id = list["data"][0]["id"].as_str().context("no payment to read")?.to_owned();
    let body = http
        .get(format!("http://{addr}/v1/payments/{id}"))
        .bearer_auth(secret)
        .send()
        .await?
        .bytes()
        .await?;
    Ok((id, Bytes::from(body.to_vec())))
}
