//! Users: after a batch, and for an operator's review, lock the users concerned, load them
//! with all their sessions, let `decide` recompute them, store the new records and put each
//! decision's reactions in the outbox — inside one transaction, so a decision and its
//! reactions commit together or not at all.
//!
//! Both paths read a user, recompute and write the user back, so both take the user's lock
//! first (`Store::lock_users`): otherwise, on PostgreSQL, a review decided while a batch for
//! the same user is in flight could be overwritten by the batch writing back the user it read
//! before the review (or the review could write back sessions the batch has just changed).

use std::collections::{BTreeSet, HashMap};

use crate::clock;
use crate::decide::expectations::digests_forgotten_with;
use crate::decide::review::{repeats_latest, review, ReviewRefused, ReviewRequest};
use crate::decide::user::{recompute, Checks, ReviewAction, UserRecord, UserState};
use crate::decide::{Decision, DecisionType, Policy, Rule, SessionRecord};
use crate::react::{locale, plan_for, recipient, ReactConfig};
use crate::store::{NewReview, Store, StoreError, Tx};

/// What a processor batch changed, for the user step.
pub(crate) struct BatchChanges<'a> {
    /// Session records written by the batch.
    pub changed: &'a [&'a SessionRecord],
    /// Sessions that became redacted in this batch.
    pub newly_redacted: &'a [&'a SessionRecord],
    /// `provided_details.email` from fetch-latest, by session id.
    pub provided_emails: &'a HashMap<String, String>,
}

/// Recompute the users of the `changed` sessions (already saved in `tx`). Returns the kinds of
/// the decisions made (their reactions are enqueued).
pub(crate) async fn update_users(
    store: &Store,
    tx: &mut Tx,
    policy: &Policy,
    react: &ReactConfig,
    batch: &BatchChanges<'_>,
    now_ms: i64,
) -> Result<Vec<DecisionType>, StoreError> {
    let refs: BTreeSet<&str> = batch
        .changed
        .iter()
        .filter_map(|s| s.user_ref.as_deref())
        .collect();
    let refs: Vec<&str> = refs.into_iter().collect();
    store.lock_users(tx, &refs).await?;
    let stored = store.load_users(tx, &refs).await?;
    let sessions = store.load_sessions_of_users(tx, &refs).await?;
    let mut by_user: HashMap<&str, Vec<&SessionRecord>> = HashMap::new();
    for s in &sessions {
        if let Some(user) = s.user_ref.as_deref() {
            by_user.entry(user).or_default().push(s);
        }
    }

    let mut checks = load_checks(store, tx, &refs, policy).await?;
    let mut saved: Vec<UserRecord> = Vec::new();
    let mut decisions: Vec<Decision> = Vec::new();
    for user_ref in refs {
        let mine = by_user.get(user_ref).map(Vec::as_slice).unwrap_or_default();
        let checks = checks.remove(user_ref).unwrap_or_default();
        if let Some(change) = recompute(
            user_ref,
            mine,
            stored.get(user_ref),
            &checks,
            policy,
            now_ms,
        ) {
            decisions.extend(change.decision);
            saved.push(change.user);
        }
    }
    store
        .save_users(tx, &saved.iter().collect::<Vec<_>>())
        .await?;
    request_checks(store, tx, &saved, now_ms).await?;

    // Redaction is a decision of its own (the app may need to forget data too), and it
    // strips personal fields from every reaction already written about the session.
    for s in batch.newly_redacted {
        let user = s.user_ref.as_deref().and_then(|u| {
            saved
                .iter()
                .find(|x| x.user_ref == u)
                .or_else(|| stored.get(u))
                .map(|x| &x.view)
        });
        decisions.push(Decision::redacted(s, user, now_ms));
    }
    let sessions: Vec<&SessionRecord> = sessions.iter().collect();
    enqueue(
        store,
        tx,
        react,
        &decisions,
        &sessions,
        batch.provided_emails,
        now_ms,
    )
    .await?;
    let redacted_ids: Vec<&str> = batch.newly_redacted.iter().map(|s| s.id.as_str()).collect();
    store.redact_reactions(tx, &redacted_ids).await?;
    // A keyed digest of a name is personal data too: it goes once all of a user's sessions
    // are redacted (which fields were expected stays, so nothing is waved through later).
    let mut forget: Vec<&str> = batch
        .newly_redacted
        .iter()
        .filter_map(|s| s.user_ref.as_deref())
        .filter(|u| digests_forgotten_with(by_user.get(u).map(Vec::as_slice).unwrap_or_default()))
        .collect();
    forget.sort_unstable();
    forget.dedup();
    store.forget_expectation_digests(tx, &forget).await?;
    Ok(decisions.iter().map(|d| d.kind).collect())
}

/// What the user step needs to know of each user's checks: whether verified sessions must be
/// checked (the user or the policy expects something) and the results so far.
async fn load_checks(
    store: &Store,
    tx: &mut Tx,
    refs: &[&str],
    policy: &Policy,
) -> Result<HashMap<String, Checks>, StoreError> {
    let expected = store.load_expectations(tx, refs).await?;
    let mut done = store.load_checks(tx, refs).await?;
    Ok(refs
        .iter()
        .map(|r| {
            let checks = Checks {
                required: policy.expectations.has_rules() || expected.contains_key(*r),
                done: done.remove(*r).unwrap_or_default(),
            };
            (r.to_string(), checks)
        })
        .collect())
}

/// Queue a check for every user the user step left waiting for one.
async fn request_checks(
    store: &Store,
    tx: &mut Tx,
    users: &[UserRecord],
    now_ms: i64,
) -> Result<(), StoreError> {
    let wanted: Vec<(&str, &str)> = users
        .iter()
        .filter_map(|u| {
            let why = u.view.why.as_ref()?;
            let session = why.session.as_deref()?;
            (why.rule == Rule::CheckingExpectations).then_some((session, u.user_ref.as_str()))
        })
        .collect();
    store.request_checks(tx, &wanted, now_ms).await
}

/// Plan each decision's reactions (emails to the address of the session it is about) and
/// write them to the outbox.
async fn enqueue(
    store: &Store,
    tx: &mut Tx,
    react: &ReactConfig,
    decisions: &[Decision],
    sessions: &[&SessionRecord],
    provided_emails: &HashMap<String, String>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let reactions: Vec<_> = decisions
        .iter()
        .flat_map(|d| {
            let session = sessions.iter().copied().find(|s| s.id == d.session);
            let to = recipient(
                session,
                provided_emails.get(&d.session).map(String::as_str),
                react,
            );
            plan_for(d, to.as_deref(), locale(session, react).as_deref(), react)
        })
        .collect();
    store.enqueue_reactions(tx, &reactions, now_ms).await
}

/// Why a review was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no verification session has been received for this user")]
    UnknownUser,
    #[error("allow_retry needs a user in needs_review; this user is {}", .0.as_str())]
    NotReviewable(UserState),
    #[error("this user has a verified session waiting for a reviewer (after a fraud signal, or for what was expected of it); another attempt cannot change that: approve or reject")]
    VerifiedSessionHeld,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a review did.
#[derive(Debug, Clone)]
pub struct Reviewed {
    /// The user after the review.
    pub user: UserRecord,
    /// The review repeated the verdict the user's state already reflects
    /// (`decide::review::repeats_latest`): nothing was recorded or announced.
    pub repeat: bool,
}

/// Record a review and apply it: the user's state is recomputed with the review, stored, and
/// the decision (with reviewer and note) goes to the outbox — one transaction. Reviews of one
/// user are serialised by the user's lock, so of identical ones sent at once the first is the
/// decision and the others are repeats.
pub async fn apply_review(
    store: &Store,
    policy: &Policy,
    react: &ReactConfig,
    user_ref: &str,
    action: ReviewAction,
    reviewer: &str,
    note: Option<&str>,
) -> Result<Reviewed, ReviewError> {
    let mut tx = store.begin().await?;
    store.lock_users(&mut tx, &[user_ref]).await?;
    let stored = store.load_users(&mut tx, &[user_ref]).await?;
    let Some(old) = stored.get(user_ref) else {
        return Err(ReviewError::UnknownUser);
    };
    if repeats_latest(old, action) {
        return Ok(Reviewed {
            user: old.clone(),
            repeat: true,
        });
    }
    // Reviews are keyed by user and time: under the lock, a review decided in the same
    // millisecond as the previous one is recorded a millisecond after it.
    let latest = store.latest_review_at(&mut tx, user_ref).await?;
    let now_ms = latest.map_or(clock::now_ms(), |at| clock::now_ms().max(at + 1));
    let sessions = store.load_sessions_of_users(&mut tx, &[user_ref]).await?;
    let sessions: Vec<&SessionRecord> = sessions.iter().collect();
    let checks = load_checks(store, &mut tx, &[user_ref], policy)
        .await?
        .remove(user_ref)
        .unwrap_or_default();
    let request = ReviewRequest {
        action,
        reviewer,
        note,
    };
    let change =
        review(old, &sessions, &checks, request, policy, now_ms).map_err(
            |refused| match refused {
                ReviewRefused::NotReviewable(state) => ReviewError::NotReviewable(state),
                ReviewRefused::VerifiedSessionHeld => ReviewError::VerifiedSessionHeld,
            },
        )?;
    store
        .insert_review(
            &mut tx,
            &NewReview {
                user_ref,
                action,
                reviewer,
                note,
                session_id: change
                    .user
                    .review
                    .as_ref()
                    .and_then(|r| r.session_id.as_deref()),
                at_ms: now_ms,
            },
        )
        .await?;
    store.save_users(&mut tx, &[&change.user]).await?;
    let decisions: Vec<Decision> = change.decision.into_iter().collect();
    enqueue(
        store,
        &mut tx,
        react,
        &decisions,
        &sessions,
        &HashMap::new(),
        now_ms,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    crate::metrics::decisions_made(&decisions.iter().map(|d| d.kind).collect::<Vec<_>>());
    Ok(Reviewed {
        user: change.user,
        repeat: false,
    })
}
