//! A Fenwick (binary indexed) tree of non-negative weights: prefix sums, point
//! updates and weighted search in O(log n). The site samples items with it, so a
//! list costs O(categories + length · log items) instead of a pass over the catalog.

/// Prefix sums over `len` weights.
#[derive(Debug, Clone)]
pub(crate) struct Fenwick {
    tree: Vec<f64>,
}

impl Fenwick {
    /// A tree holding `weights`.
    pub(crate) fn from_weights(weights: &[f64]) -> Fenwick {
        let mut tree = vec![0.0; weights.len() + 1];
        for (i, w) in weights.iter().enumerate() {
            let mut node = i + 1;
            tree[node] += w;
            let parent = node + (node & node.wrapping_neg());
            if parent < tree.len() {
                let value = tree[node];
                node = parent;
                tree[node] += value;
            }
        }
        Fenwick { tree }
    }

    /// Adds `delta` to weight `index`.
    pub(crate) fn add(&mut self, index: usize, delta: f64) {
        let mut node = index + 1;
        while node < self.tree.len() {
            self.tree[node] += delta;
            node += node & node.wrapping_neg();
        }
    }

    /// The sum of the first `count` weights.
    pub(crate) fn prefix(&self, count: usize) -> f64 {
        let mut node = count.min(self.tree.len() - 1);
        let mut sum = 0.0;
        while node > 0 {
            sum += self.tree[node];
            node &= node - 1;
        }
        sum
    }

    /// The weight at `index`.
    pub(crate) fn weight(&self, index: usize) -> f64 {
        self.prefix(index + 1) - self.prefix(index)
    }

    /// The smallest index whose inclusive prefix sum exceeds `target`, limited to
    /// `0..count` (rounding can push a target at the very top past the end).
    pub(crate) fn search(&self, target: f64, count: usize) -> usize {
        let mut position = 0;
        let mut remaining = target;
        let mut step = (self.tree.len() - 1).next_power_of_two();
        while step > 0 {
            let next = position + step;
            if next < self.tree.len() && self.tree[next] <= remaining {
                position = next;
                remaining -= self.tree[next];
            }
            step >>= 1;
        }
        position.min(count.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_sums_updates_and_search_agree_with_a_linear_scan() {
        let weights = [1.0, 0.0, 2.5, 4.0, 0.5, 3.0, 1.0];
        let mut tree = Fenwick::from_weights(&weights);
        for count in 0..=weights.len() {
            let expected: f64 = weights[..count].iter().sum();
            assert!((tree.prefix(count) - expected).abs() < 1e-12);
        }
        // Targets in [0, 1) fall on item 0, [1, 3.5) on item 2 (item 1 weighs 0), …
        assert_eq!(tree.search(0.5, 7), 0);
        assert_eq!(tree.search(1.0, 7), 2);
        assert_eq!(tree.search(3.49, 7), 2);
        assert_eq!(tree.search(3.5, 7), 3);
        assert_eq!(tree.search(11.9, 7), 6);
        assert_eq!(tree.search(100.0, 4), 3);
        tree.add(1, 2.0);
        assert!((tree.weight(1) - 2.0).abs() < 1e-12);
        assert_eq!(tree.search(1.5, 7), 1);
        assert!((tree.prefix(7) - 14.0).abs() < 1e-12);
    }
}
