//! A crate that depends on `mtl` alone gets the `tch` and `ndarray` it was built with
//! from every library crate (another `ndarray` major version would be another type).

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
