//! The in-memory store: for tests, the simulator and previews. Same contract as SQLite, no
//! durability.

use std::collections::{BTreeMap, HashMap};

use automerge::ChangeHash;

use super::{CommitItem, OrderQuery, PendingChange, Store, StoredChange, WriteBatch, urgency_order};
use crate::error::CoreError;
use crate::ids::OrderId;
use crate::protocol::Receipt;
use crate::summary::OrderSummary;

#[derive(Debug, Default)]
struct Document {
    snapshot: Option<Vec<u8>>,
    /// (sequence, change)
    changes: Vec<(u64, StoredChange)>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    documents: HashMap<OrderId, Document>,
    index: BTreeMap<OrderId, OrderSummary>,
    next_seq: u64,
    cursor: Option<String>,
    revoked: HashMap<OrderId, String>,
    receipts: HashMap<OrderId, BTreeMap<ChangeHash, Receipt>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn load_chunks(&self, order: OrderId) -> Result<Option<Vec<Vec<u8>>>, CoreError> {
        Ok(self
            .documents
            .get(&order)
            .map(|doc| doc.snapshot.iter().cloned().chain(doc.changes.iter().map(|(_, c)| c.bytes.clone())).collect()))
    }

    fn write(&mut self, batch: &WriteBatch) -> Result<(), CoreError> {
        if batch.items.iter().any(|item| item.summary.id != item.order) {
            return Err(CoreError::InvalidInput("summary of another order".into()));
        }
        for CommitItem { order, snapshot, changes, summary } in &batch.items {
            let doc = self.documents.entry(*order).or_default();
            if let Some(snapshot) = snapshot {
                doc.snapshot = Some(snapshot.clone());
            }
            for change in changes {
                if let Some((_, stored)) = doc.changes.iter_mut().find(|(_, c)| c.hash == change.hash) {
                    stored.pending |= change.pending;
                    continue;
                }
                self.next_seq += 1;
                doc.changes.push((self.next_seq, change.clone()));
            }
            self.index.insert(*order, summary.clone());
        }
        self.acknowledge(&batch.acknowledged)?;
        for order in &batch.granted {
            self.revoked.remove(order);
        }
        for (order, reason) in &batch.revoked {
            self.revoked.insert(*order, reason.clone());
        }
        if let Some(cursor) = &batch.cursor {
            self.cursor = Some(cursor.clone());
        }
        for receipt in &batch.receipts {
            self.receipts.entry(receipt.order).or_default().insert(receipt.hash, receipt.clone());
        }
        Ok(())
    }

    fn revocation(&self, order: OrderId) -> Result<Option<String>, CoreError> {
        Ok(self.revoked.get(&order).cloned())
    }

    fn order_ids(&self) -> Result<Vec<OrderId>, CoreError> {
        Ok(self.index.keys().copied().collect())
    }

    fn compact(&mut self, order: OrderId, snapshot: &[u8]) -> Result<(), CoreError> {
        let doc = self.documents.get_mut(&order).ok_or_else(|| CoreError::NotFound(order.to_string()))?;
        doc.snapshot = Some(snapshot.to_vec());
        doc.changes.retain(|(_, c)| c.pending);
        Ok(())
    }

    fn list(&self, query: &OrderQuery) -> Result<Vec<OrderSummary>, CoreError> {
        let mut found: Vec<OrderSummary> = self.index.values().filter(|s| query.matches(s)).cloned().collect();
        found.sort_by(urgency_order);
        found.truncate(query.limit);
        Ok(found)
    }

    fn order_count(&self) -> Result<usize, CoreError> {
        Ok(self.index.len())
    }

    fn pending(&self, limit: usize) -> Result<Vec<PendingChange>, CoreError> {
        let mut all: Vec<(u64, PendingChange)> =
            self.documents
                .iter()
                .flat_map(|(order, doc)| {
                    doc.changes.iter().filter(|(_, c)| c.pending).map(move |(seq, c)| {
                        (*seq, PendingChange { order: *order, hash: c.hash, bytes: c.bytes.clone() })
                    })
                })
                .collect();
        all.sort_by_key(|(seq, _)| *seq);
        Ok(all.into_iter().take(limit).map(|(_, p)| p).collect())
    }

    fn pending_count(&self) -> Result<usize, CoreError> {
        Ok(self.documents.values().flat_map(|d| d.changes.iter()).filter(|(_, c)| c.pending).count())
    }

    fn acknowledge(&mut self, hashes: &[ChangeHash]) -> Result<usize, CoreError> {
        let mut acknowledged = 0;
        for doc in self.documents.values_mut() {
            for (_, change) in doc.changes.iter_mut() {
                if change.pending && hashes.contains(&change.hash) {
                    change.pending = false;
                    acknowledged += 1;
                }
            }
        }
        Ok(acknowledged)
    }

    fn cursor(&self) -> Result<Option<String>, CoreError> {
        Ok(self.cursor.clone())
    }

    fn receipts(&self, order: OrderId) -> Result<Vec<Receipt>, CoreError> {
        Ok(self.receipts.get(&order).map(|r| r.values().cloned().collect()).unwrap_or_default())
    }
}
