//! Masked-language-model draws: the BERT proportions, never a special token, targets
//! that are the original ids, repeatable with the seed and fixed for evaluation.

use mtl_data::{JointData, MaskedLmData, MLM_IGNORE};
use tch::{Device, Kind, Tensor};

#[test]
fn draws_follow_berts_proportions_and_spare_special_tokens() {
    // The sentences are drawn from libtorch's generator: seeded, so the proportions
    // below are checked on the same draw every run.
    let _rng = mtl_core::torch_rng_lock();
    tch::manual_seed(0);
    // 0 padding, 1 [CLS], 2 [SEP], 3 [MASK]; ordinary tokens 4..100. Each sequence is
    // [CLS] w… [SEP] then padding.
    let (n, t) = (400i64, 32i64);
    let ids = Tensor::randint_low(4, 100, [n, t], (Kind::Int64, Device::Cpu));
    let lengths = Tensor::randint_low(8, t, [n, 1], (Kind::Int64, Device::Cpu));
    let pos = Tensor::arange(t, (Kind::Int64, Device::Cpu)).unsqueeze(0);
    let ids = ids
        .where_self(&pos.lt_tensor(&lengths), &Tensor::from(0i64))
        .where_self(&pos.ne_tensor(&lengths), &Tensor::from(2i64));
    let _ = ids.narrow(1, 0, 1).fill_(1);
    let data = MaskedLmData::new(ids.shallow_clone(), 100, 3, &[0, 1, 2]).unwrap();
    let mut rng = mtl_core::derive_rng(7, "batches");
    let batch = data
        .joint_batches(n as usize, Some(&mut rng))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let original = ids.index_select(
        0,
        &Tensor::from_slice(&batch.rows.iter().map(|&r| r as i64).collect::<Vec<_>>()),
    );
    let target = &batch.targets[0].values;
    let selected = target.ne(MLM_IGNORE);
    // Targets are the original ids wherever selected.
    assert!(target
        .masked_select(&selected)
        .equal(&original.masked_select(&selected)));
    // Never a special token.
    let special = original.le(3);
    assert_eq!(
        selected
            .logical_and(&special)
            .sum(Kind::Int64)
            .int64_value(&[]),
        0
    );
    let ordinary = special.logical_not().sum(Kind::Int64).double_value(&[]);
    let chosen = selected.sum(Kind::Int64).double_value(&[]);
    let share = chosen / ordinary;
    assert!((share - 0.15).abs() < 0.01, "selected {share}");
    // Of the selected: 80 % [MASK], 10 % another token, 10 % unchanged.
    let x = batch.x.masked_select(&selected);
    let y = original.masked_select(&selected);
    let masked = x.eq(3).sum(Kind::Int64).double_value(&[]) / chosen;
    let kept = x.eq_tensor(&y).sum(Kind::Int64).double_value(&[]) / chosen;
    assert!((masked - 0.8).abs() < 0.03, "masked {masked}");
    // A random draw may land on the same token (1 in 96), a little above 10 %.
    assert!((kept - 0.1).abs() < 0.03, "kept {kept}");
    assert!(x.ge(4).logical_or(&x.eq(3)).all().int64_value(&[]) == 1);
    // Unselected tokens are untouched.
    let untouched = selected.logical_not();
    assert!(batch
        .x
        .masked_select(&untouched)
        .equal(&original.masked_select(&untouched)));

    // The same seed, the same draw; evaluation draws are fixed.
    let mut again = mtl_core::derive_rng(7, "batches");
    let b2 = data
        .joint_batches(n as usize, Some(&mut again))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert!(b2.x.equal(&batch.x));
    let e1 = data
        .joint_batches(64, None)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let e2 = data
        .joint_batches(64, None)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert!(e1.targets[0].values.equal(&e2.targets[0].values));
}

#[test]
fn bad_ids_and_settings_are_refused() {
    let ids = Tensor::from_slice(&[4i64, 5, 120]).view([1, 3]);
    assert!(MaskedLmData::new(ids, 100, 3, &[0]).is_err());
    let ok = Tensor::from_slice(&[4i64, 5, 6]).view([1, 3]);
    assert!(MaskedLmData::new(ok.shallow_clone(), 100, 100, &[0]).is_err());
    assert!(MaskedLmData::new(ok.shallow_clone(), 2, 1, &[0]).is_err());
    assert!(MaskedLmData::new(ok.to_kind(Kind::Float), 100, 3, &[0]).is_err());
    let data = MaskedLmData::new(ok, 100, 3, &[0]).unwrap();
    assert!(data.with_probability(1.5).is_err());
}
