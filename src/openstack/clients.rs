//! The API clients of one cloud over one session, and the one way forge logs in: build,
//! images, cleanup and pack all call [`Clients::connect`].

use std::sync::Arc;

use super::compute::ComputeClient;
use super::config::{CloudConfig, CloudSpec, ConfigEnv};
use super::image::ImageClient;
use super::network::NetworkClient;
use super::{Error, Session};

/// The API clients of one cloud, sharing one authenticated session.
#[derive(Clone)]
pub struct Clients {
    pub image: ImageClient,
    pub compute: ComputeClient,
    pub network: NetworkClient,
}

/// Logging in failed: the configuration is missing or wrong, Keystone could not be reached, or
/// it refused the credentials. Its own type so that commands exit with their login code.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct LoginError(#[from] pub Error);

impl Clients {
    /// Clients over an existing session.
    pub fn new(session: Arc<Session>) -> Clients {
        Clients {
            image: ImageClient::new(session.clone()),
            compute: ComputeClient::new(session.clone()),
            network: NetworkClient::new(session),
        }
    }

    /// Resolve `spec` over `clouds.yaml`, `secure.yaml` and this process's `OS_*` variables
    /// (see [`CloudConfig::resolve`]) and log in.
    pub async fn connect(spec: &CloudSpec) -> Result<Clients, LoginError> {
        Clients::connect_in(spec, &ConfigEnv::from_process()).await
    }

    /// [`Clients::connect`] in a given environment.
    pub async fn connect_in(spec: &CloudSpec, env: &ConfigEnv) -> Result<Clients, LoginError> {
        let config = CloudConfig::resolve(spec, env).map_err(Error::from)?;
        Ok(Clients::new(Session::connect(config).await?))
    }

    /// The session every client sends through.
    pub fn session(&self) -> &Arc<Session> {
        self.image.session()
    }
}
