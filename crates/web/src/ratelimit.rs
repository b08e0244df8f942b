//! Login throttling. Failed attempts are counted per account name and per client address in a
//! sliding window; once the limit is reached, further attempts are refused until the oldest
//! failure leaves the window. Kept in memory: a restart forgets it, which is acceptable for a
//! throttle (accounts are never locked permanently, so an attacker cannot lock a doctor out).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use caremesh_domain::Timestamp;

/// Keys kept before old entries are swept, so a flood of random usernames cannot grow memory
/// without bound.
const MAX_KEYS: usize = 100_000;
/// A client address may fail this many times more often than one account.
const PER_ADDRESS_FACTOR: u32 = 10;

pub struct LoginLimiter {
    max_failures: u32,
    window_ms: i64,
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl LoginLimiter {
    pub fn new(max_failures: u32, window_secs: i64) -> Self {
        Self {
            max_failures: max_failures.max(1),
            window_ms: window_secs.max(1) * 1000,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(username: &str, ip: Option<IpAddr>) -> [(String, u32); 2] {
        [
            (format!("u:{}", username.to_lowercase()), 1),
            (
                format!(
                    "ip:{}",
                    ip.map_or_else(|| "-".to_owned(), |i| i.to_string())
                ),
                PER_ADDRESS_FACTOR,
            ),
        ]
    }

    /// `Some(seconds)` to wait when this attempt must be refused without checking the password.
    pub fn check(&self, username: &str, ip: Option<IpAddr>, now: Timestamp) -> Option<u64> {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = now.as_millis();
        let mut wait: Option<i64> = None;
        for (key, factor) in Self::keys(username, ip) {
            let Some(q) = map.get_mut(&key) else { continue };
            while q.front().is_some_and(|&t| t <= now - self.window_ms) {
                q.pop_front();
            }
            let limit = (self.max_failures * factor) as usize;
            if q.len() >= limit
                && let Some(&oldest) = q.front()
            {
                let w = oldest + self.window_ms - now;
                wait = Some(wait.map_or(w, |x| x.max(w)));
            }
        }
        wait.map(|ms| u64::try_from((ms + 999) / 1000).unwrap_or(1).max(1))
    }

    pub fn record_failure(&self, username: &str, ip: Option<IpAddr>, now: Timestamp) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = now.as_millis();
        if map.len() >= MAX_KEYS {
            let horizon = now - self.window_ms;
            map.retain(|_, q| q.back().is_some_and(|&t| t > horizon));
        }
        for (key, _) in Self::keys(username, ip) {
            map.entry(key).or_default().push_back(now);
        }
    }

    /// A successful login clears the account's failures (not the address's).
    pub fn record_success(&self, username: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("u:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_limit_until_window_passes() {
        let l = LoginLimiter::new(3, 60);
        let t = Timestamp::from_millis(1_000_000);
        for i in 0..3 {
            assert_eq!(l.check("wang", None, t.plus_secs(i)), None);
            l.record_failure("wang", None, t.plus_secs(i));
        }
        assert_eq!(l.check("Wang", None, t.plus_secs(10)), Some(50));
        assert_eq!(l.check("li", None, t.plus_secs(10)), None);
        assert_eq!(l.check("wang", None, t.plus_secs(61)), None);
    }

    #[test]
    fn success_clears_account_but_not_address() {
        let l = LoginLimiter::new(1, 60);
        let ip: IpAddr = [10, 0, 0, 1].into();
        let t = Timestamp::from_millis(0);
        l.record_failure("wang", Some(ip), t);
        assert!(l.check("wang", Some(ip), t).is_some());
        l.record_success("wang");
        assert_eq!(l.check("wang", Some(ip), t), None);
        for _ in 0..PER_ADDRESS_FACTOR {
            l.record_failure("other", Some(ip), t);
        }
        assert!(l.check("third", Some(ip), t).is_some());
    }
}
