//! `secretTargetRef`: credentials read from Secrets in a scaler's namespace, by `get` (the agent
//! needs no list or watch on Secrets). Each Secret is cached briefly, so thousands of scalers
//! sharing one Secret make one read per TTL, and a rotated Secret is seen within the TTL.

use super::error::{ErrorKind, TemporalError, terr};
use k8s_openapi::api::core::v1::Secret;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a read Secret (or the error reading it) is reused.
pub const SECRET_TTL: Duration = Duration::from_secs(30);

type Entry = (Instant, Result<Arc<Secret>, TemporalError>);

pub struct SecretReader {
    client: kube::Client,
    cache: Mutex<HashMap<(String, String), Entry>>,
    /// One read per Secret at a time; concurrent callers wait for it.
    fetch: tokio::sync::Mutex<()>,
}

impl SecretReader {
    pub fn new(client: kube::Client) -> SecretReader {
        SecretReader {
            client,
            cache: Mutex::default(),
            fetch: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, id: &(String, String)) -> Option<Result<Arc<Secret>, TemporalError>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(id)
            .filter(|(at, _)| at.elapsed() < SECRET_TTL)
            .map(|(_, r)| r.clone())
    }

    /// The value of `key` in Secret `namespace/name`, as text.
    pub async fn get(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<String, TemporalError> {
        let id = (namespace.to_string(), name.to_string());
        let secret = match self.cached(&id) {
            Some(r) => r?,
            None => {
                let _one = self.fetch.lock().await;
                match self.cached(&id) {
                    Some(r) => r?,
                    None => {
                        let r = self.read(namespace, name).await;
                        self.cache
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(id, (Instant::now(), r.clone()));
                        r?
                    }
                }
            }
        };
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .map(|s| s.clone().into_bytes())
            })
            .ok_or_else(|| {
                terr(
                    ErrorKind::Config,
                    format!("Secret {namespace}/{name} has no key {key:?}"),
                )
            })?;
        String::from_utf8(bytes).map_err(|_| {
            terr(
                ErrorKind::Config,
                format!("Secret {namespace}/{name} key {key:?} is not text"),
            )
        })
    }

    async fn read(&self, namespace: &str, name: &str) -> Result<Arc<Secret>, TemporalError> {
        let api: kube::Api<Secret> = kube::Api::namespaced(self.client.clone(), namespace);
        match api.get(name).await {
            Ok(s) => Ok(Arc::new(s)),
            Err(kube::Error::Api(s)) if s.code == 404 => Err(terr(
                ErrorKind::NotFound,
                format!("Secret {namespace}/{name} not found"),
            )),
            Err(kube::Error::Api(s)) if s.code == 403 => Err(terr(
                ErrorKind::Auth,
                format!(
                    "cannot read Secret {namespace}/{name}: forbidden; the agent's ServiceAccount \
                     needs get on secrets in {namespace} (chart value rbac.secretReferences)"
                ),
            )),
            Err(e) => Err(terr(
                ErrorKind::Unavailable,
                format!("cannot read Secret {namespace}/{name}: {e}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{expect, mock_client, scenario};
    use http::{Method, StatusCode};
    use serde_json::json;

    const PATH: &str = "/api/v1/namespaces/shop/secrets/temporal-cloud";

    #[tokio::test]
    async fn one_get_per_secret_within_the_ttl_and_keys_by_name() {
        let (client, handle) = mock_client();
        let out = scenario(
            handle,
            |mut h| async move {
                expect(&mut h, Method::GET, PATH).await.reply(
                    StatusCode::OK,
                    json!({
                        "apiVersion": "v1", "kind": "Secret",
                        "metadata": {"name": "temporal-cloud", "namespace": "shop"},
                        // "s3cr3t\n" and a PEM-ish text
                        "data": {"api-key": "czNjcjN0Cg==", "ca.crt": "LS0tLS1CRUdJTg=="}
                    }),
                );
                h
            },
            async move {
                let reader = SecretReader::new(client);
                let a = reader.get("shop", "temporal-cloud", "api-key").await;
                let b = reader.get("shop", "temporal-cloud", "ca.crt").await;
                let missing = reader.get("shop", "temporal-cloud", "tls.key").await;
                (a, b, missing)
            },
        )
        .await;
        assert_eq!(out.0.unwrap(), "s3cr3t\n");
        assert_eq!(out.1.unwrap(), "-----BEGIN");
        let e = out.2.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(
            e.message,
            "Secret shop/temporal-cloud has no key \"tls.key\""
        );
    }

    #[tokio::test]
    async fn forbidden_and_not_found_are_classified_and_not_retried_within_the_ttl() {
        let (client, handle) = mock_client();
        let status = |code: u16, reason: &str| {
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "message": format!("secrets is {reason}"), "reason": reason, "code": code})
        };
        let (forbidden, again, missing) = scenario(
            handle,
            move |mut h| async move {
                expect(&mut h, Method::GET, PATH)
                    .await
                    .reply(StatusCode::FORBIDDEN, status(403, "Forbidden"));
                expect(&mut h, Method::GET, "/api/v1/namespaces/shop/secrets/gone")
                    .await
                    .reply(StatusCode::NOT_FOUND, status(404, "NotFound"));
                h
            },
            async move {
                let reader = SecretReader::new(client);
                (
                    reader.get("shop", "temporal-cloud", "api-key").await,
                    reader.get("shop", "temporal-cloud", "api-key").await,
                    reader.get("shop", "gone", "api-key").await,
                )
            },
        )
        .await;
        let e = forbidden.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(
            e.message.starts_with("cannot read Secret shop/temporal-cloud: forbidden; the agent's ServiceAccount needs get on secrets in shop"),
            "{e}"
        );
        assert_eq!(again.unwrap_err(), e);
        let e = missing.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(e.message, "Secret shop/gone not found");
    }
}
