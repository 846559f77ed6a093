//! HTTP callbacks to the app, signed with the Standard Webhooks scheme so that any Standard
//! Webhooks library verifies them: `webhook-id` (the reaction id, stable across retries: the
//! app deduplicates on it), `webhook-timestamp` (send time, unix seconds) and
//! `webhook-signature` (`v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>`, one per secret,
//! space-separated, during a rotation).

use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use super::config::{decode_secret, ReactConfig};
use super::retry::parse_retry_after;
use super::{ssrf, Delivery, Failure, ReactError};

/// Signing keys, decoded once.
#[derive(Clone)]
pub struct Signer {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer(<{} key(s)>)", self.keys.len())
    }
}

impl Signer {
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Result<Signer, String> {
        let keys = secrets
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                decode_secret(s.as_ref()).map_err(|e| format!("callbacks.secrets[{i}]: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Signer { keys })
    }

    /// The `webhook-signature` header value.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        self.keys
            .iter()
            .map(|key| sign_one(key, id, timestamp, body))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One `v1,<base64>` signature.
pub fn sign_one(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so new_from_slice cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// The callback channel: one HTTP client (pooled connections, no redirects) and the keys.
pub struct CallbackChannel {
    client: reqwest::Client,
    signer: Signer,
    allow_private: bool,
}

impl CallbackChannel {
    pub fn new(config: &ReactConfig) -> Result<CallbackChannel, ReactError> {
        let signer = Signer::new(config.callbacks.secrets.iter().map(|s| s.expose_secret()))
            .map_err(ReactError::Config)?;
        let allow_private = config.delivery.allow_private_targets;
        let mut builder = reqwest::Client::builder()
            // Standard Webhooks: a redirect is a failure, and following one could lead the
            // request somewhere the SSRF guard never saw.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(config.callbacks.timeout_secs))
            .connect_timeout(Duration::from_secs(config.callbacks.timeout_secs.min(10)))
            .user_agent(concat!("idverdict/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(resolver) = ssrf::resolver(allow_private) {
            builder = builder.dns_resolver(resolver);
        }
        let client = builder.build().map_err(ReactError::Http)?;
        Ok(CallbackChannel {
            client,
            signer,
            allow_private,
        })
    }

    /// POST the payload to `url`. Only a 2xx is a delivery.
    pub async fn deliver(&self, id: &str, url: &str, payload: &str) -> Delivery {
        if let Err(e) = ssrf::check_url(url, self.allow_private).await {
            let permanent = !matches!(e, ssrf::SsrfError::Resolve { .. });
            return Delivery::Failed(Failure {
                status: None,
                error: e.to_string(),
                retry_after: None,
                permanent,
            });
        }
        let timestamp = crate::clock::now_secs();
        let signature = self.signer.sign(id, timestamp, payload.as_bytes());
        let started = Instant::now();
        let result = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(payload.to_string())
            .send()
            .await;
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                // The error's source chain says why (refused, reset, TLS) without the body.
                let mut detail = String::new();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    detail = s.to_string();
                    source = s.source();
                }
                tracing::debug!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "callback {kind}"
                );
                return Delivery::Failed(Failure {
                    status: None,
                    error: if detail.is_empty() {
                        kind.to_string()
                    } else {
                        format!("{kind}: {detail}")
                    },
                    retry_after: None,
                    permanent: false,
                });
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, crate::clock::now()));
        // Drain (bounded by the client timeout) so the connection goes back to the pool.
        let _ = response.bytes().await;
        if status.is_success() {
            Delivery::Delivered {
                status: Some(status.as_u16()),
            }
        } else {
            let what = if status.is_redirection() {
                "redirect refused"
            } else {
                "unsuccessful status"
            };
            Delivery::Failed(Failure {
                status: Some(status.as_u16()),
                error: format!("{what}: HTTP {}", status.as_u16()),
                retry_after,
                permanent: false,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_vector() {
        // The reference vector of the Standard Webhooks specification (also Svix's).
        let signer = Signer::new(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string()]).unwrap();
        assert_eq!(
            signer.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn several_secrets_several_signatures() {
        let signer = Signer::new(&[
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
            "whsec_dGhlIHNlY29uZCBzZWNyZXQga2V5IGlzIGhlcmU=".to_string(),
        ])
        .unwrap();
        let header = signer.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(parts[1].starts_with("v1,") && parts[1] != parts[0]);
    }

    #[test]
    fn bad_secret_names_its_index() {
        let e = Signer::new(&[
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string(),
            "secret".to_string(),
        ])
        .unwrap_err();
        assert!(e.starts_with("callbacks.secrets[1]"), "{e}");
    }
}
