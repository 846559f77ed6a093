//! Operator passwords: Argon2id (the `argon2` crate's defaults, the parameters OWASP
//! recommends: 19 MiB, 2 passes, 1 lane) in PHC strings, and what a new password and an
//! operator email must look like. Shared by the console and `idverdict operators`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;

/// Shortest password accepted for an operator.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest (hashing cost grows with length; nobody types more).
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Check a new password's length.
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// An Argon2id PHC string for `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC string (constant time inside `argon2`). A
/// malformed hash or an over-long password never matches.
pub fn verify_password(hash: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Emails are compared trimmed and lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Whether a (normalised) email is acceptable as an operator's login.
pub fn check_email(email: &str) -> Result<(), &'static str> {
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err("an operator's email must look like name@example.com")
    }
}

/// Create the development admin unless an operator with its email exists (it is created once;
/// a password changed since is kept).
pub async fn ensure_dev_operator(
    store: &crate::store::Store,
    dev: &crate::config::DevOperator,
) -> Result<(), String> {
    use secrecy::ExposeSecret;
    if store
        .operator_by_email(&dev.email)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(());
    }
    let hash = hash_password(dev.password.expose_secret()).map_err(|e| e.to_string())?;
    store
        .insert_operator(
            &dev.email,
            crate::decide::access::Role::Admin,
            &hash,
            crate::clock::now_ms(),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify_password(&a, "correct horse battery"));
        assert!(!verify_password(&a, "correct horse battery!"));
        assert!(!verify_password("not a hash", "anything"));
    }

    #[test]
    fn new_passwords_and_emails_are_checked() {
        assert!(matches!(
            check_new_password("short"),
            Err(PasswordError::TooShort)
        ));
        assert!(check_new_password("twelve chars").is_ok());
        assert!(matches!(
            check_new_password(&"x".repeat(2000)),
            Err(PasswordError::TooLong)
        ));
        assert_eq!(normalize_email("  Alice@Example.COM "), "alice@example.com");
        assert!(check_email("alice@example.com").is_ok());
        assert!(check_email("alice").is_err());
        assert!(check_email("a b@example.com").is_err());
        assert!(check_email("@example.com").is_err());
    }
}
