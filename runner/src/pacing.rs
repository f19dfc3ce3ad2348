//! Send pacing: a per-session token bucket with jitter, a minimum gap per recipient and a daily
//! cap, so an account sends at a human-like rate. Everything is off when `enabled = false`.
//!
//! The pacer hands out *reservations*: `reserve` decides, under a lock, when this send may go
//! and books that moment (a token and the recipient's slot), then the caller sleeps outside the
//! lock. Sends to different chats can therefore wait concurrently without overtaking the rate.
//! Time is passed in, so the arithmetic is tested without sleeping.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use openwa_core::jid::ChatId;
use openwa_core::session::Pacing;

/// What a send has to do before it may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Wait this long, then send (zero: send now).
    Wait(Duration),
    /// The daily cap is reached; try again after this long (the next UTC day).
    CapReached(Duration),
}

/// One session's pacer. Config changes (the user edits the session) apply to later sends.
pub struct Pacer {
    state: Mutex<State>,
}

struct State {
    cfg: Pacing,
    /// Tokens left at `refilled_at`; negative when sends are booked ahead.
    tokens: f64,
    refilled_at: Option<Instant>,
    /// When the last booked send to each recipient goes.
    last_per_chat: HashMap<ChatId, Instant>,
    day: Option<NaiveDate>,
    sent_today: u32,
}

impl Pacer {
    pub fn new(cfg: Pacing) -> Self {
        let tokens = f64::from(cfg.burst);
        Self {
            state: Mutex::new(State {
                cfg,
                tokens,
                refilled_at: None,
                last_per_chat: HashMap::new(),
                day: None,
                sent_today: 0,
            }),
        }
    }

    /// Applies a new config; the bucket keeps its level, clamped to the new burst.
    pub fn set_config(&self, cfg: Pacing) {
        let mut s = self.lock();
        if s.cfg != cfg {
            s.tokens = s.tokens.min(f64::from(cfg.burst));
            s.cfg = cfg;
        }
    }

    /// Books one send to `chat`. `jitter` is a random fraction in `[0, 1)` of the configured
    /// jitter (passed in for testability).
    pub fn reserve(
        &self,
        chat: &ChatId,
        now: Instant,
        wall: DateTime<Utc>,
        jitter: f64,
    ) -> Reservation {
        let mut s = self.lock();
        if !s.cfg.enabled {
            return Reservation::Wait(Duration::ZERO);
        }
        let today = wall.date_naive();
        if s.day != Some(today) {
            s.day = Some(today);
            s.sent_today = 0;
        }
        if let Some(cap) = s.cfg.daily_cap
            && s.sent_today >= cap
        {
            let midnight = today
                .succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc());
            let left = midnight.map_or(Duration::from_secs(3600), |m| {
                (m - wall).to_std().unwrap_or_default()
            });
            return Reservation::CapReached(left);
        }
        s.sent_today += 1;

        // Token bucket with booking ahead: refill, take one, and if that went negative the
        // send waits until the bucket is back at zero.
        let rate = f64::from(s.cfg.per_minute.max(1)) / 60.0;
        let burst = f64::from(s.cfg.burst.max(1));
        if let Some(at) = s.refilled_at {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            s.tokens = (s.tokens + elapsed * rate).min(burst);
        }
        s.refilled_at = Some(now);
        s.tokens -= 1.0;
        let token_wait = if s.tokens < 0.0 {
            Duration::from_secs_f64(-s.tokens / rate)
        } else {
            Duration::ZERO
        };

        let mut at = now + token_wait;
        let gap = Duration::from_millis(u64::from(s.cfg.min_recipient_gap_ms));
        if let Some(last) = s.last_per_chat.get(chat) {
            at = at.max(*last + gap);
        }
        at += Duration::from_secs_f64(f64::from(s.cfg.jitter_ms) / 1000.0 * jitter.clamp(0.0, 1.0));
        s.last_per_chat.insert(chat.clone(), at);
        // Forget recipients whose gap has long passed, so the map stays small.
        if s.last_per_chat.len() > 4096 {
            s.last_per_chat.retain(|_, t| *t + gap > now);
        }
        Reservation::Wait(at.saturating_duration_since(now))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(n: u32) -> ChatId {
        ChatId::parse(&format!("1555010{n:04}")).unwrap()
    }

    fn on(per_minute: u32, burst: u32, gap_ms: u32) -> Pacing {
        Pacing {
            enabled: true,
            per_minute,
            burst,
            jitter_ms: 0,
            min_recipient_gap_ms: gap_ms,
            daily_cap: None,
        }
    }

    fn wait(r: Reservation) -> Duration {
        match r {
            Reservation::Wait(d) => d,
            other => panic!("expected a wait, got {other:?}"),
        }
    }

    #[test]
    fn with_pacing_off_every_send_goes_at_once() {
        let p = Pacer::new(Pacing {
            enabled: false,
            per_minute: 1,
            burst: 1,
            ..Default::default()
        });
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(
                p.reserve(&chat(1), now, Utc::now(), 0.9),
                Reservation::Wait(Duration::ZERO)
            );
        }
    }

    #[test]
    fn the_burst_goes_at_once_and_later_sends_are_spaced_by_the_rate() {
        let p = Pacer::new(on(60, 3, 0));
        let now = Instant::now();
        let waits: Vec<_> = (0..5)
            .map(|i| wait(p.reserve(&chat(i), now, Utc::now(), 0.0)))
            .collect();
        assert_eq!(&waits[..3], &[Duration::ZERO; 3]);
        assert_eq!(waits[3].as_millis(), 1000);
        assert_eq!(waits[4].as_millis(), 2000);
    }

    #[test]
    fn the_bucket_refills_with_time() {
        let p = Pacer::new(on(60, 1, 0));
        let t0 = Instant::now();
        assert_eq!(
            wait(p.reserve(&chat(1), t0, Utc::now(), 0.0)),
            Duration::ZERO
        );
        assert_eq!(
            wait(p.reserve(&chat(2), t0 + Duration::from_secs(1), Utc::now(), 0.0)),
            Duration::ZERO
        );
    }

    #[test]
    fn one_recipient_waits_the_minimum_gap_while_others_do_not() {
        let p = Pacer::new(on(6000, 100, 3000));
        let now = Instant::now();
        assert_eq!(
            wait(p.reserve(&chat(1), now, Utc::now(), 0.0)),
            Duration::ZERO
        );
        assert_eq!(
            wait(p.reserve(&chat(1), now, Utc::now(), 0.0)).as_millis(),
            3000
        );
        assert_eq!(
            wait(p.reserve(&chat(1), now, Utc::now(), 0.0)).as_millis(),
            6000
        );
        assert_eq!(
            wait(p.reserve(&chat(2), now, Utc::now(), 0.0)),
            Duration::ZERO
        );
    }

    #[test]
    fn jitter_adds_at_most_the_configured_delay() {
        let p = Pacer::new(Pacing {
            jitter_ms: 1000,
            ..on(6000, 100, 0)
        });
        let now = Instant::now();
        assert_eq!(
            wait(p.reserve(&chat(1), now, Utc::now(), 0.5)).as_millis(),
            500
        );
        assert!(wait(p.reserve(&chat(2), now, Utc::now(), 0.999)) < Duration::from_secs(1));
    }

    #[test]
    fn the_daily_cap_refuses_until_the_next_utc_day() {
        let p = Pacer::new(Pacing {
            daily_cap: Some(2),
            ..on(6000, 100, 0)
        });
        let now = Instant::now();
        let noon = "2026-01-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        p.reserve(&chat(1), now, noon, 0.0);
        p.reserve(&chat(2), now, noon, 0.0);
        assert_eq!(
            p.reserve(&chat(3), now, noon, 0.0),
            Reservation::CapReached(Duration::from_secs(12 * 3600))
        );
        let next_day = "2026-01-02T00:00:01Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            p.reserve(&chat(3), now, next_day, 0.0),
            Reservation::Wait(Duration::ZERO)
        );
    }
}
