//! Method hyper-parameters reach the method: static weights from the configuration are
//! the weights trained with (Keras' `loss_weights`), and a key the method does not take
//! stops the fit before it starts.

mod common;

use common::{config, model, synthetic, torch_lock, weights};
use mtl::prelude::*;
use serde_json::json;

#[test]
fn static_weights_from_the_config_are_the_weights_trained_with() {
    let _lock = torch_lock();
    let data = synthetic(96, 1);
    // Weight 0 on task 1: its head receives no gradient, so Adam leaves it where it
    // started, while task 0's head moves.
    let mut m = model(5);
    let before = weights(&m);
    let cfg = config("static").method_param("weights", json!([1.0, 0.0]));
    let report = Trainer::new(cfg).unwrap().fit(&mut m, &data, None).unwrap();
    let after = weights(&m);
    let changed = |name: &str| {
        let b = &before.iter().find(|(n, _)| n == name).unwrap().1;
        let a = &after.iter().find(|(n, _)| n == name).unwrap().1;
        a != b
    };
    assert!(changed("task0.head.weight"));
    assert!(!changed("task1.head.weight") && !changed("task1.head.bias"));
    assert_eq!(report.config.method_params["weights"], json!([1.0, 0.0]));

    // Without the parameter, static means weights 1 and task 1's head trains.
    let mut m = model(5);
    Trainer::new(config("static"))
        .unwrap()
        .fit(&mut m, &data, None)
        .unwrap();
    let trained = weights(&m);
    let head = |w: &[(String, Vec<f32>)]| {
        w.iter()
            .find(|(n, _)| n == "task1.head.weight")
            .unwrap()
            .1
            .clone()
    };
    assert_ne!(head(&trained), head(&before));
}

#[test]
fn a_hyper_parameter_the_method_does_not_take_stops_the_fit() {
    let data = synthetic(32, 1);
    for (method, key, value, expected) in [
        (
            "static",
            "weight",
            json!([1.0, 0.3]),
            "did you mean `weights`",
        ),
        ("static", "weights", json!([1.0]), "a list of 2 numbers"),
        ("cagrad", "c", json!("half"), "must be a number"),
        ("ew", "c", json!(0.4), "takes no hyper-parameters"),
    ] {
        let cfg = config(method).method_param(key, value);
        let mut m = model(5);
        let err = Trainer::new(cfg)
            .unwrap()
            .fit(&mut m, &data, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{method} {key}: {err}");
    }
}
