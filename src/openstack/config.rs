//! Which cloud and how to log in, found the way the `openstack` CLI finds it.
//!
//! Sources, lowest precedence first:
//! 1. `clouds.yaml`, the entry named by `cloud =` in the template or `OS_CLOUD`. The file is the
//!    first that exists of `$OS_CLIENT_CONFIG_FILE`, `./clouds.{yaml,yml,json}`,
//!    `$XDG_CONFIG_HOME/openstack/` (default `~/.config/openstack/`), `/etc/openstack/`.
//! 2. `secure.yaml` (same directories, or `$OS_CLIENT_SECURE_FILE`): the same cloud's entry,
//!    merged key by key over `clouds.yaml` (where people keep passwords).
//! 3. `OS_*` environment variables (`OS_AUTH_URL`, `OS_PASSWORD`, `OS_REGION_NAME`, ...), which
//!    override single keys. Without a cloud name they are the whole configuration (an `openrc`).
//! 4. Explicit settings, a [`CloudSpec`] (the template's auth attributes), which override
//!    single keys as the CLI's `--os-*` options do. When the spec names a login method (sets a
//!    password, token or application credential) that method is used, whatever the files say.
//!
//! `<service>_endpoint_override: URL` (e.g. `network_endpoint_override`) replaces the catalog's
//! endpoint for that service type.
//!
//! Auth types: `password` (`v3password`), `v3applicationcredential`
//! (`application_credential`), `token` (`v3token`); when `auth_type` is absent it follows from
//! the keys given. `verify: false`, `insecure: true` or `OS_INSECURE=true` turn TLS
//! verification off (the session warns); `cacert` adds a CA bundle.
//!
//! Every setting keeps where it came from (an [`Origin`]: template `file:line:col`, the
//! `clouds.yaml`/`secure.yaml` key's `file:line:col`, or the variable's name); every error names
//! it and never echoes a secret's value. Secrets are [`SecretString`]s from the moment they are
//! read to the Keystone request body.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

/// A configuration problem, with where it was found.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No cloud named and no `OS_AUTH_URL` in the environment.
    #[error(
        "no cloud configured: set `cloud` in the template or OS_CLOUD (a clouds.yaml entry), \
         or source an openrc (OS_AUTH_URL, OS_USERNAME, ...)"
    )]
    NoCloud,
    /// A cloud was named but no `clouds.yaml` exists.
    #[error("cloud '{cloud}' requested but no clouds.yaml was found (searched: {searched})")]
    NoCloudsFile { cloud: String, searched: String },
    /// The named cloud is not in `clouds.yaml`.
    #[error("{}: no cloud named '{cloud}' (available: {available})", file.display())]
    UnknownCloud {
        file: PathBuf,
        cloud: String,
        available: String,
    },
    /// A file could not be read.
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The YAML itself is malformed, or a value has the wrong shape.
    #[error("{at}: {message}")]
    Syntax { at: String, message: String },
    /// A setting is present but wrong; `at` is where it was set (`file:line:col`, `env OS_X`)
    /// and `key` its name there.
    #[error("{at}: invalid {key}: {message}")]
    Invalid {
        at: Origin,
        key: String,
        message: String,
    },
    /// A required setting is absent.
    #[error("cloud '{cloud}': missing {what}")]
    Missing { cloud: String, what: String },
}

/// Where one setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A template attribute, at `file:line:col` (the file as the user named it).
    Template {
        file: String,
        line: usize,
        column: usize,
        attribute: String,
    },
    /// A key of `clouds.yaml` or `secure.yaml`.
    File {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    /// An environment variable.
    Env(String),
    /// A command-line option (`--cloud`).
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Template {
                file, line, column, ..
            } => write!(f, "{file}:{line}:{column}"),
            Origin::File { path, line, column } => {
                write!(f, "{}:{line}:{column}", path.display())
            }
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::Flag(flag) => write!(f, "{flag}"),
        }
    }
}

impl Origin {
    /// The setting's name where it was written: the template attribute, the variable, or the
    /// flattened `clouds.yaml` key.
    fn key_name(&self, flat_key: &str) -> String {
        match self {
            Origin::Template { attribute, .. } => attribute.clone(),
            _ => flat_key.to_string(),
        }
    }

    /// What kind of source this is, for the journal: `template`, `clouds.yaml`, `secure.yaml`
    /// or `env`, with the place (never a value).
    pub fn describe(&self) -> String {
        match self {
            Origin::Template { attribute, .. } => {
                format!("template attribute `{attribute}` at {self}")
            }
            Origin::File { path, .. } => {
                let file = path.file_name().map(|n| n.to_string_lossy().into_owned());
                format!("{} key at {self}", file.unwrap_or_default())
            }
            Origin::Env(var) => format!("environment variable {var}"),
            Origin::Flag(flag) => format!("command-line option {flag}"),
        }
    }

    /// Whether a template attribute set this.
    pub fn is_template(&self) -> bool {
        matches!(self, Origin::Template { .. })
    }
}

/// A value with where it came from.
#[derive(Debug, Clone)]
pub struct Located<T> {
    pub value: T,
    pub at: Origin,
}

impl<T> Located<T> {
    pub fn new(value: T, at: Origin) -> Located<T> {
        Located { value, at }
    }
}

/// Explicit cloud settings (a template's auth attributes), each with where it was written. They
/// override `clouds.yaml`, `secure.yaml` and `OS_*` key by key (see the module doc); every
/// field is optional. Secrets are [`SecretString`]s.
#[derive(Debug, Clone, Default)]
pub struct CloudSpec {
    /// The `clouds.yaml` entry (Packer's `cloud`); `OS_CLOUD` when absent.
    pub cloud: Option<Located<String>>,
    /// Keystone URL (Packer's `identity_endpoint`).
    pub auth_url: Option<Located<String>>,
    pub region: Option<Located<String>>,
    pub username: Option<Located<String>>,
    pub user_id: Option<Located<String>>,
    pub password: Option<Located<SecretString>>,
    pub user_domain_name: Option<Located<String>>,
    pub project_name: Option<Located<String>>,
    pub project_id: Option<Located<String>>,
    pub project_domain_name: Option<Located<String>>,
    /// The default domain of user and project, and the scope when no project is set.
    pub domain_name: Option<Located<String>>,
    pub domain_id: Option<Located<String>>,
    pub token: Option<Located<SecretString>>,
    pub application_credential_id: Option<Located<String>>,
    pub application_credential_name: Option<Located<String>>,
    pub application_credential_secret: Option<Located<SecretString>>,
    /// Catalog interface (Packer's `endpoint_type`): public, internal, admin (`…URL` too).
    pub interface: Option<Located<String>>,
    pub insecure: Option<Located<bool>>,
    pub cacert: Option<Located<PathBuf>>,
    /// Client TLS certificate and key (PEM files) for Keystone and every service.
    pub cert: Option<Located<PathBuf>>,
    pub key: Option<Located<PathBuf>>,
}

/// A login method, as a [`CloudSpec`] can name one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Password,
    Token,
    ApplicationCredential,
}

impl Method {
    /// Keystone's name of the method (as the journal records it).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Password => "password",
            Method::Token => "token",
            Method::ApplicationCredential => "application_credential",
        }
    }
}

impl CloudSpec {
    /// Nothing but a `clouds.yaml` entry (or, `None`, `OS_CLOUD` / `OS_*`); `at` says who named it.
    pub fn named(cloud: Option<&str>, at: Origin) -> CloudSpec {
        CloudSpec {
            cloud: cloud
                .filter(|c| !c.is_empty())
                .map(|c| Located::new(c.to_string(), at)),
            ..CloudSpec::default()
        }
    }

    /// The `clouds.yaml` entry named, if any.
    pub fn cloud_name(&self) -> Option<&str> {
        self.cloud.as_ref().map(|c| c.value.as_str())
    }

    /// The login methods whose credential this spec sets, each with the first place that sets
    /// it. More than one is a conflict (see [`CloudSpec::check`]).
    pub fn methods(&self) -> Vec<(Method, &Origin)> {
        let mut out = Vec::new();
        if let Some(p) = &self.password {
            out.push((Method::Password, &p.at));
        }
        if let Some(t) = &self.token {
            out.push((Method::Token, &t.at));
        }
        let ac = [
            self.application_credential_id.as_ref().map(|l| &l.at),
            self.application_credential_name.as_ref().map(|l| &l.at),
            self.application_credential_secret.as_ref().map(|l| &l.at),
        ];
        if let Some(at) = ac.into_iter().flatten().next() {
            out.push((Method::ApplicationCredential, at));
        }
        out
    }

    /// What can be checked without the environment or the network: the URL's shape, the
    /// interface's name, one login method at most, and (when the spec configures the login
    /// itself: a Keystone URL and a credential, no `cloud`) the pieces that method needs.
    /// Each problem comes with the place it is about.
    pub fn check(&self) -> Vec<(Origin, String)> {
        let mut out = Vec::new();
        if let Some(u) = &self.auth_url {
            if let Err(m) = check_url(&u.value) {
                let key = u.at.key_name("auth_url");
                out.push((u.at.clone(), format!("`{key}`: '{}': {m}", u.value)));
            }
        }
        if let Some(i) = &self.interface {
            if parse_interface(&i.value).is_none() {
                out.push((
                    i.at.clone(),
                    format!(
                        "`{}` must be public, internal or admin (or publicURL, internalURL, \
                         adminURL), found \"{}\"",
                        i.at.key_name("interface"),
                        i.value
                    ),
                ));
            }
        }
        let methods = self.methods();
        if let [(first, _), rest @ ..] = methods.as_slice() {
            for (m, at) in rest {
                out.push((
                    (*at).clone(),
                    format!(
                        "`{}` sets {} login, but {} login is set too: password, token and \
                         application credential exclude each other; set only one",
                        at.key_name(m.as_str()),
                        m.as_str().replace('_', " "),
                        first.as_str().replace('_', " "),
                    ),
                ));
            }
        }
        let alone = self.cloud.is_none() && self.auth_url.is_some();
        if let (true, [(method, at)]) = (alone, methods.as_slice()) {
            let has_user = self.username.is_some() || self.user_id.is_some();
            let what = match method {
                Method::Password if !has_user => Some("`username` or `user_id`"),
                Method::ApplicationCredential
                    if self.application_credential_secret.is_none() =>
                {
                    Some("`application_credential_secret`")
                }
                Method::ApplicationCredential
                    if self.application_credential_id.is_none()
                        && (self.application_credential_name.is_none() || !has_user) =>
                {
                    Some("`application_credential_id`, or `application_credential_name` with `username` or `user_id`")
                }
                _ => None,
            };
            if let Some(what) = what {
                out.push((
                    (*at).clone(),
                    format!(
                        "{} login configured here (with `identity_endpoint`, no `cloud`) \
                         also needs {what}",
                        method.as_str().replace('_', " ")
                    ),
                ));
            }
        }
        out
    }

    /// The settings as flat `clouds.yaml` keys, highest layer of [`CloudConfig::resolve`].
    fn settings(&self) -> Vec<(&'static str, Setting)> {
        let mut out = Vec::new();
        let mut text = |k: &'static str, v: &Option<Located<String>>| {
            if let Some(l) = v {
                out.push((k, Setting::text(l.value.clone(), l.at.clone())));
            }
        };
        text("auth.auth_url", &self.auth_url);
        text("region_name", &self.region);
        text("auth.username", &self.username);
        text("auth.user_id", &self.user_id);
        text("auth.user_domain_name", &self.user_domain_name);
        text("auth.project_name", &self.project_name);
        text("auth.project_id", &self.project_id);
        text("auth.project_domain_name", &self.project_domain_name);
        text("auth.domain_name", &self.domain_name);
        text("auth.domain_id", &self.domain_id);
        text(
            "auth.application_credential_id",
            &self.application_credential_id,
        );
        text(
            "auth.application_credential_name",
            &self.application_credential_name,
        );
        text("interface", &self.interface);
        let mut secret = |k: &'static str, v: &Option<Located<SecretString>>| {
            if let Some(l) = v {
                out.push((
                    k,
                    Setting {
                        value: Value::Secret(l.value.clone()),
                        at: l.at.clone(),
                    },
                ));
            }
        };
        secret("auth.password", &self.password);
        secret("auth.token", &self.token);
        secret(
            "auth.application_credential_secret",
            &self.application_credential_secret,
        );
        if let Some(l) = &self.insecure {
            out.push(("insecure", Setting::text(l.value.to_string(), l.at.clone())));
        }
        for (k, v) in [
            ("cacert", &self.cacert),
            ("cert", &self.cert),
            ("key", &self.key),
        ] {
            if let Some(l) = v {
                out.push((
                    k,
                    Setting::text(l.value.display().to_string(), l.at.clone()),
                ));
            }
        }
        // The method the spec names wins over whatever the files and variables configure.
        if let [(method, at)] = self.methods().as_slice() {
            let name = match method {
                Method::Password => "password",
                Method::Token => "v3token",
                Method::ApplicationCredential => "v3applicationcredential",
            };
            out.push(("auth_type", Setting::text(name.to_string(), (*at).clone())));
        }
        out
    }
}

/// The environment configuration is read from: the process's own, or (in tests) a given set
/// of variables, so that loading is deterministic and needs no global state.
#[derive(Clone)]
pub struct ConfigEnv {
    vars: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
}

impl fmt::Debug for ConfigEnv {
    // Variable names only: OS_PASSWORD and friends hold secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigEnv")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl ConfigEnv {
    /// The process environment and working directory.
    pub fn from_process() -> ConfigEnv {
        ConfigEnv {
            vars: std::env::vars().collect(),
            cwd: std::env::current_dir().ok(),
        }
    }

    /// Exactly these variables; `cwd` is where `./clouds.yaml` is looked for (none if `None`).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
        cwd: Option<PathBuf>,
    ) -> ConfigEnv {
        ConfigEnv {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            cwd,
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Directories searched for `clouds.yaml` / `secure.yaml`, in order.
    fn config_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(cwd) = &self.cwd {
            dirs.push(cwd.clone());
        }
        if let Some(xdg) = self.get("XDG_CONFIG_HOME") {
            dirs.push(Path::new(xdg).join("openstack"));
        } else if let Some(home) = self.get("HOME") {
            dirs.push(Path::new(home).join(".config/openstack"));
        }
        dirs.push(PathBuf::from("/etc/openstack"));
        dirs
    }

    /// The first existing file among `$override_var` and `<dir>/<stem>.{yaml,yml,json}`.
    fn find_file(&self, override_var: &str, stem: &str) -> (Option<PathBuf>, Vec<PathBuf>) {
        let mut candidates = Vec::new();
        if let Some(p) = self.get(override_var) {
            candidates.push(PathBuf::from(p));
        }
        for dir in self.config_dirs() {
            for ext in ["yaml", "yml", "json"] {
                candidates.push(dir.join(format!("{stem}.{ext}")));
            }
        }
        let found = candidates.iter().find(|p| p.is_file()).cloned();
        (found, candidates)
    }
}

/// How to authenticate. Secrets are [`SecretString`]s: their `Debug` prints `[REDACTED]`.
#[derive(Debug, Clone)]
pub enum AuthMethod {
    /// Keystone `password` method.
    Password {
        user: UserRef,
        password: SecretString,
    },
    /// Keystone `application_credential` method (the credential fixes the scope).
    ApplicationCredential {
        /// The credential's id, or its name together with `user`.
        id: Option<String>,
        name: Option<String>,
        user: Option<UserRef>,
        secret: SecretString,
    },
    /// Keystone `token` method: exchange an existing token for a scoped one.
    Token { token: SecretString },
}

/// A user by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

/// A domain by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

/// What the token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Project {
        project: ProjectRef,
    },
    Domain(DomainRef),
    /// Application credentials carry their own scope; a bare token may be unscoped.
    None,
}

/// A project by id, or by name within a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRef {
    Id(String),
    Name { name: String, domain: DomainRef },
}

/// Which endpoints of the catalog to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interface {
    #[default]
    Public,
    Internal,
    Admin,
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

/// One cloud's resolved configuration: everything a [`super::Session`] needs.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// The `clouds.yaml` entry; else `template` when the spec gave the Keystone URL, or
    /// `envvars` for an openrc-style environment.
    pub name: String,
    /// The `clouds.yaml` entry used, if any.
    pub cloud: Option<String>,
    /// Keystone URL, normalised to end in `/v3`.
    pub auth_url: String,
    pub auth: AuthMethod,
    pub scope: Scope,
    pub region: Option<String>,
    pub interface: Interface,
    /// Extra CA bundle (PEM) to trust.
    pub cacert: Option<PathBuf>,
    /// TLS verification off. The session warns when this is set.
    pub insecure: bool,
    /// `<service>_endpoint_override` keys: service type → URL used instead of the catalog's.
    pub endpoint_overrides: BTreeMap<String, String>,
    /// Client TLS certificate and key (PEM files).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Where each setting came from, by its flattened `clouds.yaml` key (`auth.auth_url`,
    /// `auth.password`, `region_name`, ...).
    pub origins: BTreeMap<String, Origin>,
}

impl CloudConfig {
    /// Where a setting came from (`auth.auth_url`, `auth.password`, ...).
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.origins.get(key)
    }

    /// The login method's name (`password`, `token`, `application_credential`).
    pub fn method(&self) -> Method {
        match self.auth {
            AuthMethod::Password { .. } => Method::Password,
            AuthMethod::Token { .. } => Method::Token,
            AuthMethod::ApplicationCredential { .. } => Method::ApplicationCredential,
        }
    }

    /// Where the login's secret came from (never the secret).
    pub fn credentials_origin(&self) -> Option<&Origin> {
        let key = match self.auth {
            AuthMethod::Password { .. } => "auth.password",
            AuthMethod::Token { .. } => "auth.token",
            AuthMethod::ApplicationCredential { .. } => "auth.application_credential_secret",
        };
        self.origin(key)
    }

    /// Whether any setting came from a template (the run's credentials may live only there).
    pub fn uses_template(&self) -> bool {
        self.origins.values().any(Origin::is_template)
    }
}

/// One setting's value and where it came from.
#[derive(Clone)]
struct Setting {
    value: Value,
    at: Origin,
}

/// A setting's value; secrets are wrapped as soon as they are read.
#[derive(Clone)]
enum Value {
    Text(String),
    Secret(SecretString),
}

/// The flattened keys whose values are secrets.
const SECRET_KEYS: &[&str] = &[
    "auth.password",
    "auth.token",
    "auth.application_credential_secret",
];

impl Setting {
    fn text(value: String, at: Origin) -> Setting {
        Setting {
            value: Value::Text(value),
            at,
        }
    }

    /// `value` read from a file or variable for `key`: a secret when the key holds one.
    fn read(key: &str, value: String, at: Origin) -> Setting {
        let value = if SECRET_KEYS.contains(&key) {
            Value::Secret(SecretString::from(value))
        } else {
            Value::Text(value)
        };
        Setting { value, at }
    }
}

/// `OS_*` variables and the (flattened) `clouds.yaml` keys they set.
const ENV_KEYS: &[(&str, &str)] = &[
    ("OS_AUTH_URL", "auth.auth_url"),
    ("OS_USERNAME", "auth.username"),
    ("OS_USER_ID", "auth.user_id"),
    ("OS_PASSWORD", "auth.password"),
    ("OS_USER_DOMAIN_NAME", "auth.user_domain_name"),
    ("OS_USER_DOMAIN_ID", "auth.user_domain_id"),
    ("OS_PROJECT_NAME", "auth.project_name"),
    ("OS_TENANT_NAME", "auth.project_name"),
    ("OS_PROJECT_ID", "auth.project_id"),
    ("OS_TENANT_ID", "auth.project_id"),
    ("OS_PROJECT_DOMAIN_NAME", "auth.project_domain_name"),
    ("OS_PROJECT_DOMAIN_ID", "auth.project_domain_id"),
    ("OS_DOMAIN_NAME", "auth.domain_name"),
    ("OS_DOMAIN_ID", "auth.domain_id"),
    (
        "OS_APPLICATION_CREDENTIAL_ID",
        "auth.application_credential_id",
    ),
    (
        "OS_APPLICATION_CREDENTIAL_NAME",
        "auth.application_credential_name",
    ),
    (
        "OS_APPLICATION_CREDENTIAL_SECRET",
        "auth.application_credential_secret",
    ),
    ("OS_TOKEN", "auth.token"),
    ("OS_AUTH_TYPE", "auth_type"),
    ("OS_REGION_NAME", "region_name"),
    ("OS_INTERFACE", "interface"),
    ("OS_ENDPOINT_TYPE", "interface"),
    ("OS_CACERT", "cacert"),
    ("OS_CERT", "cert"),
    ("OS_KEY", "key"),
    ("OS_INSECURE", "insecure"),
    ("OS_IDENTITY_API_VERSION", "identity_api_version"),
];

impl CloudConfig {
    /// Resolve the cloud to use. `cloud` is a `clouds.yaml` entry (e.g. `--cloud`); without it
    /// `OS_CLOUD` names the entry; without either the `OS_*` variables are the configuration.
    pub fn load(cloud: Option<&str>, env: &ConfigEnv) -> Result<CloudConfig, ConfigError> {
        let spec = CloudSpec::named(cloud, Origin::Flag("--cloud".into()));
        CloudConfig::resolve(&spec, env)
    }

    /// Resolve `spec` over `clouds.yaml`, `secure.yaml` and `OS_*`, the openstack CLI's way:
    /// the spec's `cloud` (else `OS_CLOUD`) names the entry; the spec's settings win.
    pub fn resolve(spec: &CloudSpec, env: &ConfigEnv) -> Result<CloudConfig, ConfigError> {
        let cloud = spec
            .cloud_name()
            .or_else(|| env.get("OS_CLOUD"))
            .map(str::to_string);
        let explicit = spec.settings();
        let mut settings: BTreeMap<String, Setting> = BTreeMap::new();
        let name = match &cloud {
            Some(cloud) => {
                let (file, searched) = env.find_file("OS_CLIENT_CONFIG_FILE", "clouds");
                let file = file.ok_or_else(|| ConfigError::NoCloudsFile {
                    cloud: cloud.clone(),
                    searched: searched
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
                settings.extend(read_cloud(&file, cloud, true)?);
                if let (Some(secure), _) = env.find_file("OS_CLIENT_SECURE_FILE", "secure") {
                    settings.extend(read_cloud(&secure, cloud, false)?);
                }
                cloud.clone()
            }
            None if spec.auth_url.is_some() => "template".to_string(),
            None => {
                if env.get("OS_AUTH_URL").is_none() {
                    return Err(ConfigError::NoCloud);
                }
                "envvars".to_string()
            }
        };
        for (var, key) in ENV_KEYS {
            if let Some(value) = env.get(var) {
                settings.insert(
                    key.to_string(),
                    Setting::read(key, value.to_string(), Origin::Env(var.to_string())),
                );
            }
        }
        for (key, setting) in explicit {
            settings.insert(key.to_string(), setting);
        }
        let mut config = build(&name, &settings)?;
        config.cloud = cloud;
        Ok(config)
    }
}

/// A YAML node reduced to what configuration needs: scalars as text, mappings in order,
/// and where each node starts (1-based line and column).
struct Yaml {
    line: usize,
    column: usize,
    kind: YamlKind,
}

enum YamlKind {
    Scalar(String),
    Map(Vec<(String, Yaml)>),
    /// Lists (`regions: [...]`) and anything else forge does not read.
    Other,
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match &self.kind {
            YamlKind::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn keys(&self) -> Vec<&str> {
        match &self.kind {
            YamlKind::Map(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }
    fn is_map(&self) -> bool {
        matches!(self.kind, YamlKind::Map(_))
    }
}

/// Parse with saphyr (the crate the spec loader uses too), scalars untyped: forge reads every
/// value as text and checks it itself, so no parser error can quote a secret back.
fn parse_yaml(file: &Path, text: &str) -> Result<Option<Yaml>, ConfigError> {
    use saphyr::{MarkedYaml, YamlData, YamlLoader};
    fn convert(node: &MarkedYaml<'_>) -> Yaml {
        let kind = match &node.data {
            YamlData::Representation(text, _, _) => YamlKind::Scalar(text.to_string()),
            YamlData::Mapping(map) => YamlKind::Map(
                map.iter()
                    .filter_map(|(k, v)| match &k.data {
                        YamlData::Representation(key, _, _) => Some((key.to_string(), convert(v))),
                        _ => None,
                    })
                    .collect(),
            ),
            YamlData::Tagged(_, inner) => return convert(inner),
            _ => YamlKind::Other,
        };
        Yaml {
            line: node.span.start.line(),
            column: node.span.start.col() + 1,
            kind,
        }
    }
    let mut loader: YamlLoader<'_, MarkedYaml<'_>> = YamlLoader::default();
    loader.early_parse(false);
    let mut parser = saphyr_parser::Parser::new_from_str(text);
    let err = match parser.load(&mut loader, true) {
        Err(e) => Some(e),
        Ok(()) => loader.error().cloned(),
    };
    if let Some(e) = err {
        return Err(ConfigError::Syntax {
            at: format!(
                "{}:{}:{}",
                file.display(),
                e.marker().line(),
                e.marker().col() + 1
            ),
            message: e.info().to_string(),
        });
    }
    Ok(loader.into_documents().first().map(convert))
}

/// Read `clouds.<cloud>` of one file, flattened to `auth.username`-style keys.
fn read_cloud(
    file: &Path,
    cloud: &str,
    required: bool,
) -> Result<BTreeMap<String, Setting>, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Io {
        file: file.to_path_buf(),
        source,
    })?;
    let at = |node: &Yaml| format!("{}:{}:{}", file.display(), node.line, node.column);
    let root = match parse_yaml(file, &text)? {
        Some(root) if root.is_map() => root,
        Some(other) => {
            return Err(ConfigError::Syntax {
                at: at(&other),
                message: "expected a mapping with a `clouds` key".into(),
            })
        }
        None if !required => return Ok(BTreeMap::new()),
        None => {
            return Err(ConfigError::Syntax {
                at: file.display().to_string(),
                message: "empty file; expected a mapping with a `clouds` key".into(),
            })
        }
    };
    let clouds = match root.get("clouds") {
        Some(n) if n.is_map() => n,
        Some(n) => {
            return Err(ConfigError::Syntax {
                at: at(n),
                message: "`clouds` must be a mapping of cloud names".into(),
            })
        }
        None if !required => return Ok(BTreeMap::new()),
        None => {
            return Err(ConfigError::Syntax {
                at: file.display().to_string(),
                message: "no `clouds` key".into(),
            })
        }
    };
    let entry = match clouds.get(cloud) {
        Some(n) if n.is_map() => n,
        Some(n) => {
            return Err(ConfigError::Syntax {
                at: at(n),
                message: format!("cloud '{cloud}' must be a mapping"),
            })
        }
        None if !required => return Ok(BTreeMap::new()),
        None => {
            let available = clouds.keys();
            return Err(ConfigError::UnknownCloud {
                file: file.to_path_buf(),
                cloud: cloud.to_string(),
                available: if available.is_empty() {
                    "none".into()
                } else {
                    available.join(", ")
                },
            });
        }
    };
    let mut out = BTreeMap::new();
    flatten(file, "", entry, &mut out);
    Ok(out)
}

fn flatten(file: &Path, prefix: &str, node: &Yaml, out: &mut BTreeMap<String, Setting>) {
    let YamlKind::Map(entries) = &node.kind else {
        return;
    };
    for (key, value) in entries {
        let key = format!("{prefix}{key}");
        match &value.kind {
            // `~`, `null` and empty values count as absent, as in the Python loader.
            YamlKind::Scalar(s) if !(s.is_empty() || s == "~" || s == "null") => {
                let at = Origin::File {
                    path: file.to_path_buf(),
                    line: value.line,
                    column: value.column,
                };
                out.insert(key.clone(), Setting::read(&key, s.clone(), at));
            }
            YamlKind::Map(_) => flatten(file, &format!("{key}."), value, out),
            _ => {}
        }
    }
}

/// Turn flat settings into a typed configuration, or say exactly what is missing/wrong.
fn build(name: &str, s: &BTreeMap<String, Setting>) -> Result<CloudConfig, ConfigError> {
    let get = |k: &str| match s.get(k).map(|v| &v.value) {
        Some(Value::Text(t)) => Some(t.clone()),
        _ => None,
    };
    let secret = |k: &str| match s.get(k).map(|v| &v.value) {
        Some(Value::Secret(v)) => Some(v.clone()),
        Some(Value::Text(t)) => Some(SecretString::from(t.clone())),
        None => None,
    };
    let invalid = |k: &str, message: String| {
        let at = s
            .get(k)
            .map(|v| v.at.clone())
            .unwrap_or_else(|| Origin::Env(k.to_string()));
        ConfigError::Invalid {
            key: at.key_name(k),
            at,
            message,
        }
    };
    let missing = |what: &str| ConfigError::Missing {
        cloud: name.to_string(),
        what: what.to_string(),
    };
    let boolean = |k: &str| -> Result<Option<bool>, ConfigError> {
        match get(k) {
            None => Ok(None),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "on" => Ok(Some(true)),
                "false" | "no" | "0" | "off" => Ok(Some(false)),
                _ => Err(invalid(k, format!("'{v}': expected true or false"))),
            },
        }
    };

    if let Some(v) = get("identity_api_version") {
        if v != "3" && v != "3.0" {
            return Err(invalid(
                "identity_api_version",
                format!("'{v}': forge speaks Keystone v3 only"),
            ));
        }
    }
    let auth_url = get("auth.auth_url")
        .ok_or_else(|| missing("auth.auth_url (OS_AUTH_URL; in a template: identity_endpoint)"))?;
    check_url(&auth_url).map_err(|m| invalid("auth.auth_url", format!("'{auth_url}': {m}")))?;
    let auth_url = normalise_auth_url(&auth_url);

    // Domain defaults: `domain_id`/`domain_name` apply to user and project when theirs are unset.
    let default_domain = get("auth.default_domain_id")
        .or_else(|| get("auth.domain_id"))
        .map(DomainRef::Id)
        .or_else(|| {
            get("auth.default_domain_name")
                .or_else(|| get("auth.domain_name"))
                .map(DomainRef::Name)
        });
    let domain_of = |id: &str, name_key: &str| -> Option<DomainRef> {
        get(id)
            .map(DomainRef::Id)
            .or_else(|| get(name_key).map(DomainRef::Name))
            .or_else(|| default_domain.clone())
    };
    let user = || -> Result<Option<UserRef>, ConfigError> {
        if let Some(id) = get("auth.user_id") {
            return Ok(Some(UserRef::Id(id)));
        }
        match get("auth.username") {
            None => Ok(None),
            Some(name) => {
                let domain =
                    domain_of("auth.user_domain_id", "auth.user_domain_name").ok_or_else(|| {
                        missing(
                            "auth.user_domain_name or auth.user_domain_id for the user \
                             (OS_USER_DOMAIN_NAME; in a template: user_domain_name or domain_name)",
                        )
                    })?;
                Ok(Some(UserRef::Name { name, domain }))
            }
        }
    };

    let auth_type = match get("auth_type") {
        Some(t) => t,
        None if s.contains_key("auth.application_credential_secret") => {
            "v3applicationcredential".into()
        }
        None if s.contains_key("auth.token") && !s.contains_key("auth.password") => {
            "v3token".into()
        }
        None => "password".into(),
    };
    let auth = match auth_type.as_str() {
        "password" | "v3password" => AuthMethod::Password {
            user: user()?.ok_or_else(|| {
                missing("auth.username or auth.user_id (OS_USERNAME; in a template: username)")
            })?,
            password: secret("auth.password")
                .ok_or_else(|| missing("auth.password (OS_PASSWORD; in a template: password)"))?,
        },
        "v3applicationcredential" | "applicationcredential" | "application_credential" => {
            let id = get("auth.application_credential_id");
            let name = get("auth.application_credential_name");
            let user = user()?;
            if id.is_none() && (name.is_none() || user.is_none()) {
                return Err(missing(
                    "auth.application_credential_id, or application_credential_name with a user",
                ));
            }
            AuthMethod::ApplicationCredential {
                id,
                name,
                user,
                secret: secret("auth.application_credential_secret").ok_or_else(|| {
                    missing("auth.application_credential_secret (OS_APPLICATION_CREDENTIAL_SECRET)")
                })?,
            }
        }
        "token" | "v3token" => AuthMethod::Token {
            token: secret("auth.token")
                .ok_or_else(|| missing("auth.token (OS_TOKEN; in a template: token)"))?,
        },
        other => {
            return Err(invalid(
                "auth_type",
                format!(
                    "'{other}': expected one of password, v3password, v3applicationcredential, \
                     token, v3token"
                ),
            ))
        }
    };

    let scope = if matches!(auth, AuthMethod::ApplicationCredential { .. }) {
        Scope::None
    } else if let Some(id) = get("auth.project_id") {
        Scope::Project {
            project: ProjectRef::Id(id),
        }
    } else if let Some(name) = get("auth.project_name") {
        let domain = domain_of("auth.project_domain_id", "auth.project_domain_name")
            .ok_or_else(|| missing("auth.project_domain_name or auth.project_domain_id"))?;
        Scope::Project {
            project: ProjectRef::Name { name, domain },
        }
    } else if let Some(id) = get("auth.domain_id") {
        Scope::Domain(DomainRef::Id(id))
    } else if let Some(name) = get("auth.domain_name") {
        Scope::Domain(DomainRef::Name(name))
    } else {
        Scope::None
    };

    let interface = match get("interface") {
        None => Interface::Public,
        Some(v) => parse_interface(&v).ok_or_else(|| {
            invalid(
                "interface",
                format!("'{v}': expected public, internal or admin"),
            )
        })?,
    };
    let verify_off = boolean("verify")? == Some(false);
    let insecure = boolean("insecure")?.unwrap_or(false) || verify_off;
    let cacert = get("cacert").map(PathBuf::from);
    let client_cert = match (get("cert"), get("key")) {
        (None, None) => None,
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        (Some(_), None) => {
            return Err(invalid(
                "cert",
                "needs a key (OS_KEY; in a template: key) as well".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "key",
                "needs a cert (OS_CERT; in a template: cert) as well".into(),
            ))
        }
    };
    let endpoint_overrides = s
        .iter()
        .filter_map(|(k, v)| {
            let service = k.strip_suffix("_endpoint_override")?;
            match &v.value {
                Value::Text(url) => Some((service.replace('_', "-"), url.clone())),
                Value::Secret(_) => None,
            }
        })
        .collect();

    Ok(CloudConfig {
        name: name.to_string(),
        cloud: None,
        auth_url,
        auth,
        scope,
        region: get("region_name"),
        interface,
        cacert,
        insecure,
        endpoint_overrides,
        client_cert,
        origins: s.iter().map(|(k, v)| (k.clone(), v.at.clone())).collect(),
    })
}

/// Whether `url` can be a Keystone URL: `http://` or `https://` with a host. The message says
/// what is wrong (it never quotes the value: the caller does, where that is safe).
pub fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("expected an http:// or https:// URL".into());
    }
    match reqwest::Url::parse(url) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        Ok(_) => Err("expected an http:// or https:// URL with a host".into()),
        Err(e) => Err(format!("expected an http:// or https:// URL ({e})")),
    }
}

/// `public`, `internal`, `admin`, or Packer's `publicURL`-style spellings.
fn parse_interface(v: &str) -> Option<Interface> {
    match v.trim_end_matches("URL").to_ascii_lowercase().as_str() {
        "public" => Some(Interface::Public),
        "internal" => Some(Interface::Internal),
        "admin" => Some(Interface::Admin),
        _ => None,
    }
}

/// `http://h:5000`, `http://h:5000/`, `http://h:5000/v3/` → `http://h:5000/v3`.
fn normalise_auth_url(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/v3") {
        url.to_string()
    } else {
        format!("{url}/v3")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(vars: &[(&str, &str)]) -> ConfigEnv {
        ConfigEnv::from_vars(vars.iter().map(|(k, v)| (*k, *v)), None)
    }

    #[test]
    fn openrc_variables_alone_make_a_password_config() {
        let c = CloudConfig::load(
            None,
            &env(&[
                ("OS_AUTH_URL", "http://k:5000"),
                ("OS_USERNAME", "u"),
                ("OS_PASSWORD", "pw-value"),
                ("OS_PROJECT_NAME", "p"),
                ("OS_USER_DOMAIN_NAME", "Default"),
                ("OS_PROJECT_DOMAIN_ID", "default"),
                ("OS_REGION_NAME", "R1"),
                ("OS_INTERFACE", "internal"),
            ]),
        )
        .unwrap();
        assert_eq!(c.name, "envvars");
        assert_eq!(c.auth_url, "http://k:5000/v3");
        assert_eq!(c.region.as_deref(), Some("R1"));
        assert_eq!(c.interface, Interface::Internal);
        match &c.auth {
            AuthMethod::Password { user, password } => {
                assert_eq!(
                    *user,
                    UserRef::Name {
                        name: "u".into(),
                        domain: DomainRef::Name("Default".into())
                    }
                );
                assert_eq!(password.expose_secret(), "pw-value");
            }
            other => panic!("expected password auth, got {other:?}"),
        }
        assert_eq!(
            c.scope,
            Scope::Project {
                project: ProjectRef::Name {
                    name: "p".into(),
                    domain: DomainRef::Id("default".into())
                }
            }
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("pw-value"), "{dbg}");
    }

    #[test]
    fn nothing_configured_is_a_clear_error() {
        let e = CloudConfig::load(None, &env(&[])).unwrap_err();
        assert!(e.to_string().contains("OS_CLOUD"), "{e}");
    }

    #[test]
    fn application_credential_and_token_are_inferred_from_keys() {
        let c = CloudConfig::load(
            None,
            &env(&[
                ("OS_AUTH_URL", "https://k/v3/"),
                ("OS_APPLICATION_CREDENTIAL_ID", "ac1"),
                ("OS_APPLICATION_CREDENTIAL_SECRET", "ac-secret-value"),
            ]),
        )
        .unwrap();
        assert!(matches!(c.auth, AuthMethod::ApplicationCredential { .. }));
        assert_eq!(c.scope, Scope::None);
        assert!(!format!("{c:?}").contains("ac-secret-value"));
        let c = CloudConfig::load(
            None,
            &env(&[
                ("OS_AUTH_URL", "https://k"),
                ("OS_TOKEN", "tok-value"),
                ("OS_PROJECT_ID", "pid"),
            ]),
        )
        .unwrap();
        assert!(matches!(c.auth, AuthMethod::Token { .. }));
        assert!(!format!("{c:?}").contains("tok-value"));
    }

    #[test]
    fn bad_enum_values_are_errors_naming_the_variable() {
        let e = CloudConfig::load(
            None,
            &env(&[
                ("OS_AUTH_URL", "http://k"),
                ("OS_USERNAME", "u"),
                ("OS_USER_DOMAIN_ID", "default"),
                ("OS_PASSWORD", "pw"),
                ("OS_INTERFACE", "sideways"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("env OS_INTERFACE") && e.contains("sideways"),
            "{e}"
        );
        let e = CloudConfig::load(
            None,
            &env(&[("OS_AUTH_URL", "http://k"), ("OS_AUTH_TYPE", "kerberos")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("kerberos") && e.contains("expected one of"),
            "{e}"
        );
    }

    #[test]
    fn debug_of_the_environment_shows_names_not_values() {
        let e = env(&[("OS_PASSWORD", "hunter2-value")]);
        let dbg = format!("{e:?}");
        assert!(dbg.contains("OS_PASSWORD") && !dbg.contains("hunter2-value"));
    }
}
