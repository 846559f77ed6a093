//! `idverdict trigger`: like `stripe trigger`, for every Identity event and flow.
//!
//! Two ways, one command:
//! - **Through an emulator** ([`emulated`]): in the data directory of a dev-mode `serve`
//!   (or with `--api-base` pointing at `idverdict emulate`), real sessions are created in the
//!   emulator and driven with its test helpers; the emulator then signs and delivers the
//!   events. Fetch-latest, reconciliation and session creation see the same sessions the
//!   events are about.
//! - **Synthesized** ([`synthesized`]): a realistic event is built, signed exactly as Stripe
//!   signs (fresh `t`, one `v1` per secret) and POSTed — for a receiver with no emulator
//!   behind it (`--url`, `--secret`, `--synthesize`, or a `serve` without the emulator).

mod emulated;
mod synthesized;

use std::path::Path;

use anyhow::{bail, Context};
use clap::Args;
use idverdict::data_dir::{self, Discovery};
use idverdict::synth::Kind;
use stripe_webhook::ErrorCode;

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// identity.verification_session.<created|processing|verified|requires_input|canceled|redacted>
    /// (or just the last part). Not needed with --flow.
    pub event: Option<String>,
    /// Drive a whole flow for one session: `verified`, `failed:<error_code>` or `canceled`.
    #[arg(long, conflicts_with = "event")]
    pub flow: Option<String>,
    /// last_error.code for requires_input (default document_unverified_other).
    #[arg(long)]
    pub error_code: Option<String>,
    /// Accept an error code this version does not know (to test codes Stripe adds later;
    /// synthesized events only: the emulator knows the same codes).
    #[arg(long)]
    pub allow_unknown_code: bool,
    /// client_reference_id of the session (the end user).
    #[arg(long)]
    pub user: Option<String>,
    /// An existing session to drive (default: a new one).
    #[arg(long)]
    pub session: Option<String>,
    /// Sign and POST a synthesized event to this receiver URL instead of going through an
    /// emulator.
    #[arg(long)]
    pub url: Option<String>,
    /// Signing secret(s) for synthesized events, comma-separated (default:
    /// STRIPE_WEBHOOK_SECRET, else the dev secret of the local `serve`).
    #[arg(long)]
    pub secret: Option<String>,
    /// Synthesize and POST even when a dev-mode `serve` runs the embedded emulator.
    #[arg(long)]
    pub synthesize: bool,
    #[command(flatten)]
    pub stripe: super::StripeArgs,
    #[command(flatten)]
    pub config: super::ConfigArgs,
}

/// What to send: a single event or a flow, and the error code of its failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub kinds: Vec<Kind>,
    /// A whole flow (`--flow`) rather than one event.
    pub flow: bool,
    pub error_code: Option<String>,
}

pub async fn run(args: TriggerArgs) -> anyhow::Result<()> {
    let request = parse_request(&args)?;
    let data_dir = super::data_dir(&args.config)?;
    let discovery = data_dir::discover(&data_dir);

    let explicit_emulator = args.stripe.api_base.is_some() || args.stripe.api_key.is_some();
    let synthesize = args.synthesize || args.url.is_some() || args.secret.is_some();
    if synthesize && explicit_emulator {
        bail!("--api-base/--api-key drive an emulator; --url, --secret and --synthesize send synthesized events: choose one");
    }
    let emulator = if synthesize {
        None
    } else if explicit_emulator {
        let base = args.stripe.api_base.clone().with_context(|| {
            "--api-key needs --api-base: the emulator to drive, e.g. http://127.0.0.1:12111"
        })?;
        let key = args
            .stripe
            .api_key
            .clone()
            .unwrap_or_else(|| super::dev_loop::DEV_KEY.to_string());
        Some((base, key))
    } else {
        discovery
            .running()
            .and_then(|s| s.emulator.as_ref())
            .map(|e| (e.url.clone(), e.api_key.clone()))
    };

    match emulator {
        Some((base, key)) => {
            if request
                .error_code
                .as_deref()
                .is_some_and(|c| ErrorCode::from(c).is_unknown())
            {
                bail!("the emulator knows only this version's error codes; add --synthesize to send a synthesized event with an unknown code");
            }
            emulated::run(&base, &key, &request, &args).await
        }
        None => {
            let url = args.url.clone().unwrap_or_else(|| match &discovery {
                Discovery::Running(serve) => serve.webhook_url.clone(),
                _ => synthesized::DEFAULT_URL.to_string(),
            });
            let secrets = synthesized::secrets(args.secret.as_deref(), &data_dir)?;
            synthesized::run(&url, &secrets, &request, &args)
                .await
                .map_err(|e| hint_when_nothing_runs(e, &discovery, &data_dir, args.url.is_some()))
        }
    }
}

/// Check the event, flow and error code before anything is sent.
fn parse_request(args: &TriggerArgs) -> anyhow::Result<Request> {
    let (kinds, flow_code) = match (&args.flow, &args.event) {
        (Some(flow), _) => parse_flow(flow)?,
        (None, Some(event)) => (
            vec![Kind::parse(event).with_context(|| {
                format!("unknown event `{event}`: use identity.verification_session.<created|processing|verified|requires_input|canceled|redacted>")
            })?],
            None,
        ),
        (None, None) => {
            bail!("name an event (e.g. identity.verification_session.verified) or a --flow")
        }
    };
    let error_code = flow_code.or_else(|| args.error_code.clone());
    if let Some(code) = &error_code {
        if ErrorCode::from(code.as_str()).is_unknown() && !args.allow_unknown_code {
            let known: Vec<&str> = ErrorCode::ALL.iter().map(ErrorCode::as_str).collect();
            bail!(
                "unknown error code `{code}`; the known codes are: {} (add --allow-unknown-code to send it anyway)",
                known.join(", ")
            );
        }
    }
    Ok(Request {
        flow: args.flow.is_some(),
        kinds,
        error_code,
    })
}

fn parse_flow(flow: &str) -> anyhow::Result<(Vec<Kind>, Option<String>)> {
    Ok(match flow {
        "verified" => (vec![Kind::Created, Kind::Processing, Kind::Verified], None),
        "canceled" => (vec![Kind::Created, Kind::Canceled], None),
        f => match f.strip_prefix("failed:").filter(|c| !c.is_empty()) {
            Some(code) => (
                vec![Kind::Created, Kind::Processing, Kind::RequiresInput],
                Some(code.to_string()),
            ),
            None => bail!("unknown flow `{f}`: use verified, canceled or failed:<error_code>"),
        },
    })
}

/// A failed POST to the default address, with nothing running in the data directory: say so.
fn hint_when_nothing_runs(
    error: anyhow::Error,
    discovery: &Discovery,
    data_dir: &Path,
    explicit_url: bool,
) -> anyhow::Error {
    if explicit_url || discovery.running().is_some() {
        return error;
    }
    let why = match discovery {
        Discovery::Stale(_) => "its serve.json is left from a serve that is no longer running",
        _ => "no `idverdict serve` runs there",
    };
    error.context(format!(
        "looked for a serve in the data directory {} ({why}); start `idverdict serve` there, or pass --data-dir or --url",
        data_dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TriggerArgs,
    }

    fn request(argv: &[&str]) -> anyhow::Result<Request> {
        let mut all = vec!["trigger"];
        all.extend(argv);
        parse_request(&Cli::try_parse_from(all).unwrap().args)
    }

    #[test]
    fn unknown_codes_are_refused_with_the_known_ones() {
        let e = request(&["--flow", "failed:document_expird"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown error code `document_expird`"), "{e}");
        assert!(
            e.contains("document_expired") && e.contains("selfie_manipulated"),
            "{e}"
        );
        assert!(e.contains("--allow-unknown-code"), "{e}");
        let e = request(&["requires_input", "--error-code", "nope"]).unwrap_err();
        assert!(e.to_string().contains("`nope`"));

        let ok = request(&["--flow", "failed:document_expird", "--allow-unknown-code"]).unwrap();
        assert_eq!(ok.error_code.as_deref(), Some("document_expird"));
        let ok = request(&["--flow", "failed:document_expired"]).unwrap();
        assert_eq!(
            ok.kinds,
            vec![Kind::Created, Kind::Processing, Kind::RequiresInput]
        );
    }

    #[test]
    fn events_and_flows() {
        assert_eq!(request(&["verified"]).unwrap().kinds, vec![Kind::Verified]);
        assert!(request(&["--flow", "failed:"]).is_err());
        assert!(request(&["--flow", "maybe"]).is_err());
        assert!(request(&["identity.verification_session.nope"]).is_err());
        assert!(request(&[]).is_err());
    }
}
