//! Fan-out's write of a batch ([`DeliveryStore::create_expansions`]): every event (stored
//! unless present or expired), every delivery and its guard, in one `TransactWriteItems` per
//! 100 items. A transaction may not touch one item twice, so a repeated event is written once.
//! On a rerun the transaction is cancelled by the items that exist; their cancellation reasons
//! say which, those are taken out and the rest is sent again (a few rounds, then item by item).
//! An expansion too large for one transaction (more than 49 deliveries) is written item by
//! item.

use aws_sdk_dynamodb::types::TransactWriteItem;
use openwa_core::error::{Error, Result};
use openwa_core::ports::DeliveryStore;
use openwa_core::ports::store::{Expansion, ExpansionStored};

use super::super::Cancelled;
use super::super::codec::json;
use super::events::{event_put, put_event_if_absent};
use super::{DynamoDeliveryStore, MAX_TRANSACTION_ITEMS, encode, guard_item};

/// Bytes of item bodies put in one transaction (DynamoDB refuses more than 4 MB).
const MAX_TRANSACTION_BYTES: usize = 3 * 1024 * 1024;
/// Rounds of a fan-out transaction that keep losing items to concurrent writers before the
/// rest is written item by item.
const EXPANSION_ROUNDS: usize = 3;

/// What one action of a fan-out transaction writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Event(usize),
    /// Delivery `.1` of expansion `.0`.
    Delivery(usize, usize),
    /// The guard of delivery `.1` of expansion `.0`.
    Guard(usize, usize),
}

/// Where a fan-out item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Pending,
    Written,
    Existed,
}

/// The bytes of the bodies an expansion writes (what the transaction size limit counts).
fn expansion_bytes(x: &Expansion) -> Result<usize> {
    Ok(json(&x.event)?.len() + 256 * (1 + 2 * x.deliveries.len()))
}

impl DynamoDeliveryStore {
    /// [`DeliveryStore::create_expansions`]: chunks of at most 100 items (and ~3 MB), one
    /// transaction each.
    pub(super) async fn expand(&self, batch: &[Expansion]) -> Result<Vec<ExpansionStored>> {
        let mut out: Vec<ExpansionStored> = batch
            .iter()
            .map(|x| ExpansionStored {
                event_new: false,
                created: vec![false; x.deliveries.len()],
            })
            .collect();
        // A transaction may not touch one item twice: a repeated event (two copies of one
        // message in a batch) is written once, and the copy reports nothing new.
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<usize> = (0..batch.len())
            .filter(|i| seen.insert(batch[*i].event.id.clone()))
            .collect();
        let mut chunk: Vec<usize> = Vec::new();
        let (mut items, mut bytes) = (0, 0);
        for i in unique {
            let x = &batch[i];
            let (n, size) = (1 + 2 * x.deliveries.len(), expansion_bytes(x)?);
            if n > MAX_TRANSACTION_ITEMS || size > MAX_TRANSACTION_BYTES {
                out[i] = self.store_one(x).await?;
                continue;
            }
            if items + n > MAX_TRANSACTION_ITEMS || bytes + size > MAX_TRANSACTION_BYTES {
                self.store_chunk(batch, &std::mem::take(&mut chunk), &mut out)
                    .await?;
                (items, bytes) = (0, 0);
            }
            chunk.push(i);
            items += n;
            bytes += size;
        }
        if !chunk.is_empty() {
            self.store_chunk(batch, &chunk, &mut out).await?;
        }
        Ok(out)
    }

    /// One expansion item by item: the conditional event put, then each delivery.
    async fn store_one(&self, x: &Expansion) -> Result<ExpansionStored> {
        let event_new = put_event_if_absent(&self.table, &x.event).await?;
        let mut created = Vec::with_capacity(x.deliveries.len());
        for d in &x.deliveries {
            created.push(self.create_if_absent(d).await?);
        }
        Ok(ExpansionStored { event_new, created })
    }

    /// The expansions `chunk` (indexes into `batch`, at most 100 items) in one transaction.
    /// Items a cancellation reports as already there (a rerun of the batch) are taken out and
    /// the rest is tried again; what still has not gone through after a few rounds (writers
    /// racing on the same events) is written item by item.
    async fn store_chunk(
        &self,
        batch: &[Expansion],
        chunk: &[usize],
        out: &mut [ExpansionStored],
    ) -> Result<()> {
        let mut parts: Vec<(Part, Fate)> = Vec::new();
        for &i in chunk {
            parts.push((Part::Event(i), Fate::Pending));
            for j in 0..batch[i].deliveries.len() {
                parts.push((Part::Delivery(i, j), Fate::Pending));
                parts.push((Part::Guard(i, j), Fate::Pending));
            }
        }
        for _ in 0..EXPANSION_ROUNDS {
            let pending: Vec<usize> = (0..parts.len())
                .filter(|k| parts[*k].1 == Fate::Pending)
                .collect();
            if pending.is_empty() {
                break;
            }
            let actions = pending
                .iter()
                .map(|k| self.action(batch, parts[*k].0))
                .collect::<Result<Vec<_>>>()?;
            let Some(reasons) = self.table.transact(actions).await? else {
                for k in pending {
                    parts[k].1 = Fate::Written;
                }
                break;
            };
            let failed: Vec<bool> = pending
                .iter()
                .enumerate()
                .map(|(n, _)| reasons.get(n).is_some_and(Cancelled::condition_failed))
                .collect();
            for (n, &k) in pending.iter().enumerate() {
                if !failed[n] {
                    continue;
                }
                parts[k].1 = Fate::Existed;
                // A delivery and its guard stand or fall together.
                let partner = match parts[k].0 {
                    Part::Delivery(i, j) => Some(Part::Guard(i, j)),
                    Part::Guard(i, j) => Some(Part::Delivery(i, j)),
                    Part::Event(_) => None,
                };
                if let Some(partner) = partner {
                    let guard_failed = matches!(parts[k].0, Part::Guard(..));
                    let partner_failed = pending
                        .iter()
                        .enumerate()
                        .any(|(m, &q)| parts[q].0 == partner && failed[m]);
                    if !guard_failed && !partner_failed {
                        // The id is taken by another (webhook, event): a caller bug.
                        return Err(Error::conflict(
                            "a delivery id is taken by another delivery",
                        ));
                    }
                    if let Some(p) = parts.iter_mut().find(|(part, _)| *part == partner) {
                        p.1 = Fate::Existed;
                    }
                }
            }
        }
        for (part, fate) in &parts {
            match (part, fate) {
                (Part::Event(i), Fate::Pending) => {
                    out[*i].event_new = put_event_if_absent(&self.table, &batch[*i].event).await?;
                }
                (Part::Event(i), fate) => out[*i].event_new = *fate == Fate::Written,
                (Part::Delivery(i, j), Fate::Pending) => {
                    out[*i].created[*j] = self.create_if_absent(&batch[*i].deliveries[*j]).await?;
                }
                (Part::Delivery(i, j), fate) => out[*i].created[*j] = *fate == Fate::Written,
                (Part::Guard(..), _) => {}
            }
        }
        Ok(())
    }

    /// The transaction action writing `part`.
    fn action(&self, batch: &[Expansion], part: Part) -> Result<TransactWriteItem> {
        match part {
            Part::Event(i) => event_put(&self.table, &batch[i].event),
            Part::Delivery(i, j) => self.table.put_new(encode(&batch[i].deliveries[j])?),
            Part::Guard(i, j) => self.table.put_new(guard_item(&batch[i].deliveries[j])),
        }
    }
}
