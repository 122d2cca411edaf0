//! Errors of the OpenStack clients. Messages are for humans and never carry a secret: request
//! bodies (which hold passwords) are never echoed, only the method, URL, status and the
//! service's own error message.

use std::path::PathBuf;
use std::time::Duration;

/// Anything that can go wrong talking to a cloud.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `clouds.yaml`, `secure.yaml` or `OS_*` variables are missing or wrong.
    #[error(transparent)]
    Config(#[from] super::config::ConfigError),

    /// The first login failed: Keystone refused the credentials (`refused`) or could not be
    /// reached. Says where the credentials came from, never what they are.
    #[error(
        "{}logging in to {auth_url} ({method}, credentials from {credentials})",
        if *refused { "Keystone refused the credentials: " } else { "" }
    )]
    Login {
        auth_url: String,
        method: &'static str,
        credentials: String,
        refused: bool,
        /// What went wrong (the message leaves it out: print the chain, `{:#}` of anyhow).
        #[source]
        cause: Box<Error>,
    },

    /// The service answered with an error status.
    #[error("{method} {url}: HTTP {status}: {message}")]
    Api {
        method: String,
        url: String,
        status: u16,
        message: String,
    },

    /// The request did not get an answer (connection refused, TLS, timeout).
    #[error("{method} {url}: {source}")]
    Http {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },

    /// The service answered 2xx with something this client cannot read.
    #[error("{method} {url}: unexpected response: {message}")]
    Protocol {
        method: String,
        url: String,
        message: String,
    },

    /// The token's catalog has no usable endpoint for a service.
    #[error(
        "the service catalog has no '{service}' endpoint for interface '{interface}'{region}; \
         available: {available}"
    )]
    NoEndpoint {
        service: String,
        interface: String,
        region: String,
        available: String,
    },

    /// A wait passed its deadline.
    #[error("timed out after {timeout:.0?} waiting for {what} (last state: {last})")]
    Timeout {
        what: String,
        timeout: Duration,
        last: String,
    },

    /// A wait saw a state it cannot leave (`ERROR`, `killed`, `deleted`).
    #[error("{what} failed: {reason}")]
    Failed { what: String, reason: String },

    /// The build was interrupted during a wait.
    #[error("cancelled while waiting for {what}")]
    Cancelled { what: String },

    /// A value forge was given is not one the API accepts.
    #[error("invalid {what} '{value}': expected {expected}")]
    InvalidValue {
        what: String,
        value: String,
        expected: String,
    },

    /// The uploaded data does not match what Glance stored.
    #[error("image {image}: {algo} of the uploaded data is {local}, Glance reports {remote}")]
    Checksum {
        image: String,
        algo: String,
        local: String,
        remote: String,
    },

    /// Reading a local file (image data) failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The cloud cannot do what was asked (e.g. too old a compute microversion).
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    /// The HTTP status, when the service answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::Login { cause, .. } => cause.status(),
            _ => None,
        }
    }

    /// True for a 404 answer: the resource does not exist (or is not visible).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// True for errors worth retrying in a poll loop: no answer, or a 5xx / 429 answer. A TLS
    /// failure (certificate not trusted, wrong name, failed handshake) is not: it will not
    /// change by waiting, and the user must see it at once.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Http { source, .. } => !is_tls_failure(source),
            Error::Api { status, .. } => *status >= 500 || *status == 429,
            Error::Login { cause, .. } => cause.is_transient(),
            _ => false,
        }
    }
}

/// Whether `e` or one of its causes is a rustls error. reqwest wraps it in an `io::Error`,
/// whose `source()` skips the wrapped error, so those are opened with `get_ref`.
fn is_tls_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| is_tls_failure(inner as &(dyn std::error::Error + 'static)))
            {
                return true;
            }
        }
        cur = c.source();
    }
    false
}

/// Pulls the human message out of an OpenStack error body. Services disagree on the shape:
/// Keystone `{"error": {"message"}}`, Nova `{"itemNotFound": {"message"}}`, Glance
/// `{"message": "...<br /><br />"}` or plain text, Neutron `{"NeutronError": {"message"}}`.
pub(crate) fn message_from_body(body: &str) -> String {
    fn find(v: &serde_json::Value) -> Option<String> {
        let obj = v.as_object()?;
        if let Some(m) = obj.get("message").and_then(|m| m.as_str()) {
            return Some(m.to_string());
        }
        if let Some(m) = obj.get("faultstring").and_then(|m| m.as_str()) {
            return Some(m.to_string());
        }
        obj.values().find_map(find)
    }
    let text = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => find(&v).unwrap_or_else(|| body.to_string()),
        Err(_) => body.to_string(),
    };
    let text = text.replace("<br />", " ");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut text = if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text
    };
    if text.len() > 500 {
        let mut cut = 500;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_extracted_from_each_service_shape() {
        assert_eq!(
            message_from_body(r#"{"error": {"code": 401, "message": "no", "title": "x"}}"#),
            "no"
        );
        assert_eq!(
            message_from_body(r#"{"itemNotFound": {"code": 404, "message": "Flavor x"}}"#),
            "Flavor x"
        );
        assert_eq!(
            message_from_body(
                "{\"message\": \"Invalid visibility value: bogus<br /><br />\\n\\n\\n\", \"code\": \"400\"}"
            ),
            "Invalid visibility value: bogus"
        );
        assert_eq!(
            message_from_body("404 Not Found\n\nNo image found\n"),
            "404 Not Found No image found"
        );
        assert_eq!(message_from_body(""), "(empty body)");
    }
}
