//! Connection startup: trust authentication (any user and database) and the parameter
//! statuses clients insist on — a parseable `server_version` (we speak as Postgres 15),
//! `client_encoding=UTF8`, `DateStyle=ISO, MDY`, `integer_datetimes=on`.

use std::fmt::Debug;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    DefaultServerParameterProvider, StartupHandler,
};
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::database::SERVER_VERSION;

pub struct TrustStartup {
    parameters: DefaultServerParameterProvider,
}

impl TrustStartup {
    pub fn new() -> Self {
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = SERVER_VERSION.to_string();
        parameters.client_encoding = Some("UTF8".into());
        parameters.date_style = "ISO, MDY".into();
        parameters.time_zone = "UTC".into();
        TrustStartup { parameters }
    }
}

#[async_trait]
impl StartupHandler for TrustStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            let pid = std::process::id() as i32;
            let secret: i32 = rand_secret();
            client.set_pid_and_secret_key(pid, pgwire::messages::startup::SecretKey::I32(secret));
            finish_authentication(client, &self.parameters).await?;
        }
        Ok(())
    }
}

fn rand_secret() -> i32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as i32
}
