//! The typed, fully evaluated template: what `forge build` and `forge pack` consume.
//!
//! Every value here is final: variables, locals and functions are already applied, relative paths
//! are resolved against the template's directory, durations are parsed, enums are checked.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A loaded template: its variables, sources and builds.
#[derive(Clone)]
pub struct Template {
    /// The template file as given on the command line.
    pub path: PathBuf,
    /// Declared variables with their final values, by name.
    pub variables: BTreeMap<String, Variable>,
    /// Evaluated `locals`, by name.
    pub locals: BTreeMap<String, Local>,
    /// `source` blocks, in file order.
    pub sources: Vec<Source>,
    /// `build` blocks, in file order.
    pub builds: Vec<Build>,
    /// The string values of sensitive variables and locals, for [`Template::redact`].
    pub(crate) sensitive: Vec<String>,
}

impl Template {
    /// Replaces every occurrence of a sensitive value in `text` with `<sensitive>`.
    ///
    /// Use it on anything derived from the template before it reaches a log or an error message.
    pub fn redact(&self, text: &str) -> String {
        redact(&self.sensitive, text)
    }

    /// The source a build refers to.
    pub fn source(&self, r: &SourceRef) -> Option<&Source> {
        self.sources
            .iter()
            .find(|s| s.kind() == r.kind && s.name() == r.name)
    }
}

pub(crate) fn redact(sensitive: &[String], text: &str) -> String {
    let mut out = text.to_string();
    // Longest first, so a secret containing another secret is hidden whole.
    let mut values: Vec<&String> = sensitive.iter().filter(|s| !s.is_empty()).collect();
    values.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for v in values {
        out = out.replace(v.as_str(), "<sensitive>");
    }
    out
}

/// Debug output goes through [`Template::redact`], so a `{:?}` of a template never shows a secret.
impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = format!(
            "Template {{ path: {:?}, variables: {:?}, locals: {:?}, sources: {:?}, builds: {:?} }}",
            self.path, self.variables, self.locals, self.sources, self.builds
        );
        f.write_str(&self.redact(&raw))
    }
}

/// A declared `variable` with its final value.
#[derive(Clone)]
pub struct Variable {
    pub description: Option<String>,
    /// Sensitive values are redacted from Debug output and by [`Template::redact`].
    pub sensitive: bool,
    pub value: hcl::Value,
}

impl fmt::Debug for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Variable");
        d.field("description", &self.description)
            .field("sensitive", &self.sensitive);
        if self.sensitive {
            d.field("value", &"<sensitive>");
        } else {
            d.field("value", &self.value);
        }
        d.finish()
    }
}

/// An evaluated local value. A local derived from a sensitive variable is sensitive too.
#[derive(Clone)]
pub struct Local {
    pub sensitive: bool,
    pub value: hcl::Value,
}

impl fmt::Debug for Local {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sensitive {
            f.write_str("<sensitive>")
        } else {
            fmt::Debug::fmt(&self.value, f)
        }
    }
}

/// Source types, as in `source "TYPE" "NAME"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    OpenStack,
    ImageFile,
}

impl SourceKind {
    /// The label used in templates.
    pub fn label(self) -> &'static str {
        match self {
            SourceKind::OpenStack => "openstack",
            SourceKind::ImageFile => "image-file",
        }
    }

    pub(crate) fn from_label(s: &str) -> Option<Self> {
        match s {
            "openstack" => Some(SourceKind::OpenStack),
            "image-file" => Some(SourceKind::ImageFile),
            _ => None,
        }
    }
}

/// A `source` block.
#[derive(Debug, Clone)]
pub enum Source {
    OpenStack(Box<OpenStackSource>),
    ImageFile(Box<ImageFileSource>),
}

impl Source {
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::OpenStack(_) => SourceKind::OpenStack,
            Source::ImageFile(_) => SourceKind::ImageFile,
        }
    }
    pub fn name(&self) -> &str {
        match self {
            Source::OpenStack(s) => &s.name,
            Source::ImageFile(s) => &s.name,
        }
    }
    /// How to reach the cloud the image is published to.
    pub fn auth(&self) -> &Auth {
        match self {
            Source::OpenStack(s) => &s.auth,
            Source::ImageFile(s) => &s.auth,
        }
    }
    /// The bound on the whole build (`build_timeout`).
    pub fn build_timeout(&self) -> Duration {
        match self {
            Source::OpenStack(s) => s.timeouts.build,
            Source::ImageFile(s) => s.build_timeout,
        }
    }
}

/// `source "openstack" "NAME"`: boot a server from a base image, provision it, snapshot it.
#[derive(Debug, Clone)]
pub struct OpenStackSource {
    pub name: String,
    pub auth: Auth,
    /// Which base image to boot.
    pub source_image: SourceImage,
    pub flavor: String,
    pub networks: Vec<String>,
    pub security_groups: Vec<String>,
    pub availability_zone: Option<String>,
    pub user_data: Option<UserData>,
    pub config_drive: bool,
    /// Allocate a floating IP from this network and reach the server through it.
    pub floating_ip_network: Option<String>,
    pub ssh: Ssh,
    pub image: ImageSettings,
    pub timeouts: Timeouts,
}

/// How to reach the cloud: the source's auth attributes, each with its `file:line:col`.
/// Everything is optional: `clouds.yaml`, `secure.yaml` and `OS_*` fill the gaps at build time
/// ([`crate::openstack::CloudConfig::resolve`]).
pub type Auth = crate::openstack::CloudSpec;

/// Exactly one of `source_image`, `source_image_name`, `source_image_filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceImage {
    Id(String),
    Name(String),
    Filter(ImageFilter),
}

/// `source_image_filter { filters { ... } most_recent = BOOL }`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageFilter {
    pub name: Option<String>,
    pub owner: Option<String>,
    /// Every tag must be present (Glance ANDs repeated `tag=`).
    pub tags: Vec<String>,
    pub visibility: Option<Visibility>,
    pub properties: BTreeMap<String, String>,
    /// Pick the newest of several matches instead of failing on ambiguity.
    pub most_recent: bool,
}

/// Glance image visibility: the image client's type, so a template's value reaches the API
/// request as it was decoded.
pub use crate::openstack::image::Visibility;

/// Cloud-init user data: inline text or a file (resolved path).
#[derive(Debug, Clone, PartialEq)]
pub enum UserData {
    Inline(String),
    File(PathBuf),
}

/// How forge connects to the build server.
#[derive(Debug, Clone)]
pub struct Ssh {
    pub username: String,
    /// Connect here instead of the server's address (e.g. a port forward).
    pub host: Option<String>,
    pub port: u16,
    /// With `keypair_name`: the private key of that existing Nova keypair. Without: forge
    /// generates a temporary keypair.
    pub private_key_file: Option<PathBuf>,
    pub keypair_name: Option<String>,
}

/// What the snapshot becomes.
#[derive(Debug, Clone)]
pub struct ImageSettings {
    pub name: String,
    pub visibility: Option<Visibility>,
    pub tags: Vec<String>,
    pub properties: BTreeMap<String, String>,
    /// Project ids the image is shared with.
    pub members: Vec<String>,
    /// GiB.
    pub min_disk: Option<u64>,
}

/// Bounds on every wait of an OpenStack build.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeouts {
    /// SSH becoming reachable (`ssh_timeout`, default 5m).
    pub ssh: Duration,
    /// Server reaching ACTIVE or SHUTOFF (`boot_timeout`, default 10m).
    pub boot: Duration,
    /// Snapshot reaching active (`image_timeout`, default 30m).
    pub image: Duration,
    /// The whole build (`build_timeout`, default 2h).
    pub build: Duration,
}

/// `source "image-file" "NAME"`: a local disk image provisioned offline through libguestfs (as
/// `forge pack`), then uploaded to Glance and published like an OpenStack build's snapshot. The
/// build never modifies `path`: the provisioners write to a copy-on-write overlay.
#[derive(Debug, Clone)]
pub struct ImageFileSource {
    pub name: String,
    /// The input disk image.
    pub path: PathBuf,
    /// The format `path` must have (checked against what `qemu-img` detects).
    pub format: DiskFormat,
    /// The cloud the result is uploaded to.
    pub auth: Auth,
    /// What the uploaded image becomes.
    pub image: ImageSettings,
    /// The device to mount as `/`; `None` finds it by inspection.
    pub root_filesystem: Option<String>,
    /// Give the appliance a network (off by default).
    pub network: bool,
    /// Keep the packed standalone qcow2 here; `None` uses a temporary file, removed after upload.
    pub output: Option<PathBuf>,
    /// The uploaded image reaching active (`image_timeout`, default 30m).
    pub image_timeout: Duration,
    /// The whole build (`build_timeout`, default 2h).
    pub build_timeout: Duration,
}

/// Disk image formats `forge pack` handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Qcow2,
    Raw,
}

impl DiskFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
        }
    }
}

/// A `build` block.
#[derive(Debug, Clone)]
pub struct Build {
    pub name: Option<String>,
    pub sources: Vec<SourceRef>,
    /// In file order.
    pub provisioners: Vec<Provisioner>,
    /// In file order.
    pub post_processors: Vec<PostProcessor>,
    /// `retention { ... }`: applied to this build's images after each successful build.
    pub retention: Option<Retention>,
}

/// `retention { keep = N, hide_older = BOOL, delete_unused_after = "30d" }` inside a `build`
/// block: which of the build's images `forge images prune` (and a successful build) keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// The newest `keep` active images stay untouched (at least 1: the one just built).
    pub keep: u32,
    /// Hide (`os_hidden`) the older ones: still bootable by id, gone from default listings.
    pub hide_older: bool,
    /// Delete older images past this age that no server uses; `None` never deletes.
    pub delete_unused_after: Option<Duration>,
}

/// `source.TYPE.NAME` in a build's `sources`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    pub kind: SourceKind,
    pub name: String,
}

/// A `provisioner` block.
#[derive(Debug, Clone, PartialEq)]
pub enum Provisioner {
    Validators(ValidatorsProvisioner),
    Shell(ShellProvisioner),
}

/// `provisioner "validators"`: run a Sahara-style image spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorsProvisioner {
    /// The spec file (resolved path).
    pub spec: PathBuf,
    /// Spec arguments, by name.
    pub arguments: BTreeMap<String, Argument>,
    /// Only check; change nothing.
    pub test_only: bool,
}

/// One spec argument value; `sensitive` when it came from a sensitive variable or local.
#[derive(Clone, PartialEq)]
pub struct Argument {
    pub value: String,
    pub sensitive: bool,
}

impl fmt::Debug for Argument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sensitive {
            f.write_str("<sensitive>")
        } else {
            fmt::Debug::fmt(&self.value, f)
        }
    }
}

/// `provisioner "shell"`: exactly one of `inline` or `script`.
#[derive(Debug, Clone, PartialEq)]
pub enum ShellProvisioner {
    Inline(Vec<String>),
    /// A local script (resolved path), uploaded and run.
    Script(PathBuf),
}

/// A `post-processor` block.
#[derive(Debug, Clone, PartialEq)]
pub enum PostProcessor {
    /// Write a JSON manifest of the built artifacts.
    Manifest { output: PathBuf },
}
