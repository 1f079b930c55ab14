//! Per-identity write quotas: a log kept forever must not be an open drop box, not even
//! for identities its domain vouches for.
//!
//! Each identity (the SAN of its signing certificate, or the SPIFFE ID asking the CA for
//! a certificate) has a token bucket: it may act `burst` times at once and `rate` times
//! per `interval` sustained. Time is an argument; the caller owns the clock.
//!
//! The table of buckets is bounded. A bucket that has refilled to `burst` is the same as
//! no bucket, so when the table is full such buckets are dropped first; if every tracked
//! identity is still spending, a new identity is refused rather than the table growing.

use std::collections::HashMap;
use std::time::Duration;

use crate::machine::Timestamp;

/// Token units per entry: buckets count in thousandths so that slow rates refill
/// smoothly with integer arithmetic.
const MILLI: u64 = 1000;

/// Quota settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaConfig {
    /// Sustained actions per `interval` per identity; 0 turns quotas off.
    pub rate: u32,
    /// The interval `rate` counts over (a zero interval turns quotas off too).
    pub interval: Duration,
    /// Actions an idle identity may take at once.
    pub burst: u32,
    /// Identities tracked at once.
    pub max_identities: usize,
}

impl QuotaConfig {
    /// `rate` actions per second, `burst` at once, the default identity bound.
    pub fn per_second(rate: u32, burst: u32) -> QuotaConfig {
        QuotaConfig {
            rate,
            interval: Duration::from_secs(1),
            burst,
            ..QuotaConfig::default()
        }
    }

    /// `rate` actions per minute, `burst` at once, the default identity bound.
    pub fn per_minute(rate: u32, burst: u32) -> QuotaConfig {
        QuotaConfig {
            interval: Duration::from_secs(60),
            ..QuotaConfig::per_second(rate, burst)
        }
    }

    fn is_off(&self) -> bool {
        self.rate == 0 || self.interval.is_zero()
    }

    /// Milli-tokens gained in `elapsed_ms`: `rate` tokens per interval.
    fn gained(&self, elapsed_ms: u64) -> u64 {
        let interval_ms = self.interval.as_millis().max(1);
        let gained =
            u128::from(elapsed_ms) * u128::from(self.rate) * u128::from(MILLI) / interval_ms;
        u64::try_from(gained).unwrap_or(u64::MAX)
    }

    /// The whole milliseconds it takes to gain `gained` milli-tokens (rounded down).
    fn credited_ms(&self, gained: u64) -> u64 {
        let per_interval = u128::from(self.rate) * u128::from(MILLI);
        let ms = u128::from(gained) * self.interval.as_millis() / per_interval.max(1);
        u64::try_from(ms).unwrap_or(u64::MAX)
    }

    /// Milliseconds until `missing` milli-tokens have been gained (rounded up).
    fn wait_ms(&self, missing: u64) -> u64 {
        let per_interval = u128::from(self.rate) * u128::from(MILLI);
        let wait = (u128::from(missing) * self.interval.as_millis()).div_ceil(per_interval.max(1));
        u64::try_from(wait).unwrap_or(u64::MAX)
    }
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            rate: 50,
            interval: Duration::from_secs(1),
            burst: 500,
            max_identities: 100_000,
        }
    }
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// The identity spent its quota.
    #[error("write quota of {identity} exhausted; retry in {retry_after_ms} ms")]
    Exhausted {
        /// Whose quota.
        identity: String,
        /// When one more entry will be allowed.
        retry_after_ms: u64,
    },
    /// Too many identities are writing at once to track another.
    #[error("too many identities are writing at once; retry later")]
    TooManyIdentities,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli_tokens: u64,
    updated: Timestamp,
}

/// The token buckets of every identity that wrote recently.
#[derive(Debug, Clone)]
pub struct IdentityQuota {
    config: QuotaConfig,
    buckets: HashMap<String, Bucket>,
}

impl IdentityQuota {
    /// Quotas with these settings.
    pub fn new(config: QuotaConfig) -> Self {
        IdentityQuota {
            config,
            buckets: HashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &QuotaConfig {
        &self.config
    }

    /// Identities currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    fn capacity(&self) -> u64 {
        u64::from(self.config.burst.max(1)) * MILLI
    }

    fn refill(&self, bucket: &mut Bucket, now: Timestamp) {
        let elapsed_ms = now
            .saturating_duration_since(bucket.updated)
            .as_millis()
            .min(u128::from(u64::MAX)) as u64;
        let gained = self.config.gained(elapsed_ms);
        let tokens = bucket.milli_tokens.saturating_add(gained);
        if tokens >= self.capacity() {
            bucket.milli_tokens = self.capacity();
            if now > bucket.updated {
                bucket.updated = now;
            }
        } else {
            // Credit only the time that bought whole milli-tokens: at slow rates the
            // remainder would otherwise be lost on every call, and frequent callers would
            // refill slower than the configured rate.
            bucket.milli_tokens = tokens;
            bucket.updated = bucket
                .updated
                .saturating_add(Duration::from_millis(self.config.credited_ms(gained)));
        }
    }

    /// Charges one entry to `identity` at `now`, or says why not. Nothing is charged on
    /// refusal.
    pub fn charge(&mut self, identity: &str, now: Timestamp) -> Result<(), QuotaError> {
        if self.config.is_off() {
            return Ok(());
        }
        if !self.buckets.contains_key(identity) && self.buckets.len() >= self.config.max_identities
        {
            self.drop_full_buckets(now);
            if self.buckets.len() >= self.config.max_identities {
                return Err(QuotaError::TooManyIdentities);
            }
        }
        let capacity = self.capacity();
        let mut bucket = self.buckets.get(identity).copied().unwrap_or(Bucket {
            milli_tokens: capacity,
            updated: now,
        });
        self.refill(&mut bucket, now);
        if bucket.milli_tokens < MILLI {
            let missing = MILLI - bucket.milli_tokens;
            let retry_after_ms = self.config.wait_ms(missing);
            self.buckets.insert(identity.to_owned(), bucket);
            return Err(QuotaError::Exhausted {
                identity: identity.to_owned(),
                retry_after_ms,
            });
        }
        bucket.milli_tokens -= MILLI;
        self.buckets.insert(identity.to_owned(), bucket);
        Ok(())
    }

    /// Forgets buckets that have refilled completely: they are equivalent to no bucket.
    fn drop_full_buckets(&mut self, now: Timestamp) {
        let capacity = self.capacity();
        let config = self.config;
        self.buckets.retain(|_, bucket| {
            let elapsed_ms = now
                .saturating_duration_since(bucket.updated)
                .as_millis()
                .min(u128::from(u64::MAX)) as u64;
            bucket
                .milli_tokens
                .saturating_add(config.gained(elapsed_ms))
                < capacity
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_unix_millis(ms)
    }

    #[test]
    fn burst_then_sustained_rate() {
        let mut quota = IdentityQuota::new(QuotaConfig {
            max_identities: 10,
            ..QuotaConfig::per_second(10, 3)
        });
        for _ in 0..3 {
            quota.charge("spiffe://a/x", at(0)).unwrap();
        }
        let err = quota.charge("spiffe://a/x", at(0)).unwrap_err();
        assert_eq!(
            err,
            QuotaError::Exhausted {
                identity: "spiffe://a/x".into(),
                retry_after_ms: 100
            }
        );
        // Another identity has its own bucket.
        quota.charge("spiffe://a/y", at(0)).unwrap();
        // 10 per second: one more after 100 ms, not before.
        assert!(quota.charge("spiffe://a/x", at(99)).is_err());
        quota.charge("spiffe://a/x", at(100)).unwrap();
        assert!(quota.charge("spiffe://a/x", at(150)).is_err());
        // Refill caps at the burst.
        for _ in 0..3 {
            quota.charge("spiffe://a/x", at(100_000)).unwrap();
        }
        assert!(quota.charge("spiffe://a/x", at(100_000)).is_err());
    }

    #[test]
    fn zero_rate_turns_quotas_off() {
        let mut quota = IdentityQuota::new(QuotaConfig {
            max_identities: 0,
            ..QuotaConfig::per_second(0, 0)
        });
        for _ in 0..10_000 {
            quota.charge("spiffe://a/x", at(0)).unwrap();
        }
        assert_eq!(quota.tracked(), 0);
    }

    #[test]
    fn table_is_bounded_and_forgets_idle_identities_first() {
        let mut quota = IdentityQuota::new(QuotaConfig {
            max_identities: 2,
            ..QuotaConfig::per_second(1, 2)
        });
        quota.charge("a", at(0)).unwrap();
        quota.charge("b", at(0)).unwrap();
        assert_eq!(
            quota.charge("c", at(500)),
            Err(QuotaError::TooManyIdentities)
        );
        // After a second "a" and "b" have refilled to their burst and can be forgotten.
        quota.charge("c", at(1_000)).unwrap();
        assert_eq!(quota.tracked(), 1);
    }

    #[test]
    fn per_minute_rates_refill_fractionally() {
        // 30 per minute: one every 2 s.
        let mut quota = IdentityQuota::new(QuotaConfig::per_minute(30, 1));
        quota.charge("a", at(0)).unwrap();
        assert_eq!(
            quota.charge("a", at(500)),
            Err(QuotaError::Exhausted {
                identity: "a".into(),
                retry_after_ms: 1_500
            })
        );
        assert!(quota.charge("a", at(1_999)).is_err());
        quota.charge("a", at(2_000)).unwrap();
    }
}
