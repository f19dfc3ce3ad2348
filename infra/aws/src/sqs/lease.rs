//! Which receipts are current, judged without asking SQS.
//!
//! The port makes a stale receipt a `Conflict`. SQS does not: on a standard queue
//! `DeleteMessage` with an old receipt handle succeeds (and may or may not delete the job), and
//! `ChangeMessageVisibility` with one may succeed too; only a job no longer in flight is
//! refused (`MessageNotInflight`), and moto accepts every handle the message ever had.
//!
//! What SQS does guarantee is that a job is not handed out again while it is hidden. So a
//! receipt is judged current exactly while the job it names is hidden under it: from the
//! receive until the visibility timeout the adapter asked for (moved by `extend`), and never
//! after the receipt was settled (ack, retry, dead letter). A holder past that point may have
//! lost the job to another receiver, and gets `Conflict` whether or not that happened yet,
//! which is the answer SQS itself gives (`MessageNotInflight`) when it has not.
//!
//! The end of the visibility travels inside the receipt (another process holding it can judge
//! it too); this process also remembers, per receipt it issued, later extensions, settlement
//! and the job itself (a retry re-sends it and a dead letter copies it, without another
//! receive). The receive's start of visibility is taken as the moment its response arrived:
//! SQS started the timeout no later than that, so the judgement can be late by the response's
//! transit time (milliseconds), which [`SAFETY_MARGIN`] covers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openwa_core::error::{Error, Result};

use super::wire::{Attributes, Receipt};

/// Taken off every visibility window, for the transit time of SQS's response.
pub const SAFETY_MARGIN: Duration = Duration::from_millis(100);
/// Settled receipts are swept this long after their window ended.
const SWEEP_GRACE_MS: i64 = 60_000;
/// Leases are swept once per this many issued.
const SWEEP_EVERY: usize = 256;
/// SQS FIFO deduplication window.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(300);

/// Now, in epoch milliseconds: SQS runs on real time, whatever clock the services use.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A received job as this process holds it, to re-send or dead-letter it.
#[derive(Debug, Clone)]
pub struct HeldJob {
    /// The job id (the first message's id, kept across re-sends).
    pub id: String,
    /// The body as SQS carries it (possibly base64 or an S3 pointer).
    pub wire_body: String,
    /// Its message attributes as received.
    pub attributes: Attributes,
    /// Its group, as the port sees it.
    pub group: Option<String>,
    /// Receives so far, this one included.
    pub receive_count: u32,
    /// First enqueue time, epoch milliseconds.
    pub enqueued_ms: i64,
}

#[derive(Debug)]
struct Lease {
    /// Visible again at this epoch millisecond; `None` once settled.
    until_ms: Option<i64>,
    /// Latest end this receipt was ever valid to (for sweeping).
    horizon_ms: i64,
    job: Option<Arc<HeldJob>>,
}

/// The receipts this process issued, by SQS receipt handle.
#[derive(Default)]
pub struct Leases {
    map: Mutex<HashMap<String, Lease>>,
}

impl Leases {
    /// Records a receive; returns the receipt's visibility end.
    pub fn issue(&self, handle: &str, received_ms: i64, visibility: Duration, job: HeldJob) -> i64 {
        let until = received_ms + ms(visibility) - ms(SAFETY_MARGIN);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() % SWEEP_EVERY == SWEEP_EVERY - 1 {
            let now = now_ms();
            map.retain(|_, l| l.horizon_ms + SWEEP_GRACE_MS > now);
        }
        map.insert(
            handle.to_owned(),
            Lease {
                until_ms: Some(until),
                horizon_ms: until,
                job: Some(Arc::new(job)),
            },
        );
        until
    }

    /// `Ok` with the held job (if this process received it) while `receipt` is current,
    /// `Conflict` otherwise.
    pub fn check(&self, receipt: &Receipt) -> Result<Option<Arc<HeldJob>>> {
        let now = now_ms();
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (until, job) = match map.get(&receipt.handle) {
            Some(lease) => (lease.until_ms, lease.job.clone()),
            None => (Some(receipt.until_ms), None),
        };
        match until {
            Some(until) if now < until => Ok(job),
            Some(_) => Err(Error::conflict(
                "the receipt is stale: the job's visibility timeout passed, so it may have been received again",
            )),
            None => Err(Error::conflict(
                "the receipt is stale: the job was already acked, retried or dead-lettered",
            )),
        }
    }

    /// Moves a current receipt's visibility end (after SQS accepted the change that began
    /// at `started_ms`).
    pub fn extend(&self, receipt: &Receipt, started_ms: i64, visibility: Duration) {
        let until = started_ms + ms(visibility) - ms(SAFETY_MARGIN);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let lease = map.entry(receipt.handle.clone()).or_insert(Lease {
            until_ms: None,
            horizon_ms: receipt.until_ms,
            job: None,
        });
        lease.until_ms = Some(until);
        lease.horizon_ms = lease.horizon_ms.max(until);
    }

    /// Ends a receipt: later use of it is a `Conflict`.
    pub fn settle(&self, receipt: &Receipt) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let lease = map.entry(receipt.handle.clone()).or_insert(Lease {
            until_ms: None,
            horizon_ms: receipt.until_ms,
            job: None,
        });
        lease.until_ms = None;
        lease.horizon_ms = lease.horizon_ms.max(receipt.until_ms);
        lease.job = None;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.lock().unwrap().len()
    }
}

/// Deduplication ids sent from this process in the last five minutes, per queue.
///
/// SQS drops a FIFO message whose deduplication id was sent in the last five minutes; moto
/// forgets an id once its message is deleted. Remembering ids here makes both behave like SQS
/// for replays from this process (and saves real SQS the call); across processes SQS's own
/// deduplication applies.
#[derive(Default)]
pub struct DedupIds {
    map: Mutex<HashMap<(String, String), i64>>,
}

impl DedupIds {
    /// Whether `id` was sent to `queue` within the window.
    pub fn seen(&self, queue: &str, id: &str) -> bool {
        let now = now_ms();
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(queue.to_owned(), id.to_owned()))
            .is_some_and(|sent| now - sent < ms(DEDUP_WINDOW))
    }

    pub fn record(&self, queue: &str, id: &str, sent_ms: i64) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() % SWEEP_EVERY == SWEEP_EVERY - 1 {
            let now = now_ms();
            map.retain(|_, sent| now - *sent < ms(DEDUP_WINDOW));
        }
        map.insert((queue.to_owned(), id.to_owned()), sent_ms);
    }

    /// Forgets a queue's ids (it was deleted).
    pub fn forget(&self, queue: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|(q, _), _| q != queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(handle: &str, until_ms: i64) -> Receipt {
        Receipt {
            queue: "events".into(),
            message_id: "m".into(),
            handle: handle.into(),
            until_ms,
            payload: None,
        }
    }

    fn held() -> HeldJob {
        HeldJob {
            id: "m".into(),
            wire_body: "b".into(),
            attributes: Attributes::new(),
            group: None,
            receive_count: 1,
            enqueued_ms: 0,
        }
    }

    #[test]
    fn a_receipt_is_current_only_while_its_job_is_hidden() {
        let leases = Leases::default();
        let until = leases.issue("h", now_ms(), Duration::from_secs(30), held());
        let r = receipt("h", until);
        assert!(leases.check(&r).unwrap().is_some());

        leases.extend(&r, now_ms() - 60_000, Duration::from_secs(1));
        assert!(leases.check(&r).is_err(), "its window has passed");
        leases.extend(&r, now_ms(), Duration::from_secs(30));
        assert!(leases.check(&r).is_ok());

        leases.settle(&r);
        assert!(leases.check(&r).is_err(), "settled");
    }

    #[test]
    fn a_receipt_from_another_process_is_judged_by_its_own_window() {
        let leases = Leases::default();
        assert!(
            leases
                .check(&receipt("x", now_ms() + 10_000))
                .unwrap()
                .is_none()
        );
        assert!(leases.check(&receipt("y", now_ms() - 1)).is_err());
        assert_eq!(leases.len(), 0);
    }

    #[test]
    fn dedup_ids_are_per_queue() {
        let ids = DedupIds::default();
        ids.record("send.a", "m1", now_ms());
        assert!(ids.seen("send.a", "m1"));
        assert!(!ids.seen("send.b", "m1"));
        assert!(!ids.seen("send.a", "m2"));
        ids.forget("send.a");
        assert!(!ids.seen("send.a", "m1"));
    }
}
