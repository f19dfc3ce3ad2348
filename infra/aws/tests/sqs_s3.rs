//! The SQS, S3 and Secrets Manager adapters beyond the conformance suite: what only the AWS
//! backend does (S3 for oversize jobs, presigned URLs, the URL and secret caches).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_sqs::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_sqs::config::{ConfigBag, Intercept, RuntimeComponents};
use openwa_aws::AwsContext;
use openwa_aws::resources::bucket::OVERSIZE_PREFIX;
use openwa_aws::s3::S3BlobStore;
use openwa_aws::secrets::SecretsManagerSecrets;
use openwa_aws::sqs::{MAX_MESSAGE_BYTES, SqsJobQueue};
use openwa_core::ports::{BlobStore, JobQueue, NewJob, QueueName, Secrets};
use secrecy::{ExposeSecret, SecretString};

const LONG: Duration = Duration::from_secs(60);
const PATIENCE: Duration = Duration::from_secs(3);

async fn stack() -> Arc<AwsContext> {
    Arc::new(openwa_aws::testing::fresh_stack("x").await)
}

async fn payload_objects(ctx: &AwsContext) -> usize {
    ctx.s3
        .list_objects_v2()
        .bucket(&ctx.settings.bucket)
        .prefix(OVERSIZE_PREFIX)
        .send()
        .await
        .unwrap()
        .contents()
        .len()
}

#[tokio::test]
async fn a_job_too_large_for_sqs_travels_through_s3_and_is_deleted_on_ack() {
    let ctx = stack().await;
    let queue = SqsJobQueue::new(ctx.clone());
    let q = QueueName::Events;
    queue.ensure(&q).await.unwrap();
    let body: Vec<u8> = (0..=255u8).cycle().take(MAX_MESSAGE_BYTES + 1000).collect();

    queue
        .send(
            &q,
            NewJob {
                body: body.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(payload_objects(&ctx).await, 1, "the bytes went to S3");
    let got = queue.receive(&q, 1, LONG, PATIENCE).await.unwrap();

    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, body);
    queue.ack(&q, &got[0].receipt).await.unwrap();
    assert_eq!(payload_objects(&ctx).await, 0, "acking deleted the payload");
}

#[tokio::test]
async fn binary_and_empty_bodies_round_trip() {
    let ctx = stack().await;
    let queue = SqsJobQueue::new(ctx);
    let q = QueueName::Events;
    queue.ensure(&q).await.unwrap();
    let bodies = [
        vec![0u8, 1, 2, 255, 254],
        Vec::new(),
        "ünïcode ✓".as_bytes().to_vec(),
    ];

    for body in &bodies {
        queue
            .send(
                &q,
                NewJob {
                    body: body.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let mut got = Vec::new();
    while got.len() < bodies.len() {
        let jobs = queue.receive(&q, 10, LONG, PATIENCE).await.unwrap();
        assert!(!jobs.is_empty(), "every job arrives");
        got.extend(jobs.into_iter().map(|j| j.body));
    }

    got.sort();
    let mut want = bodies.to_vec();
    want.sort();
    assert_eq!(got, want);
}

/// Counts SQS requests by operation (the JSON protocol names it in `X-Amz-Target`).
#[derive(Debug, Default)]
struct Calls {
    get_queue_url: AtomicUsize,
    send_message: AtomicUsize,
}

#[derive(Debug, Clone, Default)]
struct CallCounter(Arc<Calls>);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sqs::error::BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("");
        if target.ends_with(".GetQueueUrl") {
            self.0.get_queue_url.fetch_add(1, Ordering::SeqCst);
        } else if target.ends_with(".SendMessage") {
            self.0.send_message.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

#[tokio::test]
async fn queue_urls_are_looked_up_once_not_per_send() {
    let mut ctx = (*stack().await).clone();
    let counter = CallCounter::default();
    ctx.sqs = aws_sdk_sqs::Client::from_conf(
        ctx.sqs
            .config()
            .to_builder()
            .interceptor(counter.clone())
            .build(),
    );
    let queue = SqsJobQueue::new(Arc::new(ctx));
    let q = QueueName::Deliveries;

    for n in 0..5 {
        queue
            .send(
                &q,
                NewJob {
                    body: format!("job {n}").into_bytes(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }

    assert_eq!(counter.0.send_message.load(Ordering::SeqCst), 5);
    assert_eq!(counter.0.get_queue_url.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_receipt_settled_by_retry_later_is_stale() {
    let ctx = stack().await;
    let queue = SqsJobQueue::new(ctx);
    let q = QueueName::Events;
    queue.ensure(&q).await.unwrap();
    queue
        .send(
            &q,
            NewJob {
                body: b"j".to_vec(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let got = queue
        .receive(&q, 1, LONG, PATIENCE)
        .await
        .unwrap()
        .remove(0);

    queue.retry_later(&q, &got.receipt, LONG).await.unwrap();

    assert!(matches!(
        queue.ack(&q, &got.receipt).await,
        Err(openwa_core::Error::Conflict { .. })
    ));
}

#[tokio::test]
async fn a_presigned_get_url_serves_the_blob_over_plain_http() {
    let ctx = stack().await;
    let blobs = S3BlobStore::new(ctx);
    let key = format!("media/{}.txt", ulid::Ulid::new());
    blobs
        .put(&key, b"hello over http".to_vec(), "text/plain")
        .await
        .unwrap();

    let url = blobs
        .presigned_get(&key, Duration::from_secs(60))
        .await
        .unwrap()
        .expect("S3 offers URLs");
    let response = reqwest::get(&url).await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"hello over http");
}

#[tokio::test]
async fn a_presigned_put_url_accepts_a_direct_upload() {
    let ctx = stack().await;
    let blobs = S3BlobStore::new(ctx);
    let key = format!("media/{}.bin", ulid::Ulid::new());
    let url = blobs
        .presigned_put(&key, "image/png", Duration::from_secs(60))
        .await
        .unwrap();

    let response = reqwest::Client::new()
        .put(&url)
        .header("content-type", "image/png")
        .header("x-amz-server-side-encryption", "AES256")
        .body(b"png bytes".to_vec())
        .send()
        .await
        .unwrap();

    assert!(response.status().is_success(), "{}", response.status());
    let (bytes, meta) = blobs.get(&key).await.unwrap();
    assert_eq!(
        (bytes.as_slice(), meta.content_type.as_str()),
        (&b"png bytes"[..], "image/png")
    );
}

#[tokio::test]
async fn secrets_are_served_from_the_cache_until_it_expires() {
    let ctx = stack().await;
    let cached = SecretsManagerSecrets::new(ctx.clone());
    let other_process = SecretsManagerSecrets::new(ctx.clone());
    let name = format!("k-{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
    cached.put(&name, SecretString::from("v1")).await.unwrap();
    assert_eq!(
        cached.get(&name).await.unwrap().unwrap().expose_secret(),
        "v1"
    );

    other_process
        .put(&name, SecretString::from("v2"))
        .await
        .unwrap();

    assert_eq!(
        cached.get(&name).await.unwrap().unwrap().expose_secret(),
        "v1",
        "served from this process's cache, no call"
    );
    let uncached = SecretsManagerSecrets::with_ttl(ctx, Duration::ZERO);
    assert_eq!(
        uncached.get(&name).await.unwrap().unwrap().expose_secret(),
        "v2"
    );
}

#[tokio::test]
async fn an_undecodable_message_is_dead_lettered_alone_and_the_others_are_received() {
    use openwa_aws::sqs::wire::{attr, string_attr};
    let ctx = stack().await;
    let queue = SqsJobQueue::new(ctx.clone());
    queue.ensure(&QueueName::Events).await.unwrap();
    let url =
        openwa_aws::bootstrap::queue_url(&ctx, &format!("{}-events", ctx.settings.queue_prefix))
            .await
            .unwrap()
            .unwrap();
    // Claims base64, is not: written past the adapter, as a foreign producer might.
    ctx.sqs
        .send_message()
        .queue_url(&url)
        .message_body("not base64!")
        .message_attributes(attr::ENCODING, string_attr("base64"))
        .message_attributes(attr::QUEUE, string_attr(QueueName::Events.key()))
        .send()
        .await
        .unwrap();
    queue
        .send(
            &QueueName::Events,
            NewJob {
                body: b"good".to_vec(),
                ..NewJob::default()
            },
        )
        .await
        .unwrap();

    let mut bodies = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while bodies.is_empty() && std::time::Instant::now() < deadline {
        for job in queue
            .receive(&QueueName::Events, 10, LONG, PATIENCE)
            .await
            .unwrap()
        {
            bodies.push(job.body);
        }
    }
    assert_eq!(bodies, vec![b"good".to_vec()]);
    let dead = queue.dead_letters(&QueueName::Events, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0].reason.contains("does not decode"),
        "{}",
        dead[0].reason
    );
}
