//! Connection startup: authentication and the parameter statuses clients insist on — a
//! parseable `server_version` (we speak as Postgres 15), `client_encoding=UTF8`,
//! `DateStyle=ISO, MDY`, `integer_datetimes=on`.
//!
//! Without a configured password every user is trusted (the default, for a server on
//! loopback). With one, clients authenticate with SCRAM-SHA-256 (or MD5 for old clients,
//! if so configured); a wrong password or user gets 28P01 and is logged. Every
//! connection is registered for cancel requests (psql's Ctrl-C).

use std::fmt::Debug;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::Sink;
use pgwire::api::auth::md5pass::{hash_md5_password, Md5PasswordAuthStartupHandler};
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramAuth};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, AuthSource,
    DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::{
    ClientInfo, ConnectionGuard, ConnectionHandle, ConnectionManager, PidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::SecretKey;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::{Auth, PasswordMethod, ServerConfig};
use crate::database::SERVER_VERSION;

const SCRAM_ITERATIONS: usize = 4096;

fn parameters() -> DefaultServerParameterProvider {
    let mut parameters = DefaultServerParameterProvider::default();
    parameters.server_version = SERVER_VERSION.to_string();
    parameters.client_encoding = Some("UTF8".into());
    parameters.date_style = "ISO, MDY".into();
    parameters.time_zone = "UTC".into();
    parameters
}

/// Backend process ids: one per connection, so cancel requests name one connection.
static NEXT_PID: AtomicI32 = AtomicI32::new(1000);

struct Keys;

impl PidSecretKeyGenerator for Keys {
    fn generate(&self, _client: &dyn ClientInfo) -> (i32, SecretKey) {
        (
            NEXT_PID.fetch_add(1, Ordering::Relaxed),
            SecretKey::I32(random_u64() as i32),
        )
    }
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

fn random_bytes(n: usize) -> Vec<u8> {
    (0..n.div_ceil(8))
        .flat_map(|_| random_u64().to_le_bytes())
        .take(n)
        .collect()
}

/// The configured user's password, salted as the method needs. Another user gets a
/// password nobody knows, so the failure looks the same (28P01).
#[derive(Debug)]
struct PasswordSource {
    user: String,
    password: String,
    method: PasswordMethod,
}

#[async_trait]
impl AuthSource for PasswordSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let password = if login.user() == Some(self.user.as_str()) {
            self.password.clone()
        } else {
            format!("{:x}{:x}", random_u64(), random_u64())
        };
        Ok(match self.method {
            PasswordMethod::ScramSha256 => {
                let salt = random_bytes(16);
                let salted = gen_salted_password(&password, &salt, SCRAM_ITERATIONS);
                Password::new(Some(salt), salted)
            }
            PasswordMethod::Md5 => {
                let salt = random_bytes(4);
                let user = login.user().unwrap_or_default();
                let hashed = hash_md5_password(user, &password, &salt);
                Password::new(Some(salt), hashed.into_bytes())
            }
        })
    }
}

enum Method {
    Trust(Arc<DefaultServerParameterProvider>),
    Scram(SASLAuthStartupHandler<DefaultServerParameterProvider>),
    Md5(Md5PasswordAuthStartupHandler<PasswordSource, DefaultServerParameterProvider>),
}

/// One connection's startup.
pub struct Startup {
    method: Method,
    manager: Arc<ConnectionManager>,
}

impl Startup {
    pub fn new(config: &ServerConfig, manager: Arc<ConnectionManager>) -> Self {
        let params = Arc::new(parameters());
        let method = match &config.auth {
            Auth::Trust => Method::Trust(params),
            Auth::Password {
                user,
                password,
                method,
            } => {
                let source = Arc::new(PasswordSource {
                    user: user.clone(),
                    password: password.clone(),
                    method: *method,
                });
                match method {
                    PasswordMethod::ScramSha256 => {
                        let mut scram = ScramAuth::new(source);
                        scram.set_iterations(SCRAM_ITERATIONS);
                        // No channel binding (SCRAM-SHA-256-PLUS): pgwire 0.41 would offer
                        // it on plain connections too, which libpq rightly refuses.
                        Method::Scram(
                            SASLAuthStartupHandler::new(params)
                                .with_scram(scram)
                                .with_pid_secret_key_generator(Arc::new(Keys))
                                .with_connection_manager(manager.clone()),
                        )
                    }
                    PasswordMethod::Md5 => Method::Md5(
                        Md5PasswordAuthStartupHandler::new(source, params)
                            .with_pid_secret_key_generator(Arc::new(Keys))
                            .with_connection_manager(manager.clone()),
                    ),
                }
            }
        };
        Startup { method, manager }
    }
}

#[async_trait]
impl StartupHandler for Startup {
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
        let result = match &self.method {
            Method::Trust(params) => {
                if let PgWireFrontendMessage::Startup(ref startup) = message {
                    protocol_negotiation(client, startup).await?;
                    save_startup_parameters_to_metadata(client, startup);
                    let (pid, secret) = Keys.generate(client);
                    client.set_pid_and_secret_key(pid, secret.clone());
                    let (handle, guard) = self.manager.register(pid, secret);
                    client
                        .session_extensions()
                        .insert::<Arc<ConnectionHandle>>(handle);
                    client.session_extensions().insert::<ConnectionGuard>(guard);
                    finish_authentication(client, params.as_ref()).await?;
                }
                Ok(())
            }
            Method::Scram(h) => h.on_startup(client, message).await,
            Method::Md5(h) => h.on_startup(client, message).await,
        };
        if let Err(PgWireError::InvalidPassword(_)) = &result {
            let login = LoginInfo::from_client_info(client);
            let user = login.user().unwrap_or_default();
            tracing::warn!(%user, peer = %client.socket_addr(), "password authentication failed");
        }
        result
    }
}

/// The cancel handle of a connection (set at startup).
pub fn cancel_handle<C: ClientInfo>(client: &C) -> Option<Arc<ConnectionHandle>> {
    client
        .session_extensions()
        .get::<Arc<ConnectionHandle>>()
        .map(|h| h.as_ref().clone())
}
