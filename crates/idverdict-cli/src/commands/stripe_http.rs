//! Form-encoded calls to a Stripe API (Stripe itself or an emulator) for the commands that
//! need raw JSON answers: `endpoints`, `trigger` and serve's dev loop. (The service's typed
//! client is `idverdict::stripe_api`.)

use serde_json::Value;

/// A failed call: Stripe's error object, or no usable answer at all.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{status}: {message}{}", param.as_ref().map(|p| format!(" (param: {p})")).unwrap_or_default())]
    Status {
        status: reqwest::StatusCode,
        message: String,
        param: Option<String>,
    },
    #[error("{0}")]
    Other(String),
}

impl CallError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, CallError::Status { status, .. } if *status == reqwest::StatusCode::NOT_FOUND)
    }
}

pub struct StripeHttp {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl StripeHttp {
    pub fn new(base: &str, key: &str) -> anyhow::Result<StripeHttp> {
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        if is_loopback(base) {
            // A local emulator: never route through a proxy from the environment.
            builder = builder.no_proxy();
        }
        Ok(StripeHttp {
            http: builder.build()?,
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get(&self, path: &str, query: &[(String, String)]) -> Result<Value, CallError> {
        self.call(reqwest::Method::GET, path, query).await
    }

    pub async fn post(&self, path: &str, form: &[(String, String)]) -> Result<Value, CallError> {
        self.call(reqwest::Method::POST, path, form).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, CallError> {
        self.call(reqwest::Method::DELETE, path, &[]).await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(String, String)],
    ) -> Result<Value, CallError> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.key);
        req = if method == reqwest::Method::GET {
            req.query(params)
        } else {
            req.form(params)
        };
        let resp = req
            .send()
            .await
            .map_err(|e| CallError::Other(format!("cannot reach {}: {e}", self.base)))?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| {
            CallError::Other(format!(
                "unexpected answer from {} ({status}): {e}",
                self.base
            ))
        })?;
        if !status.is_success() {
            let err = &body["error"];
            return Err(CallError::Status {
                status,
                message: err["message"].as_str().unwrap_or("no message").to_string(),
                param: err["param"].as_str().map(str::to_string),
            });
        }
        Ok(body)
    }
}

fn is_loopback(base: &str) -> bool {
    url::Url::parse(base).ok().is_some_and(|u| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    })
}

/// `name[0]=a&name[1]=b…`, Stripe's encoding of an array parameter.
pub fn array_form(name: &str, values: &[impl AsRef<str>]) -> Vec<(String, String)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("{name}[{i}]"), v.as_ref().to_string()))
        .collect()
}
