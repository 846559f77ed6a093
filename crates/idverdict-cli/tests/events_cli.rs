//! `idverdict events`: listing stored events and putting a quarantined one back, against the
//! database `DATABASE_URL` names (as every command resolves it).

mod common;

use std::process::Command;

use common::BIN;
use idverdict::clock::now_ms;
use idverdict::store::{NewEvent, Store};
use idverdict::synth::{self, Kind, Spec};
use serde_json::Value;
use test_support::{both_backends, Backend, TestDb};

fn cli(db: &TestDb, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("IDVERDICT_DATA_DIR", db.dir.path().join("cli"))
        .output()
        .expect("run idverdict");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn events_lists_and_retries_a_quarantined_event(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let news: Vec<NewEvent> = (0..2)
        .map(|i| {
            let bytes =
                synth::event_bytes(&Spec::new(Kind::Verified, &format!("vs_1cli{i}"), 1_000));
            let event = stripe_webhook::Event::from_slice(&bytes).unwrap();
            NewEvent::from_event(&event, bytes).unwrap()
        })
        .collect();
    store.insert_events(&news, now_ms()).await.unwrap();
    let poison = &news[1].id;
    // What the processor does to an event the database refuses.
    let mut raw = db.raw().await;
    sqlx::query(&format!(
        "UPDATE events SET quarantined_at = 1, quarantine_error = 'refused: value too long' WHERE id = '{poison}'"
    ))
    .execute(&mut raw)
    .await
    .unwrap();

    let (ok, out, err) = cli(&db, &["events", "list", "--state", "quarantined", "--json"]);
    assert!(ok, "{err}");
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["id"], poison.as_str());
    assert_eq!(rows[0]["quarantine_error"], "refused: value too long");
    let (ok, out, err) = cli(&db, &["events", "list"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("quarantined") && out.contains("refused: value too long"),
        "{out}"
    );
    assert_eq!(out.matches("pending").count(), 1, "{out}");

    let (ok, out, err) = cli(&db, &["events", "retry", poison]);
    assert!(ok, "{err}");
    assert!(out.contains("back in the queue"), "{out}");
    let (ok, out, _) = cli(&db, &["events", "list", "--state", "pending", "--json"]);
    assert!(ok);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(store.quarantined_events().await.unwrap(), 0);

    // Again: not quarantined any more; an unknown id: not stored. Both fail.
    let (ok, _, err) = cli(&db, &["events", "retry", poison]);
    assert!(!ok && err.contains("not quarantined"), "{err}");
    let (ok, _, err) = cli(&db, &["events", "retry", "evt_unknown"]);
    assert!(!ok && err.contains("no event evt_unknown"), "{err}");
    store.close().await;
}
both_backends!(events_lists_and_retries_a_quarantined_event);
