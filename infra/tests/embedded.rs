//! Behaviour of the embedded backend beyond the port contracts: the files it keeps, schema
//! versions, durability across reopening.

use std::sync::Arc;
use std::time::Duration;

use openwa_core::Error;
use openwa_core::clock::SystemClock;
use openwa_core::ports::{Backend, NewJob, QueueName};
use openwa_infra::conformance::fixtures::{base_time, chat, message, session, session_id};
use openwa_infra::embedded::{self, DB_FILE, SCHEMA_VERSION, SECRETS_FILE};
use secrecy::{ExposeSecret, SecretString};

fn open(dir: &std::path::Path) -> openwa_core::Result<Backend> {
    embedded::open(dir, Arc::new(SystemClock))
}

#[tokio::test]
async fn a_database_written_by_a_newer_openwa_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);

    let Err(err) = open(dir.path()) else {
        panic!("a newer schema must be refused")
    };

    assert!(matches!(err, Error::Unexpected { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("version {}", SCHEMA_VERSION + 1)) && text.contains("newer"),
        "{text}"
    );
}

#[tokio::test]
async fn data_survives_reopening_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let sid = session_id("keep");
    let s = session(&sid, base_time());
    let m = message(&sid, &chat(1), Some("k"), base_time());
    let queue = QueueName::Send(sid.clone());
    {
        let b = open(dir.path()).unwrap();
        b.sessions.create(&s).await.unwrap();
        b.messages.insert(&m).await.unwrap();
        b.queue.ensure(&queue).await.unwrap();
        let job = NewJob {
            body: b"job".to_vec(),
            group: Some("g".into()),
            dedup_id: Some("d".into()),
            delay: Duration::ZERO,
        };
        b.queue.send(&queue, job).await.unwrap();
        b.blobs
            .put(
                "snapshots/keep.bin",
                b"auth".to_vec(),
                "application/octet-stream",
            )
            .await
            .unwrap();
        b.secrets
            .put("snapshot-key", SecretString::from("k3y"))
            .await
            .unwrap();
    }

    let b = open(dir.path()).unwrap();

    assert_eq!(b.sessions.get(&sid).await.unwrap(), s);
    assert_eq!(b.messages.get(&sid, &m.id).await.unwrap(), m);
    let jobs = b
        .queue
        .receive(&queue, 10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].body, b"job");
    assert_eq!(b.blobs.get("snapshots/keep.bin").await.unwrap().0, b"auth");
    assert_eq!(
        b.secrets
            .get("snapshot-key")
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "k3y"
    );
}

#[tokio::test]
async fn the_database_runs_in_wal_mode_at_the_current_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let _backend = open(dir.path()).unwrap();

    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();

    assert_eq!(mode, "wal");
    assert_eq!(version, SCHEMA_VERSION);
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_its_secrets_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("nested").join("data");
    let b = open(&data).unwrap();
    b.secrets
        .put("admin-key", SecretString::from("x"))
        .await
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join(DB_FILE)), 0o600);
    assert_eq!(mode(&data.join(SECRETS_FILE)), 0o600);
}

#[tokio::test]
async fn a_job_in_flight_when_the_process_stopped_is_redelivered_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let b = open(dir.path()).unwrap();
        b.queue.ensure(&QueueName::Deliveries).await.unwrap();
        b.queue
            .send(
                &QueueName::Deliveries,
                NewJob {
                    body: b"d".to_vec(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let got = b
            .queue
            .receive(
                &QueueName::Deliveries,
                1,
                Duration::from_millis(300),
                Duration::ZERO,
            )
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
    }

    let b = open(dir.path()).unwrap();
    let again = b
        .queue
        .receive(
            &QueueName::Deliveries,
            1,
            Duration::from_secs(30),
            Duration::from_secs(3),
        )
        .await
        .unwrap();

    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
}

#[tokio::test]
async fn two_backends_on_one_data_directory_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (open(dir.path()).unwrap(), open(dir.path()).unwrap());
    let s = session(&session_id("shared"), base_time());

    a.sessions.create(&s).await.unwrap();

    assert_eq!(b.sessions.get(&s.id).await.unwrap(), s);
    let now = base_time();
    let claimed = b
        .sessions
        .claim(&s.id, "r-b", now, now + chrono::Duration::seconds(30))
        .await
        .unwrap();
    assert!(matches!(
        a.sessions.claim(&s.id, "r-a", now, now).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(a.sessions.get(&s.id).await.unwrap().lease, claimed.lease);
}

#[tokio::test]
async fn a_failed_write_does_not_undo_the_writes_committed_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path()).unwrap();
    let sid = session_id("batch");
    let dup = message(&sid, &chat(1), None, base_time());
    b.messages.insert(&dup).await.unwrap();

    // Many writes at once share commits; the conflicting one must fail alone.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (store, m) = (
                b.messages.clone(),
                if i == 25 {
                    dup.clone()
                } else {
                    message(&sid, &chat(1), None, base_time())
                },
            );
            tokio::spawn(async move { store.insert(&m).await.map(|_| m.id) })
        })
        .collect();
    let mut ok = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(id) => ok.push(id),
            Err(Error::Conflict { .. }) => conflicts += 1,
            Err(e) => panic!("{e}"),
        }
    }

    assert_eq!((ok.len(), conflicts), (49, 1));
    for id in ok {
        b.messages.get(&sid, &id).await.unwrap();
    }
}

fn grouped(body: &str, group: &str, delay: Duration) -> NewJob {
    NewJob {
        body: body.as_bytes().to_vec(),
        group: Some(group.into()),
        dedup_id: Some(body.into()),
        delay,
    }
}

// SQS FIFO queues have no per-job delay; the embedded one has, and a delayed head must still
// hold its group back rather than let a later job overtake it.
#[tokio::test]
async fn a_delayed_job_at_the_head_of_a_fifo_group_holds_the_group_back() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path()).unwrap();
    let q = QueueName::Send(session_id("fifo"));
    b.queue.ensure(&q).await.unwrap();
    b.queue
        .send(&q, grouped("first", "g", Duration::from_millis(500)))
        .await
        .unwrap();
    b.queue
        .send(&q, grouped("second", "g", Duration::ZERO))
        .await
        .unwrap();
    b.queue
        .send(&q, grouped("other", "h", Duration::ZERO))
        .await
        .unwrap();

    let now = b
        .queue
        .receive(&q, 10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    let later = b
        .queue
        .receive(&q, 10, Duration::from_secs(30), Duration::from_secs(3))
        .await
        .unwrap();

    assert_eq!(
        now.iter().map(|j| j.body.as_slice()).collect::<Vec<_>>(),
        [&b"other"[..]]
    );
    assert_eq!(
        later.iter().map(|j| j.body.as_slice()).collect::<Vec<_>>(),
        [&b"first"[..]]
    );
}

#[tokio::test]
async fn a_retried_job_keeps_its_place_at_the_head_of_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(dir.path()).unwrap();
    let q = QueueName::Send(session_id("fifo"));
    b.queue.ensure(&q).await.unwrap();
    for body in ["a1", "a2"] {
        b.queue
            .send(&q, grouped(body, "a", Duration::ZERO))
            .await
            .unwrap();
    }
    let first = b
        .queue
        .receive(&q, 10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap()
        .remove(0);

    b.queue
        .retry_later(&q, &first.receipt, Duration::from_millis(300))
        .await
        .unwrap();

    assert!(
        b.queue
            .receive(&q, 10, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    let again = b
        .queue
        .receive(&q, 10, Duration::from_secs(30), Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(
        (
            again.len(),
            again[0].body.as_slice(),
            again[0].receive_count
        ),
        (1, &b"a1"[..], 2)
    );
    b.queue.ack(&q, &again[0].receipt).await.unwrap();
    let next = b
        .queue
        .receive(&q, 10, Duration::from_secs(30), Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(next[0].body, b"a2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_is_woken_by_a_send_not_by_its_poll_timer() {
    let dir = tempfile::tempdir().unwrap();
    let poll_interval = Duration::from_secs(30);
    let config = embedded::EmbeddedConfig {
        poll_interval,
        ..Default::default()
    };
    let b = embedded::open_with(dir.path(), Arc::new(SystemClock), config).unwrap();
    b.queue.ensure(&QueueName::Ingress).await.unwrap();
    let poller = {
        let queue = b.queue.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let jobs = queue
                .receive(
                    &QueueName::Ingress,
                    1,
                    Duration::from_secs(30),
                    Duration::from_secs(60),
                )
                .await;
            (jobs, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    b.queue
        .send(
            &QueueName::Ingress,
            NewJob {
                body: b"now".to_vec(),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let (jobs, waited) = poller.await.unwrap();
    assert_eq!(jobs.unwrap().len(), 1);
    assert!(waited < poll_interval, "woken after {waited:?}");
}

#[tokio::test]
async fn once_writes_pause_the_wal_is_copied_into_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded::EmbeddedConfig {
        checkpoint_after_idle: Duration::from_millis(100),
        ..Default::default()
    };
    let b = embedded::open_with(dir.path(), Arc::new(SystemClock), config).unwrap();
    let s = session(&session_id("ckpt"), base_time());
    b.sessions.create(&s).await.unwrap();

    tokio::time::sleep(Duration::from_millis(800)).await;

    // The database file alone, without its WAL, already holds the session.
    let copy = dir.path().join("copy.db");
    std::fs::copy(dir.path().join(DB_FILE), &copy).unwrap();
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sessions WHERE id = ?",
            [s.id.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_wakes_a_long_poll_waiting_for_the_next_job_of_the_same_group() {
    // A poll fallback far longer than the wait: only the wake-up can deliver in time.
    let dir = tempfile::tempdir().unwrap();
    let config = embedded::EmbeddedConfig {
        poll_interval: Duration::from_secs(60),
        ..Default::default()
    };
    let b = embedded::open_with(dir.path(), Arc::new(SystemClock), config).unwrap();
    let queue = QueueName::Send(openwa_core::id::SessionId::parse("s1").unwrap());
    b.queue.ensure(&queue).await.unwrap();
    for body in [b"first".to_vec(), b"second".to_vec()] {
        let job = NewJob {
            body,
            group: Some("chat".into()),
            ..NewJob::default()
        };
        b.queue.send(&queue, job).await.unwrap();
    }
    let visibility = Duration::from_secs(30);
    let first = b
        .queue
        .receive(&queue, 1, visibility, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(first[0].body, b"first");

    let waiter = {
        let (q, name) = (b.queue.clone(), queue.clone());
        tokio::spawn(async move {
            q.receive(&name, 1, visibility, Duration::from_secs(20))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.queue.ack(&queue, &first[0].receipt).await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(15), waiter)
        .await
        .expect("the ack woke the waiting receive before its 20 s wait ran out")
        .unwrap()
        .unwrap();
    assert_eq!(second[0].body, b"second");
}
