//! The one HTTPS client of a process: hyper-util's pooled client over hyper-rustls, HTTP/1.1, rustls on
//! AWS-LC with the system's CA store. The AWS SDK's clients (DynamoDB, KMS, SES, Secrets Manager) are
//! given it through [`sdk_http_client`], and the Graph API calls use it directly, so a function has one
//! connection pool, one TLS configuration and one read of the CA store, at its first connection (not
//! at start-up: a process that never connects reads no certificate).
//!
//! Plain `http://` URLs are served too: the emulators and fakes the tests run on 127.0.0.1, and
//! `AWS_ENDPOINT_URL` or `QCHAT_GRAPH_URL` when an operator points them at one. No proxy is used
//! (`HTTPS_PROXY` is not read): a Lambda function reaches AWS and Meta directly or through VPC
//! endpoints and a NAT gateway. Every connection is given [`CONNECT_TIMEOUT`] whatever the SDK's
//! settings say (they say the same by default); the SDK's read timeout, when one is set, bounds each
//! call's wait for its answer, and the Graph calls bound the whole exchange themselves.

use std::error::Error as StdError;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::TokioExecutor;

/// How long to wait for a TCP connection (the AWS SDK's default connect timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(3_100);
/// How long an idle pooled connection is kept (Lambda may freeze the process for longer).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A clone of the process's client: cheap, sharing one pool.
#[derive(Clone)]
pub struct Https {
    client: Client<HttpsConnector<TcpConnector>, SdkBody>,
}

impl std::fmt::Debug for Https {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Https").finish_non_exhaustive()
    }
}

/// The system's CA store could not be read, or held no certificate.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the HTTPS client could not be built: the system's CA certificates could not be loaded")]
pub struct HttpsUnavailable;

/// The process's client, built at the first call (reading the CA store then), the same one after.
///
/// # Errors
/// [`HttpsUnavailable`] when the system has no readable CA certificate (then every call says so).
pub fn shared() -> Result<Https, HttpsUnavailable> {
    static SHARED: OnceLock<Result<Https, HttpsUnavailable>> = OnceLock::new();
    SHARED.get_or_init(build).clone()
}

fn build() -> Result<Https, HttpsUnavailable> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tcp = TcpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| {
            tracing::error!(error = %e, "no CA certificates for the HTTPS client");
            HttpsUnavailable
        })?
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(connector);
    Ok(Https { client })
}

impl Https {
    /// Sends `request` and returns the answer's head and body stream.
    ///
    /// # Errors
    /// hyper-util's: connecting, TLS, writing the request or reading the answer's head.
    pub async fn send(
        &self,
        request: http::Request<SdkBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(request).await
    }
}

/// The AWS SDK's HTTP client: [`shared`], with the SDK's read timeout applied to each call.
pub fn sdk_http_client() -> SharedHttpClient {
    SharedHttpClient::new(SdkClient)
}

#[derive(Debug, Clone, Copy)]
struct SdkClient;

impl HttpClient for SdkClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(SdkConnector {
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct SdkConnector {
    read_timeout: Option<Duration>,
}

impl HttpConnector for SdkConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> HttpConnectorFuture {
        let https = match shared() {
            Ok(https) => https,
            Err(e) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::other(e.into(), None)));
            }
        };
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let answer = https.send(request);
            let response = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, answer)
                    .await
                    .map_err(|elapsed| ConnectorError::timeout(elapsed.into()))?,
                None => answer.await,
            }
            .map_err(connector_error)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The SDK's retry classes for a failed call: a connection that could not be made or broke is an I/O
/// error (retried), a timeout a timeout (retried); anything else is not retried.
fn connector_error(e: hyper_util::client::legacy::Error) -> ConnectorError {
    if is_io(&e) {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}

/// Whether the call failed for the connection's sake (connecting, TLS, a closed or cut connection)
/// rather than the request's.
pub(crate) fn is_io(e: &hyper_util::client::legacy::Error) -> bool {
    if e.is_connect() {
        return true;
    }
    let mut source: Option<&(dyn StdError + 'static)> = e.source();
    while let Some(err) = source {
        if err.is::<std::io::Error>() {
            return true;
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && (h.is_closed() || h.is_canceled() || h.is_incomplete_message())
        {
            return true;
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::error::SdkError;

    /// A DynamoDB client configured as the functions configure theirs, pointed at `endpoint`, one
    /// attempt per call.
    fn dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
        let sdk = crate::aws_env::sdk_config(|name| {
            match name {
                "AWS_REGION" => Some("eu-west-1"),
                "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("testing"),
                "AWS_ENDPOINT_URL" => Some(endpoint),
                _ => None,
            }
            .map(str::to_owned)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(1))
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_which_the_sdk_retries() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("{e}"));
        let Err(e) = dynamodb(&format!("http://127.0.0.1:{port}"))
            .list_tables()
            .send()
            .await
        else {
            panic!("nothing listens there");
        };
        match e {
            SdkError::DispatchFailure(failure) => assert!(failure.is_io(), "{failure:?}"),
            other => panic!("a dispatch failure, not {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_connection_closed_before_the_answer_is_an_io_error_too() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let server = tokio::spawn(async move {
            // Accept, read the request's first bytes, hang up without answering.
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = [0u8; 64];
                let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await;
            }
        });
        let Err(e) = dynamodb(&format!("http://{addr}"))
            .list_tables()
            .send()
            .await
        else {
            panic!("the server never answers");
        };
        server.abort();
        match e {
            SdkError::DispatchFailure(failure) => assert!(failure.is_io(), "{failure:?}"),
            other => panic!("a dispatch failure, not {other:?}"),
        }
    }
}
