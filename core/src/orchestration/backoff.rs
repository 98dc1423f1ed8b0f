//! Retry delays: a handler's retry-after hint when it gives one, otherwise the
//! step's backoff policy with random jitter.

use crate::template::{BackoffKind, RetryPolicy};
use rand::Rng;

/// The longest retry-after hint honoured (one hour); longer hints are capped.
pub const MAX_RETRY_AFTER_MS: u64 = 3_600_000;

/// Milliseconds to wait before the attempt after `attempt` (1-based).
///
/// A `retry_after_ms` hint wins (capped at [`MAX_RETRY_AFTER_MS`], not at the
/// policy's `max_ms`: the server asked for it). Otherwise: `none` → 0; `linear` →
/// base·attempt; `exponential` → base·multiplier^(attempt−1); capped at `max_ms`,
/// then spread by ±`jitter`·delay and capped again.
pub fn delay_ms(policy: &RetryPolicy, attempt: u32, retry_after_ms: Option<u64>, rng: &mut impl Rng) -> u64 {
    if let Some(hint) = retry_after_ms {
        return hint.min(MAX_RETRY_AFTER_MS);
    }
    let attempt = attempt.max(1);
    let base = policy.base_ms as f64;
    let raw = match policy.backoff {
        BackoffKind::None => return 0,
        BackoffKind::Linear => base * attempt as f64,
        BackoffKind::Exponential => base * policy.multiplier.powi(attempt as i32 - 1),
    };
    let capped = raw.min(policy.max_ms as f64);
    let spread = if policy.jitter > 0.0 {
        rng.random_range(-policy.jitter..=policy.jitter)
    } else {
        0.0
    };
    (capped * (1.0 + spread)).clamp(0.0, policy.max_ms as f64).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn policy(kind: BackoffKind, jitter: f64) -> RetryPolicy {
        RetryPolicy {
            backoff: kind,
            base_ms: 100,
            max_ms: 1000,
            multiplier: 2.0,
            jitter,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn exponential_doubles_per_attempt_and_stops_at_max() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = policy(BackoffKind::Exponential, 0.0);
        let delays: Vec<u64> = (1..=6).map(|a| delay_ms(&p, a, None, &mut rng)).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn linear_and_none() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(delay_ms(&policy(BackoffKind::Linear, 0.0), 3, None, &mut rng), 300);
        assert_eq!(delay_ms(&policy(BackoffKind::None, 0.5), 3, None, &mut rng), 0);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let mut rng = StdRng::seed_from_u64(7);
        let p = policy(BackoffKind::Exponential, 0.1);
        let seen: Vec<u64> = (0..200).map(|_| delay_ms(&p, 2, None, &mut rng)).collect();
        assert!(seen.iter().all(|d| (180..=220).contains(d)), "{seen:?}");
        assert!(seen.iter().any(|d| *d != 200), "jitter must vary the delay");
    }

    #[test]
    fn a_retry_after_hint_wins_even_above_max() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            delay_ms(&policy(BackoffKind::Exponential, 0.1), 1, Some(5000), &mut rng),
            5000
        );
        assert_eq!(
            delay_ms(&policy(BackoffKind::Exponential, 0.1), 1, Some(u64::MAX), &mut rng),
            MAX_RETRY_AFTER_MS
        );
    }
}
