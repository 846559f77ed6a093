//! Synthesized events: build a realistic event, sign it exactly as Stripe does (fresh `t`, one
//! `v1` per secret) and POST it to a receiver that has no emulator behind it.

use std::path::Path;

use anyhow::{bail, Context};
use idverdict::synth::{self, Spec};

use super::{Request, TriggerArgs};

/// `serve`'s default address, for when no running `serve` says where it is.
pub const DEFAULT_URL: &str = "http://127.0.0.1:4242/webhook";

pub async fn run(
    url: &str,
    secrets: &[String],
    request: &Request,
    args: &TriggerArgs,
) -> anyhow::Result<()> {
    let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let session_id = args.session.clone().unwrap_or_else(|| synth::new_id("vs"));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let start = idverdict::clock::now_secs();
    let report_id = synth::new_id("vr");
    for (i, kind) in request.kinds.iter().copied().enumerate() {
        // One second apart, so the events carry the order a real flow has.
        let mut spec = Spec::new(kind, &session_id, start + i as i64);
        spec.session_created = start;
        spec.user_ref = args.user.clone();
        spec.error_code = request.error_code.clone();
        spec.report_id = Some(report_id.clone());
        let body = synth::event_bytes(&spec);
        let header =
            stripe_webhook::sign_with_secrets(&body, &secret_refs, idverdict::clock::now_secs());
        let response = client
            .post(url)
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

/// `--secret`, else `STRIPE_WEBHOOK_SECRET`, else the dev secret of the `serve` in `data_dir`.
pub fn secrets(flag: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<String>> {
    let configured = flag
        .map(str::to_string)
        .or_else(|| {
            std::env::var("STRIPE_WEBHOOK_SECRET")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .or_else(|| idverdict::config::dev_webhook_secret(data_dir));
    match configured {
        Some(list) => Ok(list
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()),
        None => bail!(
            "no signing secret: pass --secret whsec_…, set STRIPE_WEBHOOK_SECRET, or start `idverdict serve` once so it creates {}",
            data_dir.join("dev-webhook-secret").display()
        ),
    }
}
