//! File and FileLink records: the images collected by a submission, and the short-lived public
//! links that show them.
//!
//! Identity images carry the purposes Stripe gives them (`identity_document_downloadable` for
//! the document, `selfie` for the face); both are among the purposes a FileLink may point at.
//! Their contents live in their own table so that redaction can delete them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Purposes of the images a verification collects.
pub const DOCUMENT_PURPOSE: &str = "identity_document_downloadable";
pub const SELFIE_PURPOSE: &str = "selfie";

/// Stripe's rule for document and selfie images: their FileLinks must expire within 30 seconds.
pub const IDENTITY_LINK_MAX_SECONDS: i64 = 30;

/// The content type of every synthetic image.
pub const IMAGE_CONTENT_TYPE: &str = "image/svg+xml";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    pub id: String,
    pub created: i64,
    pub purpose: String,
    pub filename: String,
    pub size: i64,
    /// The VerificationSession whose submission collected it.
    pub session: String,
}

impl FileRecord {
    /// Document and selfie images: reading them needs a restricted key.
    pub fn is_identity_image(&self) -> bool {
        self.purpose == DOCUMENT_PURPOSE || self.purpose == SELFIE_PURPOSE
    }

    pub fn render(&self, base_url: &str) -> Value {
        json!({
            "id": self.id,
            "object": "file",
            "created": self.created,
            "expires_at": null,
            "filename": self.filename,
            "purpose": self.purpose,
            "size": self.size,
            "title": null,
            "type": "svg",
            "url": format!("{}/v1/files/{}/contents", base_url.trim_end_matches('/'), self.id),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileLinkRecord {
    pub id: String,
    pub created: i64,
    pub expires_at: Option<i64>,
    pub file: String,
    pub metadata: BTreeMap<String, String>,
    /// Makes the public URL unguessable.
    pub token: String,
}

impl FileLinkRecord {
    pub fn expired(&self, now_s: i64) -> bool {
        self.expires_at.is_some_and(|t| t <= now_s)
    }

    /// Where the link serves the file, without authentication, until it expires.
    pub fn public_url(&self, base_url: &str) -> String {
        format!(
            "{}/files/links/{}/{}",
            base_url.trim_end_matches('/'),
            self.id,
            self.token
        )
    }

    pub fn render(&self, base_url: &str, now_s: i64) -> Value {
        let expired = self.expired(now_s);
        json!({
            "id": self.id,
            "object": "file_link",
            "created": self.created,
            "expired": expired,
            "expires_at": self.expires_at,
            "file": self.file,
            "livemode": false,
            "metadata": self.metadata,
            "url": if expired { None } else { Some(self.public_url(base_url)) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_link_has_no_url() {
        let l = FileLinkRecord {
            id: "link_1".into(),
            created: 0,
            expires_at: Some(100),
            file: "file_1".into(),
            metadata: BTreeMap::new(),
            token: "tok".into(),
        };
        let live = l.render("http://e/", 99);
        assert_eq!(live["expired"], false);
        assert_eq!(live["url"], "http://e/files/links/link_1/tok");
        let dead = l.render("http://e", 100);
        assert_eq!(dead["expired"], true);
        assert!(dead["url"].is_null());
    }
}
