//! The Postgres wire protocol front door: accepts connections, runs their statements on
//! the [`Database`], and encodes results with their Postgres type OIDs (text or binary).
//! One task per connection; a connection's failure never touches another's.

mod cursor;
mod handler;
mod http;
mod params;
pub mod pg_style;
pub mod pg_text;
mod startup;

use std::net::SocketAddr;
use std::sync::Arc;

use pgwire::api::ConnectionManager;
use tokio::net::TcpListener;

use crate::database::Database;
use handler::ConnectionHandlers;
pub use http::serve_http;

/// How clients authenticate.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    /// Any user, no password (the default; meant for loopback).
    #[default]
    Trust,
    /// One user with a password.
    Password {
        user: String,
        password: String,
        method: PasswordMethod,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordMethod {
    ScramSha256,
    /// For old clients only: MD5 hashes are weak.
    Md5,
}

/// Front-door configuration.
#[derive(Clone, Default)]
pub struct ServerConfig {
    pub auth: Auth,
    /// TLS, offered to clients that ask (SSLRequest); plain connections still work.
    pub tls: Option<pgwire::tokio::TlsAcceptor>,
}

impl ServerConfig {
    /// TLS from a PEM certificate chain and private key.
    pub fn with_tls(
        mut self,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> anyhow::Result<Self> {
        use anyhow::Context;
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("reading TLS certificate {}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing TLS certificate {}", cert.display()))?;
        anyhow::ensure!(!certs.is_empty(), "no certificate in {}", cert.display());
        let key_der = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading TLS key {}", key.display()))?;
        let mut tls = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key_der)
            .context("TLS certificate and key do not match")?;
        tls.alpn_protocols = vec![b"postgresql".to_vec()];
        self.tls = Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls)));
        Ok(self)
    }
}

/// Accept connections forever (trust authentication, no TLS).
pub async fn serve(db: Arc<Database>, listener: TcpListener) -> std::io::Result<()> {
    serve_with(db, listener, ServerConfig::default()).await
}

/// Accept connections forever.
pub async fn serve_with(
    db: Arc<Database>,
    listener: TcpListener,
    config: ServerConfig,
) -> std::io::Result<()> {
    let manager = Arc::new(ConnectionManager::new());
    let config = Arc::new(config);
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait and keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let handlers = ConnectionHandlers::new(db.clone(), &config, manager.clone(), Some(peer));
        let tls = config.tls.clone();
        tokio::spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// Bind and return the listener and the address actually bound (port 0 picks a free port).
pub async fn bind(addr: &str) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
