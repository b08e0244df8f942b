//! Bounds on expensive work that takes a lot of memory: password hashes (Argon2id, 19 MiB each)
//! and image decodes (up to the decoded size of the largest image accepted). A [`Gate`] lets a
//! fixed number of them run at once on the blocking pool; a few more callers may wait for a
//! short time, and beyond that they are refused with [`AppError::Busy`] (503 with
//! `Retry-After`), so that a burst of requests costs a bounded amount of memory instead of
//! queueing without end or running all at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::{AppError, AppResult};

pub struct Gate {
    what: &'static str,
    permits: Arc<Semaphore>,
    max_waiters: usize,
    max_wait: Duration,
    waiting: AtomicUsize,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    running: AtomicUsize,
    /// The most that ever ran at once (what tests look at).
    high_water: AtomicUsize,
}

/// Seconds a refused caller is told to wait before trying again.
const RETRY_AFTER_SECS: u64 = 2;

impl Gate {
    /// `what` names the work in errors and logs ("password hashing", "image decoding").
    pub fn new(what: &'static str, permits: usize, max_waiters: usize, max_wait: Duration) -> Self {
        Self {
            what,
            permits: Arc::new(Semaphore::new(permits.max(1))),
            max_waiters,
            max_wait,
            waiting: AtomicUsize::new(0),
            counts: Arc::default(),
        }
    }

    /// Runs `work` on the blocking pool once a permit is free; `Busy` when `max_waiters` callers
    /// are already waiting or no permit came within `max_wait`. The permit is held until `work`
    /// has finished, even if the caller stops waiting for it.
    pub async fn run<T, F>(&self, work: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> AppResult<T> + Send + 'static,
    {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                let before = self.waiting.fetch_add(1, Ordering::SeqCst);
                let acquired = if before >= self.max_waiters {
                    None
                } else {
                    tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
                        .await
                        .ok()
                        .and_then(Result::ok)
                };
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                match acquired {
                    Some(p) => p,
                    None => {
                        tracing::warn!(what = self.what, "busy: request refused");
                        return Err(AppError::Busy {
                            what: self.what,
                            retry_after_secs: RETRY_AFTER_SECS,
                        });
                    }
                }
            }
        };
        let counts = self.counts.clone();
        tokio::task::spawn_blocking(move || {
            let now = counts.running.fetch_add(1, Ordering::SeqCst) + 1;
            counts.high_water.fetch_max(now, Ordering::SeqCst);
            let out = work();
            counts.running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            out
        })
        .await
        .map_err(AppError::internal)?
    }

    /// The most that ran at once since the node started.
    pub fn high_water(&self) -> usize {
        self.counts.high_water.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn at_most_the_permits_run_and_the_rest_wait_briefly_or_are_refused() {
        let gate = Arc::new(Gate::new("test work", 2, 3, Duration::from_secs(5)));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                gate.run(|| {
                    std::thread::sleep(Duration::from_millis(100));
                    Ok(())
                })
                .await
            }));
        }
        let mut ok = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(AppError::Busy { .. }) => busy += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(gate.high_water(), 2);
        // Two run at once, three wait (and get their turn), three are refused.
        assert_eq!((ok, busy), (5, 3));

        let slow = Gate::new("slow work", 1, 10, Duration::from_millis(50));
        let slow = Arc::new(slow);
        let holder = {
            let slow = slow.clone();
            tokio::spawn(async move {
                slow.run(|| {
                    std::thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let e = slow.run(|| Ok(())).await.unwrap_err();
        assert!(
            matches!(e, AppError::Busy { .. }),
            "a waiter gives up: {e:?}"
        );
        holder.await.unwrap().unwrap();
    }
}
