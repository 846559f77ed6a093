//! `idverdict endpoints create|list|delete`: register the webhook endpoint and
//! the events it needs, at real Stripe or at the emulator (the "go live" step
//! of Stripe's webhook guide, done programmatically).

use clap::{Args, Subcommand};
use serde_json::Value;

#[derive(Debug, Args)]
pub struct EndpointsArgs {
    /// Secret or restricted key (`sk_…`/`rk_…`); any `sk_test_…` works against the emulator.
    #[arg(long, env = "STRIPE_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// API base URL: Stripe, or the emulator (e.g. http://127.0.0.1:12111).
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    pub api_base: String,
    /// Print the raw JSON answer instead of a summary.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: EndpointsCommand,
}

#[derive(Debug, Subcommand)]
pub enum EndpointsCommand {
    /// Register a webhook endpoint; prints its signing secret (shown only this once).
    Create {
        /// The public HTTPS URL of your receiver (e.g. https://example.com/webhooks/stripe).
        #[arg(long)]
        url: String,
        /// Event types to enable (comma-separated or repeated); defaults to the six
        /// identity.verification_session.* events.
        #[arg(long = "events", value_delimiter = ',')]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List webhook endpoints (newest first).
    List {
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Delete a webhook endpoint.
    Delete {
        /// The endpoint id (`we_…`).
        id: String,
    },
}

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(String, String)],
    ) -> anyhow::Result<Value> {
        let url = format!("{}{}", self.base.trim_end_matches('/'), path);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .bearer_auth(&self.key);
        req = if method == reqwest::Method::GET {
            req.query(form)
        } else {
            req.form(form)
        };
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", self.base))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| anyhow::anyhow!("unexpected answer from {} ({status}): {e}", self.base))?;
        if !status.is_success() {
            let err = &body["error"];
            let msg = err["message"].as_str().unwrap_or("no message");
            match err["param"].as_str() {
                Some(p) => anyhow::bail!("{status}: {msg} (param: {p})"),
                None => anyhow::bail!("{status}: {msg}"),
            }
        }
        Ok(body)
    }
}

fn summary(ep: &Value) -> String {
    let events: Vec<&str> = ep["enabled_events"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    format!(
        "{}  {}  {}  [{}]",
        ep["id"].as_str().unwrap_or("?"),
        ep["status"].as_str().unwrap_or("?"),
        ep["url"].as_str().unwrap_or("?"),
        events.join(", ")
    )
}

pub async fn run(args: EndpointsArgs) -> anyhow::Result<()> {
    let http = reqwest::Client::builder().build()?;
    let api = Api {
        http,
        base: args.api_base.clone(),
        key: args.api_key.clone(),
    };
    match args.command {
        EndpointsCommand::Create {
            url,
            events,
            description,
        } => {
            // By default the Identity events idverdict consumes, each named (`*` does not cover
            // `redacted`).
            let events: Vec<String> = if events.is_empty() {
                stripe_webhook::EventType::IDENTITY
                    .iter()
                    .map(|e| e.as_str().to_string())
                    .collect()
            } else {
                events
            };
            let mut form = vec![("url".to_string(), url)];
            for (i, e) in events.iter().enumerate() {
                form.push((format!("enabled_events[{i}]"), e.clone()));
            }
            if let Some(d) = description {
                form.push(("description".into(), d));
            }
            let ep = api
                .call(reqwest::Method::POST, "/v1/webhook_endpoints", &form)
                .await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&ep)?);
            } else {
                println!("{}", summary(&ep));
                // Stripe returns the secret only in this answer: the operator must copy it now.
                println!(
                    "signing secret (shown once; set it as STRIPE_WEBHOOK_SECRET): {}",
                    ep["secret"].as_str().unwrap_or("?")
                );
            }
        }
        EndpointsCommand::List { limit } => {
            let limit = limit.clamp(1, 100).to_string();
            let list = api
                .call(
                    reqwest::Method::GET,
                    "/v1/webhook_endpoints",
                    &[("limit".into(), limit)],
                )
                .await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for ep in list["data"].as_array().into_iter().flatten() {
                    println!("{}", summary(ep));
                }
            }
        }
        EndpointsCommand::Delete { id } => {
            if id.is_empty() || id.contains('/') {
                anyhow::bail!("not an endpoint id: {id:?}");
            }
            let deleted = api
                .call(
                    reqwest::Method::DELETE,
                    &format!("/v1/webhook_endpoints/{id}"),
                    &[],
                )
                .await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&deleted)?);
            } else {
                println!("deleted {}", deleted["id"].as_str().unwrap_or(&id));
            }
        }
    }
    Ok(())
}
