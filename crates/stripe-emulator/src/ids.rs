//! Stripe-style identifiers and secrets (`vs_…`, `evt_…`, `whsec_…`, `req_…`).
//!
//! The random part is alphanumeric, 24 characters, which is what real Stripe
//! IDs look like; clients that validate IDs by shape accept them.

use rand::distributions::Alphanumeric;
use rand::Rng;

fn random(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A new object ID, e.g. `new_id("vs")` → `vs_1Ab…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_1{}", random(23))
}

/// A webhook signing secret.
pub fn webhook_secret() -> String {
    format!("whsec_{}", random(32))
}

/// A one-off token that makes a hosted-flow URL and client secret unguessable.
pub fn token() -> String {
    random(32)
}

pub fn request_id() -> String {
    format!("req_{}", random(14))
}

#[cfg(test)]
mod tests {
    #[test]
    fn shapes() {
        let id = super::new_id("vs");
        assert!(id.starts_with("vs_1") && id.len() == 27);
        assert!(super::webhook_secret().starts_with("whsec_"));
        assert_ne!(super::token(), super::token());
    }
}
