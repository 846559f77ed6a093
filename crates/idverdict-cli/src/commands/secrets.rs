//! `idverdict secrets generate callback|api-token`: make the secrets the operator chooses
//! (Stripe makes the webhook signing secret: `idverdict endpoints create` prints it).

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    pub command: SecretsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Print a new random secret on stdout.
    Generate {
        /// `callback`: a Standard Webhooks secret for IDVERDICT_CALLBACK_SECRETS (give the same
        /// value to your app's verifier); `api-token`: a bearer token for IDVERDICT_API_TOKEN.
        kind: SecretKind,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SecretKind {
    Callback,
    ApiToken,
}

pub fn run(args: SecretsArgs) -> anyhow::Result<()> {
    let SecretsCommand::Generate { kind } = args.command;
    println!("{}", generate(kind));
    Ok(())
}

fn generate(kind: SecretKind) -> String {
    match kind {
        SecretKind::Callback => idverdict::config::generate_callback_secret(),
        // 43 alphanumerics ≈ 256 bits from the OS generator.
        SecretKind::ApiToken => format!("idv_{}", idverdict::config::random_token(43)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_what_the_configuration_accepts() {
        let callback = generate(SecretKind::Callback);
        assert_eq!(
            idverdict::config::decode_secret(&callback).unwrap().len(),
            32
        );
        assert_ne!(callback, generate(SecretKind::Callback));
        let token = generate(SecretKind::ApiToken);
        assert!(token.starts_with("idv_") && token.len() >= 16, "{token}");
        assert_ne!(token, generate(SecretKind::ApiToken));
    }
}
