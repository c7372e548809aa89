//! Insertion in deterministic parallel batches.
//!
//! New nodes are inserted in batches (1 node while the graph is small, then 1/20 of the
//! graph, at most 256). Within a batch:
//!
//! 1. in parallel, each new node searches the graph as it was before the batch
//!    (`ef_construction` candidates per layer, read-only) and also measures the batch's
//!    earlier nodes, then picks its `m` neighbours per layer with the heuristic;
//! 2. its own lists are written;
//! 3. in parallel, every node that gained reverse links recomputes its list from old +
//!    new neighbours (the heuristic again when over the limit), and the lists are written;
//! 4. the entry point moves to the batch's first node above the top level, if any.
//!
//! No step depends on which thread ran what, so a seed gives the same graph on one core
//! or on many, and inserting one vector online is the same code with a batch of one.

use rayon::prelude::*;

use crate::graph::Graph;
use crate::search::{greedy_descend, search_layer, select_neighbours, with_scratch, Probe, Scored};
use crate::store::VectorStore;

/// The most nodes inserted against the same frozen graph.
const MAX_BATCH: usize = 256;

/// Links nodes `first..graph.len()` (already in `store` and `graph`, without lists).
pub(crate) fn link_new_nodes(
    graph: &mut Graph,
    store: &VectorStore,
    first: u32,
    ef_construction: usize,
) {
    let end = graph.len() as u32;
    let mut start = first;
    while start < end {
        let size = (start as usize / 20).clamp(1, MAX_BATCH) as u32;
        let stop = (start + size).min(end);
        link_batch(graph, store, start, stop, ef_construction);
        start = stop;
    }
}

fn link_batch(
    graph: &mut Graph,
    store: &VectorStore,
    first: u32,
    end: u32,
    ef_construction: usize,
) {
    let frozen: &Graph = graph;
    let plans: Vec<Vec<Vec<u32>>> = (first..end)
        .into_par_iter()
        .map(|node| plan_links(frozen, store, node, first, ef_construction))
        .collect();
    let mut reverse: Vec<(u32, usize, u32)> = Vec::new();
    for (node, layers) in (first..end).zip(&plans) {
        for (layer, links) in layers.iter().enumerate() {
            graph.set_neighbours(node, layer, links);
            reverse.extend(links.iter().map(|&target| (target, layer, node)));
        }
    }
    reverse.sort_unstable();
    let groups: Vec<&[(u32, usize, u32)]> =
        reverse.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1).collect();
    let frozen: &Graph = graph;
    let updates: Vec<(u32, usize, Vec<u32>)> = groups
        .par_iter()
        .map(|group| {
            let (target, layer) = (group[0].0, group[0].1);
            let sources = group.iter().map(|entry| entry.2);
            (
                target,
                layer,
                merged_links(frozen, store, target, layer, sources),
            )
        })
        .collect();
    for (target, layer, links) in updates {
        graph.set_neighbours(target, layer, &links);
    }
    for node in first..end {
        if graph.entry().is_none() || graph.level(node) > graph.top_level() {
            graph.set_entry(node);
        }
    }
}

/// The neighbours `node` picks on each of its layers (index = layer).
fn plan_links(
    graph: &Graph,
    store: &VectorStore,
    node: u32,
    first: u32,
    ef: usize,
) -> Vec<Vec<u32>> {
    let row = store.row(node);
    let distance = |other: u32| store.graph_distance(row, store.row(other));
    let pair = |a: u32, b: u32| store.graph_distance(store.row(a), store.row(b));
    let probe = Probe {
        distance,
        touch: |n| store.touch(n),
    };
    let level = graph.level(node);
    let peers: Vec<Scored> = (first..node)
        .map(|peer| Scored {
            distance: (probe.distance)(peer),
            node: peer,
        })
        .collect();
    let mut plans = vec![Vec::new(); level + 1];
    let mut searched_top = None;
    if let Some(entry) = graph.entry() {
        let top = graph.top_level();
        let mut current = Scored {
            distance: (probe.distance)(entry),
            node: entry,
        };
        if top > level {
            current = greedy_descend(graph, &probe.distance, current, top, level + 1);
        }
        let mut entries = vec![current];
        for layer in (0..=level.min(top)).rev() {
            let found = with_scratch(|scratch| {
                search_layer(graph, &probe, &|_| true, &entries, ef, layer, scratch)
            });
            let candidates = with_peers(found, &peers, graph, layer, ef);
            plans[layer] = select_neighbours(&candidates, graph.m(), pair);
            entries = candidates;
        }
        searched_top = Some(top);
    }
    let lowest_unsearched = searched_top.map_or(0, |top| top + 1);
    for (layer, plan) in plans.iter_mut().enumerate().skip(lowest_unsearched) {
        let candidates = with_peers(Vec::new(), &peers, graph, layer, ef);
        *plan = select_neighbours(&candidates, graph.m(), pair);
    }
    plans
}

/// `found` plus the batch peers present on `layer`, the `ef` closest, closest first.
fn with_peers(
    mut found: Vec<Scored>,
    peers: &[Scored],
    graph: &Graph,
    layer: usize,
    ef: usize,
) -> Vec<Scored> {
    found.extend(peers.iter().filter(|p| graph.level(p.node) >= layer));
    found.sort_unstable();
    found.truncate(ef);
    found
}

/// `target`'s list on `layer` after `sources` link to it.
fn merged_links(
    graph: &Graph,
    store: &VectorStore,
    target: u32,
    layer: usize,
    sources: impl Iterator<Item = u32>,
) -> Vec<u32> {
    let mut links: Vec<u32> = graph.neighbours(target, layer).to_vec();
    for source in sources {
        if source != target && !links.contains(&source) {
            links.push(source);
        }
    }
    let max = graph.max_links(layer);
    if links.len() <= max {
        return links;
    }
    let row = store.row(target);
    let mut scored: Vec<Scored> = links
        .iter()
        .map(|&n| Scored {
            distance: store.graph_distance(row, store.row(n)),
            node: n,
        })
        .collect();
    scored.sort_unstable();
    select_neighbours(&scored, max, |a, b| {
        store.graph_distance(store.row(a), store.row(b))
    })
}
