//! The message bus: publish the decision to `{prefix}.{decision}` on NATS (core publish; the
//! Debian nats-server 2.9 has no newer JetStream APIs). `Nats-Msg-Id` = the reaction id, so a
//! JetStream stream capturing the subject deduplicates redeliveries.
//!
//! The connection is made lazily, on the first message, and retried on later ones: a bus that
//! is down must not stop `serve`; its messages wait in the outbox.

use std::time::Duration;

use tokio::sync::Mutex;

use super::config::NatsConfig;
use super::{Delivery, Failure};

/// How long a connect or flush may take before the attempt counts as failed.
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct NatsChannel {
    url: String,
    client: Mutex<Option<async_nats::Client>>,
}

fn failed(error: String) -> Delivery {
    Delivery::Failed(Failure {
        status: None,
        error,
        retry_after: None,
        permanent: false,
    })
}

impl NatsChannel {
    pub fn new(config: &NatsConfig) -> NatsChannel {
        NatsChannel {
            url: config.url.clone(),
            client: Mutex::new(None),
        }
    }

    async fn client(&self) -> Result<async_nats::Client, String> {
        let mut guard = self.client.lock().await;
        if let Some(client) = guard.as_ref() {
            return Ok(client.clone());
        }
        // Once connected, the client reconnects by itself; only the first connection is ours.
        let connect = async_nats::ConnectOptions::new()
            .name("idverdict")
            .connection_timeout(TIMEOUT)
            .connect(self.url.as_str());
        let client = tokio::time::timeout(TIMEOUT * 2, connect)
            .await
            .map_err(|_| "nats: connect timed out".to_string())?
            .map_err(|e| format!("nats: cannot connect: {e}"))?;
        tracing::info!(url = %crate::store::redact_url(&self.url), "connected to NATS");
        *guard = Some(client.clone());
        Ok(client)
    }

    /// Publish and flush: the attempt succeeds once the server has the message.
    pub async fn deliver(&self, id: &str, subject: &str, payload: &str) -> Delivery {
        let client = match self.client().await {
            Ok(c) => c,
            Err(e) => return failed(e),
        };
        if client.connection_state() != async_nats::connection::State::Connected {
            // Publishing now would only queue in memory; keep it in the outbox instead.
            return failed("nats: not connected".to_string());
        }
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        headers.insert("Content-Type", "application/json");
        if let Err(e) = client
            .publish_with_headers(subject.to_string(), headers, payload.to_string().into())
            .await
        {
            return failed(format!("nats: publish failed: {e}"));
        }
        match tokio::time::timeout(TIMEOUT, client.flush()).await {
            Ok(Ok(())) => Delivery::Delivered { status: None },
            Ok(Err(e)) => failed(format!("nats: flush failed: {e}")),
            Err(_) => failed("nats: flush timed out".to_string()),
        }
    }
}
