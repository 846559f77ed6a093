//! The user step of a processor batch: recompute the state of every user whose sessions
//! changed, store it, and turn each change that matters into a decision whose reactions go to
//! the outbox — all inside the batch's transaction, so a decision and its reactions commit
//! together or not at all.

use std::collections::{BTreeSet, HashMap};

use stripe_webhook::ErrorCode;

use crate::decide::user::{user_view, Review, ReviewAction, UserState, UserView};
use crate::decide::{Policy, SessionRecord};
use crate::react::{plan, Decision, ReactConfig};
use crate::store::{NewReview, Store, StoreError, StoredUser, Tx};

/// States that tell someone something: entering one produces a decision.
fn is_decision(state: UserState) -> bool {
    !matches!(state, UserState::None | UserState::Pending)
}

/// The end user's address, from the metadata key the operator configured.
fn email_of(session: &SessionRecord, react: &ReactConfig) -> Option<String> {
    let key = react.email.as_ref()?.email_metadata_key.as_ref()?;
    session.metadata.get(key).cloned()
}

/// Build the decision for a user's new view.
pub(crate) fn decision_for(
    user_ref: &str,
    view: &UserView,
    current: Option<&SessionRecord>,
    provided_emails: &HashMap<String, String>,
    react: &ReactConfig,
    now_s: i64,
) -> Option<Decision> {
    let session = view.current_session.clone()?;
    let code = view.error_code.clone();
    let explanation = code.as_deref().map(|c| {
        let parsed: ErrorCode = c
            .parse()
            .unwrap_or_else(|_| ErrorCode::Unknown(c.to_string()));
        parsed.explanation().to_string()
    });
    Some(Decision {
        key: format!(
            "{user_ref}:{}:{session}:{}",
            view.state.as_str(),
            view.attempts_used
        ),
        decision: view.state.as_str().to_string(),
        user: Some(user_ref.to_string()),
        session,
        state: view.state.as_str().to_string(),
        error_code: code,
        reason: current.and_then(|s| s.last_error_reason.clone()),
        explanation,
        next_step: view.next_step.map(|s| s.as_str().to_string()),
        attempts_used: view.attempts_used,
        attempts_left: view.attempts_allowed.saturating_sub(view.attempts_used),
        resume: (view.state == UserState::RetryAllowed)
            .then(|| format!("POST /v1/users/{user_ref}/verification_sessions")),
        reviewer: None,
        note: None,
        occurred_at: now_s,
        // The address: the configured metadata key, else `provided_details.email` as Stripe
        // returned it to fetch-latest (webhooks never carry it). Used for the email only;
        // never stored anywhere else.
        email: current.and_then(|s| {
            email_of(s, react).or_else(|| {
                react
                    .email
                    .as_ref()
                    .and(provided_emails.get(&s.id).cloned())
            })
        }),
    })
}

/// What a processor batch changed, for the user step.
pub(crate) struct BatchChanges<'a> {
    /// Session records written by the batch.
    pub changed: &'a [&'a SessionRecord],
    /// Sessions that became redacted in this batch.
    pub newly_redacted: &'a [&'a SessionRecord],
    /// `provided_details.email` from fetch-latest, by session id.
    pub provided_emails: &'a HashMap<String, String>,
}

/// Recompute users touched by `changed` sessions (already saved in `tx`). Returns the
/// decisions made, already enqueued.
pub(crate) async fn update_users(
    store: &Store,
    tx: &mut Tx,
    policy: &Policy,
    react: &ReactConfig,
    batch: &BatchChanges<'_>,
    now_ms: i64,
) -> Result<Vec<Decision>, StoreError> {
    let BatchChanges {
        changed,
        newly_redacted,
        provided_emails,
    } = *batch;
    let refs: BTreeSet<&str> = changed
        .iter()
        .filter_map(|s| s.user_ref.as_deref())
        .collect();
    let refs: Vec<&str> = refs.into_iter().collect();
    let stored = store.load_users(tx, &refs).await?;
    let sessions = store.load_sessions_of_users(tx, &refs).await?;
    let mut by_user: HashMap<&str, Vec<&SessionRecord>> = HashMap::new();
    for s in &sessions {
        if let Some(user) = s.user_ref.as_deref() {
            by_user.entry(user).or_default().push(s);
        }
    }

    let mut to_save = Vec::new();
    let mut decisions = Vec::new();
    for user_ref in refs {
        let mine = by_user.get(user_ref).map(Vec::as_slice).unwrap_or_default();
        let old = stored.get(user_ref);
        let view = user_view(mine, old.and_then(|u| u.review.as_ref()), policy);
        if old.map(|u| &u.view) == Some(&view) {
            continue;
        }
        let state_changed = old.map(|u| u.view.state) != Some(view.state);
        let new_failure = view.state == UserState::RetryAllowed
            && old.map(|u| u.view.attempts_used) != Some(view.attempts_used);
        if is_decision(view.state) && (state_changed || new_failure) {
            let current = mine
                .iter()
                .copied()
                .find(|s| Some(&s.id) == view.current_session.as_ref());
            decisions.extend(decision_for(
                user_ref,
                &view,
                current,
                provided_emails,
                react,
                now_ms / 1000,
            ));
        }
        to_save.push(StoredUser {
            user_ref: user_ref.to_string(),
            state_since_ms: match old {
                Some(u) if !state_changed => u.state_since_ms,
                _ => now_ms,
            },
            review: old.and_then(|u| u.review.clone()),
            view,
            updated_at_ms: now_ms,
        });
    }
    let refs_to_save: Vec<&StoredUser> = to_save.iter().collect();
    store.save_users(tx, &refs_to_save).await?;

    // Redaction is a decision of its own (the app may need to forget data too), and it
    // strips personal fields from every reaction already written about the session.
    for s in newly_redacted {
        decisions.push(Decision {
            key: format!("{}:redacted", s.id),
            decision: "redacted".to_string(),
            user: s.user_ref.clone(),
            session: s.id.clone(),
            state: s
                .user_ref
                .as_deref()
                .and_then(|u| {
                    to_save
                        .iter()
                        .find(|x| x.user_ref == u)
                        .map(|x| x.view.state.as_str().to_string())
                })
                .or_else(|| {
                    s.user_ref
                        .as_deref()
                        .and_then(|u| stored.get(u))
                        .map(|x| x.view.state.as_str().to_string())
                })
                .unwrap_or_else(|| "none".to_string()),
            error_code: None,
            reason: None,
            explanation: None,
            next_step: None,
            attempts_used: 0,
            attempts_left: 0,
            resume: None,
            reviewer: None,
            note: None,
            occurred_at: now_ms / 1000,
            email: None,
        });
    }
    let reactions: Vec<_> = decisions.iter().flat_map(|d| plan(d, react)).collect();
    store.enqueue_reactions(tx, &reactions, now_ms).await?;
    let redacted_ids: Vec<&str> = newly_redacted.iter().map(|s| s.id.as_str()).collect();
    store.redact_reactions(tx, &redacted_ids).await?;
    Ok(decisions)
}

/// The result of an operator's review.
#[derive(Debug)]
pub enum ReviewOutcome {
    Done(StoredUser),
    UnknownUser,
    /// `allow_retry` needs a user waiting in `needs_review`.
    NotReviewable(UserState),
}

/// Record a review and apply it: the user's state is recomputed with the review, stored, and
/// the decision (with reviewer and note) goes to the outbox — one transaction.
pub async fn apply_review(
    store: &Store,
    policy: &Policy,
    react: &ReactConfig,
    user_ref: &str,
    action: ReviewAction,
    reviewer: &str,
    note: Option<&str>,
) -> Result<ReviewOutcome, StoreError> {
    let now_ms = crate::store::now_ms();
    let mut tx = store.begin().await?;
    store.lock_sessions(&mut tx, &[user_ref]).await?;
    let stored = store.load_users(&mut tx, &[user_ref]).await?;
    let Some(old) = stored.get(user_ref) else {
        return Ok(ReviewOutcome::UnknownUser);
    };
    if action == ReviewAction::AllowRetry && old.view.state != UserState::NeedsReview {
        return Ok(ReviewOutcome::NotReviewable(old.view.state));
    }
    let sessions = store.load_sessions_of_users(&mut tx, &[user_ref]).await?;
    let refs: Vec<&SessionRecord> = sessions.iter().collect();
    let review = Review {
        action,
        session_id: old.view.current_session.clone(),
        attempts_at_review: old.view.attempts_used,
    };
    let view = user_view(&refs, Some(&review), policy);
    store
        .insert_review(
            &mut tx,
            &NewReview {
                user_ref,
                action,
                reviewer,
                note,
                session_id: review.session_id.as_deref(),
                at_ms: now_ms,
            },
        )
        .await?;
    let user = StoredUser {
        user_ref: user_ref.to_string(),
        state_since_ms: if view.state == old.view.state {
            old.state_since_ms
        } else {
            now_ms
        },
        review: Some(review),
        view,
        updated_at_ms: now_ms,
    };
    store.save_users(&mut tx, &[&user]).await?;
    let current = refs
        .iter()
        .copied()
        .find(|s| Some(&s.id) == user.view.current_session.as_ref());
    if let Some(mut decision) = decision_for(
        user_ref,
        &user.view,
        current,
        &HashMap::new(),
        react,
        now_ms / 1000,
    ) {
        // A review is its own decision even when the state does not change.
        decision.key = format!("{user_ref}:review:{}:{now_ms}", action.as_str());
        decision.reviewer = Some(reviewer.to_string());
        decision.note = note.map(str::to_string);
        let reactions = plan(&decision, react);
        store.enqueue_reactions(&mut tx, &reactions, now_ms).await?;
    }
    tx.commit().await?;
    Ok(ReviewOutcome::Done(user))
}
