//! The retry ladder every auto-waiting action uses.

use std::time::Duration;

/// Delays between attempts: quick at first (most elements are already there), then calmer.
/// Mirrors the shape Playwright uses for its actionability checks.
const LADDER_MS: [u64; 5] = [0, 20, 100, 100, 500];

/// The delay before attempt `attempt` (0-based), or `None` if the next attempt would start after
/// `timeout` has passed (`elapsed` is the time spent so far).
pub fn next_delay(attempt: usize, elapsed: Duration, timeout: Duration) -> Option<Duration> {
    let ms = LADDER_MS
        .get(attempt)
        .copied()
        .unwrap_or(*LADDER_MS.last().unwrap_or(&500));
    let delay = Duration::from_millis(ms);
    if attempt > 0 && elapsed + delay > timeout {
        // One last attempt exactly at the deadline, so a slow element still gets its chance.
        let left = timeout.saturating_sub(elapsed);
        return (!left.is_zero()).then_some(left);
    }
    Some(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_then_steady_then_stop() {
        let t = Duration::from_secs(2);
        assert_eq!(next_delay(0, Duration::ZERO, t), Some(Duration::ZERO));
        assert_eq!(
            next_delay(1, Duration::ZERO, t),
            Some(Duration::from_millis(20))
        );
        assert_eq!(
            next_delay(4, Duration::from_millis(300), t),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            next_delay(9, Duration::from_millis(900), t),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            next_delay(9, Duration::from_millis(1800), t),
            Some(Duration::from_millis(200))
        );
        assert_eq!(next_delay(9, t, t), None);
    }
}
