//! Connections to Temporal: a connection's identity (the endpoint and the credentials as read
//! now, from the environment, files or Secrets), its health as the status page shows it, and
//! opening it (TLS, API key, client certificate) with its errors classified.

use super::error::{ErrorKind, TemporalError, terr};
use super::secrets::SecretReader;
use super::tls;
use crate::spec::{CredSource, EndpointSource, SecretString, TlsMode, TriggerConfig};
use std::fmt;
use std::time::Duration;
use temporalio_client::{Connection, ConnectionOptions, RetryOptions, TlsOptions, Url};

/// Identity of a shared connection: endpoint and the credentials as read now. Rotated files
/// or Secrets give a new identity, hence a new connection; polls on the old one finish.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub url: String,
    tls: TlsMode,
    server_name: Option<String>,
    api_key: Option<SecretString>,
    ca: Option<SecretString>,
    /// Client certificate and key (PEM).
    identity: Option<(SecretString, SecretString)>,
    connect_timeout: Duration,
}

impl fmt::Debug for ConnKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.url)
    }
}

impl ConnKey {
    /// How the connection authenticates, in words that name no credential.
    pub(super) fn security(&self) -> String {
        let mut parts = vec![match self.tls {
            TlsMode::Plaintext => "plaintext",
            TlsMode::Tls { skip_verify: true } => "TLS (server not verified)",
            TlsMode::Tls { skip_verify: false } => "TLS",
        }];
        if self.ca.is_some() {
            parts.push("private CA");
        }
        if self.identity.is_some() {
            parts.push("client certificate");
        }
        if self.api_key.is_some() {
            parts.push("API key");
        }
        parts.join(", ")
    }
}

/// A shared connection's health, as the status page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectionHealth {
    /// The endpoint URL (`http://` plaintext, `https://` TLS).
    pub endpoint: String,
    /// How it authenticates (e.g. "TLS, API key"), never with what.
    pub security: String,
    pub state: ConnState,
    /// Since a query last used it.
    pub idle: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ConnState {
    Connected,
    /// Connecting right now.
    Connecting,
    /// Not connected yet (lazily opened by the first poll).
    NotConnected,
    /// Backing off after failures; the error names the endpoint, never a credential.
    Failing {
        failures: u32,
        error: String,
    },
}

fn env_var(var: &str, what: &str) -> Result<String, TemporalError> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            terr(
                ErrorKind::Config,
                format!("{what}: environment variable {var} is not set"),
            )
        })
}

/// The trigger's endpoint as a URL whose scheme says TLS or plaintext.
fn endpoint_url(t: &TriggerConfig) -> Result<String, TemporalError> {
    let endpoint = match &t.endpoint {
        EndpointSource::Literal(e) => e.clone(),
        EndpointSource::FromEnv(var) => env_var(var, "endpointFromEnv")?,
    };
    let tls = matches!(t.auth.tls, TlsMode::Tls { .. });
    let rest = endpoint
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    Ok(format!("{}://{rest}", if tls { "https" } else { "http" }))
}

/// Read one credential now. `pem` names the material expected (for errors), or `None` for an
/// API key. Errors name the parameter and where it was looked for, never the value.
async fn read_credential(
    secrets: Option<&SecretReader>,
    param: &str,
    src: &CredSource,
    pem: Option<&str>,
) -> Result<SecretString, TemporalError> {
    let (raw, origin) = match src {
        CredSource::Inline(v) => return Ok(v.clone()),
        CredSource::Env(var) => (env_var(var, "apiKeyFromEnv")?, format!("${var}")),
        CredSource::File(path) => {
            let text = tokio::fs::read_to_string(path).await.map_err(|e| {
                terr(
                    ErrorKind::Config,
                    format!("{param}File {}: cannot read: {e}", path.display()),
                )
            })?;
            (text, format!("{param}File {}", path.display()))
        }
        CredSource::Secret {
            namespace,
            name,
            key,
        } => {
            let reader = secrets.ok_or_else(|| {
                terr(
                    ErrorKind::Config,
                    format!(
                        "secretTargetRef {namespace}/{name}: reading Secrets needs a Kubernetes \
                         cluster (the agent runs without one)"
                    ),
                )
            })?;
            let v = reader.get(namespace, name, key).await?;
            (v, format!("Secret {namespace}/{name} key {key}"))
        }
    };
    match pem {
        None => {
            let key = raw.trim();
            if key.is_empty() {
                return Err(terr(ErrorKind::Config, format!("{origin}: empty API key")));
            }
            Ok(SecretString::new(key))
        }
        Some(what) => crate::spec::decode_pem(&raw)
            .map(|b| SecretString::new(String::from_utf8_lossy(&b).into_owned()))
            .ok_or_else(|| terr(ErrorKind::Config, format!("{origin}: expected {what}"))),
    }
}

/// Resolve what the trigger names (environment, files, Secrets) into a connection identity.
pub async fn conn_key(
    t: &TriggerConfig,
    secrets: Option<&SecretReader>,
) -> Result<ConnKey, TemporalError> {
    let url = endpoint_url(t)?;
    let a = &t.auth;
    let read = |param: &'static str, src: Option<&CredSource>, pem: Option<&'static str>| {
        let src = src.cloned();
        async move {
            match src {
                None => Ok(None),
                Some(s) => read_credential(secrets, param, &s, pem).await.map(Some),
            }
        }
    };
    let api_key = read("apiKey", a.api_key.as_ref(), None).await?;
    let ca = read("ca", a.ca.as_ref(), Some("a PEM certificate")).await?;
    let cert = read("cert", a.cert.as_ref(), Some("a PEM certificate")).await?;
    let key = read("key", a.key.as_ref(), Some("a PEM private key")).await?;
    Ok(ConnKey {
        url,
        tls: a.tls,
        server_name: a.server_name.clone(),
        api_key,
        ca,
        identity: cert.zip(key),
        connect_timeout: t.connect_timeout,
    })
}

pub(super) async fn connect(key: &ConnKey) -> Result<Connection, TemporalError> {
    let url = Url::parse(&key.url)
        .map_err(|e| terr(ErrorKind::Config, format!("invalid endpoint: {e}")))?;
    let tls_options = match key.tls {
        TlsMode::Plaintext => None,
        TlsMode::Tls { skip_verify } => {
            let mut tls = TlsOptions::default();
            if skip_verify {
                tls.server_cert_verifier = Some(tls::SkipServerVerification::new());
            } else if let Some(ca) = &key.ca {
                crate::spec::pem::check_ca(ca.expose())
                    .map_err(|e| terr(ErrorKind::Config, format!("ca: expected {e}")))?;
                tls.server_root_ca_cert = Some(ca.expose().as_bytes().to_vec());
            }
            tls.domain = key.server_name.clone();
            if let Some((cert, k)) = &key.identity {
                // Checked here too: files and Secrets are only seen when connecting.
                crate::spec::pem::check_identity(cert.expose(), k.expose())
                    .map_err(|e| terr(ErrorKind::Config, format!("cert/key: expected {e}")))?;
                tls.client_tls_options = Some(
                    temporalio_client::ClientTlsOptions::builder()
                        .client_cert(cert.expose().as_bytes().to_vec())
                        .client_private_key(k.expose().as_bytes().to_vec())
                        .build(),
                );
            }
            Some(tls)
        }
    };
    // No retries inside the client: the pool backs off per connection and the next tick retries.
    let retry = RetryOptions::builder().max_retries(1).build();
    let opts = ConnectionOptions::new(url)
        .identity(format!("temporal-autoscaler@{}", hostname()))
        .maybe_tls_options(tls_options)
        .maybe_api_key(key.api_key.as_ref().map(|k| k.expose().to_string()))
        .connect_timeout(key.connect_timeout)
        .retry_options(retry)
        .dns_load_balancing(None)
        // The client gzips every request by default: for DescribeTaskQueue's ~100 bytes that
        // saves nothing, and a fresh deflate state per call (hundreds of KB allocated, zeroed
        // and returned) was a fifth of the agent's CPU at 10,000 scalers (perf).
        .grpc_compression(temporalio_client::GrpcCompression::None)
        .build();
    let fut = Connection::connect(opts);
    match tokio::time::timeout(key.connect_timeout + Duration::from_secs(5), fut).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(classify_connect_error(&e)),
        Err(_) => Err(terr(ErrorKind::Timeout, "connect timed out".to_string())),
    }
}

/// Connect errors say what failed, without the endpoint (the query adds it once).
fn classify_connect_error(e: &temporalio_client::errors::ClientConnectError) -> TemporalError {
    use temporalio_client::errors::ClientConnectError as E;
    match e {
        E::SystemInfoCallError(s) => ErrorKind::status_error("GetSystemInfo", s),
        E::InvalidConfig(m) => terr(ErrorKind::Config, m.clone()),
        other => {
            if let Some(r) = tls::rustls_cause(other) {
                // A certificate the other side rejects, or one we reject: not an outage.
                return terr(ErrorKind::Auth, format!("TLS handshake failed: {r}"));
            }
            // tonic's Display says only "transport error": the root cause is the useful part.
            let mut root: &dyn std::error::Error = other;
            while let Some(next) = root.source() {
                root = next;
            }
            terr(ErrorKind::Unavailable, format!("cannot connect: {root}"))
        }
    }
}

pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
