//! A deterministic trainer for WordPiece and BPE vocabularies: byte-pair-encoding merges
//! (Sennrich et al., 2016, "Neural Machine Translation of Rare Words with Subword
//! Units", §3.2) over the words of a corpus, as the Hugging Face `tokenizers` trainers
//! do, but with every choice fixed so that one corpus always gives one vocabulary.
//!
//! WordPiece vocabularies are learned with the same count rule, only with
//! continuation pieces prefixed `##` (as the `tokenizers` `WordPieceTrainer` does), not
//! with the likelihood score of Schuster & Nakajima (2012, "Japanese and Korean Voice
//! Search"); encoding then takes the longest vocabulary prefix, WordPiece's way.
//!
//! Why our own: the `tokenizers` trainers number the continuing-subword alphabet
//! (`##a`, `##b`, …) in hash-map order and break merges of equal count by those
//! numbers, so two trainings on one corpus can differ. Here:
//!
//! - **Words** come from the tokenizer's own normaliser and pre-tokeniser: the trainer
//!   implements [`tokenizers::Trainer`], so `Tokenizer::train` hands it the very split
//!   that encoding later applies. Counting runs on the rayon pool, but counts are summed
//!   and the words sorted before anything else, so neither thread count nor corpus order
//!   changes the result.
//! - **Vocabulary**: the special tokens (ids 0, 1, …), then every character of the
//!   corpus in code-point order, then (WordPiece) every character seen inside a word,
//!   prefixed `##`, in code-point order, then one token per merge. The alphabet is kept
//!   whole, so every training word stays encodable; when it alone outgrows
//!   `vocab_size`, the vocabulary is the alphabet and no merge is made.
//! - **Merge rule**: each step merges, in every word, the adjacent pair of symbols with
//!   the highest count (a pair's count is the number of its adjacent occurrences,
//!   weighted by word frequency); among pairs of equal count, the one whose
//!   `(left, right)` token strings come first in lexicographic (byte) order. Occurrences
//!   are merged left to right, so `a a a` becomes `aa a`. The new token is the left
//!   string followed by the right one without its `##` prefix; when that string is
//!   already a token (two merge paths to one piece), its id is reused. Training stops
//!   when the vocabulary holds `vocab_size` tokens, when no pair is left, or when the
//!   best pair is seen fewer than `min_frequency` times.
//!
//! With no two pairs tied at the top of any step, this is the merge sequence of the
//! `tokenizers` `BpeTrainer`/`WordPieceTrainer` (whose ordering is count, then ids), so
//! the vocabularies agree; a unit test checks it.
//!
//! Pair counts are kept incrementally (pair → count, pair → the words holding it, and a
//! max-heap of candidates with lazily corrected counts), so a merge costs only the words
//! it touches.

use crate::text::SubwordModel;
use rayon::iter::{ParallelBridge, ParallelIterator};
use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use tokenizers::models::bpe::BPE;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::models::ModelWrapper;
use tokenizers::{AddedToken, Trainer};

/// The prefix of a WordPiece piece that continues a word.
pub(crate) const CONTINUING_PREFIX: &str = "##";

/// A pair of adjacent symbols, by token id.
type Pair = (u32, u32);

/// What a training learned: the tokens in id order and the merges in the order made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Learned {
    /// Token `i` has id `i`.
    pub tokens: Vec<String>,
    /// `(left, right)` token strings of each merge, first merge first.
    pub merges: Vec<(String, String)>,
}

/// Trains a [`SubwordModel`] vocabulary deterministically; see the module docs. Used
/// through `Tokenizer::train`, which feeds it the corpus and installs its model.
#[derive(Debug, Clone)]
pub(crate) struct SubwordTrainer {
    model: SubwordModel,
    vocab_size: usize,
    min_frequency: u64,
    special: Vec<String>,
    unk: String,
    /// The corpus's words with their counts, sorted by word.
    words: Vec<(String, u64)>,
}

impl SubwordTrainer {
    /// A trainer of `model` reaching `vocab_size` tokens (`special` first, in order)
    /// with merges seen at least `min_frequency` times; `unk` names the unknown token.
    pub(crate) fn new(
        model: SubwordModel,
        vocab_size: usize,
        min_frequency: u64,
        special: &[&str],
        unk: &str,
    ) -> Self {
        SubwordTrainer {
            model,
            vocab_size,
            min_frequency,
            special: special.iter().map(|s| s.to_string()).collect(),
            unk: unk.to_string(),
            words: Vec::new(),
        }
    }

    /// The continuing-subword prefix of the model: `##` for WordPiece, none for BPE.
    fn prefix(&self) -> Option<&'static str> {
        match self.model {
            SubwordModel::WordPiece => Some(CONTINUING_PREFIX),
            SubwordModel::Bpe => None,
        }
    }

    /// Sets the counted words directly (sorted here), bypassing [`Trainer::feed`].
    #[cfg(test)]
    pub(crate) fn set_words(&mut self, mut words: Vec<(String, u64)>) {
        words.sort_unstable();
        self.words = words;
    }

    /// Learns the vocabulary and merges from the counted words.
    pub(crate) fn learn(&self) -> Learned {
        let mut vocab = Vocab::default();
        for token in &self.special {
            vocab.id(token);
        }
        let prefix = self.prefix();
        // The alphabet, then the continuation alphabet, each in code-point order.
        let alphabet: BTreeSet<char> = self.words.iter().flat_map(|(w, _)| w.chars()).collect();
        for c in &alphabet {
            vocab.id(&c.to_string());
        }
        if let Some(prefix) = prefix {
            let inner: BTreeSet<char> = self
                .words
                .iter()
                .flat_map(|(w, _)| w.chars().skip(1))
                .collect();
            for c in inner {
                vocab.id(&format!("{prefix}{c}"));
            }
        }
        if vocab.tokens.len() > self.vocab_size {
            tracing::warn!(
                "the corpus has {} distinct characters: with the special tokens the \
                 vocabulary holds {}, over vocab_size {}, and no merge is made",
                alphabet.len(),
                vocab.tokens.len(),
                self.vocab_size
            );
        }
        // Every word as symbol ids: its first character plain, the rest prefixed.
        let mut symbols: Vec<Vec<u32>> = Vec::with_capacity(self.words.len());
        let mut counts: Vec<u64> = Vec::with_capacity(self.words.len());
        for (word, count) in &self.words {
            let ids = word
                .chars()
                .enumerate()
                .map(|(i, c)| match (i, prefix) {
                    (0, _) | (_, None) => vocab.id(&c.to_string()),
                    (_, Some(p)) => vocab.id(&format!("{p}{c}")),
                })
                .collect();
            symbols.push(ids);
            counts.push(*count);
        }
        let mut pairs = PairCounts::new(&symbols, &counts, &vocab);
        let mut merges = Vec::new();
        while vocab.tokens.len() < self.vocab_size {
            let Some((pair, count)) = pairs.best(&vocab) else {
                break;
            };
            if count < self.min_frequency.max(1) {
                break;
            }
            let left = vocab.tokens[pair.0 as usize].clone();
            let right = vocab.tokens[pair.1 as usize].clone();
            let tail = prefix.and_then(|p| right.strip_prefix(p)).unwrap_or(&right);
            let merged = vocab.id(&format!("{left}{tail}"));
            merges.push((left.to_string(), right.to_string()));
            pairs.merge(pair, merged, &mut symbols, &counts, &vocab);
        }
        Learned {
            tokens: vocab.tokens.iter().map(|t| t.to_string()).collect(),
            merges,
        }
    }

    /// The `tokenizers` model holding `learned`.
    fn build(&self, learned: Learned) -> tokenizers::Result<ModelWrapper> {
        let vocab = || {
            learned
                .tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), i as u32))
        };
        Ok(match self.model {
            SubwordModel::WordPiece => WordPiece::builder()
                .vocab(vocab().collect::<tokenizers::models::bpe::Vocab>())
                .unk_token(self.unk.clone())
                .continuing_subword_prefix(CONTINUING_PREFIX.to_string())
                .build()?
                .into(),
            SubwordModel::Bpe => BPE::builder()
                .vocab_and_merges(
                    vocab().collect::<tokenizers::models::bpe::Vocab>(),
                    learned.merges,
                )
                .unk_token(self.unk.clone())
                .build()?
                .into(),
        })
    }
}

impl Trainer for SubwordTrainer {
    type Model = ModelWrapper;

    fn should_show_progress(&self) -> bool {
        false
    }

    /// Replaces `model` with the trained one; the special tokens are returned for the
    /// tokenizer to register.
    fn train(&self, model: &mut ModelWrapper) -> tokenizers::Result<Vec<AddedToken>> {
        *model = self.build(self.learn())?;
        Ok(self
            .special
            .iter()
            .map(|t| AddedToken::from(t.clone(), true))
            .collect())
    }

    /// Counts the words `process` (the tokenizer's normaliser and pre-tokeniser) makes of
    /// each text, on the rayon pool; the sums are then sorted by word, so the result
    /// depends on neither the thread count nor the order of the texts.
    fn feed<I, S, F>(&mut self, iterator: I, process: F) -> tokenizers::Result<()>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
        F: Fn(&str) -> tokenizers::Result<Vec<String>> + Sync,
    {
        let counts = iterator
            .par_bridge()
            .map(|text| process(text.as_ref()))
            .try_fold(HashMap::<String, u64>::new, |mut acc, words| {
                for word in words? {
                    *acc.entry(word).or_default() += 1;
                }
                Ok::<_, tokenizers::Error>(acc)
            })
            .try_reduce(HashMap::new, |a, b| {
                let (mut big, small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
                for (word, n) in small {
                    *big.entry(word).or_default() += n;
                }
                Ok(big)
            })?;
        let mut words: Vec<(String, u64)> =
            counts.into_iter().filter(|(w, _)| !w.is_empty()).collect();
        words.sort_unstable();
        self.words = words;
        Ok(())
    }
}

/// Tokens by id and ids by token; a token string has one id.
#[derive(Debug, Default)]
struct Vocab {
    tokens: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Vocab {
    /// The id of `token`, added at the end when new.
    fn id(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.ids.get(token) {
            return id;
        }
        let id = self.tokens.len() as u32;
        let token: Arc<str> = token.into();
        self.tokens.push(token.clone());
        self.ids.insert(token, id);
        id
    }
}

/// A pair with the count it had when queued. The heap's order is the merge rule:
/// higher count first, then the lexicographically smaller `(left, right)`.
#[derive(Debug)]
struct Candidate {
    count: u64,
    left: Arc<str>,
    right: Arc<str>,
    pair: Pair,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.count
            .cmp(&other.count)
            .then_with(|| (&other.left, &other.right).cmp(&(&self.left, &self.right)))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Candidate {}

/// Incremental pair statistics: every live pair's count, the words that may hold it,
/// and a heap in which each live pair has an entry whose count is at least its true
/// count (a pair whose count rises gets a fresh entry; a popped entry whose count has
/// fallen is re-queued at its true count).
struct PairCounts {
    counts: HashMap<Pair, u64>,
    words: HashMap<Pair, HashSet<u32>>,
    heap: BinaryHeap<Candidate>,
}

impl PairCounts {
    fn new(symbols: &[Vec<u32>], counts: &[u64], vocab: &Vocab) -> Self {
        let mut stats = PairCounts {
            counts: HashMap::new(),
            words: HashMap::new(),
            heap: BinaryHeap::new(),
        };
        for (w, (word, &n)) in symbols.iter().zip(counts).enumerate() {
            for p in word.windows(2) {
                let pair = (p[0], p[1]);
                *stats.counts.entry(pair).or_default() += n;
                stats.words.entry(pair).or_default().insert(w as u32);
            }
        }
        for (&pair, &count) in &stats.counts {
            stats.heap.push(candidate(pair, count, vocab));
        }
        stats
    }

    /// The pair to merge next with its count, or `None` when no pair is left.
    fn best(&mut self, vocab: &Vocab) -> Option<(Pair, u64)> {
        while let Some(top) = self.heap.pop() {
            let now = self.counts.get(&top.pair).copied().unwrap_or(0);
            if now == top.count {
                return Some((top.pair, now));
            }
            // A fallen count is re-queued; a risen one already has its own entry.
            if 0 < now && now < top.count {
                self.heap.push(candidate(top.pair, now, vocab));
            }
        }
        None
    }

    /// Merges `pair` into `merged` in every word holding it, updating the counts of the
    /// pairs around each merge.
    fn merge(
        &mut self,
        pair: Pair,
        merged: u32,
        symbols: &mut [Vec<u32>],
        counts: &[u64],
        vocab: &Vocab,
    ) {
        let holders = self.words.remove(&pair).unwrap_or_default();
        let mut delta: HashMap<Pair, i128> = HashMap::new();
        for w in holders {
            let word = &mut symbols[w as usize];
            if !word.windows(2).any(|p| (p[0], p[1]) == pair) {
                continue;
            }
            let n = i128::from(counts[w as usize]);
            for p in word.windows(2) {
                *delta.entry((p[0], p[1])).or_default() -= n;
            }
            let mut out = Vec::with_capacity(word.len());
            let mut i = 0;
            while i < word.len() {
                if i + 1 < word.len() && (word[i], word[i + 1]) == pair {
                    out.push(merged);
                    i += 2;
                } else {
                    out.push(word[i]);
                    i += 1;
                }
            }
            *word = out;
            for p in word.windows(2) {
                let q = (p[0], p[1]);
                *delta.entry(q).or_default() += n;
                if q.0 == merged || q.1 == merged {
                    self.words.entry(q).or_default().insert(w);
                }
            }
        }
        for (q, d) in delta {
            if d == 0 {
                continue;
            }
            let old = i128::from(self.counts.get(&q).copied().unwrap_or(0));
            // Counts are sums of word counts over occurrences: never below zero.
            let now = u64::try_from(old + d).unwrap_or(0);
            if now == 0 {
                self.counts.remove(&q);
                self.words.remove(&q);
            } else {
                self.counts.insert(q, now);
                if d > 0 {
                    self.heap.push(candidate(q, now, vocab));
                }
            }
        }
    }
}

fn candidate(pair: Pair, count: u64, vocab: &Vocab) -> Candidate {
    Candidate {
        count,
        left: vocab.tokens[pair.0 as usize].clone(),
        right: vocab.tokens[pair.1 as usize].clone(),
        pair,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;

    const SPECIAL: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    fn trainer(model: SubwordModel, vocab_size: usize, words: &[(&str, u64)]) -> SubwordTrainer {
        let mut t = SubwordTrainer::new(model, vocab_size, 1, &SPECIAL, "[UNK]");
        t.set_words(words.iter().map(|(w, n)| (w.to_string(), *n)).collect());
        t
    }

    /// The merge rule computed the slow way: every step recounts every pair. Returns
    /// the merges and how many were made before the first tie at the top.
    fn naive(
        words: &[(String, u64)],
        prefix: Option<&str>,
        merges: usize,
    ) -> (Vec<(String, String)>, usize) {
        let mut symbols: Vec<(Vec<String>, u64)> = words
            .iter()
            .map(|(w, n)| {
                let s = w
                    .chars()
                    .enumerate()
                    .map(|(i, c)| match (i, prefix) {
                        (0, _) | (_, None) => c.to_string(),
                        (_, Some(p)) => format!("{p}{c}"),
                    })
                    .collect();
                (s, *n)
            })
            .collect();
        let mut done = Vec::new();
        let mut untied = None;
        while done.len() < merges {
            let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
            for (s, n) in &symbols {
                for p in s.windows(2) {
                    *counts.entry((p[0].clone(), p[1].clone())).or_default() += n;
                }
            }
            let Some(max) = counts.values().copied().max() else {
                break;
            };
            let mut best = counts.iter().filter(|(_, &c)| c == max);
            let ((l, r), _) = best.next().unwrap();
            if best.next().is_some() && untied.is_none() {
                untied = Some(done.len());
            }
            let tail = prefix.and_then(|p| r.strip_prefix(p)).unwrap_or(r);
            let merged = format!("{l}{tail}");
            for (s, _) in &mut symbols {
                let mut out = Vec::new();
                let mut i = 0;
                while i < s.len() {
                    if i + 1 < s.len() && (&s[i], &s[i + 1]) == (l, r) {
                        out.push(merged.clone());
                        i += 2;
                    } else {
                        out.push(s[i].clone());
                        i += 1;
                    }
                }
                *s = out;
            }
            done.push((l.clone(), r.clone()));
        }
        let n = done.len();
        (done, untied.unwrap_or(n))
    }

    /// Random words over a small alphabet with distinct, spread-out counts.
    fn random_words(seed: u64, n: usize, max_count: u64) -> Vec<(String, u64)> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut words = BTreeMap::new();
        while words.len() < n {
            let len = rng.gen_range(2..9);
            let w: String = (0..len)
                .map(|_| char::from(b'a' + rng.gen_range(0..7u8)))
                .collect();
            words.insert(w, rng.gen_range(1..max_count));
        }
        words.into_iter().collect()
    }

    #[test]
    fn the_tie_rule_and_the_merge_order_on_a_hand_worked_corpus() {
        // hug ×10, pug ×5, pun ×12, bun ×4, hugs ×5: ##u ##g (20), ##u ##n (16),
        // h ##ug (15), p ##un (12), then hug ##s and p ##ug tie at 5 and "hug" < "p",
        // then p ##ug (5), b ##un (4).
        let words = [
            ("hug", 10),
            ("pug", 5),
            ("pun", 12),
            ("bun", 4),
            ("hugs", 5),
        ];
        let learned = trainer(SubwordModel::WordPiece, 100, &words).learn();
        let base = [
            "b", "g", "h", "n", "p", "s", "u", "##g", "##n", "##s", "##u",
        ];
        let pieces = ["##ug", "##un", "hug", "pun", "hugs", "pug", "bun"];
        let expected: Vec<&str> = SPECIAL
            .iter()
            .chain(&base)
            .chain(&pieces)
            .copied()
            .collect();
        assert_eq!(learned.tokens, expected);
        let merges: Vec<(&str, &str)> = learned
            .merges
            .iter()
            .map(|(l, r)| (l.as_str(), r.as_str()))
            .collect();
        assert_eq!(
            merges,
            [
                ("##u", "##g"),
                ("##u", "##n"),
                ("h", "##ug"),
                ("p", "##un"),
                ("hug", "##s"),
                ("p", "##ug"),
                ("b", "##un")
            ]
        );
        // BPE: the same order without prefixes.
        let bpe = trainer(SubwordModel::Bpe, 100, &words).learn();
        assert_eq!(
            bpe.tokens[SPECIAL.len() + 7..],
            ["ug", "un", "hug", "pun", "hugs", "pug", "bun"]
        );
        // The vocabulary size and the minimum frequency stop it.
        let short = trainer(SubwordModel::WordPiece, 20, &words).learn();
        assert_eq!(short.tokens.len(), 20);
        assert_eq!(short.tokens[16..], ["##ug", "##un", "hug", "pun"]);
        let mut frequent = trainer(SubwordModel::WordPiece, 100, &words);
        frequent.min_frequency = 5;
        assert_eq!(frequent.learn().merges.len(), 6);
    }

    #[test]
    fn incremental_counts_make_the_merges_of_a_full_recount() {
        for seed in 0..4 {
            let words = random_words(seed, 60, 100_000);
            for model in [SubwordModel::WordPiece, SubwordModel::Bpe] {
                let mut t = SubwordTrainer::new(model, 400, 1, &SPECIAL, "[UNK]");
                t.set_words(words.clone());
                let learned = t.learn();
                let (reference, _) = naive(&words, t.prefix(), learned.merges.len() + 1);
                assert_eq!(learned.merges, reference, "seed {seed} {model:?}");
            }
        }
    }

    #[test]
    fn without_ties_the_vocabulary_is_the_tokenizers_wordpiece_trainers() {
        use tokenizers::models::wordpiece::WordPieceTrainer;
        use tokenizers::Model;
        let words = random_words(7, 150, 3_000);
        let (_, untied) = naive(&words, Some(CONTINUING_PREFIX), 400);
        assert!(untied >= 40, "only {untied} merges before a tie");
        let mut ours = SubwordTrainer::new(SubwordModel::WordPiece, 0, 1, &SPECIAL, "[UNK]");
        ours.set_words(words.clone());
        let base = ours.learn().tokens.len();
        ours.vocab_size = base + untied;
        let ours: BTreeSet<String> = ours.learn().tokens.into_iter().collect();

        // Each item is "word count"; the trainer's `process` expands it to the words.
        let items: Vec<String> = words.iter().map(|(w, n)| format!("{w} {n}")).collect();
        let mut hf = WordPieceTrainer::builder()
            .vocab_size(base + untied)
            .min_frequency(1)
            .special_tokens(SPECIAL.iter().map(|t| AddedToken::from(*t, true)).collect())
            .show_progress(false)
            .build();
        tokenizers::Trainer::feed(&mut hf, items.iter(), |item| {
            let (w, n) = item.split_once(' ').unwrap();
            Ok(vec![w.to_string(); n.parse().unwrap()])
        })
        .unwrap();
        let mut model = WordPiece::default();
        hf.train(&mut model).unwrap();
        let theirs: BTreeSet<String> = model.get_vocab().into_keys().collect();
        assert_eq!(ours.len(), base + untied);
        assert_eq!(ours, theirs);
    }
}
