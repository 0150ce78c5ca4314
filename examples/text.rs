//! Text multi-task learning end to end: a WordPiece tokenizer trained on the corpus, a
//! short masked-language-model pretraining of a small Transformer encoder on its raw
//! text, then two text tasks that each bring their own data — D₁ topic classification
//! of sentences, D₂ BIO named-entity tagging of other sentences — fine-tuned together
//! through `MultiInputData` and the trainer's per-task loop, with EW, UW, PCGrad and
//! UPGrad, from scratch and from the pretrained encoder (frozen for the first epoch,
//! then trained), against single-task models of the same start. Prints topic accuracy,
//! span-level F1 (seqeval's rules) and Δm per method, then saves the best model with its
//! tokenizer as a bundle, loads it back and labels a few raw sentences.
//!
//!     cargo xtask demo text            # or: cargo run --example text
//!     cargo xtask demo text --seed 3 --out target/text
//!
//! **The corpus is synthetic.** No corpus with both token-level and sentence-level
//! labels under a licence that allows shipping it was found in a package registry, so
//! the sentences are generated here, seeded (`corpus`): news-like sentences on four
//! topics (sports, business, travel, politics) built from templates with person,
//! organisation and location names. The topic is written in the entities as much as in
//! the context words — athletes and teams in sports, executives and companies in
//! business, and two sentences in five say nothing but an entity's name — so what
//! the tagger learns about names helps the classifier and back. Same seed, same table.

use anyhow::{bail, Context, Result};
use mtl::core::checkpoint::save_weights;
use mtl::core::{LoadOptions, Pooling, TransformerConfig};
use mtl::data::text::{
    text_dataset, LabelVocab, TextDatasetConfig, TextExample, TextLabels, TextTokenizer, Truncation,
};
use mtl::data::{MaskedLmData, MultiInputSplit};
use mtl::prelude::*;
use mtl::{ArchSpec, Evaluation, TextOutput, TextPredictor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Tokens per sentence, `[CLS]` and `[SEP]` included.
const MAX_LEN: usize = 24;
/// WordPiece vocabulary size (special tokens included).
const VOCAB: usize = 600;
/// Sentences: raw text for pretraining, topic-labelled (D₁), entity-tagged (D₂).
const RAW: usize = 2000;
const TOPIC_ROWS: usize = 1600;
const TAGGED_ROWS: usize = 600;
/// Epochs of masked-language-model pretraining and of fine-tuning.
const MLM_EPOCHS: usize = 6;
const EPOCHS: usize = 8;
/// Fine-tuning from the pretrained encoder keeps it frozen for this many epochs.
const FROZEN_EPOCHS: usize = 1;
const METHODS: [&str; 4] = ["ew", "uw", "pcgrad", "upgrad"];

struct Args {
    seed: u64,
    out: PathBuf,
}

fn args() -> Result<Args> {
    let mut a = Args {
        seed: 0,
        out: PathBuf::from("target/text"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" => a.seed = value()?.parse().context("--seed")?,
            "--out" => a.out = PathBuf::from(value()?),
            "--" => {}
            other => bail!("unknown option `{other}` (--seed, --out)"),
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

/// D₁ (topics) and D₂ (entities) split into train / validation / test, the raw
/// pretraining text, the tokenizer and the two label vocabularies.
struct Data {
    split: MultiInputSplit,
    raw: Vec<String>,
    tokenizer: TextTokenizer,
    labels: Vec<LabelVocab>,
}

fn data(seed: u64) -> Result<Data> {
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
    let raw: Vec<String> = (0..RAW)
        .map(|_| corpus::sentence(&mut rng).words.join(" "))
        .collect();
    let mut rng = corpus::Rng::new(seed, 2);
    let topics: Vec<TextExample> = (0..TOPIC_ROWS)
        .map(|i| example(i, corpus::sentence(&mut rng), true))
        .collect();
    let mut rng = corpus::Rng::new(seed, 3);
    let tagged: Vec<TextExample> = (0..TAGGED_ROWS)
        .map(|i| example(i, corpus::sentence(&mut rng), false))
        .collect();

    // The tokenizer sees the raw text only, as it would before any labelling.
    let tokenizer = TextTokenizer::train_wordpiece(&raw, VOCAB)?;
    let config = TextDatasetConfig::new(MAX_LEN).truncation(Truncation::Refuse);
    let labels = vec![LabelVocab::fit(&topics)?, LabelVocab::fit(&tagged)?];
    let d1 = text_dataset("topic", &tokenizer, &topics, &labels[0], &config)?;
    let d2 = text_dataset("entities", &tokenizer, &tagged, &labels[1], &config)?;
    let split = MultiInputData::from_tensor_datasets(vec![d1.dataset, d2.dataset])?
        .split(0.15, 0.25, seed)?;
    Ok(Data {
        split,
        raw,
        tokenizer,
        labels,
    })
}

fn encoder(vocab: usize) -> TransformerConfig {
    TransformerConfig::new(vocab as i64, MAX_LEN as i64)
        .d_model(64)
        .heads(4)
        .layers(2)
        .dropout(0.1)
}

/// The two-task spec: a shared encoder, a topic head on `[CLS]`, an entity tagger.
fn spec(d: &Data) -> ModelSpec {
    ModelSpec {
        architecture: ArchSpec::Transformer {
            encoder: encoder(d.tokenizer.vocab_size()),
        },
        heads: vec![
            HeadSpec::Sentence {
                name: "topic".into(),
                classes: d.labels[0].len() as i64,
                pooling: Pooling::Cls,
            },
            HeadSpec::Entities {
                name: "entities".into(),
                tags: d.labels[1].names().to_vec(),
            },
        ],
        input: None,
    }
}

/// Pretrains the encoder as a masked language model on the raw text; returns the
/// weights file.
fn pretrain(d: &Data, a: &Args) -> Result<PathBuf> {
    let tok = &d.tokenizer;
    let ids = tok.encode_batch(&d.raw, MAX_LEN, Truncation::Refuse)?.ids;
    let vocab = tok.vocab_size() as i64;
    let id = |t: &str| tok.token_id(t).with_context(|| format!("no {t} token"));
    let special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(id)
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    let mlm = MaskedLmData::new(ids, vocab, id("[MASK]")?, &special)?;
    let lm_spec = ModelSpec {
        architecture: ArchSpec::Transformer {
            encoder: encoder(tok.vocab_size()),
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
        .epochs(MLM_EPOCHS)
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
        "  masked-LM pretraining on {} raw sentences, {MLM_EPOCHS} epochs: loss {} ({:.1} s)",
        d.raw.len(),
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
    seed: u64,
) -> Result<Trained> {
    seed_everything(seed);
    let mut model = MultiTaskModel::from_spec(spec, tch::Device::Cpu)?;
    let mut cfg = TrainerConfig::default()
        .epochs(EPOCHS)
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
    let d = data(a.seed)?;
    println!(
        "SYNTHETIC corpus (generated, seed {}): no registry corpus with token- and",
        a.seed
    );
    println!(
        "sentence-level labels under a redistributable licence was found; see the doc comment."
    );
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
                a.seed,
            )?;
            let dm = DeltaM::compute(&t.test, &baselines)?.delta_m;
            if best.is_none_or(|(b, _)| dm < b) {
                best = Some((dm, rows.len()));
            }
            rows.push((t, Some(dm)));
        }
    }

    println!();
    println!(
        "{:<28} {:>10} {:>10} {:>8}",
        "test", "topic acc↑", "span F1↑", "Δm %↓"
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
            cell(metric("topic", "accuracy"), 4),
            cell(metric("entities", "span_f1"), 4),
            dm.map_or("–".into(), |v| format!("{v:.2}"))
        );
    }
    println!("Δm: mean over the two tasks of the relative change of accuracy and span F1");
    println!("against the single-task models of the same start (negative: better).");

    // The best multi-task model, saved with its tokenizer and labels, then used as
    // another program would: raw strings in, labels out.
    let (_, i) = best.context("no multi-task run")?;
    let (chosen, _) = rows.swap_remove(i);
    let dir = a.out.join("bundle");
    let method = chosen.label.rsplit(' ').next().unwrap_or("ew").to_string();
    let predictor = TextPredictor::new(chosen.model, d.tokenizer, MAX_LEN, d.labels)?;
    predictor.save(&dir, &method)?;
    let loaded = TextPredictor::load(&dir)?;
    println!(
        "\n{} saved to {}; loaded back, it reads:",
        chosen.label,
        dir.display()
    );
    let texts = [
        "Greta Okafor scored twice as the Riverton Hawks beat the Marlow Lions on Sunday .",
        "Bluepeak Energy will open a new factory in Port Ellis next year .",
        "We spent four days walking around Oakmere with Nils Rossi .",
    ];
    let out = loaded.predict(&texts)?;
    for (i, text) in texts.iter().enumerate() {
        let (TextOutput::Sentences { labels, .. }, TextOutput::Words { words, spans, .. }) =
            (&out[0].output, &out[1].output)
        else {
            bail!("unexpected prediction kinds");
        };
        let entities: Vec<String> = spans[i]
            .iter()
            .map(|s| format!("[{} {}]", words[i][s.start..s.end].join(" "), s.kind))
            .collect();
        println!(
            "  {text}\n    topic {}; entities {}",
            labels[i],
            entities.join(" ")
        );
    }
    println!("\ntotal {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}
