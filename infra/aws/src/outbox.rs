//! The outbox relay: hands the events that stores wrote into the table's outbox
//! (`dynamo::outbox`, e.g. `message.queued` written with its message) on to the events queue,
//! with the session's metadata attached.
//!
//! Two drivers share [`OutboxRelay::forward`]:
//! - on AWS, the `openwa-outbox` Lambda, whose event source is the table's stream filtered to
//!   outbox inserts (Lambda does the stream reading, checkpointing and retries);
//! - elsewhere (moto, LocalStack, `openwa up --backend aws`), [`StreamRelay`], which reads the
//!   stream itself: every shard from its checkpoint (an item `OUTBOXPOS#<shard>` holding the
//!   sequence number that ends the last page with events) or from the oldest record,
//!   re-listing shards as they close and split.
//!
//! Delivery is at least once: a record may be forwarded again after a crash between the send
//! and the checkpoint, and fan-out is idempotent on event id.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use openwa_core::error::{Error, Result};
use openwa_core::event::Event;
use openwa_core::id::SessionId;
use openwa_core::ports::{JobQueue, NewJob, QueueName, SessionStore};

use crate::context::AwsContext;
use crate::dynamo::outbox::{EVENT_ATTR, event_of};
use crate::error::sdk_error;
use crate::resources::table::{PK, TTL};

/// Forwards outbox events to the events queue.
#[derive(Clone)]
pub struct OutboxRelay {
    sessions: Arc<dyn SessionStore>,
    queue: Arc<dyn JobQueue>,
}

impl OutboxRelay {
    pub fn new(sessions: Arc<dyn SessionStore>, queue: Arc<dyn JobQueue>) -> Self {
        Self { sessions, queue }
    }

    /// Publishes `events` on the events queue (batched), each with its session's metadata
    /// (read once per session and batch; an event of a deleted session goes without). One
    /// result per event, in order: an event may fail alone and be retried alone.
    pub async fn forward(&self, events: Vec<Event>) -> Vec<Result<()>> {
        let mut metadata: HashMap<SessionId, Result<BTreeMap<String, String>>> = HashMap::new();
        let mut out: Vec<Option<Result<()>>> = vec![None; events.len()];
        let mut jobs = Vec::new();
        let mut slots = Vec::new();
        for (i, mut event) in events.into_iter().enumerate() {
            if let Some(session) = event
                .session_id
                .clone()
                .filter(|_| event.metadata.is_empty())
            {
                if !metadata.contains_key(&session) {
                    let found = match self.sessions.get(&session).await {
                        Ok(s) => Ok(s.config.metadata),
                        Err(Error::NotFound { .. }) => Ok(BTreeMap::new()),
                        Err(e) => Err(e),
                    };
                    metadata.insert(session.clone(), found);
                }
                match &metadata[&session] {
                    Ok(m) => event.metadata = m.clone(),
                    Err(e) => {
                        out[i] = Some(Err(e.clone()));
                        continue;
                    }
                }
            }
            match serde_json::to_vec(&event) {
                Ok(body) => {
                    jobs.push(NewJob {
                        body,
                        ..NewJob::default()
                    });
                    slots.push(i);
                }
                Err(e) => out[i] = Some(Err(Error::unexpected(format!("event: {e}")))),
            }
        }
        let mut sent = self
            .queue
            .send_batch(&QueueName::Events, jobs.clone())
            .await;
        // A fresh account: create the queue once and resend what it refused.
        if sent
            .iter()
            .any(|r| matches!(r, Err(Error::NotFound { .. })))
        {
            if let Err(e) = self.queue.ensure(&QueueName::Events).await {
                tracing::warn!(error = %e, "events queue could not be created");
            }
            let again: Vec<usize> = (0..sent.len())
                .filter(|&j| matches!(sent[j], Err(Error::NotFound { .. })))
                .collect();
            let retry = again.iter().map(|&j| jobs[j].clone()).collect();
            let results = self.queue.send_batch(&QueueName::Events, retry).await;
            for (j, r) in again.into_iter().zip(results) {
                sent[j] = r;
            }
        }
        for (slot, r) in slots.into_iter().zip(sent) {
            out[slot] = Some(r);
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::unexpected("event was not sent"))))
            .collect()
    }
}

/// Sort key of checkpoint items.
const CHECKPOINT_SK: &str = "OUTBOXPOS";
/// Attribute of a checkpoint: the last forwarded sequence number.
const SEQ: &str = "seq";
/// The stream keeps records 24 h; a checkpoint outlives that.
const CHECKPOINT_KEEP: chrono::Duration = chrono::Duration::days(2);
/// Pause after a pass that found nothing.
const IDLE: Duration = Duration::from_millis(200);
/// Re-list the stream's shards this often (shards close and split over time).
const RELIST: Duration = Duration::from_secs(30);

/// The polling driver of the relay, for endpoints without Lambda event sources.
pub struct StreamRelay {
    ctx: Arc<AwsContext>,
    client: aws_sdk_dynamodbstreams::Client,
    relay: OutboxRelay,
    stream: Option<String>,
    /// Open shards and their next iterator (`None`: not opened yet).
    shards: BTreeMap<String, Option<String>>,
    /// Shards read to their end.
    finished: std::collections::BTreeSet<String>,
    listed_at: Option<Instant>,
}

impl StreamRelay {
    pub fn new(ctx: Arc<AwsContext>, relay: OutboxRelay) -> Self {
        let client = ctx.streams_client();
        Self {
            ctx,
            client,
            relay,
            stream: None,
            shards: BTreeMap::new(),
            finished: Default::default(),
            listed_at: None,
        }
    }

    /// Relays until `stop` resolves; errors are logged and retried after a pause.
    pub async fn run(mut self, stop: impl Future<Output = ()> + Send) {
        tokio::pin!(stop);
        loop {
            let pause = match self.pass().await {
                Ok(0) => IDLE,
                Ok(_) => Duration::ZERO,
                Err(error) => {
                    tracing::warn!(%error, "outbox relay pass failed; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One pass: one `GetRecords` per open shard, forwarding outbox inserts. Returns how many
    /// records were read (outbox or not).
    pub async fn pass(&mut self) -> Result<usize> {
        self.list_shards().await?;
        let mut read = 0;
        let ids: Vec<String> = self.shards.keys().cloned().collect();
        for shard in ids {
            read += self.read_shard(&shard).await?;
        }
        Ok(read)
    }

    async fn stream_arn(&mut self) -> Result<String> {
        if let Some(arn) = &self.stream {
            return Ok(arn.clone());
        }
        let table = &self.ctx.settings.table;
        let described = self
            .ctx
            .dynamo
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error("DescribeTable", e))?;
        let arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| {
                Error::unavailable(format!(
                    "table {table} has no stream: run `openwa bootstrap` to enable it"
                ))
            })?
            .to_owned();
        self.stream = Some(arn.clone());
        Ok(arn)
    }

    async fn list_shards(&mut self) -> Result<()> {
        if self.listed_at.is_some_and(|t| t.elapsed() < RELIST) {
            return Ok(());
        }
        let arn = self.stream_arn().await?;
        let mut start: Option<String> = None;
        loop {
            let out = self
                .client
                .describe_stream()
                .stream_arn(&arn)
                .set_exclusive_start_shard_id(start.clone())
                .send()
                .await
                .map_err(|e| sdk_error("DescribeStream", e))?;
            let Some(description) = out.stream_description() else {
                break;
            };
            for shard in description.shards() {
                if let Some(id) = shard.shard_id()
                    && !self.finished.contains(id)
                {
                    self.shards.entry(id.to_owned()).or_insert(None);
                }
            }
            start = description.last_evaluated_shard_id().map(str::to_owned);
            if start.is_none() {
                break;
            }
        }
        self.listed_at = Some(Instant::now());
        Ok(())
    }

    fn checkpoint_key(shard: &str) -> crate::dynamo::codec::Item {
        crate::dynamo::codec::key(format!("OUTBOXPOS#{shard}"), CHECKPOINT_SK)
    }

    async fn open_shard(&self, shard: &str) -> Result<String> {
        let arn = self.stream.clone().unwrap_or_default();
        let checkpoint = self
            .ctx
            .dynamo
            .get_item()
            .table_name(&self.ctx.settings.table)
            .set_key(Some(Self::checkpoint_key(shard)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let seq = checkpoint
            .item()
            .and_then(|i| i.get(SEQ))
            .and_then(|v| v.as_s().ok())
            .cloned();
        let request = || {
            self.client
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(shard)
        };
        let from_start = request().shard_iterator_type(ShardIteratorType::TrimHorizon);
        let out = match seq {
            Some(seq) => {
                let after = request()
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(&seq)
                    .send()
                    .await;
                match after {
                    Ok(out) => out,
                    // The checkpoint is older than the stream's retention (24 h): what it
                    // pointed after is gone, so read from the oldest record still there.
                    Err(e) => {
                        let error = sdk_error("GetShardIterator", e);
                        tracing::warn!(shard, %error, "outbox checkpoint unusable; reading the shard from its oldest record");
                        from_start
                            .send()
                            .await
                            .map_err(|e| sdk_error("GetShardIterator", e))?
                    }
                }
            }
            None => from_start
                .send()
                .await
                .map_err(|e| sdk_error("GetShardIterator", e))?,
        };
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| Error::unexpected(format!("no iterator for shard {shard}")))
    }

    /// Reads one page of `shard`. On any failure the shard's iterator is dropped, so the next
    /// pass re-opens it at the checkpoint: iterators expire (15 minutes on AWS), and a page
    /// whose events were not all forwarded must be read again anyway.
    async fn read_shard(&mut self, shard: &str) -> Result<usize> {
        let read = self.read_page(shard).await;
        if read.is_err() && self.shards.contains_key(shard) {
            self.shards.insert(shard.to_owned(), None);
        }
        read
    }

    async fn read_page(&mut self, shard: &str) -> Result<usize> {
        let iterator = match self.shards.get(shard).cloned().flatten() {
            Some(it) => it,
            None => self.open_shard(shard).await?,
        };
        let out = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .send()
            .await
            .map_err(|e| sdk_error("GetRecords", e))?;
        let records = out.records();
        let events: Vec<Event> = records.iter().filter_map(outbox_event).collect();
        let any_events = !events.is_empty();
        let forwarded = self.relay.forward(events).await;
        if let Some(error) = forwarded.into_iter().find_map(Result::err) {
            // The whole page is read again from the checkpoint (at least once).
            return Err(error);
        }
        // Only pages that carried events move the checkpoint: the checkpoint is an item of the
        // same table, so writing it after every page would feed the stream a record per page,
        // forever. A restart re-reads at most the pages without events since, and skips them.
        if any_events
            && let Some(last) = records.last().and_then(|r| r.dynamodb()?.sequence_number())
        {
            self.save_checkpoint(shard, last).await?;
        }
        match out.next_shard_iterator() {
            Some(next) => {
                self.shards.insert(shard.to_owned(), Some(next.to_owned()));
            }
            None => {
                // The shard closed and is read to its end; its children appear on re-listing.
                self.shards.remove(shard);
                self.finished.insert(shard.to_owned());
                self.listed_at = None;
            }
        }
        Ok(records.len())
    }

    async fn save_checkpoint(&self, shard: &str, seq: &str) -> Result<()> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let mut item = Self::checkpoint_key(shard);
        item.insert(SEQ.to_owned(), AttributeValue::S(seq.to_owned()));
        let expires = self.ctx.clock.now() + CHECKPOINT_KEEP;
        item.insert(
            TTL.to_owned(),
            AttributeValue::N(expires.timestamp().to_string()),
        );
        self.ctx
            .dynamo
            .put_item()
            .table_name(&self.ctx.settings.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("PutItem", e))?;
        Ok(())
    }
}

/// The event of an outbox `INSERT` record; `None` for anything else. A record that claims to be
/// an outbox item but does not decode is logged and skipped (retrying cannot fix it).
fn outbox_event(record: &Record) -> Option<Event> {
    use aws_sdk_dynamodbstreams::types::OperationType;
    if record.event_name() != Some(&OperationType::Insert) {
        return None;
    }
    let image = record.dynamodb()?.new_image()?;
    let pk = image.get(PK)?.as_s().ok()?;
    let json = image.get(EVENT_ATTR).and_then(|v| v.as_s().ok());
    match event_of(pk, json.map(String::as_str)) {
        Ok(event) => event,
        Err(error) => {
            tracing::error!(%error, "undecodable outbox record skipped");
            None
        }
    }
}
