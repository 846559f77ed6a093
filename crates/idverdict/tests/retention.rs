//! Retention on the real backends: payloads of processed events past `retention.payload_days`
//! are deleted, younger ones and unprocessed ones stay, rows stay as long as de-duplication
//! needs them, and a pruned SQLite file gets smaller. The clock is passed in (`retention::prune`
//! takes "now"), so nothing sleeps.

mod common;

use common::*;
use idverdict::clock::now_ms;
use idverdict::config::RetentionConfig;
use idverdict::store::retention::{self, AutoVacuum};
use idverdict::store::{NewEvent, Receipt, Store};
use idverdict::synth::{self, Kind, Spec};
use sqlx::Row;
use stripe_webhook::Event;

const DAY_MS: i64 = 86_400_000;

fn event(kind: Kind, session: &str, user: &str) -> NewEvent {
    let mut spec = Spec::new(kind, session, 1_700_000_000);
    spec.user_ref = Some(user.to_string());
    // Personal metadata, kept beside the payload until the payload window ends.
    spec.metadata = vec![("email".into(), format!("{user}@example.org"))];
    let bytes = synth::event_bytes(&spec);
    let event = Event::from_slice(&bytes).expect("a synthetic event parses");
    NewEvent::from_event(&event, bytes).expect("a storable event")
}

async fn process_all(store: &Store) {
    let processor = processor(store);
    while processor.run_once().await.expect("processor batch") > 0 {}
}

/// (has a payload or metadata, processed) of the event `id`; `None` when its row is gone.
async fn row_of(db: &TestDb, id: &str) -> Option<(bool, bool)> {
    let mut raw = db.raw().await;
    let sql = match db.backend {
        Backend::Sqlite => "SELECT (payload IS NOT NULL OR metadata IS NOT NULL) AS has_payload, processed_at IS NOT NULL AS processed FROM events WHERE id = ?",
        Backend::Postgres => "SELECT CAST((payload IS NOT NULL OR metadata IS NOT NULL) AS INTEGER) AS has_payload, CAST(processed_at IS NOT NULL AS INTEGER) AS processed FROM events WHERE id = $1",
    };
    let row = sqlx::query(sql)
        .bind(id)
        .fetch_optional(&mut raw)
        .await
        .expect("query event");
    row.map(|r| {
        let has: i64 = r.try_get("has_payload").expect("has_payload");
        let processed: i64 = r.try_get("processed").expect("processed");
        (has == 1, processed == 1)
    })
}

async fn payloads_past_the_window_go_the_rest_stay_and_duplicates_are_still_refused(
    backend: Backend,
) {
    let db = TestDb::new(backend).await;
    let store = db.store().await;
    let rules = RetentionConfig::default();
    let now = now_ms();

    // Received 31 days ago (past the 30-day payload window) and yesterday; all processed.
    let old: Vec<NewEvent> = (0..3)
        .map(|i| event(Kind::Verified, &format!("vs_1old{i}"), &format!("old_{i}")))
        .collect();
    let young: Vec<NewEvent> = (0..2)
        .map(|i| event(Kind::Verified, &format!("vs_1new{i}"), &format!("new_{i}")))
        .collect();
    store.insert_events(&old, now - 31 * DAY_MS).await.unwrap();
    store.insert_events(&young, now - DAY_MS).await.unwrap();
    process_all(&store).await;
    // Received 40 days ago and never processed (stored after the processor ran).
    let waiting = event(Kind::Processing, "vs_1waiting", "waiting");
    store
        .insert_events(std::slice::from_ref(&waiting), now - 40 * DAY_MS)
        .await
        .unwrap();
    assert_eq!(
        store.oldest_payload_ms().await.unwrap(),
        Some(now - 40 * DAY_MS)
    );

    let pruned = retention::prune(&store, rules, now, None).await.unwrap();
    assert_eq!((pruned.payloads, pruned.events), (3, 0));
    for e in &old {
        assert_eq!(
            row_of(&db, &e.id).await,
            Some((false, true)),
            "old payload kept"
        );
    }
    for e in &young {
        assert_eq!(
            row_of(&db, &e.id).await,
            Some((true, true)),
            "young payload lost"
        );
    }
    assert_eq!(row_of(&db, &waiting.id).await, Some((true, false)));

    // Inside the de-duplication window a redelivery of a pruned event is still a duplicate.
    let again = store.insert_events(&old[..1], now).await.unwrap();
    assert_eq!(again, vec![Receipt::Duplicate]);
    // A second pass finds nothing more to do.
    let pruned = retention::prune(&store, rules, now, None).await.unwrap();
    assert_eq!((pruned.payloads, pruned.events), (0, 0));

    // Ten days later (41 days after receipt, past the 33-day row window): the old rows go;
    // yesterday's events (now 11 days old) keep their rows but lose nothing else yet; the
    // unprocessed event stays whole.
    let later = now + 10 * DAY_MS;
    let pruned = retention::prune(&store, rules, later, None).await.unwrap();
    assert_eq!((pruned.payloads, pruned.events), (0, 3));
    for e in &old {
        assert_eq!(row_of(&db, &e.id).await, None, "old row kept");
    }
    for e in &young {
        assert_eq!(row_of(&db, &e.id).await, Some((true, true)));
    }
    assert_eq!(row_of(&db, &waiting.id).await, Some((true, false)));
    // The sessions the pruned events built are untouched.
    for i in 0..3 {
        let session = store
            .get_session(&format!("vs_1old{i}"))
            .await
            .unwrap()
            .expect("session kept");
        assert_eq!(session.status.as_str(), "verified");
    }
    store.close().await;
}
both_backends!(payloads_past_the_window_go_the_rest_stay_and_duplicates_are_still_refused);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruned_sqlite_file_gets_smaller() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.store().await;
    assert_eq!(
        store.auto_vacuum().await.unwrap(),
        Some(AutoVacuum::Incremental),
        "a new file is created with incremental auto-vacuum"
    );
    let now = now_ms();
    for chunk in 0..20 {
        let batch: Vec<NewEvent> = (0..250)
            .map(|i| {
                let n = chunk * 250 + i;
                event(
                    Kind::Verified,
                    &format!("vs_1fill{n:06}"),
                    &format!("fill_{n}"),
                )
            })
            .collect();
        store
            .insert_events(&batch, now - 40 * DAY_MS)
            .await
            .unwrap();
    }
    process_all(&store).await;
    let file = db.dir.path().join("idverdict.db");
    store.scrub_wal().await.unwrap();
    let before_pages = store.size_bytes().await.unwrap().expect("size");
    let before_file = std::fs::metadata(&file).unwrap().len();

    let pruned = retention::prune(&store, RetentionConfig::default(), now, None)
        .await
        .unwrap();
    assert_eq!(pruned.events, 5000);
    assert!(pruned.pages_released > 0);
    store.scrub_wal().await.unwrap();
    let after_pages = store.size_bytes().await.unwrap().expect("size");
    let after_file = std::fs::metadata(&file).unwrap().len();
    // The events' payloads were most of the file: it is now well under half its size.
    assert!(
        after_pages * 2 < before_pages,
        "database {before_pages} → {after_pages} bytes"
    );
    assert!(
        after_file * 2 < before_file,
        "file {before_file} → {after_file} bytes"
    );
    assert_eq!(store.free_pages().await.unwrap(), 0);
    store.close().await;
}
