//! Rate limits: how often one client address (and, at the token endpoint, one client id) may
//! knock on each door an attacker would try — password sign-in and setup links, single sign-on,
//! the token endpoint, SCIM and the platform API — before it waits. The counting is GCRA from
//! `governor`, in memory, per node (a client spread over N nodes gets N times the allowance;
//! each node still protects itself). `MANDATE_RATE_LIMITS` scales every allowance (a percentage,
//! `off` for benchmarks). How a refusal is answered belongs to each protocol.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

/// A door with its own allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Door {
    /// Password sign-in and setup / invitation links.
    SignIn,
    /// SSO start, OIDC callback, SAML ACS and hand-over, Test connection.
    Sso,
    /// `/oauth2/*`: token, introspection, revocation.
    Token,
    /// SCIM 2.0.
    Scim,
    /// The platform API.
    Api,
}

impl Door {
    pub const ALL: [Door; 5] = [Door::SignIn, Door::Sso, Door::Token, Door::Scim, Door::Api];

    /// (burst, sustained per minute) at 100 %: a person never meets them, a script soon does;
    /// machine doors are sized for busy but honest integrations. Failed password sign-ins have
    /// their own, stricter count per account and per address (`org::login`), which a spraying
    /// client meets first.
    pub fn allowance(self) -> (u32, u32) {
        match self {
            Door::SignIn => (40, 20),
            Door::Sso => (60, 60),
            Door::Token => (1_000, 60_000),
            Door::Scim => (1_000, 6_000),
            Door::Api => (1_000, 12_000),
        }
    }
}

/// The counters of every door.
pub struct RateLimits {
    /// `None` when limits are off.
    doors: Option<Vec<(Door, DefaultKeyedRateLimiter<String>)>>,
}

impl RateLimits {
    /// Every door's allowance scaled to `percent` (0: no limits).
    pub fn new(percent: u32) -> RateLimits {
        if percent == 0 {
            return RateLimits { doors: None };
        }
        let scaled = |n: u32| {
            let value = (u64::from(n) * u64::from(percent) / 100).clamp(1, u64::from(u32::MAX));
            NonZeroU32::new(u32::try_from(value).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
        };
        let doors = Door::ALL
            .into_iter()
            .map(|door| {
                let (burst, per_minute) = door.allowance();
                let quota = Quota::per_minute(scaled(per_minute)).allow_burst(scaled(burst));
                (door, RateLimiter::keyed(quota))
            })
            .collect();
        RateLimits { doors: Some(doors) }
    }

    /// Counts one request by `key` (a client address, or `client:<id>`) at `door`; `Err` with
    /// how long to wait when its allowance is used up.
    pub fn check(&self, door: Door, key: &str) -> Result<(), Duration> {
        let Some(doors) = &self.doors else { return Ok(()) };
        let Some((_, limiter)) = doors.iter().find(|(d, _)| *d == door) else { return Ok(()) };
        limiter.check_key(&key.to_string()).map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets keys whose allowance is full again, so that memory follows the active clients.
    pub fn forget_idle(&self) {
        for (_, limiter) in self.doors.iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowances_are_per_key_and_per_door_and_scale() {
        let limits = RateLimits::new(100);
        for _ in 0..40 {
            assert!(limits.check(Door::SignIn, "198.51.100.7").is_ok());
        }
        let wait = limits.check(Door::SignIn, "198.51.100.7").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(3), "{wait:?}");
        assert!(limits.check(Door::SignIn, "198.51.100.8").is_ok(), "another address has its own");
        assert!(limits.check(Door::Sso, "198.51.100.7").is_ok(), "another door has its own");

        let small = RateLimits::new(5);
        assert!(small.check(Door::SignIn, "a").is_ok());
        assert!(small.check(Door::SignIn, "a").is_ok());
        assert!(small.check(Door::SignIn, "a").is_err(), "5 % of 40 is two");
        let off = RateLimits::new(0);
        assert!((0..10_000).all(|_| off.check(Door::SignIn, "a").is_ok()));
    }
}
