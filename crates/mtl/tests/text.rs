//! Text end to end on token ids: a Transformer encoder pretrained as a masked language
//! model, saved, loaded into a two-task model (sentence classification + BIO tagging) by
//! name, and fine-tuned with the encoder frozen for an epoch, then unfrozen.

mod common;

use common::torch_lock;
use mtl::core::checkpoint::save_weights;
use mtl::core::{LoadOptions, TransformerConfig};
use mtl::data::{MaskedLmData, TensorDataset, TensorTask};
use mtl::heads::{SentenceHead, SequenceHead};
use mtl::prelude::*;
use tch::{nn, Device, Kind, Tensor};

// Vocabulary: 0 [PAD], 1 [CLS], 2 [MASK]; 3..8 names, 8..20 other words.
const VOCAB: i64 = 20;
const T: i64 = 10;

/// Sentences `[CLS] w w …` padded to T: a name (3..8) is always followed by its
/// "surname" (name + 5), so a masked surname is predictable from its name; a sentence
/// is "about a person" (class 1) when it holds a name. Tags: O 0, B-PER 1, I-PER 2.
fn corpus(n: i64, seed: i64) -> (Tensor, Tensor, Tensor) {
    tch::manual_seed(seed);
    let mut ids = Tensor::randint_low(13, VOCAB, [n, T], (Kind::Int64, Device::Cpu));
    let mut tags = Tensor::zeros([n, T], (Kind::Int64, Device::Cpu));
    let name_at = Tensor::randint_low(1, T - 3, [n], (Kind::Int64, Device::Cpu));
    let has_name = Tensor::rand([n], (Kind::Float, Device::Cpu)).lt(0.5);
    let len = Tensor::randint_low(6, T + 1, [n], (Kind::Int64, Device::Cpu));
    let (ids_v, tags_v) = (&mut ids, &mut tags);
    for i in 0..n {
        if has_name.int64_value(&[i]) == 1 {
            let at = name_at.int64_value(&[i]);
            let name = 3 + i % 5;
            let _ = ids_v.get(i).get(at).fill_(name);
            let _ = ids_v.get(i).get(at + 1).fill_(name + 5);
            let _ = tags_v.get(i).get(at).fill_(1);
            let _ = tags_v.get(i).get(at + 1).fill_(2);
        }
        let l = len.int64_value(&[i]);
        if l < T {
            let _ = ids_v.get(i).narrow(0, l, T - l).fill_(0);
            let _ = tags_v.get(i).narrow(0, l, T - l).fill_(-1);
        }
        let _ = ids_v.get(i).get(0).fill_(1);
        let _ = tags_v.get(i).get(0).fill_(-1);
    }
    (ids, has_name.to_kind(Kind::Int64), tags)
}

fn encoder() -> TransformerConfig {
    TransformerConfig::new(VOCAB, T)
        .d_model(32)
        .heads(4)
        .layers(2)
        .dropout(0.0)
}

fn config(epochs: usize) -> TrainerConfig {
    TrainerConfig::default()
        .epochs(epochs)
        .batch_size(32)
        .optimizer(OptimizerConfig::adam(3e-3))
        .seed(1)
}

#[test]
fn a_pretrained_encoder_fine_tunes_on_two_text_tasks() {
    let _torch = torch_lock();
    let (ids, about, tags) = corpus(256, 0);

    // Pretraining: the encoder and a sequence head over the vocabulary.
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let enc = encoder().build(&(vs.root() / "trunk")).unwrap();
    let mlm_head =
        SequenceHead::new(&(task_path(&vs.root(), 0) / "head"), "mlm", 32, VOCAB).unwrap();
    let mut lm = MultiTaskModel::new(
        vs,
        HardSharing::new(enc, 1).unwrap(),
        vec![Box::new(mlm_head)],
    )
    .unwrap();
    let mlm = MaskedLmData::new(ids.shallow_clone(), VOCAB, 2, &[0, 1]).unwrap();
    let report = Trainer::new(config(8))
        .unwrap()
        .fit(&mut lm, &mlm, None)
        .unwrap();
    let (first, last) = (
        report.epochs[0].train_losses[0],
        report.epochs.last().unwrap().train_losses[0],
    );
    // Most words are uniform over 7 (a floor near ln 7 ≈ 1.95 from ln 20 ≈ 3.0); only
    // the surname after a name can be learnt, so the loss falls part of the way.
    assert!(last < 0.9 * first, "MLM loss {first} -> {last}");
    let dir = std::env::temp_dir().join(format!("mtl-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("encoder.safetensors");
    save_weights(lm.var_store(), &saved).unwrap();

    // Fine-tuning: the saved encoder under the same name, two new heads.
    let build = || {
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let enc = encoder().build(&(vs.root() / "trunk")).unwrap();
        let root = vs.root();
        let heads: Vec<Box<dyn TaskHead>> = vec![
            Box::new(
                SentenceHead::new(
                    &(task_path(&root, 0) / "head"),
                    "about",
                    32,
                    2,
                    mtl::core::Pooling::Cls,
                )
                .unwrap(),
            ),
            Box::new(
                SequenceHead::new(&(task_path(&root, 1) / "head"), "ner", 32, 3)
                    .unwrap()
                    .with_bio_tags(vec!["O".into(), "B-PER".into(), "I-PER".into()])
                    .unwrap(),
            ),
        ];
        MultiTaskModel::new(vs, HardSharing::new(enc, 2).unwrap(), heads).unwrap()
    };
    let mut model = build();
    let report = model
        .load_pretrained(&saved, &LoadOptions::new().skip("task0.").strict(false))
        .unwrap();
    // The encoder loads; the new heads are the only variables left at their start.
    assert!(
        report.missing.iter().all(|n| n.starts_with("task")),
        "{report:?}"
    );
    assert!(
        report.unexpected.is_empty() && report.mismatched.is_empty(),
        "{report:?}"
    );
    let pretrained: Vec<(String, Tensor)> = lm
        .snapshot()
        .into_iter()
        .filter(|(n, _)| n.starts_with("trunk."))
        .collect();
    let now = model.var_store().variables();
    for (name, value) in &pretrained {
        assert!(now[name].equal(value), "{name}");
    }
    let data = TensorDataset::new(
        ids,
        vec![
            TensorTask::new("about", about),
            TensorTask::new("ner", tags),
        ],
    )
    .unwrap();
    let split = data.split(0.25, 0.0, 3).unwrap();
    // The encoder frozen for the first epoch, then trained: ULMFiT-style.
    let cfg = config(20).method("pcgrad").unfreeze_at("trunk.", 1);
    let report = Trainer::new(cfg)
        .unwrap()
        .fit(&mut model, &split.train, Some(&split.validation))
        .unwrap();
    let val = report.epochs.last().unwrap().validation.as_ref().unwrap();
    assert!(val.metric(0, "accuracy").unwrap() > 0.9, "{val:?}");
    assert!(val.metric(1, "span_f1").unwrap() > 0.8, "{val:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hierarchical_sharing_and_mmoe_over_a_pooled_encoder_train() {
    use mtl::core::{
        MlpBuilder, MmoeConfig, Pooling, SharedBottom, TaskTowers, TransformerTowerConfig,
    };
    use mtl::heads::ClassificationHead;
    let _torch = torch_lock();
    let (ids, about, tags) = corpus(256, 4);
    let data = TensorDataset::new(
        ids.shallow_clone(),
        vec![
            TensorTask::new("about", about.shallow_clone()),
            TensorTask::new("ner", tags),
        ],
    )
    .unwrap();

    // One shared layer, then a Transformer layer of each task's own.
    tch::manual_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let enc = encoder().layers(1).build(&(&root / "trunk")).unwrap();
    let arch = TaskTowers::build(
        HardSharing::new(enc, 2).unwrap(),
        &root,
        &TransformerTowerConfig::new(1, 4).dropout(0.0),
    )
    .unwrap();
    let heads: Vec<Box<dyn TaskHead>> = vec![
        Box::new(
            SentenceHead::new(
                &(task_path(&root, 0) / "head"),
                "about",
                32,
                2,
                Pooling::Cls,
            )
            .unwrap(),
        ),
        Box::new(
            SequenceHead::new(&(task_path(&root, 1) / "head"), "ner", 32, 3)
                .unwrap()
                .with_bio_tags(vec!["O".into(), "B-PER".into(), "I-PER".into()])
                .unwrap(),
        ),
    ];
    let mut model = MultiTaskModel::new(vs, arch, heads).unwrap();
    let report = Trainer::new(config(20).method("upgrad"))
        .unwrap()
        .fit(&mut model, &data, None)
        .unwrap();
    let last = report.epochs.last().unwrap();
    assert!(last
        .train_losses
        .iter()
        .zip(&report.epochs[0].train_losses)
        .all(|(l, f)| l < f));
    let eval = evaluate(&model, &data, 64).unwrap();
    assert!(
        eval.metric(0, "accuracy").unwrap() > 0.9 && eval.metric(1, "span_f1").unwrap() > 0.8,
        "{eval:?}"
    );

    // MMoE over sentences pooled by the encoder: is it about a person; is it long?
    let long = ids
        .ne(0)
        .sum_dim_intlist([1i64].as_slice(), false, Kind::Int64)
        .gt(8)
        .to_kind(Kind::Int64);
    let rows = TensorDataset::new(
        ids,
        vec![
            TensorTask::new("about", about),
            TensorTask::new("long", long),
        ],
    )
    .unwrap();
    tch::manual_seed(6);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let bottom = encoder()
        .pooling(Pooling::Mean)
        .build(&(&root / "encoder"))
        .unwrap();
    let mmoe = MmoeConfig::new(32, 3, 2)
        .build(&(&root / "mmoe"), &MlpBuilder::new([16]))
        .unwrap();
    let heads: Vec<Box<dyn TaskHead>> = vec![
        Box::new(ClassificationHead::new(&(task_path(&root, 0) / "head"), "about", 16, 2).unwrap()),
        Box::new(ClassificationHead::new(&(task_path(&root, 1) / "head"), "long", 16, 2).unwrap()),
    ];
    let mut model = MultiTaskModel::new(vs, SharedBottom::new(bottom, mmoe), heads).unwrap();
    Trainer::new(config(20).method("ew"))
        .unwrap()
        .fit(&mut model, &rows, None)
        .unwrap();
    let eval = evaluate(&model, &rows, 64).unwrap();
    assert!(
        eval.metric(0, "accuracy").unwrap() > 0.85 && eval.metric(1, "accuracy").unwrap() > 0.85,
        "{eval:?}"
    );
}
