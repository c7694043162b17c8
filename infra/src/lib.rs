//! The local server: one process that serves every route of every function on 127.0.0.1 with the embedded
//! backends (SQLite store, local keyring, mail and Messenger outboxes under the data folder), and runs what
//! EventBridge and the table's stream run in AWS: the outbox poller and the job ticker.
//!
//! It mounts the same library handlers the Lambda functions run, through the route table that the
//! template test checks against `template.yaml`.

mod server;
mod ticker;

use std::net::SocketAddr;
use std::sync::Arc;

use qchat_shared::app::{App, StartupError};
use qchat_shared::config::{Backend, Config, ConfigError};
use qchat_shared::replies::handoff::{ClaimedReply, ReplyHandoff};
use tokio::sync::mpsc;

pub use server::{Server, dispatch};

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("could not listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Reads the environment, prepares the data folder and secrets, prints where things are, and serves until
/// Ctrl-C.
pub async fn run_from_env() -> Result<(), LocalError> {
    let config = Config::from_env()?;
    qchat_shared::telemetry::init(config.log_format, &config.log_filter);
    let Started {
        app,
        server,
        handed_replies,
    } = start(config).await?;
    print_banner(&app, server.local_addr()).await;
    let ticker = tokio::spawn(ticker::run(app.clone(), handed_replies));
    let result = server.serve_until(shutdown_signal()).await;
    ticker.abort();
    result
}

/// A local server ready to serve.
#[derive(Debug)]
pub struct Started {
    pub app: App,
    pub server: Server,
    /// The replies the webhook hands to this process's sender ([`qchat_shared::replies::handoff`]);
    /// while nobody reads them (this dropped), the webhook queues every reply in the due index.
    pub handed_replies: mpsc::UnboundedReceiver<ClaimedReply>,
}

/// Everything the local server does before it serves: builds the app (which creates the local secrets
/// file on first start, and refuses a data folder whose master key is missing or is not the key its
/// data was encrypted under), with the webhook handing its new replies to the process's sender, and
/// binds the address. Nothing is served or run yet.
pub async fn start(config: Config) -> Result<Started, LocalError> {
    let (handoff, handed_replies) =
        ReplyHandoff::new(ticker::HANDOFF_SLOTS, qchat_notify::delivery::LEASE_SECS);
    let app = App::from_config(config)
        .await?
        .with_reply_handoff(Arc::new(handoff));
    let server = Server::bind(app.clone()).await?;
    Ok(Started {
        app,
        server,
        handed_replies,
    })
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

async fn print_banner(app: &App, addr: SocketAddr) {
    use secrecy::ExposeSecret as _;
    use std::io::Write as _;
    let data_dir = match &app.config.backend {
        Backend::Local { data_dir } => data_dir.display().to_string(),
        Backend::Aws { table, .. } => format!("(AWS table {table})"),
    };
    let verify = match app.meta_secrets.current().await {
        Ok(secrets) => secrets.verify_token().expose_secret().to_owned(),
        Err(e) => format!("(not readable: {e})"),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "qchat is running at http://{addr}");
    let _ = writeln!(out, "  data folder:           {data_dir}");
    let _ = writeln!(out, "  mail outbox:           {data_dir}/mail/");
    let _ = writeln!(out, "  webhook verify token:  {verify}");
    let _ = writeln!(out, "  privacy notice:        http://{addr}/privacy");
    if app.config.controller.placeholder {
        let _ = writeln!(
            out,
            "  controller:            a placeholder; set QCHAT_CONTROLLER_NAME and QCHAT_CONTROLLER_EMAIL"
        );
    }
    let _ = writeln!(out, "Press Ctrl-C to stop.");
}
