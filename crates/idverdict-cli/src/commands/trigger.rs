//! `idverdict trigger`: like `stripe trigger`, but local and for every Identity event. Builds a
//! realistic event, signs it exactly as Stripe does (fresh `t`, `v1` per secret) and POSTs it.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use idverdict::synth::{self, Kind, Spec};

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// identity.verification_session.<created|processing|verified|requires_input|canceled|redacted>
    /// (or just the last part). Not needed with --flow.
    pub event: Option<String>,
    /// Send a whole sequence for one session: `verified`, `failed:<error_code>` or `canceled`.
    #[arg(long, conflicts_with = "event")]
    pub flow: Option<String>,
    /// last_error.code for requires_input (default document_unverified_other).
    #[arg(long)]
    pub error_code: Option<String>,
    /// client_reference_id of the session (the end user).
    #[arg(long)]
    pub user: Option<String>,
    /// Session id (default: a new vs_… id).
    #[arg(long)]
    pub session: Option<String>,
    /// Receiver URL (default: the local `serve` at http://127.0.0.1:4242/webhook).
    #[arg(long)]
    pub url: Option<String>,
    /// Signing secret(s), comma-separated (default: STRIPE_WEBHOOK_SECRET, else the dev secret
    /// of the local `serve`).
    #[arg(long)]
    pub secret: Option<String>,
    /// Data directory of the local `serve`, where its dev secret lives.
    #[arg(long, env = "IDVERDICT_DATA_DIR", default_value = ".idverdict")]
    pub data_dir: PathBuf,
}

pub async fn run(args: TriggerArgs) -> anyhow::Result<()> {
    let kinds: Vec<Kind> = match (&args.flow, &args.event) {
        (Some(flow), _) => parse_flow(flow)?,
        (None, Some(event)) => vec![Kind::parse(event).with_context(|| {
            format!("unknown event `{event}`: use identity.verification_session.<created|processing|verified|requires_input|canceled|redacted>")
        })?],
        (None, None) => bail!("name an event (e.g. identity.verification_session.verified) or a --flow"),
    };
    let error_code = match &args.flow {
        Some(flow) => flow
            .strip_prefix("failed:")
            .map(str::to_string)
            .or(args.error_code.clone()),
        None => args.error_code.clone(),
    };
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1:4242/webhook".to_string());
    let secrets = secrets(&args)?;
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let session_id = args.session.clone().unwrap_or_else(|| synth::new_id("vs"));

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let start = idverdict::clock::now_secs();
    let report_id = synth::new_id("vr");
    for (i, kind) in kinds.into_iter().enumerate() {
        // One second apart, so the events carry the order a real flow has.
        let mut spec = Spec::new(kind, &session_id, start + i as i64);
        spec.session_created = start;
        spec.user_ref = args.user.clone();
        spec.error_code = error_code.clone();
        spec.report_id = Some(report_id.clone());
        let body = synth::event_bytes(&spec);
        let header =
            stripe_webhook::sign_with_secrets(&body, &secret_refs, idverdict::clock::now_secs());
        let response = client
            .post(&url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header(
                "User-Agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .header("Stripe-Signature", header)
            .body(body)
            .send()
            .await
            .with_context(|| format!("sending to {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        println!(
            "{} {} ({}) -> {} {}",
            kind.event_type(),
            spec.event_id,
            session_id,
            status.as_u16(),
            text.trim()
        );
        if !status.is_success() {
            bail!("the receiver answered {status}");
        }
    }
    Ok(())
}

fn parse_flow(flow: &str) -> anyhow::Result<Vec<Kind>> {
    Ok(match flow {
        "verified" => vec![Kind::Created, Kind::Processing, Kind::Verified],
        "canceled" => vec![Kind::Created, Kind::Canceled],
        f if f.starts_with("failed:") && f.len() > "failed:".len() => {
            vec![Kind::Created, Kind::Processing, Kind::RequiresInput]
        }
        other => bail!("unknown flow `{other}`: use verified, canceled or failed:<error_code>"),
    })
}

fn secrets(args: &TriggerArgs) -> anyhow::Result<Vec<String>> {
    let configured = args
        .secret
        .clone()
        .or_else(|| {
            std::env::var("STRIPE_WEBHOOK_SECRET")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .or_else(|| idverdict::config::dev_webhook_secret(&args.data_dir));
    match configured {
        Some(list) => Ok(list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()),
        None => bail!(
            "no signing secret: pass --secret whsec_…, set STRIPE_WEBHOOK_SECRET, or start `idverdict serve` once so it creates {}",
            args.data_dir.join("dev-webhook-secret").display()
        ),
    }
}
