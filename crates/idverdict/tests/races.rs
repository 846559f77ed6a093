//! Concurrency on PostgreSQL, where several transactions really run at once (SQLite's single
//! writer serialises everything): an operator's review and a processor batch for the same
//! user, raced many times. Whichever commits first, the stored user must be what the
//! committed sessions and the latest recorded review make of them: neither may write back a
//! user it read before the other changed it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use idverdict::clock::now_ms;
use idverdict::decide::user::{user_view, Checks};
use idverdict::decide::{Policy, ReviewAction, SessionRecord};
use idverdict::ingest::IngestLoad;
use idverdict::processor::{apply_review, Processor};
use idverdict::react::ReactConfig;
use idverdict::store::{NewEvent, Store};
use idverdict::synth::{self, Kind, Spec};
use rand::Rng;
use stripe_webhook::Event;
use tokio::sync::Notify;

/// Rounds of the race. Each is a fresh user; the start of the review is jittered over the
/// batch's transaction so that every interleaving gets its turn.
const ROUNDS: usize = 150;

/// A failure of `session` (report `report`), `created` seconds.
fn failure(session: &str, user: &str, code: &str, report: &str, created: i64) -> NewEvent {
    let mut spec = Spec::new(Kind::RequiresInput, session, created);
    spec.user_ref = Some(user.to_string());
    spec.session_created = 1_000;
    spec.error_code = Some(code.to_string());
    spec.report_id = Some(report.to_string());
    let bytes = synth::event_bytes(&spec);
    let event = Event::from_slice(&bytes).expect("a synthetic event parses");
    NewEvent::from_event(&event, bytes).expect("storable ids")
}

async fn store_event(store: &Store, event: NewEvent) {
    store
        .insert_events(&[event], now_ms())
        .await
        .expect("insert event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_review_and_a_batch_for_the_same_user_never_lose_each_others_changes() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.store().await;
    let policy = Policy::default();
    let react = Arc::new(ReactConfig::default());
    let processor = Arc::new(Processor::new(
        store.clone(),
        policy.clone(),
        react.clone(),
        Arc::new(Notify::new()),
        Arc::new(IngestLoad::default()),
        Arc::new(Notify::new()),
    ));
    let mut rng = rand::thread_rng();
    let mut lost = Vec::new();

    for round in 0..ROUNDS {
        let user = format!("race_user_{round}");
        let session = format!("vs_1race{round:06}");
        // The user waits for a review: a possibly manipulated selfie.
        store_event(
            &store,
            failure(&session, &user, "selfie_manipulated", "vr_1", 1_100),
        )
        .await;
        while processor.run_once().await.expect("setup batch") > 0 {}

        // Then, at once: the user's next failure is processed, and an operator approves.
        store_event(
            &store,
            failure(&session, &user, "document_expired", "vr_2", 1_200),
        )
        .await;
        let jitter = Duration::from_micros(rng.gen_range(0..15_000));
        let batch = tokio::spawn({
            let processor = processor.clone();
            async move { processor.run_once().await }
        });
        let review = tokio::spawn({
            let (store, policy, react, user) =
                (store.clone(), policy.clone(), react.clone(), user.clone());
            async move {
                tokio::time::sleep(jitter).await;
                apply_review(
                    &store,
                    &policy,
                    &react,
                    &user,
                    ReviewAction::Approve,
                    "race-test",
                    None,
                )
                .await
            }
        });
        assert_eq!(batch.await.expect("batch task").expect("batch"), 1);
        review.await.expect("review task").expect("review");

        let stored = store
            .get_user(&user)
            .await
            .expect("get user")
            .expect("user stored");
        let reviews = store.reviews_of(&user).await.expect("reviews");
        let sessions = store.sessions_for_user(&user).await.expect("sessions");
        let sessions: Vec<&SessionRecord> = sessions.iter().collect();
        let expected = user_view(
            &sessions,
            stored.review.as_ref(),
            &Checks::default(),
            &policy,
        );
        let review_kept = stored.review.as_ref().map(|r| r.action) == Some(ReviewAction::Approve)
            && reviews.len() == 1;
        if !review_kept || stored.view != expected {
            lost.push(format!(
                "round {round} (review after {jitter:?}): stored {:?} with review {:?}; \
                 the sessions and the recorded reviews {:?} make {:?}",
                stored.view,
                stored.review.as_ref().map(|r| r.action),
                reviews
                    .iter()
                    .map(|r| r.action.as_str())
                    .collect::<Vec<_>>(),
                expected
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {ROUNDS} rounds lost a change:\n{}",
        lost.len(),
        lost.join("\n")
    );
}
