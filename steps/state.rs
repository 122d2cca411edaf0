//! The build's typed state bag: each step reads what earlier steps wrote and records what it
//! created the moment an API returns its id. A field per fact, so the compiler checks who reads
//! what (Packer's untyped map, left behind).

/// Shared state of one OpenStack build.
#[derive(Debug, Default)]
pub struct BuildState {
    /// This run's id; every resource forge creates is named `forge-<run_id>-…`.
    pub run_id: String,
    /// The Glance image the server boots from (step `source image`).
    pub source_image: Option<crate::openstack::image::Image>,
}
