//! W6's tokenization throughput: how many sentences per second
//! [`TextTokenizer::encode_batch`] turns into `[N, 128]` id tensors, on one thread and
//! on a rayon pool (the batch encode spreads its sentences over the pool it runs in:
//! `tokenizers`' own `encode_batch`).
//!
//! The corpus is generated: a few thousand sentences of 8–60 pseudo-words drawn from a
//! fixed word list with a Zipf-like skew (a few words common, most rare), capitalised,
//! with commas and a full stop, so a WordPiece vocabulary trained on it splits the rare
//! words into several pieces (about 49 tokens a sentence with `[CLS]`/`[SEP]`; none
//! reaches 128, so nothing is truncated). The tokenizer is trained on the corpus first
//! (untimed); each timing is one `encode_batch` of the whole corpus, the two settings
//! alternated.

use super::job::{RunConfig, IMPL};
use super::spec::TEXT_LEN;
use super::timing::{round3, CpuSnapshot, Summary};
use mtl::data::{TextTokenizer, Truncation};
use serde_json::{json, Value};
use std::time::Instant;

/// The `workload` of the tokenization rows.
pub const TOKENIZE_WORKLOAD: &str = "text_tokenize";

/// Sentences encoded per timing.
pub const SENTENCES: usize = 4000;
/// Timed encodes per setting (after one untimed each).
pub const REPS: usize = 7;
/// The trained WordPiece vocabulary.
pub const VOCAB: usize = 4000;

/// A small deterministic generator (xorshift64*), so the corpus needs no crate and is
/// the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` generated sentences (seeded): 8–60 words each from a list of 3000 pseudo-words
/// of one to four syllables, word i drawn with a Zipf-like skew.
pub fn corpus(n: usize, seed: u64) -> Vec<String> {
    const ONSETS: [&str; 16] = [
        "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "st",
    ];
    const VOWELS: [&str; 6] = ["a", "e", "i", "o", "u", "ou"];
    const CODAS: [&str; 5] = ["", "", "n", "r", "s"];
    let mut rng = Rng::new(seed ^ 0x5EED);
    let words: Vec<String> = (0..3000)
        .map(|_| {
            let syllables = 1 + rng.below(4);
            (0..syllables)
                .map(|_| {
                    format!(
                        "{}{}{}",
                        ONSETS[rng.below(ONSETS.len())],
                        VOWELS[rng.below(VOWELS.len())],
                        CODAS[rng.below(CODAS.len())]
                    )
                })
                .collect()
        })
        .collect();
    (0..n)
        .map(|_| {
            let len = 8 + rng.below(53);
            let mut s = String::new();
            for w in 0..len {
                // u³ skews the draw towards the first words of the list.
                let word = &words[(rng.unit().powi(3) * words.len() as f64) as usize];
                if w == 0 {
                    let mut c = word.chars();
                    if let Some(first) = c.next() {
                        s.extend(first.to_uppercase());
                        s.push_str(c.as_str());
                    }
                } else {
                    s.push(' ');
                    s.push_str(word);
                }
                if w + 1 < len && rng.below(10) == 0 {
                    s.push(',');
                }
            }
            s.push('.');
            s
        })
        .collect()
}

fn pool(threads: usize) -> anyhow::Result<rayon::ThreadPool> {
    Ok(rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("tokenize-{i}"))
        .build()?)
}

/// Times `encode_batch` of `n` generated sentences to [`TEXT_LEN`] tokens, `reps` times
/// on a one-thread pool and on a pool of `threads` threads, alternated; checks that
/// both give the same tensors. Returns one row per setting.
pub fn measure(
    n: usize,
    reps: usize,
    threads: usize,
    seed: u64,
    vocab: usize,
) -> anyhow::Result<Vec<Value>> {
    let texts = corpus(n, seed);
    let t0 = Instant::now();
    let tok = TextTokenizer::train_wordpiece(texts.iter().map(String::as_str), vocab)?;
    let train_s = t0.elapsed().as_secs_f64();
    let max_len = TEXT_LEN as usize;
    let settings = [(1usize, pool(1)?), (threads, pool(threads)?)];
    let encode = |p: &rayon::ThreadPool| {
        p.install(|| tok.encode_batch(&texts, max_len, Truncation::Truncate))
    };
    // One untimed encode per setting; they must agree exactly.
    let first: Vec<_> = settings
        .iter()
        .map(|(_, p)| encode(p))
        .collect::<Result<_, _>>()?;
    let identical = first[0].ids.equal(&first[1].ids)
        && first[0].attention_mask.equal(&first[1].attention_mask);
    if !identical {
        anyhow::bail!("the parallel encode differs from the one-thread encode");
    }
    let tokens = first[0]
        .attention_mask
        .sum(tch::Kind::Int64)
        .int64_value(&[]);
    let truncated = first[0].report.truncated.len();
    let mut times = vec![Vec::with_capacity(reps); settings.len()];
    let s0 = CpuSnapshot::now();
    for _ in 0..reps {
        for (i, (_, p)) in settings.iter().enumerate() {
            let t = Instant::now();
            let out = encode(p)?;
            times[i].push(t.elapsed().as_secs_f64());
            drop(std::hint::black_box(out));
        }
    }
    let (foreign, own) = s0.contention_since(&CpuSnapshot::now());
    let one_thread = Summary::of_seconds(&times[0]).median_ms;
    Ok(settings
        .iter()
        .zip(&times)
        .map(|((threads, _), t)| {
            let s = Summary::of_seconds(t);
            let per_s = n as f64 / (s.median_ms / 1e3);
            let mut row = s.to_json();
            row.insert("impl".into(), json!(IMPL));
            row.insert("workload".into(), json!(TOKENIZE_WORKLOAD));
            row.insert(
                "method".into(),
                json!(if *threads == 1 {
                    "encode_batch, 1 thread".to_string()
                } else {
                    format!("encode_batch, rayon {threads} threads")
                }),
            );
            row.insert("rayon_threads".into(), json!(threads));
            row.insert("sentences".into(), json!(n));
            row.insert("tokens".into(), json!(tokens));
            row.insert("max_len".into(), json!(max_len));
            row.insert("truncated".into(), json!(truncated));
            row.insert("vocab".into(), json!(tok.vocab_size()));
            row.insert("train_s".into(), json!(train_s));
            row.insert("steps".into(), json!(t.len()));
            row.insert("sentences_per_s".into(), json!(per_s.round()));
            row.insert(
                "tokens_per_s".into(),
                json!((tokens as f64 / (s.median_ms / 1e3)).round()),
            );
            row.insert(
                "speedup_over_1_thread".into(),
                json!(one_thread / s.median_ms),
            );
            row.insert("parallel_equals_sequential".into(), json!(identical));
            row.insert("foreign_cpu_frac".into(), json!(round3(foreign)));
            row.insert(
                "self_cpu_cores".into(),
                json!((own * 100.0).round() / 100.0),
            );
            row.insert("status".into(), json!("ok"));
            Value::Object(row)
        })
        .collect())
}

/// The tokenization job: [`SENTENCES`] sentences, [`REPS`] timed encodes per setting,
/// the parallel pool as wide as the machine (at least `--threads`).
pub fn run(cfg: &RunConfig) -> anyhow::Result<Vec<Value>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.max(cfg.threads.max(1) as usize);
    measure(SENTENCES, REPS, threads, cfg.seed, VOCAB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_is_seeded_and_shaped() {
        let a = corpus(50, 0);
        assert_eq!(a, corpus(50, 0));
        assert_ne!(a, corpus(50, 1));
        for s in &a {
            let words = s.split(' ').count();
            assert!((8..=60).contains(&words), "{s}");
            assert!(s.ends_with('.') && s.chars().next().unwrap().is_uppercase());
        }
    }

    /// A small run: both settings give rows, and the parallel encode equals the
    /// one-thread one (`measure` fails otherwise).
    #[test]
    fn parallel_encoding_equals_sequential() {
        let rows = measure(300, 2, 3, 0, 500).unwrap();
        assert_eq!(rows.len(), 2);
        for r in &rows {
            assert_eq!(r["parallel_equals_sequential"], true);
            assert!(r["sentences_per_s"].as_f64().unwrap() > 0.0, "{r}");
        }
        assert_eq!(rows[1]["rayon_threads"], 3);
    }
}
