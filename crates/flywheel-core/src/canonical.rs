//! Serde helpers for canonical encodings: two equal values give equal bytes, whatever
//! the iteration order of their hash maps or the layout of their heaps. The engine's
//! snapshots encode the derived state with them, so a snapshot can be compared byte
//! for byte with a state rebuilt by a full replay.
//!
//! Use them as field attributes: `#[serde(with = "flywheel_core::canonical::sorted_map")]`
//! on a `HashMap<K, V>` (written as a map in key order) and
//! `#[serde(with = "flywheel_core::canonical::sorted_heap")]` on a `BinaryHeap<T>` (written
//! as a sequence in ascending order).

/// A `HashMap` written as a map in ascending key order.
pub mod sorted_map {
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::HashMap;
    use std::hash::{BuildHasher, Hash};

    /// Writes the map's entries in key order.
    pub fn serialize<K, V, H, S>(map: &HashMap<K, V, H>, serializer: S) -> Result<S::Ok, S::Error>
    where
        K: Serialize + Ord,
        V: Serialize,
        S: Serializer,
    {
        let mut entries: Vec<(&K, &V)> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut out = serializer.serialize_map(Some(entries.len()))?;
        for (key, value) in entries {
            out.serialize_entry(key, value)?;
        }
        out.end()
    }

    /// Reads a map written by [`serialize`] (or any map).
    pub fn deserialize<'de, K, V, H, D>(deserializer: D) -> Result<HashMap<K, V, H>, D::Error>
    where
        K: Deserialize<'de> + Eq + Hash,
        V: Deserialize<'de>,
        H: BuildHasher + Default,
        D: Deserializer<'de>,
    {
        HashMap::<K, V, H>::deserialize(deserializer)
    }
}

/// A `HashSet` written as a sequence in ascending order.
pub mod sorted_set {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::HashSet;
    use std::hash::{BuildHasher, Hash};

    /// Writes the set's members in order.
    pub fn serialize<T, H, S>(set: &HashSet<T, H>, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize + Ord,
        S: Serializer,
    {
        let mut members: Vec<&T> = set.iter().collect();
        members.sort_unstable();
        serializer.collect_seq(members)
    }

    /// Reads a set written by [`serialize`] (or any sequence).
    pub fn deserialize<'de, T, H, D>(deserializer: D) -> Result<HashSet<T, H>, D::Error>
    where
        T: Deserialize<'de> + Eq + Hash,
        H: BuildHasher + Default,
        D: Deserializer<'de>,
    {
        HashSet::<T, H>::deserialize(deserializer)
    }
}

/// A `BinaryHeap` written as a sequence in ascending order. Reading it back builds a
/// heap of the same elements: its pops come in the same order (equal elements are
/// indistinguishable), though its internal layout may differ.
pub mod sorted_heap {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BinaryHeap;

    /// Writes the heap's elements in ascending order.
    pub fn serialize<T, S>(heap: &BinaryHeap<T>, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize + Ord,
        S: Serializer,
    {
        let mut elements: Vec<&T> = heap.iter().collect();
        elements.sort_unstable();
        serializer.collect_seq(elements)
    }

    /// Reads a heap written by [`serialize`] (or any sequence).
    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<BinaryHeap<T>, D::Error>
    where
        T: Deserialize<'de> + Ord,
        D: Deserializer<'de>,
    {
        Vec::<T>::deserialize(deserializer).map(BinaryHeap::from)
    }
}

/// A value written as its JSON text: for types whose serde form is the JSON wire
/// format (optional fields left out), which a binary format like bincode cannot read
/// back.
pub mod as_json {
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the value's JSON as a string.
    pub fn serialize<T: Serialize, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(value).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }

    /// Reads a value written by [`serialize`].
    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(deserializer)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, HashMap};

    #[derive(Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super::sorted_map")]
        map: HashMap<String, u32>,
        #[serde(with = "super::sorted_heap")]
        heap: BinaryHeap<Reverse<(i64, String)>>,
    }

    fn holder(order: &[usize]) -> Holder {
        let mut map = HashMap::new();
        let mut heap = BinaryHeap::new();
        for &i in order {
            map.insert(format!("k{i}"), i as u32);
            heap.push(Reverse((i as i64 % 3, format!("r{i}"))));
        }
        Holder { map, heap }
    }

    #[test]
    fn equal_contents_give_equal_json_whatever_the_insertion_order() {
        let a = serde_json::to_string(&holder(&[0, 1, 2, 3, 4, 5, 6, 7])).unwrap();
        let b = serde_json::to_string(&holder(&[7, 3, 5, 1, 0, 6, 2, 4])).unwrap();
        assert_eq!(a, b);
        let back: Holder = serde_json::from_str(&a).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), a);
        let mut heap = back.heap;
        assert_eq!(heap.pop().map(|r| r.0), Some((0, "r0".to_string())));
    }
}
