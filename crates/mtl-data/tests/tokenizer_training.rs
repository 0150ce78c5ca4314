//! Tokenizer training is deterministic: one corpus gives one `tokenizer.json`, whatever
//! the order of its texts or the rayon thread count; the vocabulary reaches its size
//! with the special ids fixed; every training word encodes without `[UNK]`; and a
//! corpus small enough to work by hand gives the merges worked by hand.

use mtl_data::text::{SubwordModel, TextTokenizer, TokenizerConfig, Truncation, SPECIAL_TOKENS};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `n` made-up sentences: words of two to four syllables drawn unevenly (so many pair
/// counts tie), some capitalised, with punctuation and a few accented letters.
fn generated(n: usize) -> Vec<String> {
    let syllables = [
        "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "bre", "ché", "dan", "fol", "gu", "hi",
        "jé", "pra",
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let lexicon: Vec<String> = (0..300)
        .map(|_| {
            (0..rng.gen_range(2..5))
                .map(|_| syllables[rng.gen_range(0..syllables.len())])
                .collect()
        })
        .collect();
    (0..n)
        .map(|_| {
            let words: Vec<String> = (0..rng.gen_range(4..12))
                .map(|_| {
                    // Two uniform draws, the smaller kept: low indices come more often.
                    let i = rng
                        .gen_range(0..lexicon.len())
                        .min(rng.gen_range(0..lexicon.len()));
                    match rng.gen_range(0..10) {
                        0 => format!("{}{}", lexicon[i][..1].to_uppercase(), &lexicon[i][1..]),
                        1 => format!("{},", lexicon[i]),
                        _ => lexicon[i].clone(),
                    }
                })
                .collect();
            format!("{}.", words.join(" "))
        })
        .collect()
}

fn configs(vocab_size: usize) -> [TokenizerConfig; 2] {
    [
        TokenizerConfig::wordpiece(vocab_size),
        TokenizerConfig::bpe(vocab_size),
    ]
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mtl-tok-train-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The vocabulary, token by id.
fn vocab(tok: &TextTokenizer) -> BTreeMap<u32, String> {
    tok.inner()
        .get_vocab(true)
        .into_iter()
        .map(|(t, i)| (i, t))
        .collect()
}

#[test]
fn training_twice_writes_the_same_tokenizer_json() {
    let corpus = generated(1500);
    let dir = temp("twice");
    for config in configs(300) {
        let a = TextTokenizer::train(&corpus, &config).unwrap();
        let b = TextTokenizer::train(&corpus, &config).unwrap();
        a.save(dir.join("a.json")).unwrap();
        b.save(dir.join("b.json")).unwrap();
        let (a_json, b_json) = (
            std::fs::read(dir.join("a.json")).unwrap(),
            std::fs::read(dir.join("b.json")).unwrap(),
        );
        assert!(
            a_json == b_json,
            "{config:?}: two tokenizer.json files differ"
        );
        assert_eq!(a.vocab_fingerprint(), b.vocab_fingerprint());
        // The file loads back (as Hugging Face `tokenizers` reads it) with that vocabulary.
        let back = TextTokenizer::from_file(dir.join("a.json")).unwrap();
        assert_eq!(back.vocab_fingerprint(), a.vocab_fingerprint());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn neither_corpus_order_nor_thread_count_changes_the_vocabulary() {
    let corpus = generated(1500);
    let mut shuffled = corpus.clone();
    shuffled.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
    assert_ne!(corpus, shuffled);
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    for config in configs(300) {
        let reference = TextTokenizer::train(&corpus, &config).unwrap();
        let reordered = TextTokenizer::train(&shuffled, &config).unwrap();
        assert_eq!(vocab(&reordered), vocab(&reference), "{config:?}");
        for threads in [1, 2] {
            let tok = pool(threads)
                .install(|| TextTokenizer::train(&shuffled, &config))
                .unwrap();
            assert_eq!(
                tok.vocab_fingerprint(),
                reference.vocab_fingerprint(),
                "{config:?} on {threads} threads"
            );
        }
    }
}

#[test]
fn the_vocabulary_reaches_its_size_with_the_special_ids_fixed() {
    let corpus = generated(800);
    for size in [60, 150, 400] {
        for config in configs(size) {
            let tok = TextTokenizer::train(&corpus, &config).unwrap();
            assert_eq!(tok.vocab_size(), size, "{config:?}");
            for (id, token) in SPECIAL_TOKENS.iter().enumerate() {
                assert_eq!(tok.token_id(token), Some(id as i64), "{config:?}");
            }
            // Ids run 0..size without gaps.
            let ids: Vec<u32> = vocab(&tok).into_keys().collect();
            assert_eq!(ids, (0..size as u32).collect::<Vec<_>>());
        }
    }
}

#[test]
fn every_training_word_encodes_without_unknown_tokens() {
    let corpus = generated(800);
    // 60 entries hold the alphabet (and its `##` forms) with few merges; 400 many.
    for size in [60, 400] {
        for config in configs(size) {
            let tok = TextTokenizer::train(&corpus, &config).unwrap();
            let enc = tok.encode_batch(&corpus, 128, Truncation::Refuse).unwrap();
            assert_eq!(enc.report.unknown_tokens, 0, "{config:?}");
        }
    }
    // Outside the training alphabet: unknown.
    let tok = TextTokenizer::train(&corpus, &TokenizerConfig::wordpiece(100)).unwrap();
    let enc = tok.encode_batch(&["kaxo"], 8, Truncation::Refuse).unwrap();
    assert_eq!(enc.report.unknown_tokens, 1);
}

/// hug ×10 (three of them upper-case: the normaliser lower-cases before counting),
/// pug ×5, pun ×12, bun ×4, hugs ×5.
fn hand_corpus() -> Vec<String> {
    let mut texts = Vec::new();
    for (word, n) in [
        ("hug", 7),
        ("HUG", 3),
        ("pug", 5),
        ("pun", 12),
        ("bun", 4),
        ("hugs", 5),
    ] {
        texts.extend(std::iter::repeat_n(word.to_string(), n));
    }
    texts
}

#[test]
fn a_hand_worked_corpus_gives_the_pieces_worked_by_hand() {
    // Alphabet b g h n p s u, then ##g ##n ##s ##u (ids 5..16). Pair counts:
    // ##u ##g 20, p ##u 17, ##u ##n 16, h ##u 15, ##g ##s 5, b ##u 4 → ##ug.
    // Then ##u ##n 16 → ##un; h ##ug 15 → hug; p ##un 12 → pun; then hug ##s and
    // p ##ug tie at 5: "hug" sorts before "p" → hugs, then pug; b ##un 4 → bun.
    let mut config = TokenizerConfig::wordpiece(23);
    config.min_frequency = 1;
    let tok = TextTokenizer::train(hand_corpus(), &config).unwrap();
    let learned: Vec<String> = vocab(&tok).into_values().skip(5).collect();
    assert_eq!(
        learned,
        [
            "b", "g", "h", "n", "p", "s", "u", "##g", "##n", "##s", "##u", "##ug", "##un", "hug",
            "pun", "hugs", "pug", "bun"
        ]
    );
    let enc = tok.inner().encode("Hugs, pugs bun", true).unwrap();
    assert_eq!(
        enc.get_tokens(),
        ["[CLS]", "hugs", "[UNK]", "pug", "##s", "bun", "[SEP]"]
    );
    // BPE: the same merges, without prefixes.
    config.model = SubwordModel::Bpe;
    let tok = TextTokenizer::train(hand_corpus(), &config).unwrap();
    let learned: Vec<String> = vocab(&tok).into_values().skip(12).collect();
    assert_eq!(learned, ["ug", "un", "hug", "pun", "hugs", "pug", "bun"]);
    // Seen fewer than 5 times, b ##un is not merged.
    config.model = SubwordModel::WordPiece;
    config.min_frequency = 5;
    let tok = TextTokenizer::train(hand_corpus(), &config).unwrap();
    assert_eq!(tok.vocab_size(), 22);
    assert_eq!(tok.token_id("bun"), None);
    assert_eq!(tok.token_id("pug"), Some(21));
}
