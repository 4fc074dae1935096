//! [`TopicTrie`]: the subscription set of a SUB socket, matched by prefix in time proportional to
//! the topic length, not to the number of subscriptions (SP-PROTOCOLS.md section 4.3).

use std::mem;

/// A set of byte-string topics that answers "is any topic a prefix of this message?".
///
/// It is a radix trie (a byte trie whose single-child chains are merged into one edge), kept in
/// an arena of nodes so that no operation recurses, whatever the topic length. Matching walks
/// one edge per branching point along the message, so it costs `O(len)` in the length of the
/// longest matching path and never looks at subscriptions off that path. Each step picks the
/// child by binary search over at most 256 edges.
///
/// Topics form a set: inserting one that is present changes nothing, and one removal takes
/// it out (NNG and mangos: "adding a topic that is already present does nothing").
#[derive(Debug)]
pub(crate) struct TopicTrie {
    /// `nodes[ROOT]` is the root, whose edge label is empty. Freed slots wait in `free`.
    nodes: Vec<Node>,
    free: Vec<usize>,
    len: usize,
}

/// The index of the root node.
const ROOT: usize = 0;

#[derive(Debug, Default)]
struct Node {
    /// The bytes on the edge from the parent. Never empty except at the root.
    label: Vec<u8>,
    /// True when the path from the root to here, this label included, is a topic.
    is_topic: bool,
    /// `(first label byte, node)` for each child, sorted by that byte.
    children: Vec<(u8, usize)>,
}

impl Default for TopicTrie {
    fn default() -> Self {
        Self {
            nodes: vec![Node::default()],
            free: Vec::new(),
            len: 0,
        }
    }
}

impl TopicTrie {
    /// Returns the number of topics.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Returns true when some topic is a prefix of `msg` (the empty topic matches everything).
    pub(crate) fn matches(&self, msg: &[u8]) -> bool {
        let mut node = &self.nodes[ROOT];
        let mut rest = msg;
        loop {
            if node.is_topic {
                return true;
            }
            let Some(child) = rest.first().and_then(|&b| node.child(b)) else {
                return false;
            };
            node = &self.nodes[child];
            let Some(tail) = rest.strip_prefix(&node.label[..]) else {
                return false;
            };
            rest = tail;
        }
    }

    /// Returns true when `topic` itself is in the set.
    pub(crate) fn contains(&self, topic: &[u8]) -> bool {
        self.find(topic)
            .is_some_and(|(node, _)| self.nodes[node].is_topic)
    }

    /// Adds `topic`. Returns false when it was already present.
    pub(crate) fn insert(&mut self, topic: &[u8]) -> bool {
        let mut at = ROOT;
        let mut rest = topic;
        loop {
            let Some(&first) = rest.first() else {
                let node = &mut self.nodes[at];
                if node.is_topic {
                    return false;
                }
                node.is_topic = true;
                self.len += 1;
                return true;
            };
            let slot = match self.nodes[at].slot(first) {
                Ok(slot) => slot,
                Err(slot) => {
                    let leaf = self.alloc(Node {
                        label: rest.to_vec(),
                        is_topic: true,
                        children: Vec::new(),
                    });
                    self.nodes[at].children.insert(slot, (first, leaf));
                    self.len += 1;
                    return true;
                }
            };
            let child = self.nodes[at].children[slot].1;
            let common = common_prefix_len(&self.nodes[child].label, rest);
            if common < self.nodes[child].label.len() {
                // `rest` leaves the edge part-way: split it with a node at the fork.
                let tail = self.nodes[child].label.split_off(common);
                let head = mem::replace(&mut self.nodes[child].label, tail);
                let middle = self.alloc(Node {
                    label: head,
                    is_topic: false,
                    children: vec![(self.nodes[child].label[0], child)],
                });
                self.nodes[at].children[slot].1 = middle;
                at = middle;
            } else {
                at = child;
            }
            rest = &rest[common..];
        }
    }

    /// Removes `topic`. Returns false when it was not present.
    pub(crate) fn remove(&mut self, topic: &[u8]) -> bool {
        let Some((node, parent)) = self.find(topic) else {
            return false;
        };
        if !self.nodes[node].is_topic {
            return false;
        }
        self.nodes[node].is_topic = false;
        self.len -= 1;
        if node == ROOT {
            return true;
        }
        match self.nodes[node].children.len() {
            0 => {
                let first = self.nodes[node].label[0];
                let siblings = &mut self.nodes[parent].children;
                if let Ok(slot) = siblings.binary_search_by_key(&first, |c| c.0) {
                    siblings.remove(slot);
                }
                self.release(node);
                self.merge_single_child(parent);
            }
            1 => self.merge_single_child(node),
            _ => {}
        }
        true
    }

    /// Returns the node whose path is exactly `topic`, with its parent (the root's parent is
    /// the root), or `None` when `topic` ends inside an edge or leaves the trie.
    fn find(&self, topic: &[u8]) -> Option<(usize, usize)> {
        let (mut at, mut parent) = (ROOT, ROOT);
        let mut rest = topic;
        while let Some(&first) = rest.first() {
            let child = self.nodes[at].child(first)?;
            rest = rest.strip_prefix(&self.nodes[child].label[..])?;
            (parent, at) = (at, child);
        }
        Some((at, parent))
    }

    /// Folds the only child of `node` into it when `node` is a non-root, non-topic node,
    /// which keeps every inner node a real fork.
    fn merge_single_child(&mut self, node: usize) {
        let n = &self.nodes[node];
        if node == ROOT || n.is_topic || n.children.len() != 1 {
            return;
        }
        let child = n.children[0].1;
        let Node {
            label,
            is_topic,
            children,
        } = mem::take(&mut self.nodes[child]);
        let n = &mut self.nodes[node];
        n.label.extend_from_slice(&label);
        n.is_topic = is_topic;
        n.children = children;
        self.free.push(child);
    }

    fn alloc(&mut self, node: Node) -> usize {
        match self.free.pop() {
            Some(index) => {
                self.nodes[index] = node;
                index
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        }
    }

    fn release(&mut self, node: usize) {
        self.nodes[node] = Node::default();
        self.free.push(node);
    }
}

impl Node {
    /// Returns the child whose edge starts with `byte`.
    fn child(&self, byte: u8) -> Option<usize> {
        self.slot(byte).ok().map(|slot| self.children[slot].1)
    }

    /// Returns where the child starting with `byte` is, or where it would go.
    fn slot(&self, byte: u8) -> Result<usize, usize> {
        self.children.binary_search_by_key(&byte, |c| c.0)
    }
}

fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    impl TopicTrie {
        /// Checks the structure: sorted, correctly keyed children with non-empty labels, no
        /// inner node that is neither a topic nor a fork, no leaked or shared slot, and `len`.
        fn check_invariants(&self) {
            let mut seen = vec![false; self.nodes.len()];
            let mut topics = 0;
            let mut stack = vec![ROOT];
            while let Some(at) = stack.pop() {
                assert!(
                    !mem::replace(&mut seen[at], true),
                    "node {at} reached twice"
                );
                let node = &self.nodes[at];
                topics += usize::from(node.is_topic);
                if at != ROOT {
                    assert!(!node.label.is_empty(), "empty edge at {at}");
                    assert!(
                        node.is_topic || node.children.len() >= 2,
                        "node {at} is neither a topic nor a fork"
                    );
                }
                assert!(node.children.windows(2).all(|w| w[0].0 < w[1].0));
                for &(first, child) in &node.children {
                    assert_eq!(self.nodes[child].label.first(), Some(&first));
                    stack.push(child);
                }
            }
            assert_eq!(topics, self.len);
            for &slot in &self.free {
                assert!(
                    !mem::replace(&mut seen[slot], true),
                    "free slot {slot} in use"
                );
            }
            assert!(
                seen.iter().all(|&s| s),
                "a node is neither reachable nor free"
            );
        }
    }

    fn naive_matches(topics: &BTreeSet<Vec<u8>>, msg: &[u8]) -> bool {
        topics.iter().any(|t| msg.starts_with(t))
    }

    #[test]
    fn empty_trie_matches_nothing_and_empty_topic_matches_everything() {
        let mut trie = TopicTrie::default();
        assert!(!trie.matches(b""));
        assert!(!trie.matches(b"abc"));
        assert!(trie.insert(b""));
        assert!(trie.matches(b""));
        assert!(trie.matches(b"abc"));
        assert!(trie.remove(b""));
        assert!(!trie.matches(b"abc"));
        trie.check_invariants();
    }

    #[test]
    fn prefix_match_is_bytewise() {
        let mut trie = TopicTrie::default();
        for topic in [&b"abc"[..], b"def", b"ghi", b"jkl"] {
            assert!(trie.insert(topic));
        }
        assert!(trie.matches(b"def"));
        assert!(!trie.matches(b"de"), "a message shorter than the topic");
        assert!(trie.matches(b"abc123"));
        assert!(!trie.matches(b"xzy"));
        assert!(trie.remove(b"ghi"));
        assert!(!trie.matches(b"ghi-drop"));
        assert!(trie.matches(b"jkl-mno"));
        trie.check_invariants();
    }

    #[test]
    fn insert_splits_edges_and_remove_merges_them_back() {
        let mut trie = TopicTrie::default();
        trie.insert(b"abcdef");
        trie.insert(b"abcxyz");
        trie.insert(b"abc");
        trie.check_invariants();
        assert!(trie.contains(b"abc"));
        assert!(!trie.contains(b"ab"), "ends inside an edge");
        assert!(!trie.contains(b"abcd"));
        assert!(trie.remove(b"abc"));
        assert!(trie.remove(b"abcxyz"));
        trie.check_invariants();
        assert_eq!(trie.nodes[ROOT].children.len(), 1);
        let only = trie.nodes[ROOT].children[0].1;
        assert_eq!(
            trie.nodes[only].label, b"abcdef",
            "merged back into one edge"
        );
        assert!(trie.remove(b"abcdef"));
        assert!(trie.nodes[ROOT].children.is_empty());
        trie.check_invariants();
    }

    #[test]
    fn duplicate_insert_is_a_no_op_and_one_remove_takes_it_out() {
        let mut trie = TopicTrie::default();
        assert!(trie.insert(b"t"));
        assert!(!trie.insert(b"t"));
        assert_eq!(trie.len(), 1);
        assert!(trie.remove(b"t"));
        assert!(!trie.remove(b"t"));
        assert!(!trie.matches(b"t"));
        assert_eq!(trie.len(), 0);
    }

    #[test]
    fn unknown_topics_are_not_removed() {
        let mut trie = TopicTrie::default();
        trie.insert(b"abc");
        assert!(!trie.remove(b"ab"));
        assert!(!trie.remove(b"abcd"));
        assert!(!trie.remove(b""));
        assert!(!trie.remove(b"x"));
        assert!(trie.matches(b"abc"));
        trie.check_invariants();
    }

    #[test]
    fn long_topics_do_not_recurse() {
        let long = vec![b'x'; 1 << 20];
        let mut trie = TopicTrie::default();
        trie.insert(&long);
        trie.insert(&long[..1 << 19]);
        assert!(trie.matches(&long));
        assert!(trie.remove(&long));
        assert!(trie.remove(&long[..1 << 19]));
        trie.check_invariants();
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(Vec<u8>),
        Remove(Vec<u8>),
    }

    /// Short topics over a 3-letter alphabet, so that prefixes and shared edges are common.
    fn topic() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(0u8)], 0..6)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![topic().prop_map(Op::Insert), topic().prop_map(Op::Remove)]
    }

    proptest! {
        #[test]
        fn trie_agrees_with_naive_prefix_search(
            ops in proptest::collection::vec(op(), 0..60),
            msgs in proptest::collection::vec(topic(), 1..20),
        ) {
            let mut trie = TopicTrie::default();
            let mut model = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(t) => prop_assert_eq!(trie.insert(&t), model.insert(t)),
                    Op::Remove(t) => prop_assert_eq!(trie.remove(&t), model.remove(&t)),
                }
                trie.check_invariants();
                prop_assert_eq!(trie.len(), model.len());
            }
            for msg in msgs.iter().chain(&model) {
                prop_assert_eq!(trie.matches(msg), naive_matches(&model, msg), "{:?}", msg);
                prop_assert_eq!(trie.contains(msg), model.contains(msg));
            }
        }

        #[test]
        fn trie_agrees_with_naive_on_random_bytes(
            topics in proptest::collection::btree_set(
                proptest::collection::vec(any::<u8>(), 0..8), 0..30),
            msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..12), 1..30),
        ) {
            let mut trie = TopicTrie::default();
            for t in &topics {
                trie.insert(t);
            }
            trie.check_invariants();
            for msg in &msgs {
                prop_assert_eq!(trie.matches(msg), naive_matches(&topics, msg));
            }
        }
    }
}
