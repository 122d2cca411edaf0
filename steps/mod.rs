//! The build's steps, one file per step with its run and cleanup side by side, and the state bag
//! they share. Steps depend on the core modules (`pipeline`, `openstack`, `remote`, `spec`),
//! never the reverse.
//!
//! [`openstack_pipeline`] is the whole OpenStack build, top to bottom, in one place;
//! [`image_file_pipeline`] the whole image-file build; [`pack_pipeline`] `forge pack`.

#[cfg(feature = "guestfs")]
pub mod close_image;
pub mod connect;
pub mod flavor;
pub mod floating_ip;
pub mod keypair;
#[cfg(feature = "guestfs")]
pub mod open_image;
pub mod provision;
pub mod publish;
pub mod server;
pub mod snapshot;
pub mod source_image;
pub mod state;
pub mod stop_server;
#[cfg(feature = "guestfs")]
pub mod upload_image;

use std::collections::BTreeMap;

use anyhow::Context;

pub use state::BuildState;

use crate::journal::Kind;
use crate::openstack::image::ImageClient;
use crate::pipeline::Step;
use crate::template::{ImageSettings, OpenStackSource};

pub use crate::openstack::Clients;

/// The OpenStack build, step by step. `provisioners` are loaded beforehand so that a broken
/// spec fails the build before anything is created. `forge_properties` are the build's identity
/// properties the published image carries (see [`crate::names::forge_properties`]);
/// `user_data` is the source's user data as read once for the run; `source` the source image
/// when this run already resolved it (`--skip-unchanged`).
pub fn openstack_pipeline(
    src: &OpenStackSource,
    clients: &Clients,
    provisioners: Vec<provision::Provisioner>,
    verify: bool,
    forge_properties: BTreeMap<String, String>,
    user_data: Option<Vec<u8>>,
    source: Option<source_image::Resolved>,
) -> anyhow::Result<Vec<Box<dyn Step<BuildState>>>> {
    let t = &src.timeouts;
    let existing_keypair = match (&src.ssh.keypair_name, &src.ssh.private_key_file) {
        (Some(name), Some(file)) => Some((name.clone(), file.clone())),
        _ => None,
    };
    let mut steps: Vec<Box<dyn Step<BuildState>>> = vec![
        Box::new(source_image::SourceImageStep::new(
            clients.image.clone(),
            src.source_image.clone(),
            source,
        )),
        Box::new(flavor::FlavorStep {
            compute: clients.compute.clone(),
            flavor: src.flavor.clone(),
        }),
        Box::new(keypair::KeypairStep {
            compute: clients.compute.clone(),
            existing: existing_keypair,
        }),
        Box::new(server::BootServerStep {
            compute: clients.compute.clone(),
            network: clients.network.clone(),
            networks: src.networks.clone(),
            security_groups: src.security_groups.clone(),
            availability_zone: src.availability_zone.clone(),
            user_data,
            config_drive: src.config_drive,
            timeout: t.boot,
        }),
    ];
    if let Some(pool) = &src.floating_ip_network {
        steps.push(Box::new(floating_ip::FloatingIpStep {
            network: clients.network.clone(),
            pool: pool.clone(),
        }));
    }
    steps.extend([
        Box::new(connect::ConnectStep::new(
            src.ssh.username.clone(),
            src.ssh.host.clone(),
            src.ssh.port,
            t.ssh,
        )) as Box<dyn Step<BuildState>>,
        Box::new(provision::ProvisionStep {
            provisioners,
            verify,
            distro_override: None,
        }),
        Box::new(stop_server::StopServerStep {
            compute: clients.compute.clone(),
            timeout: t.boot,
        }),
        Box::new(snapshot::SnapshotStep {
            compute: clients.compute.clone(),
            images: clients.image.clone(),
            image_name: src.image.name.clone(),
            timeout: t.image,
        }),
        Box::new(publish_step(&clients.image, &src.image, forge_properties)),
    ]);
    Ok(steps)
}

/// The image-file build, step by step: the input file is provisioned offline through
/// libguestfs on a copy-on-write overlay (never written itself), packed into a standalone
/// qcow2, uploaded to Glance and published as an OpenStack build's snapshot is; `output` is
/// replaced only once all of that succeeded.
#[cfg(feature = "guestfs")]
pub fn image_file_pipeline(
    src: &crate::template::ImageFileSource,
    images: &ImageClient,
    provisioners: Vec<provision::Provisioner>,
    verify: bool,
    forge_properties: BTreeMap<String, String>,
) -> anyhow::Result<Vec<Box<dyn Step<BuildState>>>> {
    // Beside the output, so the packed file is renamed into place; else the system temp dir.
    let staging_parent = match &src.output {
        Some(output) => crate::disk::parent_dir(output),
        None => std::env::temp_dir(),
    };
    Ok(vec![
        Box::new(open_image::OpenImageStep {
            path: src.path.clone(),
            format: src.format.as_str().to_string(),
            target: open_image::Target::Overlay { staging_parent },
            root_filesystem: src.root_filesystem.clone(),
            network: src.network,
        }),
        Box::new(provision::ProvisionStep {
            provisioners,
            verify,
            distro_override: None,
        }),
        Box::new(close_image::CloseImageStep {
            output: src.output.clone(),
        }),
        Box::new(upload_image::UploadImageStep {
            images: images.clone(),
            image_name: src.image.name.clone(),
            timeout: src.image_timeout,
        }),
        Box::new(publish_step(images, &src.image, forge_properties)),
    ])
}

/// What `forge pack` works on, from its command line.
#[cfg(feature = "guestfs")]
pub struct Pack {
    /// `--image` and its detected format.
    pub image: std::path::PathBuf,
    pub format: String,
    pub target: open_image::Target,
    pub root_filesystem: Option<String>,
    pub network: bool,
    pub distro_override: Option<String>,
    /// `--output`: replaced only when everything succeeded.
    pub output: Option<std::path::PathBuf>,
}

/// `forge pack --upload`: the new Glance image, published with the user's settings.
#[cfg(feature = "guestfs")]
pub struct PackUpload {
    pub images: ImageClient,
    pub name: String,
    pub properties: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub visibility: Option<crate::openstack::image::Visibility>,
}

/// `forge pack`, step by step: one image spec over the image opened through libguestfs (an
/// overlay with `--output`, else the image in place, or with its writes discarded under
/// `--test-only`), then with `--upload` into Glance like an image-file build's result, but
/// published with the command line's settings only (no `forge_build`: pack makes no build).
#[cfg(feature = "guestfs")]
pub fn pack_pipeline(
    pack: Pack,
    provisioner: provision::Provisioner,
    upload: Option<PackUpload>,
) -> Vec<Box<dyn Step<BuildState>>> {
    let mut steps: Vec<Box<dyn Step<BuildState>>> = vec![
        Box::new(open_image::OpenImageStep {
            path: pack.image,
            format: pack.format,
            target: pack.target,
            root_filesystem: pack.root_filesystem,
            network: pack.network,
        }),
        Box::new(provision::ProvisionStep {
            provisioners: vec![provisioner],
            verify: false,
            distro_override: pack.distro_override,
        }),
        Box::new(close_image::CloseImageStep {
            output: pack.output,
        }),
    ];
    if let Some(up) = upload {
        steps.push(Box::new(upload_image::UploadImageStep {
            images: up.images.clone(),
            image_name: up.name,
            timeout: std::time::Duration::from_secs(1800),
        }));
        steps.push(Box::new(publish::PublishStep {
            images: up.images,
            properties: up.properties,
            forge_properties: BTreeMap::new(),
            tags: up.tags,
            visibility: up.visibility,
            min_disk: None,
            members: Vec::new(),
        }));
    }
    steps
}

/// The last step of every build: publish the new image as the template's image settings say.
fn publish_step(
    images: &ImageClient,
    settings: &ImageSettings,
    forge_properties: BTreeMap<String, String>,
) -> publish::PublishStep {
    publish::PublishStep {
        images: images.clone(),
        properties: settings.properties.clone(),
        forge_properties,
        tags: settings.tags.clone(),
        visibility: settings.visibility,
        min_disk: settings.min_disk,
        members: settings.members.clone(),
    }
}

/// Cleanup of the image a build made (the snapshot or the upload): delete it unless the build
/// succeeded, and journal the deletion.
async fn delete_unfinished_image(
    images: &ImageClient,
    state: &mut BuildState,
    cx: &crate::pipeline::StepContext,
) -> anyhow::Result<()> {
    if cx.build_succeeded {
        return Ok(());
    }
    let Some(id) = state.image_id.clone() else {
        return Ok(());
    };
    images
        .delete(&id)
        .await
        .with_context(|| format!("deleting unfinished image {id}"))?;
    state.journal.deleted(Kind::Image, &id)?;
    state.image_id = None;
    Ok(())
}

/// What `--on-error=abort` leaves of the build's image, and how to remove it.
fn image_leftovers(state: &BuildState) -> Vec<String> {
    state
        .image_id
        .iter()
        .map(|id| format!("image {id}: openstack image delete {id}"))
        .collect()
}
