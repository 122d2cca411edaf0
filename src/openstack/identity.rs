//! Keystone v3 authentication and the [`Session`] every service client sends through.
//!
//! Design note: the `openstack_sdk` crate (0.22.8; features identity, image, compute, network)
//! was evaluated and not used. It needs Rust 1.91 (forge's MSRV is 1.85); it adds 57 crates to
//! forge's tree, among them `ring` (a second crypto backend) and four generated API crates of
//! about 1,300 source files (a cold build of it alone took 4 min 26 s on this 2-core machine);
//! it persists tokens to an on-disk cache unless told otherwise; it reads
//! `OS_CLIENT_CONFIG_PATH` rather than the `OS_CLIENT_CONFIG_FILE` the Python tools use; and
//! it offers no hook at the HTTP layer to count round trips. Keystone password / application
//! credential / token auth plus catalog lookup is a few hundred lines on `reqwest` (already a
//! dependency), and every request forge makes goes through [`Session::send`] below.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder, Response, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::config::{AuthMethod, CloudConfig, DomainRef, ProjectRef, Scope, UserRef};
use super::error::{message_from_body, Error};
use super::wait::retry_idempotent;

/// Each request must finish within this, unless its builder sets another timeout (uploads
/// allow for their size).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Renew the token when it has less than this left.
const RENEW_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// An authenticated connection to one cloud: the HTTP client, the token and its catalog.
/// Cheap to share (`Arc<Session>`); all clients of one build use the same session.
pub struct Session {
    http: reqwest::Client,
    config: CloudConfig,
    token: Mutex<Option<Token>>,
    requests: AtomicU64,
}

impl fmt::Debug for Session {
    // The token is a secret; the config's own Debug already redacts its secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("cloud", &self.config.name)
            .field("auth_url", &self.config.auth_url)
            .field("requests", &self.request_count())
            .finish_non_exhaustive()
    }
}

/// A token and what came with it.
#[derive(Clone)]
struct Token {
    value: SecretString,
    expires_at: DateTime<Utc>,
    catalog: Vec<CatalogEntry>,
    project_id: Option<String>,
    user_id: String,
}

#[derive(Debug, Clone, Deserialize)]
struct CatalogEntry {
    #[serde(rename = "type")]
    service_type: String,
    #[serde(default)]
    endpoints: Vec<CatalogEndpoint>,
}

#[derive(Debug, Clone, Deserialize)]
struct CatalogEndpoint {
    interface: String,
    #[serde(default)]
    region_id: Option<String>,
    #[serde(default)]
    region: Option<String>,
    url: String,
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}

#[derive(Deserialize)]
struct TokenInfo {
    expires_at: DateTime<Utc>,
    #[serde(default)]
    catalog: Vec<CatalogEntry>,
    #[serde(default)]
    project: Option<IdOnly>,
    user: IdOnly,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

impl Session {
    /// Build the HTTP client and log in. Warns (tracing) when TLS verification is off.
    pub async fn connect(config: CloudConfig) -> Result<Arc<Session>, Error> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("forge/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15));
        if let Some(path) = &config.cacert {
            let pem = std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::InvalidValue {
                    what: "cacert".into(),
                    value: path.display().to_string(),
                    expected: format!("a PEM CA bundle ({e})"),
                })?;
            // A file with no certificate in it parses as an empty bundle: say so, or the login
            // would fail later with a confusing "unknown issuer".
            if certs.is_empty() {
                return Err(Error::InvalidValue {
                    what: "cacert".into(),
                    value: path.display().to_string(),
                    expected: "a PEM CA bundle (no certificate found in the file)".into(),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &config.client_cert {
            builder = builder.identity(client_identity(&config, cert, key)?);
        }
        if config.insecure {
            tracing::warn!(
                cloud = %config.name,
                "TLS certificate verification is disabled (insecure / verify: false): \
                 the connection to this cloud can be intercepted"
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|source| Error::Http {
            method: "build".into(),
            url: config.auth_url.clone(),
            source,
        })?;
        let session = Arc::new(Session {
            http,
            config,
            token: Mutex::new(None),
            requests: AtomicU64::new(0),
        });
        session
            .token()
            .await
            .map_err(|e| login_error(&session.config, e))?;
        Ok(session)
    }

    /// The configuration this session was made from.
    pub fn config(&self) -> &CloudConfig {
        &self.config
    }

    /// HTTP requests sent so far, authentication included.
    pub fn request_count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The project the token is scoped to (none for unscoped tokens).
    pub async fn project_id(&self) -> Result<Option<String>, Error> {
        Ok(self.token().await?.project_id)
    }

    /// The authenticated user's id.
    pub async fn user_id(&self) -> Result<String, Error> {
        Ok(self.token().await?.user_id)
    }

    /// A valid token, logging in (again) when there is none or it is about to expire.
    async fn token(&self) -> Result<Token, Error> {
        let mut slot = self.token.lock().await;
        if let Some(t) = slot.as_ref() {
            if t.expires_at - Utc::now() > RENEW_MARGIN {
                return Ok(t.clone());
            }
        }
        let t = self.authenticate().await?;
        *slot = Some(t.clone());
        Ok(t)
    }

    async fn authenticate(&self) -> Result<Token, Error> {
        let url = format!("{}/auth/tokens", self.config.auth_url);
        let body = auth_body(&self.config);
        // Issuing a token has no side effect worth guarding: retry a busy Keystone (5xx, no
        // answer) for a while rather than fail the build.
        let response = retry_idempotent(
            Duration::from_secs(30),
            |_| false,
            || {
                let request = self.http.post(&url).json(&body).timeout(REQUEST_TIMEOUT);
                self.dispatch(Method::POST, &url, request)
            },
        )
        .await?;
        let value = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(|v| SecretString::from(v.to_string()));
        let info: TokenBody = read_json("POST", &url, response).await?;
        let value = value.ok_or_else(|| Error::Protocol {
            method: "POST".into(),
            url: url.clone(),
            message: "no X-Subject-Token header in Keystone's answer".into(),
        })?;
        Ok(Token {
            value,
            expires_at: info.token.expires_at,
            catalog: info.token.catalog,
            project_id: info.token.project.map(|p| p.id),
            user_id: info.token.user.id,
        })
    }

    /// The URL of `service_type`: its `<service>_endpoint_override`, else the catalog's for
    /// this session's interface and region.
    pub async fn endpoint(&self, service_type: &str) -> Result<String, Error> {
        if let Some(url) = self.config.endpoint_overrides.get(service_type) {
            return Ok(url.trim_end_matches('/').to_string());
        }
        let token = self.token().await?;
        let interface = self.config.interface.as_str();
        let region = self.config.region.as_deref();
        let found = token
            .catalog
            .iter()
            .filter(|e| e.service_type == service_type)
            .flat_map(|e| e.endpoints.iter())
            .find(|ep| {
                ep.interface == interface
                    && region.is_none_or(|r| {
                        ep.region_id.as_deref() == Some(r) || ep.region.as_deref() == Some(r)
                    })
            });
        match found {
            Some(ep) => Ok(ep.url.trim_end_matches('/').to_string()),
            None => Err(Error::NoEndpoint {
                service: service_type.into(),
                interface: interface.into(),
                region: region
                    .map(|r| format!(" in region '{r}'"))
                    .unwrap_or_default(),
                available: available_services(&token.catalog),
            }),
        }
    }

    /// `endpoint(service)` joined with `segments`, each percent-encoded as one path segment
    /// (so an id or name with `/`, `?` or spaces cannot change the request).
    pub async fn url(&self, service_type: &str, segments: &[&str]) -> Result<Url, Error> {
        let base = self.endpoint(service_type).await?;
        let mut url = Url::parse(&base).map_err(|e| Error::Protocol {
            method: "catalog".into(),
            url: base.clone(),
            message: format!("bad endpoint URL: {e}"),
        })?;
        {
            let mut path = url.path_segments_mut().map_err(|_| Error::Protocol {
                method: "catalog".into(),
                url: base.clone(),
                message: "endpoint URL cannot have a path".into(),
            })?;
            path.pop_if_empty();
            path.extend(segments);
        }
        Ok(url)
    }

    /// Send an authenticated request: adds the token and `Accept: application/json` (Glance
    /// answers errors in HTML otherwise), counts it, and turns error statuses into
    /// [`Error::Api`]. `build` adds query, headers and body.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, Error> {
        let token = self.token().await?;
        // Marked sensitive: HTTP libraries show it as `Sensitive` in Debug output and logs.
        let mut auth = reqwest::header::HeaderValue::from_str(token.value.expose_secret())
            .map_err(|_| Error::Protocol {
                method: method.to_string(),
                url: url.to_string(),
                message: "Keystone issued a token that is not a valid header value".into(),
            })?;
        auth.set_sensitive(true);
        let mut request = build(
            self.http
                .request(method.clone(), url.clone())
                .header("X-Auth-Token", auth)
                .header("Accept", "application/json")
                .timeout(REQUEST_TIMEOUT),
        );
        // A GET that found no answer (typically a pooled keep-alive connection the server had
        // closed: "connection reset") is sent again, twice at most; other methods are not
        // (they may have had an effect), and streamed bodies cannot be replayed anyway.
        if method == Method::GET {
            for _ in 0..2 {
                let Some(retry) = request.try_clone() else {
                    break;
                };
                match self.dispatch(method.clone(), url.as_str(), request).await {
                    Err(e @ Error::Http { .. }) => {
                        tracing::debug!("retrying after: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    other => return other,
                }
                request = retry;
            }
        }
        self.dispatch(method, url.as_str(), request).await
    }

    /// [`Session::send`], then decode the JSON body.
    pub async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        build: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<T, Error> {
        let m = method.to_string();
        let u = url.to_string();
        let response = self.send(method, url, build).await?;
        read_json(&m, &u, response).await
    }

    async fn dispatch(
        &self,
        method: Method,
        url: &str,
        request: RequestBuilder,
    ) -> Result<Response, Error> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%method, url, "request");
        let response = request.send().await.map_err(|source| Error::Http {
            method: method.to_string(),
            url: url.to_string(),
            source: source.without_url(),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(Error::Api {
            method: method.to_string(),
            url: url.to_string(),
            status: status.as_u16(),
            message: message_from_body(&body),
        })
    }
}

pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    method: &str,
    url: &str,
    response: Response,
) -> Result<T, Error> {
    let bytes = response.bytes().await.map_err(|source| Error::Http {
        method: method.into(),
        url: url.into(),
        source: source.without_url(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
        method: method.into(),
        url: url.into(),
        message: format!("invalid JSON: {e}"),
    })
}

/// A refused or failed first login, with the cloud and where the credentials came from.
fn login_error(config: &CloudConfig, e: Error) -> Error {
    let refused = matches!(e.status(), Some(401) | Some(403));
    let credentials = config
        .credentials_origin()
        .map(|o| o.describe())
        .unwrap_or_else(|| "an unknown source".into());
    Error::Login {
        auth_url: config.auth_url.clone(),
        method: config.method().as_str(),
        credentials,
        refused,
        cause: Box::new(e),
    }
}

/// The client TLS identity from a PEM certificate file and a PEM key file.
fn client_identity(
    config: &CloudConfig,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<reqwest::Identity, Error> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|source| Error::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    let mut pem = read(cert)?;
    pem.push(b'\n');
    pem.extend(read(key)?);
    let at = config
        .origin("cert")
        .map(|o| format!(" (set at {o})"))
        .unwrap_or_default();
    reqwest::Identity::from_pem(&pem).map_err(|e| Error::InvalidValue {
        what: format!("client certificate{at}"),
        value: format!("{} + {}", cert.display(), key.display()),
        expected: format!("a PEM certificate and a PEM private key ({e})"),
    })
}

fn available_services(catalog: &[CatalogEntry]) -> String {
    let mut v: Vec<String> = catalog
        .iter()
        .flat_map(|e| {
            e.endpoints.iter().map(move |ep| {
                format!(
                    "{} ({}, {})",
                    e.service_type,
                    ep.interface,
                    ep.region_id.as_deref().unwrap_or("-")
                )
            })
        })
        .collect();
    v.sort();
    v.dedup();
    if v.is_empty() {
        "none (is the token scoped to a project?)".into()
    } else {
        v.join(", ")
    }
}

fn domain_json(d: &DomainRef) -> Value {
    match d {
        DomainRef::Id(id) => json!({ "id": id }),
        DomainRef::Name(name) => json!({ "name": name }),
    }
}

fn user_json(u: &UserRef) -> Value {
    match u {
        UserRef::Id(id) => json!({ "id": id }),
        UserRef::Name { name, domain } => json!({ "name": name, "domain": domain_json(domain) }),
    }
}

/// The `POST /v3/auth/tokens` body. The only place secrets leave their `SecretString`.
fn auth_body(config: &CloudConfig) -> Value {
    let identity = match &config.auth {
        AuthMethod::Password { user, password } => {
            let mut u = user_json(user);
            u["password"] = Value::String(password.expose_secret().to_string());
            json!({ "methods": ["password"], "password": { "user": u } })
        }
        AuthMethod::ApplicationCredential {
            id,
            name,
            user,
            secret,
        } => {
            let mut ac = json!({ "secret": secret.expose_secret() });
            match (id, name, user) {
                (Some(id), _, _) => ac["id"] = json!(id),
                (None, Some(name), Some(user)) => {
                    ac["name"] = json!(name);
                    ac["user"] = user_json(user);
                }
                // The config loader guarantees an id or a name with a user.
                _ => {}
            }
            json!({ "methods": ["application_credential"], "application_credential": ac })
        }
        AuthMethod::Token { token } => {
            json!({ "methods": ["token"], "token": { "id": token.expose_secret() } })
        }
    };
    let mut auth = json!({ "identity": identity });
    match &config.scope {
        Scope::Project { project } => {
            auth["scope"] = match project {
                ProjectRef::Id(id) => json!({ "project": { "id": id } }),
                ProjectRef::Name { name, domain } => {
                    json!({ "project": { "name": name, "domain": domain_json(domain) } })
                }
            }
        }
        Scope::Domain(d) => auth["scope"] = json!({ "domain": domain_json(d) }),
        Scope::None => {}
    }
    json!({ "auth": auth })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openstack::config::Interface;

    fn config(auth: AuthMethod, scope: Scope) -> CloudConfig {
        CloudConfig {
            name: "t".into(),
            auth_url: "http://k/v3".into(),
            auth,
            scope,
            region: None,
            interface: Interface::Public,
            cacert: None,
            insecure: false,
            endpoint_overrides: Default::default(),
            cloud: None,
            client_cert: None,
            origins: Default::default(),
        }
    }

    #[test]
    fn auth_bodies_follow_the_keystone_v3_schema() {
        let b = auth_body(&config(
            AuthMethod::Password {
                user: UserRef::Name {
                    name: "u".into(),
                    domain: DomainRef::Name("Default".into()),
                },
                password: "pw".to_string().into(),
            },
            Scope::Project {
                project: ProjectRef::Name {
                    name: "p".into(),
                    domain: DomainRef::Id("default".into()),
                },
            },
        ));
        assert_eq!(
            b,
            json!({"auth": {"identity": {"methods": ["password"], "password": {"user":
                {"name": "u", "domain": {"name": "Default"}, "password": "pw"}}},
                "scope": {"project": {"name": "p", "domain": {"id": "default"}}}}})
        );
        let b = auth_body(&config(
            AuthMethod::ApplicationCredential {
                id: Some("ac".into()),
                name: None,
                user: None,
                secret: "s".to_string().into(),
            },
            Scope::None,
        ));
        assert_eq!(
            b,
            json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": "ac", "secret": "s"}}}})
        );
        let b = auth_body(&config(
            AuthMethod::Token {
                token: "t".to_string().into(),
            },
            Scope::Project {
                project: ProjectRef::Id("pid".into()),
            },
        ));
        assert_eq!(
            b,
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "t"}},
                "scope": {"project": {"id": "pid"}}}})
        );
    }
}
