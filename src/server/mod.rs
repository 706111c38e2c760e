//! The Postgres wire protocol front door: accepts connections, runs their statements on
//! the [`Database`], and encodes results with their Postgres type OIDs (text or binary).
//! One task per connection; a connection's failure never touches another's.

mod handler;
mod params;
mod startup;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::database::Database;
use handler::ConnectionHandlers;

/// Accept connections forever.
pub async fn serve(db: Arc<Database>, listener: TcpListener) -> std::io::Result<()> {
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
        let handlers = ConnectionHandlers::new(db.clone());
        tokio::spawn(async move {
            if let Err(e) = pgwire::tokio::process_socket(socket, None, handlers).await {
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
