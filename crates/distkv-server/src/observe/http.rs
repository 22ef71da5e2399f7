//! The HTTP endpoint (`server.http`): `GET /metrics` and `GET /health`,
//! and every other path through the [`HttpHandler`] the server was given
//! (the web console), if any. A server with a certificate (TLS only on
//! its client listeners) serves the endpoint over TLS only as well, with
//! the same certificate. Bounded like every listener: at most
//! [`MAX_CONNECTIONS`] at once, request heads up to 16 KiB read within
//! 5 s, 30 s per connection; the endpoint's own paths take no request
//! bodies, and a handler bounds the bodies it reads.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::state::Shared;

/// Connections served at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 32;

/// How long one connection is served, streams included; a handler's
/// streams end themselves before this.
pub const CONNECTION_TIME: Duration = Duration::from_secs(30);

/// The body of an answer: whole, or streamed by a handler.
pub type HttpBody = BoxBody<Bytes, Infallible>;

/// Answers the requests for the paths the endpoint does not serve
/// itself (all but `/metrics` and `/health`), whatever their method. The
/// front end hands one to the server at start
/// ([`crate::ServerConfig::http_handler`]); the web console is one. It
/// runs on the endpoint's connections, within their limits.
#[async_trait::async_trait]
pub trait HttpHandler: Send + Sync + std::fmt::Debug {
    /// The answer to `req`, which came from `peer`.
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<HttpBody>;
}

/// What a request needs: the server's state and the handler of the paths
/// the endpoint does not serve itself.
#[derive(Clone)]
struct Endpoint {
    shared: Arc<Shared>,
    handler: Option<Arc<dyn HttpHandler>>,
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIME: Duration = Duration::from_secs(5);

/// Serves the endpoint on `listener` until `shutdown`, handing the paths
/// it does not serve itself to `handler`; with `tls`, over TLS only.
pub async fn serve(
    shared: Arc<Shared>,
    handler: Option<Arc<dyn HttpHandler>>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) {
    let endpoint = Endpoint { shared, handler };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let endpoint = endpoint.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(endpoint, stream, peer).await,
                Some(tls) => {
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                    match tokio::time::timeout(HANDSHAKE_TIME, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(endpoint, stream, peer).await,
                        Ok(Err(e)) => {
                            tracing::info!(%peer, error = %e, "https: TLS handshake failed");
                        }
                        Err(_) => tracing::info!(%peer, "https: TLS handshake timed out"),
                    }
                }
            }
        });
    }
}

/// Serves one accepted connection, within [`CONNECTION_TIME`].
async fn serve_connection<S>(endpoint: Endpoint, stream: S, peer: SocketAddr)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| answer(endpoint.clone(), req, peer));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(5))
        .max_buf_size(16 * 1024)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_TIME, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "http connection ended"),
        Err(_) => tracing::debug!(%peer, "http connection timed out"),
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<HttpBody> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn answer(
    endpoint: Endpoint,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<HttpBody>, Infallible> {
    const TEXT: &str = "text/plain; charset=utf-8";
    let own = matches!(req.uri().path(), "/metrics" | "/health");
    if !own {
        if let Some(h) = &endpoint.handler {
            return Ok(h.handle(req, peer).await);
        }
    }
    let shared = endpoint.shared;
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET\n".into());
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return Ok(r);
    }
    Ok(match req.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            super::render(&shared),
        ),
        "/health" => {
            let h = super::health(&shared);
            let status = if h.ok {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            reply(status, TEXT, h.text())
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: try /metrics or /health\n".into(),
        ),
    })
}
