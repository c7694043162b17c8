//! The HTTP side of the local server: hyper on 127.0.0.1, each request routed through the shared route
//! table to the function that serves it in AWS.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use qchat_shared::app::App;
use qchat_shared::http::{ApiError, ClientAddr, Request, Response, StatusCode, finish};
use qchat_shared::routes::{self, Function, Matched};
use tokio::net::TcpListener;

use crate::LocalError;

/// API Gateway's payload limit is 10 MB; nothing of qchat's comes near 1 MiB.
const MAX_BODY: usize = 1024 * 1024;

/// Routes one request to its function, exactly as API Gateway would.
pub async fn dispatch(app: &App, req: Request) -> Response {
    match routes::find(routes::ROUTES, req.method().as_str(), req.uri().path()) {
        Matched::Route(route, _) => match route.function() {
            Function::Account => qchat_account::handle(app, req).await,
            Function::Webhook => qchat_webhook::handle(app, req).await,
            Function::Optin => qchat_optin::handle(app, req).await,
            Function::Broadcast => qchat_broadcast::handle(app, req).await,
            Function::Erase => qchat_erase::handle(app, req).await,
        },
        Matched::WrongMethod => {
            finish(routes::method_not_allowed(req.uri().path()).into_response())
        }
        Matched::NotFound => finish(ApiError::route_not_found().into_response()),
    }
}

async fn serve_one(
    app: App,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let response = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => {
            parts.extensions.insert(ClientAddr(peer.ip()));
            let req = http::Request::from_parts(parts, collected.to_bytes());
            dispatch(&app, req).await
        }
        Err(_) => finish(
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than 1 MiB",
            )
            .into_response(),
        ),
    };
    let (parts, body) = response.into_parts();
    Ok(hyper::Response::from_parts(parts, Full::new(body)))
}

/// A bound local server.
#[derive(Debug)]
pub struct Server {
    app: App,
    listener: TcpListener,
}

impl Server {
    pub async fn bind(app: App) -> Result<Self, LocalError> {
        let addr = app.config.addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| LocalError::Listen { addr, source })?;
        Ok(Self { app, listener })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.app.config.addr)
    }

    /// Accepts connections until `shutdown` completes.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) -> Result<(), LocalError> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                accepted = self.listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let app = self.app.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| serve_one(app.clone(), peer, req));
                        if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await {
                            tracing::debug!(error = %e, "connection closed with an error");
                        }
                    });
                }
            }
        }
    }
}
