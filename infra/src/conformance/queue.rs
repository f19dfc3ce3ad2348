//! Job queue checks. They run in real time with SQS-sized durations (whole seconds), because
//! an SQS-backed queue cannot be driven by a test clock.
//!
//! FIFO checks always set a group (SQS requires one) and never a per-job delay (SQS FIFO
//! queues have none); delay checks use a standard queue.
//!
//! The port makes a stale receipt a `Conflict` everywhere. SQS's `DeleteMessage` on a standard
//! queue accepts a stale receipt handle silently (and deletes nothing), so an SQS adapter has
//! to detect staleness itself to pass [`a_stale_receipt_is_a_conflict_everywhere`] and
//! [`an_unacked_job_comes_back_after_its_visibility_timeout`].

use std::time::{Duration, Instant};

use openwa_core::Error;
use openwa_core::ports::{JobQueue, NewJob, QueueName, ReceivedJob};

use super::Fixture;
use super::fixtures::session_id;
use crate::assert_err;

const SECOND: Duration = Duration::from_secs(1);
/// Long enough that a job stays hidden for the rest of a check.
const LONG: Duration = Duration::from_secs(60);
/// How long a check waits for jobs it expects.
const PATIENCE: Duration = Duration::from_secs(3);

async fn fifo_queue(fx: &Fixture) -> QueueName {
    let q = QueueName::Send(session_id("q"));
    fx.backend.queue.ensure(&q).await.unwrap();
    q
}

async fn standard_queue(fx: &Fixture) -> QueueName {
    fx.backend.queue.ensure(&QueueName::Events).await.unwrap();
    QueueName::Events
}

fn job(body: &str) -> NewJob {
    NewJob {
        body: body.as_bytes().to_vec(),
        ..Default::default()
    }
}

/// A FIFO job whose dedup id is its body.
fn grouped(body: &str, group: &str) -> NewJob {
    NewJob {
        body: body.as_bytes().to_vec(),
        group: Some(group.into()),
        dedup_id: Some(body.into()),
        delay: Duration::ZERO,
    }
}

fn bodies(jobs: &[ReceivedJob]) -> Vec<String> {
    jobs.iter()
        .map(|j| String::from_utf8_lossy(&j.body).into_owned())
        .collect()
}

/// Receives (and acks) until `n` jobs arrived or patience ran out.
async fn drain(queue: &dyn JobQueue, q: &QueueName, n: usize) -> Vec<ReceivedJob> {
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        for j in queue.receive(q, 10, LONG, SECOND).await.unwrap() {
            queue.ack(q, &j.receipt).await.unwrap();
            got.push(j);
        }
    }
    got
}

/// Receives exactly one job, waiting for it.
async fn one(queue: &dyn JobQueue, q: &QueueName, visibility: Duration) -> ReceivedJob {
    let mut jobs = queue.receive(q, 1, visibility, PATIENCE).await.unwrap();
    assert_eq!(jobs.len(), 1, "expected one job");
    jobs.remove(0)
}

async fn nothing(queue: &dyn JobQueue, q: &QueueName) {
    let jobs = queue.receive(q, 10, LONG, Duration::ZERO).await.unwrap();
    assert!(jobs.is_empty(), "expected no job, got {:?}", bodies(&jobs));
}

pub async fn sending_to_a_queue_never_ensured_is_not_found(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let q = QueueName::Send(session_id("never"));

    assert_err!(
        fx.backend.queue.send(&q, grouped("x", "g")).await,
        Error::NotFound { .. }
    );
    assert_err!(
        fx.backend
            .queue
            .receive(&q, 1, SECOND, Duration::ZERO)
            .await,
        Error::NotFound { .. }
    );
    fx.backend.queue.ensure(&q).await.unwrap();
    fx.backend.queue.ensure(&q).await.unwrap();
    fx.backend.queue.send(&q, grouped("x", "g")).await.unwrap();
}

pub async fn an_acked_job_is_gone(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (queue, q) = (&*fx.backend.queue, standard_queue(&fx).await);
    queue.send(&q, job("hello")).await.unwrap();

    let got = one(queue, &q, LONG).await;
    assert_eq!(
        (got.body.as_slice(), got.receive_count, got.group.as_ref()),
        (&b"hello"[..], 1, None)
    );
    queue.ack(&q, &got.receipt).await.unwrap();

    nothing(queue, &q).await;
    assert_eq!(queue.depth(&q).await.unwrap(), 0);
}

pub async fn an_unacked_job_comes_back_after_its_visibility_timeout(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let (queue, q) = (&*fx.backend.queue, standard_queue(&fx).await);
    queue.send(&q, job("again")).await.unwrap();

    let first = one(queue, &q, SECOND).await;
    nothing(queue, &q).await;
    tokio::time::sleep(SECOND + Duration::from_millis(200)).await;
    let second = one(queue, &q, LONG).await;

    assert_eq!(second.id, first.id);
    assert_eq!(second.body, first.body);
    assert_eq!(second.receive_count, 2);
    assert_ne!(
        second.receipt, first.receipt,
        "each receive has its own receipt"
    );
    assert_err!(queue.ack(&q, &first.receipt).await, Error::Conflict { .. });
    queue.ack(&q, &second.receipt).await.unwrap();
    nothing(queue, &q).await;
}

pub async fn a_stale_receipt_is_a_conflict_everywhere(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (queue, q) = (&*fx.backend.queue, standard_queue(&fx).await);
    queue.send(&q, job("j")).await.unwrap();
    let first = one(queue, &q, SECOND).await;
    tokio::time::sleep(SECOND + Duration::from_millis(200)).await;
    let _second = one(queue, &q, LONG).await;
    let stale = first.receipt.as_str();

    assert_err!(queue.ack(&q, stale).await, Error::Conflict { .. });
    assert_err!(queue.extend(&q, stale, LONG).await, Error::Conflict { .. });
    assert_err!(
        queue.retry_later(&q, stale, Duration::ZERO).await,
        Error::Conflict { .. }
    );
    assert_err!(
        queue.dead_letter(&q, stale, "poison").await,
        Error::Conflict { .. }
    );
    assert!(queue.dead_letters(&q, 10).await.unwrap().is_empty());
}

pub async fn fifo_groups_are_received_in_order_one_at_a_time(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (queue, q) = (&*fx.backend.queue, fifo_queue(&fx).await);
    for body in ["a1", "a2", "a3"] {
        queue.send(&q, grouped(body, "chat-a")).await.unwrap();
    }

    let mut order = Vec::new();
    for _ in 0..3 {
        let got = one(queue, &q, LONG).await;
        // While it is in flight, the rest of its group waits.
        nothing(queue, &q).await;
        queue.ack(&q, &got.receipt).await.unwrap();
        assert_eq!(got.group.as_deref(), Some("chat-a"));
        order.push(String::from_utf8(got.body).unwrap());
    }

    assert_eq!(order, ["a1", "a2", "a3"]);
}

pub async fn a_busy_group_does_not_block_other_groups(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (queue, q) = (&*fx.backend.queue, fifo_queue(&fx).await);
    queue.send(&q, grouped("a1", "chat-a")).await.unwrap();
    queue.send(&q, grouped("a2", "chat-a")).await.unwrap();
    queue.send(&q, grouped("b1", "chat-b")).await.unwrap();

    let a1 = one(queue, &q, LONG).await;
    let rest = queue.receive(&q, 10, LONG, PATIENCE).await.unwrap();

    assert_eq!(bodies(std::slice::from_ref(&a1)), ["a1"]);
    assert_eq!(bodies(&rest), ["b1"]);
    queue.ack(&q, &a1.receipt).await.unwrap();
    assert_eq!(bodies(&[one(queue, &q, LONG).await]), ["a2"]);
}

pub async fn a_delayed_job_stays_hidden_until_its_delay_passes(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (queue, q) = (&*fx.backend.queue, standard_queue(&fx).await);
    queue
        .send(
            &q,
            NewJob {
                delay: SECOND,
                ..job("later")
            },
        )
        .await
        .unwrap();

    nothing(queue, &q).await;
    let got = one(queue, &q, LONG).await;

    assert_eq!(got.body, b"later");
    assert_eq!(got.receive_count, 1);
}

pub async fn a_duplicate_dedup_id_is_dropped_on_fifo_queues(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (queue, q) = (&*fx.backend.queue, fifo_queue(&fx).await);
    queue
        .send(
            &q,
            NewJob {
                dedup_id: Some("msg-1".into()),
                ..grouped("first", "g1")
            },
        )
        .await
        .unwrap();
    queue
        .send(
            &q,
            NewJob {
                dedup_id: Some("msg-1".into()),
                ..grouped("replay", "g2")
            },
        )
        .await
        .unwrap();
    queue
        .send(
            &q,
            NewJob {
                dedup_id: Some("msg-2".into()),
                ..grouped("second", "g3")
            },
        )
        .await
        .unwrap();

    let got = drain(queue, &q, 3).await;

    let mut got = bodies(&got);
    got.sort();
    assert_eq!(got, ["first", "second"]);
    // Still a duplicate after the first was consumed: the window counts from the send.
    queue
        .send(
            &q,
            NewJob {
                dedup_id: Some("msg-1".into()),
                ..grouped("late", "g1")
            },
        )
        .await
        .unwrap();
    nothing(queue, &q).await;
}

pub async fn a_job_received_too_often_moves_to_the_dead_letters(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (queue, q) = (&*fx.backend.queue, standard_queue(&fx).await);
    queue.send(&q, job("poison")).await.unwrap();

    let mut id = None;
    for n in 1..=fx.max_receives {
        let got = one(queue, &q, LONG).await;
        assert_eq!(got.receive_count, n);
        id = Some(got.id);
        queue
            .retry_later(&q, &got.receipt, Duration::ZERO)
            .await
            .unwrap();
    }
    let after = queue.receive(&q, 10, LONG, SECOND).await.unwrap();

    assert!(
        after.is_empty(),
        "a job over its receive budget is not handed out again"
    );
    let dead = queue.dead_letters(&q, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(Some(&dead[0].id), id.as_ref());
    assert_eq!(dead[0].body, b"poison");
    assert!(dead[0].receive_count >= fx.max_receives);
    assert_eq!(queue.depth(&q).await.unwrap(), 0);
}

pub async fn an_explicitly_dead_lettered_job_is_listed_with_its_reason(
    make: impl AsyncFn() -> Fixture,
) {
    let fx = make().await;
    let (queue, q) = (&*fx.backend.queue, fifo_queue(&fx).await);
    queue.send(&q, grouped("bad", "g")).await.unwrap();
    queue.send(&q, grouped("next", "g")).await.unwrap();
    let got = one(queue, &q, LONG).await;

    queue
        .dead_letter(&q, &got.receipt, "recipient_not_on_whatsapp")
        .await
        .unwrap();

    let dead = queue.dead_letters(&q, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].id.as_str(), dead[0].body.as_slice()),
        (got.id.as_str(), &b"bad"[..])
    );
    assert_eq!(dead[0].group.as_deref(), Some("g"));
    assert_eq!(dead[0].reason, "recipient_not_on_whatsapp");
    assert_eq!(
        bodies(&[one(queue, &q, LONG).await]),
        ["next"],
        "the group moves on"
    );
}

pub async fn retry_later_and_extend_move_the_visibility(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (queue, q) = (&*fx.backend.queue, standard_queue(&fx).await);
    queue.send(&q, job("work")).await.unwrap();
    let first = one(queue, &q, SECOND).await;

    queue
        .extend(&q, &first.receipt, Duration::from_secs(4))
        .await
        .unwrap();
    tokio::time::sleep(SECOND + Duration::from_millis(300)).await;
    nothing(queue, &q).await;

    queue.retry_later(&q, &first.receipt, SECOND).await.unwrap();
    nothing(queue, &q).await;
    let second = one(queue, &q, LONG).await;

    assert_eq!(second.id, first.id);
    assert_eq!(second.receive_count, 2);
    queue.ack(&q, &second.receipt).await.unwrap();
}

pub async fn a_long_poll_wakes_when_a_job_is_sent(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let q = standard_queue(&fx).await;
    let wait = Duration::from_secs(10);
    let poller = {
        let (queue, q) = (fx.backend.queue.clone(), q.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            (queue.receive(&q, 1, LONG, wait).await, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    fx.backend.queue.send(&q, job("wake")).await.unwrap();

    let (jobs, waited) = poller.await.unwrap();
    assert_eq!(bodies(&jobs.unwrap()), ["wake"]);
    assert!(
        waited < wait,
        "the poll returned when the job arrived, not at its deadline"
    );
}

pub async fn depth_counts_waiting_jobs_but_not_in_flight_ones(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (queue, q) = (&*fx.backend.queue, standard_queue(&fx).await);
    queue.send(&q, job("1")).await.unwrap();
    queue.send(&q, job("2")).await.unwrap();
    queue
        .send(
            &q,
            NewJob {
                delay: LONG / 4,
                ..job("delayed")
            },
        )
        .await
        .unwrap();
    assert_eq!(queue.depth(&q).await.unwrap(), 3);

    let got = one(queue, &q, LONG).await;

    assert_eq!(queue.depth(&q).await.unwrap(), 2);
    queue.retry_later(&q, &got.receipt, LONG).await.unwrap();
    assert_eq!(
        queue.depth(&q).await.unwrap(),
        3,
        "a job waiting to be retried is waiting"
    );
}

pub async fn a_deleted_queue_is_gone_with_its_jobs(make: impl AsyncFn() -> Fixture) {
    let fx = make().await;
    let (queue, q) = (&*fx.backend.queue, fifo_queue(&fx).await);
    queue.send(&q, grouped("x", "g")).await.unwrap();

    queue.delete(&q).await.unwrap();
    queue.delete(&q).await.unwrap();

    assert_err!(
        queue.send(&q, grouped("y", "g")).await,
        Error::NotFound { .. }
    );
    queue.ensure(&q).await.unwrap();
    assert_eq!(queue.depth(&q).await.unwrap(), 0);
    nothing(queue, &q).await;
}
