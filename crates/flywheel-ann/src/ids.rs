//! The external ids of an index's nodes, their tombstones and the reverse map: the
//! bookkeeping [`crate::FlatIndex`] and [`crate::HnswIndex`] share.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{AnnError, Result};

/// Node `n` holds external id `ids[n]`; `deleted[n]` marks a tombstone. Only the two
/// vectors are stored; the map from live id to node is rebuilt on load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct IdTable {
    ids: Vec<u32>,
    deleted: Vec<bool>,
    #[serde(skip)]
    positions: HashMap<u32, u32>,
}

impl IdTable {
    /// Refuses a batch that repeats an id or names one that is live already.
    pub(crate) fn check_new(&self, ids: &[u32]) -> Result<()> {
        let mut seen = HashSet::with_capacity(ids.len());
        match ids
            .iter()
            .find(|id| self.positions.contains_key(id) || !seen.insert(**id))
        {
            Some(id) => Err(AnnError::DuplicateId(*id)),
            None => Ok(()),
        }
    }

    /// Records `id` as the next node and returns that node.
    pub(crate) fn push(&mut self, id: u32) -> u32 {
        let node = self.ids.len() as u32;
        self.ids.push(id);
        self.deleted.push(false);
        self.positions.insert(id, node);
        node
    }

    /// Tombstones the node of `id`.
    pub(crate) fn remove(&mut self, id: u32) -> Result<()> {
        let node = self.positions.remove(&id).ok_or(AnnError::UnknownId(id))?;
        self.deleted[node as usize] = true;
        Ok(())
    }

    /// The external id of a node.
    pub(crate) fn id(&self, node: u32) -> u32 {
        self.ids[node as usize]
    }

    /// Whether a node is a tombstone.
    pub(crate) fn is_deleted(&self, node: u32) -> bool {
        self.deleted[node as usize]
    }

    /// Whether any node was removed.
    pub(crate) fn has_tombstones(&self) -> bool {
        self.ids.len() != self.positions.len()
    }

    /// Live ids.
    pub(crate) fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether no id is live.
    pub(crate) fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Whether `id` is live.
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.positions.contains_key(&id)
    }

    /// Bytes held (the map counted at its capacity).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.positions.capacity() * (2 * std::mem::size_of::<u32>() + 1)
            + self.ids.capacity() * std::mem::size_of::<u32>()
            + self.deleted.capacity()
    }

    /// After decoding: checks there are `nodes` entries and no id is live twice, and
    /// rebuilds the map.
    pub(crate) fn restore(&mut self, nodes: usize) -> Result<()> {
        if self.ids.len() != nodes || self.deleted.len() != nodes {
            return Err(AnnError::Corrupt(
                "ids, tombstones and vectors disagree".into(),
            ));
        }
        let mut positions = HashMap::with_capacity(nodes);
        for (node, (id, deleted)) in self.ids.iter().zip(&self.deleted).enumerate() {
            if !deleted && positions.insert(*id, node as u32).is_some() {
                return Err(AnnError::Corrupt(format!("id {id} is live twice")));
            }
        }
        self.positions = positions;
        Ok(())
    }
}
