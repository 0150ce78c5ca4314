//! A crate that depends on `mtl` alone gets the `tch` and `ndarray` it was built with
//! from every library crate (another `ndarray` major version would be another type),
//! and the common configs and heads from the prelude.

use mtl::prelude::*;

#[test]
fn every_crate_reexports_the_tch_and_ndarray_it_was_built_with() {
    // One type through every path: these only compile if the versions are the same.
    let a: mtl::ndarray::Array2<f32> = mtl::data::ndarray::Array2::zeros((2, 3));
    let t: mtl::tch::Tensor = mtl::core::tch::Tensor::zeros(
        [2],
        (mtl::heads::tch::Kind::Float, mtl::losses::tch::Device::Cpu),
    );
    let ds = mtl::data::MultiTaskDataset::new(
        a,
        vec![mtl::data::TaskData::binary(
            "b",
            mtl::ndarray::array![0.0, 1.0],
        )],
    )
    .unwrap();
    assert_eq!(ds.num_features(), 3);
    assert_eq!(t.size(), [2]);
}

#[test]
fn the_prelude_has_the_common_configs_heads_and_bundles() {
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _mmoe: MmoeConfig = MmoeConfig::new(4, 2, 2);
    let _mlp: MlpConfig = MlpConfig::new([4, 8]).activation(Activation::Tanh);
    let _builder: MlpBuilder = MlpBuilder::new([8]);
    let _c = ClassificationHead::new(&(vs.root() / "c"), "c", 8, 3).unwrap();
    let _b = BinaryHead::new(&(vs.root() / "b"), "b", 8).unwrap();
    let _r = RegressionHead::new(
        &(vs.root() / "r"),
        "r",
        8,
        1,
        RegressionLoss::Huber { delta: 1.0 },
    )
    .unwrap();
    let _m = MultiLabelHead::new(&(vs.root() / "m"), "m", 8, 2).unwrap();
    let spec = ModelSpec::hard_sharing(2, &[4], vec![HeadSpec::Binary { name: "y".into() }]);
    let model = MultiTaskModel::from_spec(&spec, tch::Device::Cpu).unwrap();
    let _: fn(&std::path::Path) -> Result<Bundle> = |p| Bundle::load(p);
    let _: &Preprocessing = model.preprocessing();
    let _ = Standardizer::from_parts(mtl::ndarray::array![0.0], mtl::ndarray::array![1.0]).unwrap();
    let _ = TargetEncoding::Identity;
    let out: Vec<TaskPrediction> = model
        .predict(mtl::ndarray::Array2::zeros((1, 2)).view())
        .unwrap();
    assert!(matches!(out[0].output, Predicted::Binary { .. }));
}
