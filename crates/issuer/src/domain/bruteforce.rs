//! Brute-force protection with Keycloak's rules: every `failureFactor` consecutive failures
//! (within `maxDeltaTimeSeconds`) lock for `waitIncrementSeconds` × the number of such rounds,
//! at most `maxFailureWaitSeconds`. Counted per user and per source IP.

use portcullis_store::{Failures, RealmSettings, Store};

/// The counters a login attempt touches.
pub fn keys(user_id: Option<&str>, ip: Option<&str>) -> Vec<String> {
    let mut k = Vec::with_capacity(2);
    if let Some(u) = user_id {
        k.push(format!("user:{u}"));
    }
    if let Some(ip) = ip {
        k.push(format!("ip:{ip}"));
    }
    k
}

/// The stored counters of `keys` (a key without one never failed), in one query; none when
/// the realm is not brute-force protected.
pub async fn load(
    store: &dyn Store,
    realm: &str,
    s: &RealmSettings,
    keys: &[String],
) -> anyhow::Result<Vec<(String, Failures)>> {
    if !s.brute_force_protected {
        return Ok(Vec::new());
    }
    store.failures_of(realm, keys).await
}

/// Whether any of the loaded counters is locked at `now`.
pub fn locked(counters: &[(String, Failures)], now: i64) -> bool {
    counters.iter().any(|(_, f)| f.locked_until > now)
}

/// Counts a failure on every key, from the counters loaded before the attempt.
pub async fn failure(
    store: &dyn Store,
    realm: &str,
    s: &RealmSettings,
    keys: &[String],
    counters: &[(String, Failures)],
    now: i64,
) -> anyhow::Result<()> {
    if !s.brute_force_protected {
        return Ok(());
    }
    for k in keys {
        let prev = counters
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, f)| *f)
            .unwrap_or_default();
        store
            .put_failures(realm, k, &next_failure(prev, s, now))
            .await?;
    }
    Ok(())
}

/// A successful login resets the user's counter (the IP's stays); nothing to do without one.
pub async fn success(
    store: &dyn Store,
    realm: &str,
    user_key: &str,
    counters: &[(String, Failures)],
) -> anyhow::Result<()> {
    if counters.iter().any(|(k, _)| k == user_key) {
        store.clear_failures(realm, user_key).await?;
    }
    Ok(())
}

fn next_failure(prev: Failures, s: &RealmSettings, now: i64) -> Failures {
    // Failures further apart than maxDeltaTime start a new count.
    let count = if prev.count > 0 && now - prev.last_failure <= s.max_delta_time_seconds {
        prev.count + 1
    } else {
        1
    };
    let factor = s.failure_factor.max(1);
    let locked_until = if count % factor == 0 {
        let wait = (s.wait_increment_seconds * (count / factor)).min(s.max_failure_wait_seconds);
        now + wait
    } else {
        prev.locked_until
    };
    Failures {
        count,
        last_failure: now,
        locked_until,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_grows_by_increment_and_is_capped() {
        let s = RealmSettings {
            brute_force_protected: true,
            failure_factor: 3,
            wait_increment_seconds: 60,
            max_failure_wait_seconds: 100,
            ..RealmSettings::default()
        };
        let mut f = Failures::default();
        for t in 0..2 {
            f = next_failure(f, &s, t);
        }
        assert_eq!(f.locked_until, 0);
        f = next_failure(f, &s, 2);
        assert_eq!((f.count, f.locked_until), (3, 62));
        for t in 3..6 {
            f = next_failure(f, &s, t);
        }
        assert_eq!(f.locked_until, 105, "capped at maxFailureWaitSeconds");
        let fresh = next_failure(f, &s, 5 + s.max_delta_time_seconds + 1);
        assert_eq!(fresh.count, 1);
    }
}
