//! The CUDA path, on a machine with a visible NVIDIA GPU: device selection, the same
//! training run on the GPU and on the CPU ending within float tolerance for loss-level
//! and gradient-level methods, seeded initialisation on the GPU, and weights trained on
//! the GPU saved and loaded on the CPU. Where no GPU is visible (CI, every developer
//! machine here) each test checks the CPU-only behaviour and says on stderr that the GPU
//! part was skipped; `docs/using-mtl.md` ("On a GPU") says how these were run on one.

mod common;

use mtl::core::checkpoint::save_weights;
use mtl::core::device::cuda_available;
use mtl::core::{select_device, DeviceRequest};
use mtl::prelude::*;
use mtl::{ModelSpec, RunReport};
use tch::{Device, Tensor};

/// The GPU, when one is visible; otherwise says so and returns `None`.
fn gpu(test: &str) -> Option<Device> {
    if cuda_available() {
        Some(Device::Cuda(0))
    } else {
        eprintln!("{test}: no CUDA device visible, GPU part skipped");
        None
    }
}

/// Every weight of `m`, on the CPU, flattened, by name.
fn weights_on_cpu(m: &MultiTaskModel) -> Vec<(String, Vec<f32>)> {
    m.snapshot()
        .into_iter()
        .map(|(n, t)| {
            let v = Vec::<f32>::try_from(t.to_device(Device::Cpu).reshape([-1])).unwrap();
            (n, v)
        })
        .collect()
}

fn max_abs_diff(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|((na, va), (nb, vb))| {
            assert_eq!(na, nb);
            va.iter().zip(vb).map(|(x, y)| (x - y).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn auto_picks_the_gpu_when_there_is_one_and_bad_ordinals_are_typed_errors() {
    let auto = select_device(DeviceRequest::Auto).unwrap();
    let Some(dev) = gpu("device selection") else {
        assert_eq!(auto, Device::Cpu);
        assert!(select_device(DeviceRequest::Cuda(0)).is_err());
        return;
    };
    assert_eq!(auto, dev);
    assert_eq!(select_device(DeviceRequest::Cuda(0)).unwrap(), dev);
    let n = tch::Cuda::device_count() as usize;
    let err = select_device(DeviceRequest::Cuda(n)).unwrap_err();
    assert!(err.to_string().contains("only"), "{err}");
}

/// Loss-level and gradient-level methods (including the ones that solve a small
/// problem on the Gram matrix or draw random orders) trained for 3 epochs from the same
/// weights on both devices. The GPU's float kernels sum in another order, so the runs
/// agree to a tolerance, not bit for bit.
#[test]
fn training_on_the_gpu_matches_the_same_run_on_the_cpu() {
    let Some(dev) = gpu("cpu/gpu training parity") else {
        return;
    };
    let data = common::synthetic(256, 1);
    for method in [
        "ew", "uw", "dwa", "famo", "pcgrad", "mgda", "cagrad", "upgrad", "nash_mtl", "imtl",
    ] {
        let config = common::config(method).epochs(3).progress(false);
        let mut cpu = common::model_without_dropout(7);
        let mut on_gpu = common::model_without_dropout(7);
        on_gpu.var_store_mut().set_device(dev);
        assert_eq!(on_gpu.device(), dev);
        let start = max_abs_diff(&weights_on_cpu(&cpu), &weights_on_cpu(&on_gpu));
        assert_eq!(
            start, 0.0,
            "{method}: both runs start from the same weights"
        );
        let rc = Trainer::new(config.clone())
            .unwrap()
            .fit(&mut cpu, &data, None)
            .unwrap();
        let rg = Trainer::new(config)
            .unwrap()
            .fit(&mut on_gpu, &data, None)
            .unwrap();
        assert_eq!(
            on_gpu.device(),
            dev,
            "{method}: the model stayed on the GPU"
        );
        let diff = max_abs_diff(&weights_on_cpu(&cpu), &weights_on_cpu(&on_gpu));
        let last = |r: &RunReport| r.epochs.last().unwrap().train_losses.iter().sum::<f64>();
        let (lc, lg) = (last(&rc), last(&rg));
        eprintln!("{method}: max |w_cpu − w_gpu| = {diff:.2e}, train loss {lc:.6} / {lg:.6}");
        assert!(diff < 1e-3, "{method}: weights differ by {diff}");
        assert!(
            (lc - lg).abs() <= 1e-3 * lc.abs().max(1.0),
            "{method}: final train loss {lc} on the CPU, {lg} on the GPU"
        );
    }
}

/// A model built on the GPU after `seed_everything` is the same each time (the CUDA
/// generator is seeded too), and a GPU-trained model's weights, saved, load on the CPU
/// and give the same predictions there.
#[test]
fn gpu_initialisation_is_seeded_and_gpu_weights_load_on_the_cpu() {
    let Some(dev) = gpu("seeded GPU init and GPU→CPU weights") else {
        return;
    };
    let spec = ModelSpec::hard_sharing(4, &[16, 8], common::synthetic_head_specs());
    let draw = || {
        let _rng = common::torch_lock();
        seed_everything(11);
        weights_on_cpu(&spec.build(dev).unwrap())
    };
    assert_eq!(max_abs_diff(&draw(), &draw()), 0.0);

    let data = common::synthetic(128, 2);
    let mut trained = spec.build(dev).unwrap();
    Trainer::new(common::config("pcgrad").epochs(2).progress(false))
        .unwrap()
        .fit(&mut trained, &data, None)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("mtl-cuda-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("weights.safetensors");
    save_weights(trained.var_store(), &path).unwrap();
    let mut cpu = spec.build(Device::Cpu).unwrap();
    cpu.var_store_mut().load(&path).unwrap();
    assert_eq!(
        max_abs_diff(&weights_on_cpu(&trained), &weights_on_cpu(&cpu)),
        0.0
    );
    let x = Tensor::randn([32, 4], (tch::Kind::Float, Device::Cpu));
    let on_cpu = cpu.forward_t(&x, false).unwrap();
    let on_gpu = trained.forward_t(&x.to_device(dev), false).unwrap();
    for (k, (a, b)) in on_cpu.outputs.iter().zip(&on_gpu.outputs).enumerate() {
        let d = (a - b.to_device(Device::Cpu)).abs().max().double_value(&[]);
        assert!(d < 1e-4, "task {k}: CPU and GPU predictions differ by {d}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
