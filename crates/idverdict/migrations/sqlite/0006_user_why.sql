-- Why a user is in their state (decide/why.rs, as JSON: the rule, its facts, the deciding
-- session), and who made the latest review and when (the why of a reviewed state names them).
ALTER TABLE users ADD COLUMN why TEXT;
ALTER TABLE users ADD COLUMN review_by TEXT;
ALTER TABLE users ADD COLUMN review_at INTEGER;
UPDATE users SET
    review_by = (SELECT r.reviewer FROM user_reviews r WHERE r.user_ref = users.user_ref
                 ORDER BY r.reviewed_at DESC LIMIT 1),
    review_at = (SELECT r.reviewed_at FROM user_reviews r WHERE r.user_ref = users.user_ref
                 ORDER BY r.reviewed_at DESC LIMIT 1)
WHERE review_action IS NOT NULL;
