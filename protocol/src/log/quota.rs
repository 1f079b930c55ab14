//! Per-identity write quotas: a log kept forever must not be an open drop box, not even
//! for identities its domain vouches for.
//!
//! Each identity (the SAN of its signing certificate) has a token bucket: it may write
//! `burst` entries at once and `per_second` entries per second sustained. Time is an
//! argument; the caller owns the clock.
//!
//! The table of buckets is bounded. A bucket that has refilled to `burst` is the same as
//! no bucket, so when the table is full such buckets are dropped first; if every tracked
//! identity is still spending, a new identity is refused rather than the table growing.

use std::collections::HashMap;

use crate::machine::Timestamp;

/// Token units per entry: buckets count in thousandths so that slow rates refill
/// smoothly with integer arithmetic.
const MILLI: u64 = 1000;

/// Quota settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaConfig {
    /// Sustained entries per second per identity; 0 turns quotas off.
    pub per_second: u32,
    /// Entries an idle identity may write at once.
    pub burst: u32,
    /// Identities tracked at once.
    pub max_identities: usize,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            per_second: 50,
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
        // per_second entries per 1000 ms = per_second milli-tokens per ms.
        let gained = elapsed_ms.saturating_mul(u64::from(self.config.per_second));
        bucket.milli_tokens = bucket
            .milli_tokens
            .saturating_add(gained)
            .min(self.capacity());
        if now > bucket.updated {
            bucket.updated = now;
        }
    }

    /// Charges one entry to `identity` at `now`, or says why not. Nothing is charged on
    /// refusal.
    pub fn charge(&mut self, identity: &str, now: Timestamp) -> Result<(), QuotaError> {
        if self.config.per_second == 0 {
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
            let per_ms = u64::from(self.config.per_second);
            let retry_after_ms = missing.div_ceil(per_ms);
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
        let per_second = u64::from(self.config.per_second);
        self.buckets.retain(|_, bucket| {
            let elapsed_ms = now
                .saturating_duration_since(bucket.updated)
                .as_millis()
                .min(u128::from(u64::MAX)) as u64;
            bucket
                .milli_tokens
                .saturating_add(elapsed_ms.saturating_mul(per_second))
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
            per_second: 10,
            burst: 3,
            max_identities: 10,
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
            per_second: 0,
            burst: 0,
            max_identities: 0,
        });
        for _ in 0..10_000 {
            quota.charge("spiffe://a/x", at(0)).unwrap();
        }
        assert_eq!(quota.tracked(), 0);
    }

    #[test]
    fn table_is_bounded_and_forgets_idle_identities_first() {
        let mut quota = IdentityQuota::new(QuotaConfig {
            per_second: 1,
            burst: 2,
            max_identities: 2,
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
}
