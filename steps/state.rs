//! The build's typed state bag: each step reads what earlier steps wrote and records what it
//! created the moment an API returns its id. A field per fact, so the compiler checks who reads
//! what (Packer's untyped map, left behind).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::journal::Journal;
use crate::openstack::compute::Flavor;
use crate::openstack::image::Image;
use crate::openstack::network::FloatingIp;
use crate::remote::Remote;

/// Shared state of one build (OpenStack or image-file).
#[derive(Default)]
pub struct BuildState {
    /// This run's id; every resource forge creates is named `forge-<run_id>-…`.
    pub run_id: String,
    /// Every resource created and deleted, fsynced before each create call when a file is
    /// attached (`forge cleanup` reads it after a crash); feeds the manifest.
    pub journal: Journal,
    /// The Glance image the server boots from (step `source image`).
    pub source_image: Option<Image>,
    /// Step `flavor`.
    pub flavor: Option<Flavor>,
    /// Step `keypair`: the Nova keypair name and the private key file SSH uses.
    pub keypair: Option<KeypairState>,
    /// Step `boot server`: the id is set the moment Nova returns it, before the wait.
    pub server_id: Option<String>,
    /// The server's address from Nova (first fixed IPv4), when it has one.
    pub server_address: Option<String>,
    /// Step `floating IP`: allocated by this build (released at cleanup).
    pub floating_ip: Option<FloatingIp>,
    /// Where provisioners run: the SSH session (step `connect`) or the disk image opened through
    /// libguestfs (step `open image`). The step that set it closes it.
    pub remote: Option<Arc<dyn Remote>>,
    /// Step `provision`: argument values the validators ran with (sensitive ones redacted).
    pub arguments: BTreeMap<String, String>,
    /// Step `snapshot` or `upload image`: the new Glance image's id, set as soon as the API
    /// returns it. That step deletes the image unless the build succeeds.
    pub image_id: Option<String>,
    /// Steps `open image` to `upload image` of an image-file build.
    #[cfg(feature = "guestfs")]
    pub disk: Option<DiskState>,
    /// Step `publish`: the final image.
    pub image: Option<Image>,
    /// Digest of the build's static inputs ([`crate::fingerprint::Inputs::digest`]); publish
    /// combines it with the source image into `forge_fingerprint`.
    pub inputs_digest: Option<String>,
}

/// The keypair the server is booted with.
#[derive(Debug)]
pub struct KeypairState {
    /// Nova keypair name.
    pub name: String,
    /// The private key SSH authenticates with.
    pub private_key_file: PathBuf,
    /// True when this build registered the keypair (and so deletes it).
    pub temporary: bool,
    /// Holds the temporary key file; removed on drop.
    pub dir: Option<tempfile::TempDir>,
}

/// The disk image of an image-file build or of `forge pack`.
#[cfg(feature = "guestfs")]
pub struct DiskState {
    /// With an overlay: the private temp dir holding it (the input is only its read-only
    /// backing file) and the flattened result. `open image`'s cleanup removes it. `None` when
    /// the image itself is opened (`forge pack` in place or test-only).
    pub staging: Option<crate::disk::Staging>,
    /// The libguestfs session, open from `open image` to `close image` (also in
    /// [`BuildState::remote`] meanwhile).
    pub guestfs: Option<Arc<crate::remote::guestfs::GuestfsRemote>>,
    /// The input and its format when it was opened read-write itself (`forge pack` in place).
    pub in_place: Option<(PathBuf, String)>,
    /// Step `close image`: the file `upload image` sends and its format: the flattened qcow2
    /// in the temp dir, or the image itself when it was changed in place.
    pub packed: Option<(PathBuf, String)>,
}
