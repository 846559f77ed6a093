//! What finishing a redaction erases besides the session itself, as Stripe describes it
//! ("related reports, events and request logs are redacted; file contents are deleted"): the
//! session's reports, the snapshots in its events, the contents of its images, and the answers
//! kept for idempotent replays, which are the emulator's request log. Then the write-ahead log
//! is emptied so that no old copy of the erased rows stays on disk.

use serde_json::{json, Value};

use crate::errors::StoreError;
use crate::model::{redacted_tree, Event, REPORT_OBJECT, SESSION_OBJECT};
use crate::report;
use crate::store::Kind;
use crate::Emulator;

/// Erases everything the emulator keeps about session `id` outside the session record.
pub async fn erase_related(emu: &Emulator, id: &str) -> Result<(), StoreError> {
    for mut r in emu.store.all::<Value>(Kind::Report).await? {
        if r["verification_session"].as_str() == Some(id) {
            report::redact(&mut r);
            let rid = r["id"].as_str().unwrap_or_default().to_string();
            let created = r["created"].as_i64().unwrap_or(0);
            emu.store.put(Kind::Report, &rid, created, &r).await?;
        }
    }
    for mut ev in emu.store.all::<Event>(Kind::Event).await? {
        if ev.object_id() == Some(id) {
            if let Some(obj) = ev.object.as_object_mut() {
                obj.insert("metadata".into(), json!({}));
            }
            emu.store.put(Kind::Event, &ev.id, ev.created, &ev).await?;
        }
    }
    let deleted = emu.store.delete_file_contents(id).await?;
    for (key, body) in emu.store.idempotent_bodies_mentioning(id).await? {
        let Ok(mut v) = serde_json::from_str::<Value>(&body) else {
            continue;
        };
        scrub(&mut v, id);
        let text = serde_json::to_string_pretty(&v)?;
        if text != body {
            emu.store.idempotent_set_body(&key, &text).await?;
        }
    }
    if let Err(e) = emu.store.checkpoint().await {
        // Readers may hold the log for a moment; the next checkpoint copies it anyway.
        tracing::warn!(error = %e, "could not empty the write-ahead log after a redaction");
    }
    tracing::info!(session = id, files = deleted, "redaction finished");
    Ok(())
}

/// Redacts, wherever they appear in a stored answer, the session `id` and its reports.
fn scrub(v: &mut Value, id: &str) {
    match v {
        Value::Object(m) => {
            let object = m.get("object").and_then(Value::as_str);
            let is_session =
                object == Some(SESSION_OBJECT) && m.get("id").and_then(Value::as_str) == Some(id);
            let is_report = object == Some(REPORT_OBJECT)
                && m.get("verification_session").and_then(Value::as_str) == Some(id);
            if is_session {
                m.insert("metadata".into(), json!({}));
                for field in ["provided_details", "verified_outputs"] {
                    if let Some(x) = m.get(field) {
                        let r = redacted_tree(x);
                        m.insert(field.into(), r);
                    }
                }
            }
            if is_report {
                report::redact(v);
                return;
            }
            if let Value::Object(m) = v {
                for child in m.values_mut() {
                    scrub(child, id);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|x| scrub(x, id)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::scrub;
    use serde_json::json;

    #[test]
    fn scrubs_the_session_and_its_report_wherever_they_are() {
        let mut v = json!({"object": "list", "data": [
            {"object": "identity.verification_session", "id": "vs_1", "metadata": {"email": "a@b.c"},
             "provided_details": {"email": "a@b.c"},
             "verified_outputs": {"first_name": "Ada", "address": {"country": "GB", "city": "Leeds"}},
             "last_verification_report": {"object": "identity.verification_report", "verification_session": "vs_1",
                 "document": {"status": "verified", "first_name": "Ada", "files": ["file_1"]}}},
            {"object": "identity.verification_session", "id": "vs_2", "metadata": {"email": "keep@b.c"}}
        ]});
        scrub(&mut v, "vs_1");
        let s = &v["data"][0];
        assert_eq!(s["metadata"], json!({}));
        assert_eq!(s["provided_details"]["email"], "[redacted]");
        assert_eq!(s["verified_outputs"]["first_name"], "[redacted]");
        assert_eq!(s["verified_outputs"]["address"]["country"], "GB");
        let r = &s["last_verification_report"]["document"];
        assert_eq!(r["first_name"], "[redacted]");
        assert_eq!(r["files"], json!(["file_1"]));
        assert_eq!(v["data"][1]["metadata"]["email"], "keep@b.c");
    }
}
