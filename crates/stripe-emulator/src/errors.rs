//! Error types: [`ApiError`] is what a client sees (Stripe's error object with
//! the right HTTP status); [`StoreError`] is an internal failure of the state file.

use axum::http::StatusCode;
use serde_json::{json, Value};

/// Failures of the SQLite state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("corrupt stored object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

/// An error answered in Stripe's shape: `{"error":{"type","code","message","param"}}`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {kind}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            code: None,
            message: message.into(),
            param: None,
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        let mut e = Self::invalid_request(message);
        e.param = Some(param.to_string());
        e.code = Some("parameter_invalid_string");
        e
    }

    pub fn missing_param(param: &str) -> Self {
        let mut e = Self::invalid_request(format!("Missing required param: {param}."));
        e.param = Some(param.to_string());
        e.code = Some("parameter_missing");
        e
    }

    /// 404 for an unknown id; `object` is Stripe's human name, e.g. `identity.verification_session`.
    pub fn no_such(object: &str, id: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            kind: "invalid_request_error",
            code: Some("resource_missing"),
            message: format!("No such {object}: '{id}'"),
            param: Some("id".into()),
        }
    }

    /// 400 for an action not allowed in the object's current state.
    pub fn unexpected_state(message: impl Into<String>) -> Self {
        let mut e = Self::invalid_request(message);
        e.code = Some("unexpected_state");
        e
    }

    pub fn unrecognized_url(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            format!("Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/."),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "api_error", message)
    }

    pub fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_string());
        self
    }

    /// Re-roots the error's `param` under `parent` (`document` → `options[document]`),
    /// also in the message, for errors found while reading a nested hash.
    pub fn nested(mut self, parent: &str) -> Self {
        if let Some(p) = self.param.take() {
            let (head, tail) = match p.find('[') {
                Some(i) => (&p[..i], &p[i..]),
                None => (p.as_str(), ""),
            };
            let full = format!("{parent}[{head}]{tail}");
            self.message = self.message.replace(&p, &full);
            self.param = Some(full);
        }
        self
    }

    pub fn body(&self) -> Value {
        let mut err = json!({ "type": self.kind, "message": self.message });
        if let Some(code) = self.code {
            err["code"] = json!(code);
            err["doc_url"] = json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            ));
        }
        if let Some(param) = &self.param {
            err["param"] = json!(param);
        }
        json!({ "error": err })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "state store failure");
        ApiError::internal("An internal error occurred in the emulator's state store.")
    }
}
