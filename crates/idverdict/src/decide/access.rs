//! Who may do what in the operator console, and when a login may be tried: the console's rules,
//! pure like the others. The console's handlers ask [`Role::may`] before acting and
//! [`LoginThrottle::gate`] before checking a password.

use serde::Serialize;

/// An operator's role. Each includes the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads every page except the audit log and operators.
    Viewer,
    /// Also claims, releases, decides and writes notes.
    Reviewer,
    /// Also redelivers reactions, manages operators and reads the audit log.
    Admin,
}

/// Something an operator does in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Review,
    Administer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Reviewer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The least role that holds `permission`.
    fn needed(permission: Permission) -> Role {
        match permission {
            Permission::Read => Role::Viewer,
            Permission::Review => Role::Reviewer,
            Permission::Administer => Role::Admin,
        }
    }

    pub fn may(self, permission: Permission) -> bool {
        self >= Role::needed(permission)
    }
}

/// What is stored about failed logins for one key (an account or a client address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginThrottle {
    pub failures: u32,
    pub first_failure_at_ms: i64,
    /// A try before this is refused without looking at the password (the slow-down).
    pub next_allowed_at_ms: i64,
    pub locked_until_ms: Option<i64>,
}

/// The throttle's settings (from `[console]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Failures after which each further try must wait (2 s, doubling, at most 60 s).
    pub slow_after: u32,
    /// Failures after which the key is locked for `lock_ms`.
    pub lock_after: u32,
    /// How long a lock lasts; failures older than this are forgotten.
    pub lock_ms: i64,
}

/// Whether a login may be tried now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Too soon after the last failure: try again at this time.
    Wait {
        until_ms: i64,
    },
    /// Locked after too many failures, until this time.
    Locked {
        until_ms: i64,
    },
}

/// The longest wait between tries while slowed down.
const MAX_WAIT_MS: i64 = 60_000;

impl ThrottleRule {
    /// The stored state as it stands at `now_ms`: failures older than the lock window are
    /// forgotten, an expired lock is lifted.
    fn current(&self, stored: LoginThrottle, now_ms: i64) -> LoginThrottle {
        let locked = stored.locked_until_ms.is_some_and(|t| t > now_ms);
        if !locked && now_ms - stored.first_failure_at_ms >= self.lock_ms {
            return LoginThrottle::default();
        }
        if !locked && stored.locked_until_ms.is_some() {
            return LoginThrottle::default();
        }
        stored
    }

    pub fn gate(&self, stored: LoginThrottle, now_ms: i64) -> Gate {
        let s = self.current(stored, now_ms);
        match s.locked_until_ms {
            Some(until_ms) if until_ms > now_ms => Gate::Locked { until_ms },
            _ if s.next_allowed_at_ms > now_ms => Gate::Wait {
                until_ms: s.next_allowed_at_ms,
            },
            _ => Gate::Open,
        }
    }

    /// The state after one more failure at `now_ms`.
    pub fn failed(&self, stored: LoginThrottle, now_ms: i64) -> LoginThrottle {
        let s = self.current(stored, now_ms);
        let failures = s.failures.saturating_add(1);
        let first_failure_at_ms = if s.failures == 0 {
            now_ms
        } else {
            s.first_failure_at_ms
        };
        if failures >= self.lock_after {
            return LoginThrottle {
                failures,
                first_failure_at_ms,
                next_allowed_at_ms: now_ms + self.lock_ms,
                locked_until_ms: Some(now_ms + self.lock_ms),
            };
        }
        let wait_ms = match failures.checked_sub(self.slow_after) {
            None => 0,
            Some(over) => 2_000i64
                .saturating_mul(1i64 << over.min(20))
                .min(MAX_WAIT_MS),
        };
        LoginThrottle {
            failures,
            first_failure_at_ms,
            next_allowed_at_ms: now_ms + wait_ms,
            locked_until_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_includes_the_one_before() {
        use Permission::*;
        assert!(Role::Viewer.may(Read) && !Role::Viewer.may(Review));
        assert!(Role::Reviewer.may(Review) && !Role::Reviewer.may(Administer));
        assert!(Role::Admin.may(Read) && Role::Admin.may(Review) && Role::Admin.may(Administer));
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    const RULE: ThrottleRule = ThrottleRule {
        slow_after: 2,
        lock_after: 5,
        lock_ms: 900_000,
    };

    #[test]
    fn failures_slow_down_then_lock_then_are_forgotten() {
        let mut s = LoginThrottle::default();
        let mut now = 1_000_000;
        // The first failure: no wait yet.
        assert_eq!(RULE.gate(s, now), Gate::Open);
        s = RULE.failed(s, now);
        assert_eq!(RULE.gate(s, now), Gate::Open);
        // The second reaches `slow_after`: the next try waits 2 s, then 4 s, then 8 s.
        for wait in [2_000, 4_000, 8_000] {
            s = RULE.failed(s, now);
            assert_eq!(
                RULE.gate(s, now),
                Gate::Wait {
                    until_ms: now + wait
                }
            );
            assert_eq!(
                RULE.gate(s, now + wait - 1),
                Gate::Wait {
                    until_ms: now + wait
                }
            );
            now += wait;
            assert_eq!(RULE.gate(s, now), Gate::Open);
        }
        // The fifth failure locks for the lock time.
        s = RULE.failed(s, now);
        assert_eq!(
            RULE.gate(s, now),
            Gate::Locked {
                until_ms: now + 900_000
            }
        );
        assert_eq!(
            RULE.gate(s, now + 899_999),
            Gate::Locked {
                until_ms: now + 900_000
            }
        );
        // After the lock everything starts over.
        now += 900_000;
        assert_eq!(RULE.gate(s, now), Gate::Open);
        let after = RULE.failed(s, now);
        assert_eq!(after.failures, 1);
        assert_eq!(RULE.gate(after, now), Gate::Open);
    }

    #[test]
    fn old_failures_are_forgotten() {
        let s = RULE.failed(RULE.failed(LoginThrottle::default(), 0), 1);
        assert_eq!(s.failures, 2);
        let later = RULE.failed(s, 900_000);
        assert_eq!(later.failures, 1, "the window had passed");
    }

    #[test]
    fn the_wait_is_capped() {
        let rule = ThrottleRule {
            slow_after: 0,
            lock_after: 1000,
            lock_ms: i64::MAX / 4,
        };
        let mut s = LoginThrottle::default();
        for i in 0..40 {
            s = rule.failed(s, i);
        }
        assert_eq!(
            rule.gate(s, 39),
            Gate::Wait {
                until_ms: 39 + MAX_WAIT_MS
            }
        );
    }
}
