//! Circuit breakers: stop calling something that keeps failing, and try it again
//! after a while.
//!
//! A [`CircuitBreaker`] is `closed` (calls go through) until `failure_threshold`
//! calls fail in a row; then it is `open` (callers are refused at once, with how
//! long to wait) for `open_ms`; then `half_open`: calls go through again, and
//! `success_threshold` successes in a row close it, while one failure opens it
//! again. Time comes from the engine's [`Clock`](crate::clock::Clock), so tests move
//! it by hand.
//!
//! Each engine has two ([`Breakers`]):
//! - `database`: the calls the HTTP API, task creation, the ready-queue sampler and
//!   `/ready` make to the store. Open: the API answers 503 with `Retry-After`, task
//!   creation is refused as overloaded, `/ready` is not ready.
//! - `ffi_completion`: the worker's result writes (Rust and host-language handlers
//!   alike go through FFICompletion). Open: the worker stops claiming new steps (a
//!   bridge's poll returns no events), since their results could not be written;
//!   the writes themselves keep retrying and close it again.
//!
//! Their states are shown by `/ready` and the `tasker_breaker_state` metric.

use crate::clock::{EpochMillis, SharedClock};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// Settings of one breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Failures in a row that open a closed breaker.
    pub failure_threshold: u32,
    /// How long an open breaker refuses calls before it lets trial calls through, in ms.
    pub open_ms: u64,
    /// Successes in a row that close a half-open breaker.
    pub success_threshold: u32,
    /// A call that takes longer than this counts as failed, in ms (0: no limit).
    pub call_timeout_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_ms: 30_000,
            success_threshold: 2,
            call_timeout_ms: 5_000,
        }
    }
}

/// Where a breaker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the open period ends.
    Open,
    /// Trial calls go through; successes close it, a failure opens it again.
    HalfOpen,
}

impl BreakerState {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// The value of the `tasker_breaker_state` gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge_value(self) -> i64 {
        match self {
            Self::Closed => 0,
            Self::HalfOpen => 1,
            Self::Open => 2,
        }
    }
}

/// A call was refused because the breaker is open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker `{breaker}` is open; retry in {retry_after_ms} ms")]
pub struct BreakerOpen {
    /// Which breaker.
    pub breaker: &'static str,
    /// How long until it lets trial calls through.
    pub retry_after_ms: u64,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    failures: u32,
    successes: u32,
    opened_at: EpochMillis,
    transitions: u64,
}

/// Called on each change of a breaker's state.
type OnChange = Box<dyn Fn(&'static str, BreakerState) + Send + Sync>;

/// One circuit breaker.
pub struct CircuitBreaker {
    name: &'static str,
    config: BreakerConfig,
    clock: SharedClock,
    inner: Mutex<Inner>,
    on_change: Option<OnChange>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("inner", &self.inner)
            .finish()
    }
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(name: &'static str, config: BreakerConfig, clock: SharedClock) -> Self {
        Self {
            name,
            config,
            clock,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                failures: 0,
                successes: 0,
                opened_at: 0,
                transitions: 0,
            }),
            on_change: None,
        }
    }

    /// Calls `f(name, new_state)` on every change of state (the metrics).
    pub fn on_change(mut self, f: impl Fn(&'static str, BreakerState) + Send + Sync + 'static) -> Self {
        self.on_change = Some(Box::new(f));
        self
    }

    /// The breaker's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its settings.
    pub fn config(&self) -> BreakerConfig {
        self.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, inner: &mut Inner, to: BreakerState) {
        if inner.state == to {
            return;
        }
        tracing::warn!(
            breaker = self.name,
            from = inner.state.as_str(),
            to = to.as_str(),
            "circuit breaker changed state"
        );
        inner.state = to;
        inner.transitions += 1;
        inner.failures = 0;
        inner.successes = 0;
        if to == BreakerState::Open {
            inner.opened_at = self.clock.now_ms();
        }
        if let Some(f) = &self.on_change {
            f(self.name, to);
        }
    }

    /// The state now (an open breaker whose period has ended reads as half-open).
    pub fn state(&self) -> BreakerState {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        inner.state
    }

    /// How many times the state changed.
    pub fn transitions(&self) -> u64 {
        self.lock().transitions
    }

    fn refresh(&self, inner: &mut Inner) {
        if inner.state == BreakerState::Open
            && self.clock.now_ms().saturating_sub(inner.opened_at) >= self.config.open_ms as i64
        {
            self.set(inner, BreakerState::HalfOpen);
        }
    }

    /// May a call go through now? Refused while open, with the time left.
    pub fn check(&self) -> Result<(), BreakerOpen> {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        match inner.state {
            BreakerState::Open => {
                let left = self.config.open_ms as i64 - (self.clock.now_ms() - inner.opened_at);
                Err(BreakerOpen {
                    breaker: self.name,
                    retry_after_ms: left.max(1) as u64,
                })
            }
            _ => Ok(()),
        }
    }

    /// True unless the breaker is open.
    pub fn allows(&self) -> bool {
        self.check().is_ok()
    }

    /// Records a call that succeeded.
    pub fn record_success(&self) {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        match inner.state {
            BreakerState::Closed => inner.failures = 0,
            BreakerState::HalfOpen => {
                inner.successes += 1;
                if inner.successes >= self.config.success_threshold.max(1) {
                    self.set(&mut inner, BreakerState::Closed);
                }
            }
            BreakerState::Open => {}
        }
    }

    /// Records a call that failed.
    pub fn record_failure(&self) {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        match inner.state {
            BreakerState::Closed => {
                inner.failures += 1;
                if inner.failures >= self.config.failure_threshold.max(1) {
                    self.set(&mut inner, BreakerState::Open);
                }
            }
            BreakerState::HalfOpen => self.set(&mut inner, BreakerState::Open),
            BreakerState::Open => {}
        }
    }

    /// Runs `call` through the breaker: refused at once while open; otherwise its
    /// outcome is recorded (`is_failure` decides which errors count) and a call that
    /// outlives `call_timeout_ms` fails as [`GuardedError::TimedOut`].
    pub async fn call<T, E, F>(&self, is_failure: impl Fn(&E) -> bool, call: F) -> Result<T, GuardedError<E>>
    where
        F: std::future::Future<Output = Result<T, E>>,
    {
        self.check().map_err(GuardedError::Open)?;
        let result = if self.config.call_timeout_ms == 0 {
            Ok(call.await)
        } else {
            tokio::time::timeout(std::time::Duration::from_millis(self.config.call_timeout_ms), call).await
        };
        match result {
            Ok(Ok(v)) => {
                self.record_success();
                Ok(v)
            }
            Ok(Err(e)) => {
                if is_failure(&e) {
                    self.record_failure();
                } else {
                    self.record_success();
                }
                Err(GuardedError::Failed(e))
            }
            Err(_) => {
                self.record_failure();
                Err(GuardedError::TimedOut {
                    breaker: self.name,
                    after_ms: self.config.call_timeout_ms,
                })
            }
        }
    }
}

/// Why a call through a breaker did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum GuardedError<E> {
    /// The breaker is open; the call was not made.
    #[error(transparent)]
    Open(BreakerOpen),
    /// The call took longer than the breaker's call timeout.
    #[error("call through breaker `{breaker}` timed out after {after_ms} ms")]
    TimedOut {
        /// Which breaker.
        breaker: &'static str,
        /// The limit.
        after_ms: u64,
    },
    /// The call failed.
    #[error(transparent)]
    Failed(E),
}

/// The breakers of one engine.
#[derive(Debug)]
pub struct Breakers {
    /// Around the store calls of the API, task creation, the sampler and `/ready`.
    pub database: CircuitBreaker,
    /// Around the worker's result writes.
    pub ffi_completion: CircuitBreaker,
}

/// Settings of an engine's breakers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakersConfig {
    /// The `database` breaker.
    pub database: BreakerConfig,
    /// The `ffi_completion` breaker.
    pub ffi_completion: BreakerConfig,
}

impl Default for BreakersConfig {
    fn default() -> Self {
        Self {
            database: BreakerConfig::default(),
            ffi_completion: BreakerConfig {
                failure_threshold: 3,
                open_ms: 5_000,
                success_threshold: 1,
                call_timeout_ms: 0,
            },
        }
    }
}

impl Breakers {
    /// Closed breakers; `on_change` sees every change of state.
    pub fn new(
        config: BreakersConfig,
        clock: SharedClock,
        on_change: impl Fn(&'static str, BreakerState) + Clone + Send + Sync + 'static,
    ) -> Self {
        Self {
            database: CircuitBreaker::new("database", config.database, clock.clone()).on_change(on_change.clone()),
            ffi_completion: CircuitBreaker::new("ffi_completion", config.ffi_completion, clock).on_change(on_change),
        }
    }

    /// Every breaker, for `/ready` and metrics.
    pub fn all(&self) -> [&CircuitBreaker; 2] {
        [&self.database, &self.ffi_completion]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use std::sync::Arc;

    fn breaker(clock: &Arc<ManualClock>) -> CircuitBreaker {
        let config = BreakerConfig {
            failure_threshold: 3,
            open_ms: 1_000,
            success_threshold: 2,
            call_timeout_ms: 0,
        };
        CircuitBreaker::new("test", config, clock.clone())
    }

    #[test]
    fn failures_in_a_row_open_the_breaker_and_a_success_resets_the_count() {
        let clock = ManualClock::new(0);
        let b = breaker(&clock);
        b.record_failure();
        b.record_failure();
        b.record_success();
        b.record_failure();
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Closed);
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open);
        let refused = b.check().unwrap_err();
        assert_eq!((refused.breaker, refused.retry_after_ms), ("test", 1_000));
    }

    #[test]
    fn an_open_breaker_lets_trial_calls_through_after_its_period_and_successes_close_it() {
        let clock = ManualClock::new(0);
        let b = breaker(&clock);
        (0..3).for_each(|_| b.record_failure());
        clock.advance(400);
        assert_eq!(b.check().unwrap_err().retry_after_ms, 600);
        clock.advance(600);
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.allows());
        b.record_success();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.record_success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_failure_while_half_open_opens_the_breaker_again() {
        let clock = ManualClock::new(0);
        let b = breaker(&clock);
        (0..3).for_each(|_| b.record_failure());
        clock.advance(1_000);
        b.record_success();
        b.record_failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.check().unwrap_err().retry_after_ms, 1_000);
        assert_eq!(b.transitions(), 3);
    }

    #[test]
    fn state_changes_are_reported_to_the_observer() {
        let clock = ManualClock::new(0);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let b = breaker(&clock).on_change(move |name, s| log.lock().unwrap().push((name, s)));
        (0..3).for_each(|_| b.record_failure());
        clock.advance(1_000);
        (0..2).for_each(|_| b.record_success());
        use BreakerState::*;
        assert_eq!(
            *seen.lock().unwrap(),
            vec![("test", Open), ("test", HalfOpen), ("test", Closed)]
        );
    }

    #[tokio::test]
    async fn a_call_through_an_open_breaker_is_not_made() {
        let clock = ManualClock::new(0);
        let b = breaker(&clock);
        for _ in 0..3 {
            let r = b.call(|_: &&str| true, async { Err::<(), _>("down") }).await;
            assert!(matches!(r, Err(GuardedError::Failed("down"))));
        }
        let made = std::sync::atomic::AtomicBool::new(false);
        let r = b
            .call(|_: &&str| true, async {
                made.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, &str>(())
            })
            .await;
        assert!(matches!(r, Err(GuardedError::Open(_))));
        assert!(!made.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn errors_that_are_not_failures_do_not_open_the_breaker() {
        let clock = ManualClock::new(0);
        let b = breaker(&clock);
        for _ in 0..5 {
            let _ = b.call(|_: &&str| false, async { Err::<(), _>("not found") }).await;
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
