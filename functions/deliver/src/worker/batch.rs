//! The batch side of the deliver step: [`Prefetched`], what a batch of jobs needs read once
//! for all of them, and [`Deliverer::handle_many`], which handles a batch together (the deliver
//! Lambda: one read of the deliveries, one of the webhooks, one write of the outcomes, one
//! batched send of the retry jobs).

use std::collections::{BTreeSet, HashMap, HashSet};

use futures::FutureExt as _;
use openwa_core::error::{Error, Result};
use openwa_core::id::{DeliveryId, WebhookId};
use openwa_core::ports::{NewJob, QueueName, ReceivedJob};
use openwa_core::webhook::{Delivery, DeliveryAttempt, DeliveryJob, Webhook};
use openwa_fanout::batch::Handled;

use super::{Deliverer, Step, retry_job};

/// The deliveries and webhooks of a batch of jobs, read once for the whole batch. A part that
/// could not be read (or a job whose webhook was not asked for) is read per job instead.
#[derive(Debug, Default)]
pub struct Prefetched {
    /// `None`: not read.
    deliveries: Option<HashMap<DeliveryId, Delivery>>,
    webhooks: HashMap<WebhookId, Webhook>,
    /// The webhooks asked for, found or not.
    asked: HashSet<WebhookId>,
}

impl Prefetched {
    /// `Some(found)` if the delivery was read with the batch.
    pub(super) fn delivery(&self, id: &DeliveryId) -> Option<Option<&Delivery>> {
        self.deliveries.as_ref().map(|all| all.get(id))
    }

    /// `Some(found)` if the webhook was read with the batch.
    pub(super) fn webhook(&self, id: &WebhookId) -> Option<Option<&Webhook>> {
        self.asked.contains(id).then(|| self.webhooks.get(id))
    }
}

impl Deliverer {
    /// Reads what the jobs of a batch need, one call for their deliveries and one for their
    /// webhooks. Never fails: a read that failed is left to each job.
    #[tracing::instrument(skip_all, fields(jobs = jobs.len()))]
    pub async fn prefetch(&self, jobs: &[DeliveryJob]) -> Prefetched {
        if jobs.is_empty() {
            return Prefetched::default();
        }
        let ids: Vec<DeliveryId> = jobs
            .iter()
            .map(|j| j.delivery_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let hooks: Vec<WebhookId> = jobs
            .iter()
            .filter_map(|j| j.webhook_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let read_hooks = async {
            if hooks.is_empty() {
                Ok(Vec::new())
            } else {
                self.webhooks.get_many(&hooks).await
            }
        };
        let (deliveries, webhooks) = tokio::join!(self.deliveries.get_many(&ids), read_hooks);
        let mut pre = Prefetched::default();
        match deliveries {
            Ok(found) => {
                pre.deliveries = Some(found.into_iter().map(|d| (d.id.clone(), d)).collect());
            }
            Err(error) => tracing::warn!(%error, "batch read of deliveries failed; per job"),
        }
        match webhooks {
            Ok(found) => {
                pre.webhooks = found.into_iter().map(|w| (w.id.clone(), w)).collect();
                pre.asked = hooks.into_iter().collect();
            }
            Err(error) => tracing::warn!(%error, "batch read of webhooks failed; per job"),
        }
        pre
    }

    /// [`prefetch`](Self::prefetch) for received jobs (bodies that do not decode are skipped;
    /// the batch consumer fails them).
    pub async fn prefetch_received(&self, jobs: &[ReceivedJob]) -> Prefetched {
        let decoded: Vec<DeliveryJob> = jobs
            .iter()
            .filter_map(|j| serde_json::from_slice(&j.body).ok())
            .collect();
        self.prefetch(&decoded).await
    }

    /// Handles the jobs of a batch together (the deliver Lambda): one read of their deliveries
    /// and one of their webhooks, the attempts concurrently, then one write of every attempt
    /// with its delivery's new state ([`DeliveryStore::record_outcomes`](openwa_core::ports::DeliveryStore::record_outcomes)) and one batched send
    /// of the retry jobs. One result per job, in order; a panic fails only its own job. A write
    /// that fails fails the jobs it carried, which come back and are attempted again
    /// (at-least-once). A second job for a delivery already in the batch (a duplicate) is
    /// dropped: the first one attempts it, and if that fails, its own message comes back.
    #[tracing::instrument(skip_all, fields(jobs = jobs.len()))]
    pub async fn handle_many(&self, jobs: Vec<DeliveryJob>) -> Vec<Result<Handled>> {
        let pre = self.prefetch(&jobs).await;
        let pre = &pre;
        let mut seen = HashSet::new();
        let runs = jobs.into_iter().map(|job| {
            let duplicate = !seen.insert(job.delivery_id.clone());
            async move {
                if duplicate {
                    tracing::debug!(delivery_id = %job.delivery_id, "duplicate job in the batch; dropped");
                    return Ok(Step::Finished(Handled::Done));
                }
                std::panic::AssertUnwindSafe(self.attempt(job, pre))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(Error::unexpected("the delivery attempt panicked")))
            }
        });
        let steps = futures::future::join_all(runs).await;
        let mut results: Vec<Option<Result<Handled>>> = steps.iter().map(|_| None).collect();
        let mut attempted = Vec::new();
        for (i, step) in steps.into_iter().enumerate() {
            match step {
                Ok(Step::Finished(handled)) => results[i] = Some(Ok(handled)),
                Ok(Step::Attempted(a)) => attempted.push((i, a)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let outcomes: Vec<(DeliveryAttempt, Delivery)> = attempted
            .iter()
            .map(|(_, a)| (a.attempt.clone(), a.delivery.clone()))
            .collect();
        let written = if outcomes.is_empty() {
            Vec::new()
        } else {
            self.deliveries.record_outcomes(&outcomes).await
        };
        let mut retries: Vec<(usize, NewJob)> = Vec::new();
        for ((i, a), w) in attempted.into_iter().zip(written) {
            results[i] = Some(match (w, &a.retry) {
                (Err(e), _) => Err(e),
                (Ok(()), None) => Ok(Handled::Done),
                (Ok(()), Some((next, delay))) => match retry_job(next, *delay) {
                    Ok(job) => {
                        retries.push((i, job));
                        continue;
                    }
                    Err(e) => Err(e),
                },
            });
        }
        if !retries.is_empty() {
            let (places, jobs): (Vec<usize>, Vec<NewJob>) = retries.into_iter().unzip();
            let sent = self.queue.send_batch(&QueueName::Deliveries, jobs).await;
            for (i, r) in places.into_iter().zip(sent) {
                results[i] = Some(r.map(|()| Handled::Done));
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::unexpected("a delivery job was not handled"))))
            .collect()
    }
}
