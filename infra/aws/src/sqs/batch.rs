//! `send_batch` on standard queues: `SendMessageBatch`, up to 10 entries and 256 KiB of bodies
//! and attributes per call. Each job is prepared exactly as `send` prepares it (a body too
//! large for SQS goes to S3 first), and each entry's outcome is reported on its own: SQS may
//! accept some entries of a call and refuse others. `ack_batch`: `DeleteMessageBatch`, 10
//! receipts per call, each checked and settled as `ack` does.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_sqs::types::{
    BatchResultErrorEntry, DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry,
};
use openwa_core::error::{Error, Result};
use openwa_core::ports::{NewJob, QueueName};

use super::wire::{self, Attributes, MAX_MESSAGE_BYTES, Receipt, attr, string_attr};
use super::{MAX_DELAY, SqsJobQueue, payload, whole_secs};

/// SQS's limit on entries per `SendMessageBatch`.
pub const MAX_SEND_BATCH: usize = 10;

/// One prepared job of a batch.
struct Entry {
    /// Its place in the caller's list.
    index: usize,
    body: String,
    attributes: Attributes,
    delay: Duration,
    /// Its S3 payload, deleted again if the send fails.
    object: Option<String>,
}

impl Entry {
    fn size(&self) -> usize {
        self.body.len() + wire::attributes_size(&self.attributes)
    }
}

impl SqsJobQueue {
    /// Sends `jobs` to the standard queue `queue` in as few calls as SQS allows.
    pub(super) async fn send_standard_batch(
        &self,
        queue: &QueueName,
        jobs: Vec<NewJob>,
    ) -> Vec<Result<()>> {
        let (name, key) = (self.name(queue), queue.key());
        let mut out: Vec<Option<Result<()>>> = jobs.iter().map(|_| None).collect();
        let url = match self.url(&name).await {
            Ok(url) => url,
            Err(e) => return jobs.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut prepared = Vec::with_capacity(jobs.len());
        for (index, job) in jobs.into_iter().enumerate() {
            if job.delay > MAX_DELAY {
                out[index] = Some(Err(Error::invalid(
                    "delay",
                    "SQS delays are at most 15 minutes",
                )));
                continue;
            }
            let mut attributes = Attributes::new();
            attributes.insert(attr::QUEUE.into(), string_attr(&key));
            if let Some(group) = &job.group {
                attributes.insert(attr::GROUP.into(), string_attr(group));
            }
            match payload::prepare(&self.ctx, &name, job.body, &mut attributes).await {
                Ok(body) => {
                    let object = wire::get(&attributes, attr::PAYLOAD).map(str::to_owned);
                    prepared.push(Entry {
                        index,
                        body,
                        attributes,
                        delay: job.delay,
                        object,
                    });
                }
                Err(e) => out[index] = Some(Err(e)),
            }
        }
        for chunk in chunks(prepared) {
            let results = self.send_entries(&name, &url, &chunk).await;
            for (entry, result) in chunk.iter().zip(results) {
                if let (Err(_), Some(object)) = (&result, &entry.object) {
                    payload::delete(&self.ctx, object).await;
                }
                out[entry.index] = Some(result);
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::unexpected("a job of the batch was not sent"))))
            .collect()
    }

    /// One `SendMessageBatch`; one result per entry, in order.
    async fn send_entries(&self, name: &str, url: &str, entries: &[Entry]) -> Vec<Result<()>> {
        let built = entries
            .iter()
            .enumerate()
            .map(|(n, e)| {
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(n.to_string())
                    .message_body(e.body.clone())
                    .set_message_attributes(Some(e.attributes.clone()));
                if !e.delay.is_zero() {
                    entry = entry.delay_seconds(whole_secs(e.delay) as i32);
                }
                entry.build()
            })
            .collect::<std::result::Result<Vec<_>, _>>();
        let built = match built {
            Ok(b) => b,
            Err(e) => {
                let err = Error::unexpected(format!("SendMessageBatch: {e}"));
                return entries.iter().map(|_| Err(err.clone())).collect();
            }
        };
        let sent = self
            .ctx
            .sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(built))
            .send()
            .await;
        let answer = match sent {
            Ok(answer) => answer,
            Err(e) => {
                let err = self.error("SendMessageBatch", name, e);
                return entries.iter().map(|_| Err(err.clone())).collect();
            }
        };
        entry_results(
            entries.len(),
            answer.successful().iter().map(|s| s.id()),
            answer.failed(),
            "SendMessageBatch: the entry was neither sent nor refused",
            |failed| {
                let why = format!(
                    "SendMessageBatch: SQS refused the job ({}: {})",
                    failed.code(),
                    failed.message().unwrap_or_default()
                );
                if failed.sender_fault() {
                    Error::invalid("job", why)
                } else {
                    Error::unavailable(why)
                }
            },
        )
    }
}

impl SqsJobQueue {
    /// Acks `receipts` of `queue` with `DeleteMessageBatch`; one result per receipt, in order.
    pub(super) async fn ack_many(&self, queue: &QueueName, receipts: &[String]) -> Vec<Result<()>> {
        let (name, key) = (self.name(queue), queue.key());
        let mut out: Vec<Result<()>> = receipts.iter().map(|_| Ok(())).collect();
        let mut current: Vec<(usize, Receipt)> = Vec::new();
        for (i, token) in receipts.iter().enumerate() {
            let checked =
                Receipt::decode(&key, token).and_then(|r| self.leases.check(&r).map(|_| r));
            match checked {
                Ok(r) => current.push((i, r)),
                Err(e) => out[i] = Err(e),
            }
        }
        if current.is_empty() {
            return out;
        }
        let url = match self.url(&name).await {
            Ok(url) => url,
            Err(e) => {
                for (i, _) in &current {
                    out[*i] = Err(e.clone());
                }
                return out;
            }
        };
        for chunk in current.chunks(MAX_SEND_BATCH) {
            for (n, result) in self
                .delete_entries(&name, &url, chunk)
                .await
                .into_iter()
                .enumerate()
            {
                let (i, receipt) = &chunk[n];
                if result.is_ok() {
                    self.leases.settle(receipt);
                    if let Some(object) = &receipt.payload {
                        payload::delete(&self.ctx, object).await;
                    }
                }
                out[*i] = result;
            }
        }
        out
    }

    /// One `DeleteMessageBatch`; one result per receipt, in order.
    async fn delete_entries(
        &self,
        name: &str,
        url: &str,
        receipts: &[(usize, Receipt)],
    ) -> Vec<Result<()>> {
        let built = receipts
            .iter()
            .enumerate()
            .map(|(n, (_, r))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(n.to_string())
                    .receipt_handle(&r.handle)
                    .build()
            })
            .collect::<std::result::Result<Vec<_>, _>>();
        let built = match built {
            Ok(b) => b,
            Err(e) => {
                let err = Error::unexpected(format!("DeleteMessageBatch: {e}"));
                return receipts.iter().map(|_| Err(err.clone())).collect();
            }
        };
        let answer = match self
            .ctx
            .sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(built))
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                let err = self.error("DeleteMessageBatch", name, e);
                return receipts.iter().map(|_| Err(err.clone())).collect();
            }
        };
        entry_results(
            receipts.len(),
            answer.successful().iter().map(|s| s.id()),
            answer.failed(),
            "DeleteMessageBatch: the entry was neither deleted nor refused",
            |failed| {
                let code = failed.code();
                if code.ends_with("ReceiptHandleIsInvalid") || code.ends_with("MessageNotInflight")
                {
                    Error::conflict(format!("the receipt is stale: SQS answered {code}"))
                } else {
                    Error::unavailable(format!("DeleteMessageBatch: SQS answered {code}"))
                }
            },
        )
    }
}

/// One result per entry of a batch call whose entry ids are their indexes: `Ok` for the ids SQS
/// reports successful, `refused(entry)` for those it reports failed, and `unanswered` for any it
/// reports neither way.
fn entry_results<'a>(
    entries: usize,
    successful: impl Iterator<Item = &'a str>,
    failed: &[BatchResultErrorEntry],
    unanswered: &str,
    refused: impl Fn(&BatchResultErrorEntry) -> Error,
) -> Vec<Result<()>> {
    let ok: HashSet<&str> = successful.collect();
    let mut results: Vec<Result<()>> = (0..entries)
        .map(|n| {
            if ok.contains(n.to_string().as_str()) {
                Ok(())
            } else {
                Err(Error::unavailable(unanswered))
            }
        })
        .collect();
    for entry in failed {
        if let Some(slot) = entry
            .id()
            .parse::<usize>()
            .ok()
            .and_then(|n| results.get_mut(n))
        {
            *slot = Err(refused(entry));
        }
    }
    results
}

/// Splits entries into calls SQS accepts: at most [`MAX_SEND_BATCH`] entries and
/// [`MAX_MESSAGE_BYTES`] of bodies and attributes each.
fn chunks(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut out: Vec<Vec<Entry>> = Vec::new();
    let mut bytes = 0;
    for entry in entries {
        let size = entry.size();
        match out.last_mut() {
            Some(last) if last.len() < MAX_SEND_BATCH && bytes + size <= MAX_MESSAGE_BYTES => {
                bytes += size;
                last.push(entry);
            }
            _ => {
                bytes = size;
                out.push(vec![entry]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: usize, size: usize) -> Entry {
        Entry {
            index,
            body: "x".repeat(size),
            attributes: Attributes::new(),
            delay: Duration::ZERO,
            object: None,
        }
    }

    #[test]
    fn calls_hold_at_most_ten_entries_and_256_kib() {
        let sizes: Vec<usize> = chunks((0..23).map(|i| entry(i, 10)).collect())
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [10, 10, 3]);

        let big = MAX_MESSAGE_BYTES / 2 - 100;
        let calls = chunks((0..5).map(|i| entry(i, big)).collect());
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(
            calls
                .iter()
                .all(|c| c.iter().map(Entry::size).sum::<usize>() <= MAX_MESSAGE_BYTES)
        );
        let order: Vec<usize> = calls.iter().flatten().map(|e| e.index).collect();
        assert_eq!(order, [0, 1, 2, 3, 4]);
    }
}
