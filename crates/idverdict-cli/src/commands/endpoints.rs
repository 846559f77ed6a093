//! `idverdict endpoints create|list|delete`: register the webhook endpoint and
//! the events it needs, at real Stripe or at the emulator (the "go live" step
//! of Stripe's webhook guide, done programmatically).

use clap::{Args, Subcommand};
use serde_json::Value;

use super::stripe_http::{array_form, StripeHttp};

const REDACTED: &str = "identity.verification_session.redacted";

#[derive(Debug, Args)]
pub struct EndpointsArgs {
    #[command(flatten)]
    pub stripe: super::StripeArgs,
    /// Where a dev-mode `serve` runs (its embedded emulator is used when no key is given).
    #[command(flatten)]
    pub config: super::ConfigArgs,
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
    let settings = super::stripe_settings(
        args.stripe.settings_from_flags_or_env()?,
        &super::data_dir(&args.config)?,
        "endpoints",
    )?;
    let api = StripeHttp::new(&settings.api_base, settings.api_key.expose())?;
    match args.command {
        EndpointsCommand::Create {
            url,
            events,
            description,
        } => {
            let mut form = vec![("url".to_string(), url)];
            if events.is_empty() {
                form.extend(super::dev_loop::events_form());
            } else {
                if events.iter().any(|e| e == "*") && !events.iter().any(|e| e == REDACTED) {
                    eprintln!(
                        "warning: `*` subscribes to every event except {REDACTED}, which must be named: \
                         without it idverdict never learns that a session was redacted and keeps its copy \
                         (add it: --events '*,{REDACTED}')"
                    );
                }
                form.extend(array_form("enabled_events", &events));
            }
            if let Some(d) = description {
                form.push(("description".into(), d));
            }
            let ep = api.post("/v1/webhook_endpoints", &form).await?;
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
                .get("/v1/webhook_endpoints", &[("limit".into(), limit)])
                .await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let endpoints = list["data"].as_array().cloned().unwrap_or_default();
                for ep in &endpoints {
                    println!("{}", summary(ep));
                }
                if endpoints.is_empty() {
                    println!("(no webhook endpoints at {})", api.base());
                }
            }
        }
        EndpointsCommand::Delete { id } => {
            if id.is_empty() || id.contains('/') {
                anyhow::bail!("not an endpoint id: {id:?}");
            }
            let deleted = api.delete(&format!("/v1/webhook_endpoints/{id}")).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&deleted)?);
            } else {
                println!("deleted {}", deleted["id"].as_str().unwrap_or(&id));
            }
        }
    }
    Ok(())
}
