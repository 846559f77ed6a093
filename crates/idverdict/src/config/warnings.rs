//! Settings that are valid but would surface late as a puzzling failure: `serve` logs each as
//! a warning at start-up, naming the setting, instead of letting the first request answer 401
//! or the first decision be exhausted at attempt 1.

use super::{settings, Config};
use crate::react::ssrf::{self, SsrfError};

/// The warnings for `config`, worded for the operator (each names the setting to change).
/// Callback hosts are resolved, as the SSRF guard will resolve them.
pub async fn start_up_warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    let name = |key: &str| settings::name(Some(key), settings::find(key).and_then(|s| s.env));
    if !config.dev_mode && config.api_token.is_none() {
        warnings.push(format!(
            "{} is set but {} is not: every /v1 request will be refused with 401 (create a token with `idverdict secrets generate api-token`)",
            name("webhook_secrets"),
            name("api_token"),
        ));
    }
    if !config.reactions.delivery.allow_private_targets {
        for url in &config.reactions.callbacks.urls {
            match ssrf::check_url(url, false).await {
                Ok(()) => {}
                Err(SsrfError::Refused { ip, reason, .. }) => warnings.push(format!(
                    "{} has {url}, which is a {reason} address ({ip}), and {} is off: every callback there will be refused and exhausted at its first attempt (allow private targets for an app on this machine or network)",
                    name("callbacks.urls"),
                    name("delivery.allow_private_targets"),
                )),
                Err(e) => warnings.push(format!("{}: {e}", name("callbacks.urls"))),
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Sources;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Config::load(&Sources {
            file: None,
            env: &env,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_secret_without_a_token_is_named() {
        let w = start_up_warnings(&config(&[(
            "STRIPE_WEBHOOK_SECRET",
            "whsec_0123456789abcdef0123456789abcdef",
        )]))
        .await;
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("`api_token` (IDVERDICT_API_TOKEN)") && w[0].contains("401"),
            "{w:?}"
        );
    }

    #[tokio::test]
    async fn a_loopback_callback_with_the_guard_on_is_named() {
        let base = [
            (
                "STRIPE_WEBHOOK_SECRET",
                "whsec_0123456789abcdef0123456789abcdef",
            ),
            ("IDVERDICT_API_TOKEN", "a-token-of-enough-length"),
            ("IDVERDICT_CALLBACK_URLS", "http://127.0.0.1:9000/hook"),
            (
                "IDVERDICT_CALLBACK_SECRETS",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
        ];
        let w = start_up_warnings(&config(&base)).await;
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("http://127.0.0.1:9000/hook")
                && w[0].contains("loopback")
                && w[0].contains("IDVERDICT_ALLOW_PRIVATE_TARGETS"),
            "{w:?}"
        );
        let mut allowed = base.to_vec();
        allowed.push(("IDVERDICT_ALLOW_PRIVATE_TARGETS", "true"));
        assert!(start_up_warnings(&config(&allowed)).await.is_empty());
    }

    #[tokio::test]
    async fn dev_mode_has_nothing_to_say() {
        assert!(start_up_warnings(&config(&[])).await.is_empty());
    }
}
