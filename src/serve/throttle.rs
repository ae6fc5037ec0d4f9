//! A limit on failed bearer-token attempts, shared by the API's `Authorization: Bearer` check and the review page's
//! sign-in, so that guessing tokens is slow whichever door is used.
//!
//! Two token buckets: one per client address (an IPv6 address counts by its /64, which one host usually holds
//! whole), and one for everyone, so that guesses spread over many addresses are bounded too. Each failed attempt
//! takes one token from both; a bucket refills at a steady rate up to its burst. While either bucket of a request is
//! empty, the request is answered `429` with `Retry-After` before its token is looked at, right or wrong: a locked-out
//! guesser learns nothing. A successful attempt takes nothing, and does not refill a bucket either (else one valid
//! token of the tokens file would buy unlimited guesses at the others).
//!
//! The addresses are the TCP peers'; behind a reverse proxy every request comes from the proxy's address, so the
//! per-address limit becomes a second global one (`X-Forwarded-For` is not trusted). A request whose address is not
//! known (a router served without connect info) counts under one key shared by all such requests, the same way. The global limit is a trade:
//! someone who keeps failing faster than it refills keeps everyone out, for as long as they keep at it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One bucket's shape: how many failures in a row it takes, and how often it gets one back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    /// Failed attempts allowed in a burst.
    pub burst: u32,
    /// The time one more takes to be allowed again.
    pub refill: Duration,
}

/// Failed attempts from one address: 10 in a row, then one every 30 seconds.
pub(crate) const PER_ADDRESS: Rate = Rate { burst: 10, refill: Duration::from_secs(30) };

/// Failed attempts from everyone: 100 in a row, then one a second.
pub(crate) const GLOBAL: Rate = Rate { burst: 100, refill: Duration::from_secs(1) };

/// Addresses kept before full buckets are forgotten.
const KEPT: usize = 1024;

/// A bucket's level at a time.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket { level: f64::from(rate.burst), at: now }
    }

    /// The level at `now`, refilled since it was last seen.
    fn level(&self, rate: Rate, now: Instant) -> f64 {
        let refilled = now.saturating_duration_since(self.at).as_secs_f64() / rate.refill.as_secs_f64();
        (self.level + refilled).min(f64::from(rate.burst))
    }

    /// Whole seconds until the bucket holds one attempt again (0 when it does).
    fn wait(&self, rate: Rate, now: Instant) -> u64 {
        let missing = 1.0 - self.level(rate, now);
        if missing <= 0.0 {
            0
        } else {
            (missing * rate.refill.as_secs_f64()).ceil().max(1.0) as u64
        }
    }

    fn take(&mut self, rate: Rate, now: Instant) {
        self.level = (self.level(rate, now) - 1.0).max(0.0);
        self.at = now;
    }
}

/// The failed-attempt limits of one server.
#[derive(Debug)]
pub(crate) struct Throttle {
    per_address: Rate,
    global: Rate,
    /// Everyone's bucket, and each address's (`None`: every client whose address is not known).
    buckets: Mutex<(Bucket, HashMap<Option<IpAddr>, Bucket>)>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(PER_ADDRESS, GLOBAL)
    }
}

impl Throttle {
    /// Limits at these rates.
    pub(crate) fn new(per_address: Rate, global: Rate) -> Throttle {
        let everyone = Bucket::full(global, Instant::now());
        Throttle { per_address, global, buckets: Mutex::new((everyone, HashMap::new())) }
    }

    /// `Err(seconds)` when an attempt from `client` must wait that long (its address, or everyone, failed too often);
    /// checked before the attempt's token is. `None`: a client whose address is not known, limited with every other
    /// such client.
    pub(crate) fn check(&self, client: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (everyone, by_address) = &*buckets;
        let own = by_address.get(&key(client)).map_or(0, |b| b.wait(self.per_address, now));
        match own.max(everyone.wait(self.global, now)) {
            0 => Ok(()),
            seconds => Err(seconds),
        }
    }

    /// Counts a failed attempt from `client`.
    pub(crate) fn failed(&self, client: Option<IpAddr>, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (everyone, by_address) = &mut *buckets;
        everyone.take(self.global, now);
        if by_address.len() >= KEPT {
            let rate = self.per_address;
            by_address.retain(|_, b| b.level(rate, now) < f64::from(rate.burst));
        }
        by_address
            .entry(key(client))
            .or_insert_with(|| Bucket::full(self.per_address, now))
            .take(self.per_address, now);
    }
}

/// What an address counts as: itself, or its /64 for IPv6 (an IPv4 address mapped into IPv6 is the IPv4 one); an
/// unknown one (`None`) as every other unknown one.
fn key(address: Option<IpAddr>) -> Option<IpAddr> {
    address.map(|address| match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        v4 => v4,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Rate = Rate { burst: 3, refill: Duration::from_secs(10) };
    const WIDE: Rate = Rate { burst: 5, refill: Duration::from_secs(2) };

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("an address"))
    }

    #[test]
    fn an_address_is_locked_out_after_its_burst_and_let_in_again_as_it_refills() {
        let throttle = Throttle::new(FAST, Rate { burst: 100, refill: Duration::from_secs(1) });
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.check(ip("10.0.0.1"), start), Ok(()));
            throttle.failed(ip("10.0.0.1"), start);
        }
        assert_eq!(throttle.check(ip("10.0.0.1"), start), Err(10));
        assert_eq!(throttle.check(ip("10.0.0.2"), start), Ok(()), "another address is not locked out");
        assert_eq!(throttle.check(ip("10.0.0.1"), start + Duration::from_secs(4)), Err(6));
        assert_eq!(throttle.check(ip("10.0.0.1"), start + Duration::from_secs(10)), Ok(()));
    }

    #[test]
    fn failures_spread_over_addresses_lock_everyone_out() {
        let throttle = Throttle::new(FAST, WIDE);
        let now = Instant::now();
        for i in 0..5 {
            throttle.failed(ip(&format!("10.0.1.{i}")), now);
        }
        assert_eq!(throttle.check(ip("10.9.9.9"), now), Err(2));
        assert_eq!(throttle.check(None, now + Duration::from_secs(2)), Ok(()));
    }

    #[test]
    fn an_ipv6_host_counts_by_its_64() {
        let throttle = Throttle::new(FAST, WIDE);
        let now = Instant::now();
        for i in 1..=3 {
            throttle.failed(ip(&format!("2001:db8:1:2::{i}")), now);
        }
        assert!(throttle.check(ip("2001:db8:1:2:ffff::9"), now).is_err());
        assert_eq!(key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn clients_of_unknown_address_share_one_limit() {
        let throttle = Throttle::new(FAST, Rate { burst: 100, refill: Duration::from_secs(1) });
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.check(None, now), Ok(()));
            throttle.failed(None, now);
        }
        assert_eq!(throttle.check(None, now), Err(10), "every client of unknown address is held back");
        assert_eq!(throttle.check(ip("10.0.0.1"), now), Ok(()), "a known address is not");
    }

    #[test]
    fn the_map_of_addresses_stays_bounded() {
        let throttle = Throttle::new(Rate { burst: 1, refill: Duration::from_millis(1) }, WIDE);
        let start = Instant::now();
        for i in 0..(KEPT as u32 * 3) {
            let at = start + Duration::from_millis(u64::from(i) * 2);
            throttle.failed(Some(IpAddr::from(i.to_be_bytes())), at);
        }
        let kept = throttle.buckets.lock().expect("lock").1.len();
        assert!(kept <= KEPT, "{kept}");
    }
}
