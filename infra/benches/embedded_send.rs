//! Throughput of the embedded backend on the API's send path: per accepted send, one session
//! read, one message insert, one queue insert and one audit insert. Prints figures; asserts
//! nothing.
//!
//! Three runs: 10k sequential message inserts; closed loop (`concurrency` senders as fast as
//! they can); open loop (sends started at a fixed rate, the API's target of 2,000/s). A
//! consumer drains the send queue meanwhile, as a runner would.
//!
//! `cargo bench -p openwa-infra --bench embedded_send [-- <sends> <concurrency> <rate> <seconds>]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use openwa_core::audit::AuditEntry;
use openwa_core::clock::{Clock, SystemClock};
use openwa_core::content::{Content, MessageType};
use openwa_core::id::{MessageId, SessionId};
use openwa_core::jid::ChatId;
use openwa_core::message::{Direction, Message, MessageStatus};
use openwa_core::ports::{Backend, NewJob, QueueName};
use openwa_core::session::{Session, SessionConfig};

fn message(session: &SessionId, chat: &ChatId, n: usize, clock: &dyn Clock) -> Message {
    let now = clock.now();
    Message {
        id: MessageId::generate(),
        wa_id: None,
        session_id: session.clone(),
        chat_id: chat.clone(),
        direction: Direction::Outbound,
        author: None,
        kind: MessageType::Text,
        content: Content::Text {
            body: format!("hello number {n}"),
            link_preview: false,
        },
        reply_to: None,
        mentions: Vec::new(),
        status: MessageStatus::Queued,
        failure: None,
        idempotency_key: Some(format!("key-{n}")),
        request_fingerprint: Some("f".repeat(64)),
        created_at: now,
        updated_at: now,
    }
}

async fn send(b: &Backend, session: &SessionId, chat: &ChatId, n: usize) {
    b.sessions.get(session).await.unwrap();
    let m = message(session, chat, n, b.clock.as_ref());
    b.messages.insert(&m).await.unwrap();
    let job = NewJob {
        body: vec![b'x'; 160],
        group: Some(chat.to_string()),
        dedup_id: Some(m.id.to_string()),
        delay: Duration::ZERO,
    };
    b.queue
        .send(&QueueName::Send(session.clone()), job)
        .await
        .unwrap();
    let entry = AuditEntry::new(
        None,
        "message.send",
        format!("message:{}", m.id),
        Some(session.clone()),
        "ok",
        m.created_at,
    );
    b.audit.append(&entry).await.unwrap();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, sends: usize, elapsed: Duration, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    println!(
        "{what}: {sends} sends in {elapsed:.2?} ({:.0} sends/s), p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        sends as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
    );
}

/// Receives and acks send jobs until the returned flag is set, like a runner.
fn consume(
    b: &Backend,
    session: &SessionId,
) -> (
    Arc<std::sync::atomic::AtomicBool>,
    tokio::task::JoinHandle<usize>,
) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (b, q, flag) = (b.clone(), QueueName::Send(session.clone()), stop.clone());
    let task = tokio::spawn(async move {
        let mut done = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            for job in b
                .queue
                .receive(&q, 10, Duration::from_secs(30), Duration::from_millis(200))
                .await
                .unwrap()
            {
                b.queue.ack(&q, &job.receipt).await.unwrap();
                done += 1;
            }
        }
        done
    });
    (stop, task)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sends = args.first().copied().unwrap_or(20_000);
    let concurrency = args.get(1).copied().unwrap_or(64);
    let rate = args.get(2).copied().unwrap_or(2_000);
    let seconds = args.get(3).copied().unwrap_or(10);
    let dir = tempfile::tempdir().unwrap();
    let b = openwa_infra::embedded::open(dir.path(), Arc::new(SystemClock)).unwrap();
    let session = SessionId::parse("bench").unwrap();
    let chat = ChatId::parse("491510000001@c.us").unwrap();
    b.sessions
        .create(
            &Session::new(
                session.clone(),
                None,
                SessionConfig::default(),
                b.clock.now(),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    b.queue
        .ensure(&QueueName::Send(session.clone()))
        .await
        .unwrap();

    let started = Instant::now();
    for n in 0..10_000 {
        b.messages
            .insert(&message(&session, &chat, 1_000_000 + n, b.clock.as_ref()))
            .await
            .unwrap();
    }
    let inserts = started.elapsed();
    println!(
        "10000 sequential message inserts: {inserts:?} ({:.0}/s)",
        10_000.0 / inserts.as_secs_f64()
    );

    let chats: Vec<ChatId> = (0..50)
        .map(|i| ChatId::parse(&format!("4915100{i:05}@c.us")).unwrap())
        .collect();
    let (stop, consumer) = consume(&b, &session);

    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (b, session, chats) = (b.clone(), session.clone(), chats.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for n in (w..sends).step_by(concurrency) {
                    let t = Instant::now();
                    send(&b, &session, &chats[n % chats.len()], n).await;
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(sends);
    for w in workers {
        latencies.extend(w.await.unwrap());
    }
    report(
        &format!("closed loop, concurrency {concurrency}"),
        sends,
        started.elapsed(),
        latencies,
    );

    let paced = rate * seconds;
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut tasks = Vec::with_capacity(paced);
    for n in 0..paced {
        tick.tick().await;
        let (b, session, chat) = (b.clone(), session.clone(), chats[n % chats.len()].clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            send(&b, &session, &chat, sends + n).await;
            t.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(paced);
    for t in tasks {
        latencies.push(t.await.unwrap());
    }
    report(
        &format!("open loop at {rate}/s"),
        paced,
        started.elapsed(),
        latencies,
    );

    // The same open loop with no database work: what this machine's scheduling alone costs.
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(paced);
    for _ in 0..paced {
        tick.tick().await;
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            tokio::task::spawn_blocking(|| ()).await.unwrap();
            t.elapsed()
        }));
    }
    let mut latencies = Vec::with_capacity(paced);
    for t in tasks {
        latencies.push(t.await.unwrap());
    }
    report(
        &format!("noise floor (empty spawn_blocking) at {rate}/s"),
        paced,
        started.elapsed(),
        latencies,
    );

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    println!(
        "consumer received and acked {} jobs meanwhile",
        consumer.await.unwrap()
    );
}
