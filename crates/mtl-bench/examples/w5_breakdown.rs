//! What a W5 (dense) training step is made of, part by part, for `mtl` and its plain-`tch`
//! floor: the forward (network and losses), the whole step, the optimiser step alone and,
//! for PCGrad, the aggregator alone on a Jacobian of the step's size; the backward pass(es)
//! are the rest. Each part is the median of `STEPS` calls after a warm-up, parts
//! interleaved so they see the same machine state.
//!
//!     cargo run --release -p mtl-bench --example w5_breakdown [-- STEPS [THREADS]]

use anyhow::{bail, Result};
use mtl::core::{params, OptimizerConfig};
use mtl::losses::{by_name, Method, StepContext};
use mtl::{backward_step, GradMode};
use mtl_bench::floor::{FloorKind, FloorModel};
use mtl_bench::spec::{build_model, make_data, Workload};
use mtl_bench::timing::Summary;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

fn main() -> Result<()> {
    let arg = |i: usize, default: usize| -> Result<usize> {
        Ok(match std::env::args().nth(i) {
            Some(s) => s.parse()?,
            None => default,
        })
    };
    let (steps, threads) = (arg(1, 40)?, arg(2, 2)?);
    tch::set_num_threads(threads as i32);
    let w = Workload::Dense;
    let data = make_data(w, 0, 8, Device::Cpu);
    let model = build_model(w, Device::Cpu)?;
    let groups = model.param_groups()?;
    let trainable = groups.all_tensors();
    params::ensure_grads(&trainable)?;
    let mut opt = OptimizerConfig::adam(w.lr()).build(trainable)?;
    let mut floor = FloorModel::new(w, Device::Cpu)?;
    let mut ew = by_name("ew", 3, 0)?;
    let mut pc = by_name("pcgrad", 3, 0)?;
    let Method::Aggregator(mut agg) = by_name("pcgrad", 3, 0)? else {
        bail!("pcgrad is not an aggregator");
    };
    let d = groups.shared_numel();
    let jac = Tensor::randn([3, d], (Kind::Float, Device::Cpu));
    let names = [
        "mtl forward + losses",
        "mtl EW step",
        "mtl PCGrad step",
        "mtl PCGrad rep step",
        "mtl Adam (flat) step",
        "PCGrad aggregate (3 x d)",
        "floor forward + losses",
        "floor EW step",
        "floor fwd+K*bwd step",
        "floor fwd+K*bwd(rep) step",
        "floor libtorch Adam step",
    ];
    let mut times = vec![Vec::new(); names.len()];
    for i in 0..steps + 5 {
        let b = &data[i % data.len()];
        let mut t = |k: usize, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
            let t0 = Instant::now();
            f()?;
            if i >= 5 {
                times[k].push(t0.elapsed().as_secs_f64());
            }
            Ok(())
        };
        t(0, &mut || {
            let fwd = model.forward_t(&b.x, true)?;
            let l = model.losses(&fwd.outputs, &b.targets)?;
            drop(l);
            Ok(())
        })?;
        let mut step = |m: &mut Method, mode| -> Result<()> {
            opt.zero_grad();
            backward_step(&model, &groups, m, mode, &b.x, &b.targets, i as u64, 2)?;
            opt.step()?;
            Ok(())
        };
        t(1, &mut || step(&mut ew, GradMode::Parameters))?;
        t(2, &mut || step(&mut pc, GradMode::Parameters))?;
        t(3, &mut || step(&mut pc, GradMode::Representation))?;
        t(4, &mut || Ok(opt.step()?))?;
        t(5, &mut || {
            let ctx = StepContext {
                step: i as u64,
                epoch: 2,
                losses: &[1.0, 1.0, 1.0],
            };
            drop(agg.aggregate(&jac, &ctx)?);
            Ok(())
        })?;
        t(6, &mut || {
            drop(floor.forward_losses(b));
            Ok(())
        })?;
        for (k, kind) in [
            (7, FloorKind::Loss),
            (8, FloorKind::Grad),
            (9, FloorKind::Rep),
        ] {
            t(k, &mut || {
                drop(floor.step(kind, b)?);
                Ok(())
            })?;
        }
        t(10, &mut || {
            floor.adam_step();
            Ok(())
        })?;
    }
    println!("W5 dense, batch 16 of 32x32, {threads} threads, median of {steps} calls (ms):");
    for (name, t) in names.iter().zip(&times) {
        let s = Summary::of_seconds(t);
        println!(
            "  {name:28} {:7.2}  [{:.2}-{:.2}]",
            s.median_ms, s.p10_ms, s.p90_ms
        );
    }
    println!("  shared parameters d = {d}");
    Ok(())
}
