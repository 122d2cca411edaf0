//! Clients that mirror the OpenStack APIs: one module per service.
//!
//! - [`config`]: which cloud and how to log in (template auth, `clouds.yaml`, `secure.yaml`,
//!   `OS_*`), every setting with where it came from.
//! - [`clients`]: [`Clients::connect`], the one login every command uses.
//! - [`identity`]: the Keystone v3 [`Session`]: token, service catalog, every HTTP request
//!   (counted, so tests and benchmarks can report round trips).
//! - [`image`] (Glance v2), [`compute`] (Nova v2.1 with microversions), [`network`] (Neutron
//!   floating IPs), [`volume`] (Cinder v3 volumes).
//! - [`wait`]: the one bounded, cancellable, backing-off wait every client uses.
//!
//! Written on `reqwest` rather than the `openstack_sdk` crate: see the design note in
//! [`identity`].

pub mod clients;
pub mod compute;
pub mod config;
pub mod error;
pub mod identity;
pub mod image;
pub mod network;
pub mod volume;
pub mod wait;

pub use clients::{Clients, LoginError};
pub use config::{CloudConfig, CloudSpec, ConfigEnv, Origin};
pub use error::Error;
pub use identity::Session;
