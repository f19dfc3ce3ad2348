//! Send jobs: exactly-once effect across a crash, FIFO per chat, pacing.

use std::time::Duration;

use openwa_core::event::EventType;
use openwa_core::message::MessageStatus;
use openwa_core::session::{Pacing, SessionStatus};

use crate::support::{TestEnv, chat, eventually};

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_that_crashes_between_delivery_and_ack_is_redelivered_and_reaches_the_recipient_once()
 {
    let env = TestEnv::new();
    let id = env.session("s1", Pacing::default()).await;
    let runner = env.start(env.config("r1"));
    eventually(WAIT, "connected", || async {
        env.get(&id).await.status == SessionStatus::Connected
    })
    .await;

    env.fake.panic_after_next_sends(1);
    let to = chat(1);
    let msg = env.enqueue_text(&id, &to, "hello once").await;

    eventually(WAIT, "the message is sent", || async {
        env.message(&id, &msg).await.status == MessageStatus::Sent
    })
    .await;
    let received = env.fake.received_by(&to);
    assert_eq!(
        received.len(),
        1,
        "exactly one message reached the recipient: {received:?}"
    );
    assert_eq!(
        env.message(&id, &msg).await.wa_id.as_ref(),
        Some(&received[0].wa_id)
    );
    let events = env.drain_events().await;
    let sent: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventType::MessageSent)
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].data["already_sent"], true,
        "the redelivery found the message instead of sending it"
    );
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_holds_per_chat_and_a_slow_chat_does_not_hold_up_another() {
    let env = TestEnv::new();
    let id = env.session("s1", Pacing::default()).await;
    let (slow, fast) = (chat(1), chat(2));
    // Long enough that the fast chat finishes first even on a loaded 2-core machine; the
    // visibility timeout must outlast the slow send, or the job would be redelivered mid-send.
    env.fake.slow_chat(&slow, Duration::from_secs(2));
    let mut config = env.config("r1");
    config.job_visibility = Duration::from_secs(10);
    let runner = env.start(config);
    eventually(WAIT, "connected", || async {
        env.get(&id).await.status == SessionStatus::Connected
    })
    .await;

    let mut ids = Vec::new();
    for (to, body) in [
        (&slow, "a1"),
        (&fast, "b1"),
        (&slow, "a2"),
        (&fast, "b2"),
        (&fast, "b3"),
    ] {
        ids.push(env.enqueue_text(&id, to, body).await);
    }
    eventually(WAIT, "all sent", || async {
        for m in &ids {
            if env.message(&id, m).await.status != MessageStatus::Sent {
                return false;
            }
        }
        true
    })
    .await;

    let texts = |c| {
        env.fake
            .received_by(c)
            .into_iter()
            .map(|d| d.text.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&slow), ["a1", "a2"]);
    assert_eq!(texts(&fast), ["b1", "b2", "b3"]);
    let slow_first = env.fake.received_by(&slow)[0].at;
    let fast_last = env.fake.received_by(&fast)[2].at;
    assert!(
        fast_last < slow_first,
        "the fast chat finished while the slow chat's first send was still going"
    );
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pacing_on_sends_keep_the_rate_and_the_per_recipient_gap() {
    let env = TestEnv::new();
    // 600 per minute = one token every 100 ms, no burst beyond one; 300 ms between sends to
    // the same recipient.
    let pacing = Pacing {
        enabled: true,
        per_minute: 600,
        burst: 1,
        jitter_ms: 0,
        min_recipient_gap_ms: 300,
        daily_cap: None,
    };
    let id = env.session("s1", pacing).await;
    let runner = env.start(env.config("r1"));
    eventually(WAIT, "connected", || async {
        env.get(&id).await.status == SessionStatus::Connected
    })
    .await;

    let (one, two) = (chat(1), chat(2));
    let mut ids = Vec::new();
    for (to, body) in [
        (&one, "1a"),
        (&two, "2a"),
        (&one, "1b"),
        (&two, "2b"),
        (&two, "2c"),
    ] {
        ids.push(env.enqueue_text(&id, to, body).await);
    }
    eventually(WAIT, "all sent", || async {
        for m in &ids {
            if env.message(&id, m).await.status != MessageStatus::Sent {
                return false;
            }
        }
        true
    })
    .await;

    let all = env.fake.inbox();
    let first = all.iter().map(|d| d.at).min().unwrap();
    let last = all.iter().map(|d| d.at).max().unwrap();
    // Five sends at one token per 100 ms: at least 400 ms from the first to the last.
    assert!(
        last - first >= Duration::from_millis(400),
        "took only {:?}",
        last - first
    );
    for to in [&one, &two] {
        let times: Vec<_> = env.fake.received_by(to).iter().map(|d| d.at).collect();
        for pair in times.windows(2) {
            // A few ms of slack: the gap is booked from the earlier send's reservation.
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(290),
                "{to}: gap of {:?}",
                pair[1] - pair[0]
            );
        }
    }
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_engine_error_marks_the_message_failed_with_its_reason_code() {
    let env = TestEnv::new();
    let id = env.session("s1", Pacing::default()).await;
    let runner = env.start(env.config("r1"));
    eventually(WAIT, "connected", || async {
        env.get(&id).await.status == SessionStatus::Connected
    })
    .await;

    env.fake
        .fail_next_sends([openwa_runner::engine::EngineError::Recipient(
            "not on WhatsApp".into(),
        )]);
    let msg = env.enqueue_text(&id, &chat(3), "nobody").await;
    eventually(WAIT, "failed", || async {
        env.message(&id, &msg).await.status == MessageStatus::Failed
    })
    .await;
    assert_eq!(
        env.message(&id, &msg).await.failure.unwrap().code,
        "recipient_unavailable"
    );
    assert!(env.fake.inbox().is_empty());
    let events = env.drain_events().await;
    assert!(events.iter().any(|e| e.kind == EventType::MessageFailed
        && e.data["failure"]["code"] == "recipient_unavailable"));
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_lets_the_send_in_flight_finish_then_releases_the_lease() {
    let env = TestEnv::new();
    let id = env.session("s1", Pacing::default()).await;
    let to = chat(1);
    env.fake.slow_chat(&to, Duration::from_millis(500));
    let runner = env.start(env.config("r1"));
    eventually(WAIT, "connected", || async {
        env.get(&id).await.status == SessionStatus::Connected
    })
    .await;

    let msg = env.enqueue_text(&id, &to, "in flight").await;
    eventually(WAIT, "sending", || async {
        env.message(&id, &msg).await.status == MessageStatus::Sending
    })
    .await;
    runner.stop().await;

    assert_eq!(env.message(&id, &msg).await.status, MessageStatus::Sent);
    assert_eq!(env.fake.received_by(&to).len(), 1);
    let s = env.get(&id).await;
    assert!(s.lease.owner.is_none(), "released");
    assert_eq!(env.fake.running(&id), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_job_was_dead_lettered_is_marked_failed() {
    let env = TestEnv::new();
    let id = env.session("s1", Pacing::default()).await;
    let msg = env.enqueue_text(&id, &chat(1), "never").await;
    // The queue gives up on the job (as after too many receives) before any runner sent it.
    let queue = openwa_core::ports::QueueName::Send(id.clone());
    let jobs = env
        .backend
        .queue
        .receive(&queue, 1, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    env.backend
        .queue
        .dead_letter(&queue, &jobs[0].receipt, "max receives")
        .await
        .unwrap();

    let runner = env.start(env.config("r1"));
    eventually(WAIT, "failed", || async {
        env.message(&id, &msg).await.status == MessageStatus::Failed
    })
    .await;
    assert_eq!(
        env.message(&id, &msg).await.failure.unwrap().code,
        "send_dead_lettered"
    );
    assert!(env.fake.inbox().is_empty());
    runner.stop().await;
}
