//! The two-objective toy problem of CAGrad (Liu et al., NeurIPS 2021), as Nash-MTL
//! (Navon et al., ICML 2022) and FAMO (Liu et al., NeurIPS 2023) run it: the first
//! objective scaled by 0.1, Adam with learning rate 10⁻³ for 35 000 steps (Nash-MTL's
//! script; 50 000 for FAMO, as its script) from the five starting points of their
//! scripts, for EW, MGDA, PCGrad, CAGrad, Nash-MTL, FAMO and UPGrad through `mtl`'s
//! engine (`cargo xtask repro toy`; `-- --steps N` for a shorter run, `--scale 1` for
//! CAGrad's balanced version, `--methods a,b` for some of them).
//!
//! FAMO runs as FAMO's toy script sets it up: minimum losses L* = (−21 · scale, −21),
//! below the objectives' minima (FAMO takes log(L − L*)), and no weight decay on its
//! logits (γ = 0; its script notes the objective does not change). Every other method
//! runs with its paper defaults.
//!
//! For each method and start it prints where the run ends, both objectives there, and
//! whether the end is Pareto-stationary: the min-norm point of the convex hull of the two
//! objectives' gradients (MGDA's problem, closed form for two vectors) is below 10⁻²,
//! i.e. no direction improves both. It draws the trajectories over the plane into
//! `target/repro/toy.png`.

mod common;

use anyhow::Result;
use common::repro::arg;
use mtl::core::OptimizerConfig;
use mtl::data::toy_objectives;
use mtl::losses::registry::by_name_with;
use mtl::losses::{Backward, Method, Wrt};
use plotters::prelude::*;
use serde_json::json;
use tch::Tensor;

/// The starting points of the Nash-MTL and FAMO toy scripts.
const STARTS: [[f64; 2]; 5] = [
    [-8.5, 7.5],
    [0.0, 0.0],
    [9.0, 9.0],
    [-7.5, -0.5],
    [9.0, -1.0],
];
const METHODS: [&str; 7] = [
    "ew", "mgda", "pcgrad", "cagrad", "nash_mtl", "famo", "upgrad",
];

struct Run {
    path: Vec<(f64, f64)>,
    end: [f64; 2],
    losses: [f64; 2],
    stationary: f64,
}

/// The objectives at `x`, the first one scaled.
fn objectives(x: &Tensor, scale: f64) -> Result<Tensor> {
    let f = toy_objectives(x)?;
    Ok(f * Tensor::from_slice(&[scale, 1.0]))
}

/// `method` as the papers' toy scripts configure it (see the module docs).
fn method(name: &str, scale: f64) -> Result<Method> {
    let params = match name {
        "famo" => json!({ "min_losses": [-21.0 * scale, -21.0], "gamma": 0.0 }),
        _ => json!({}),
    };
    let params = params.as_object().cloned().unwrap_or_default();
    Ok(by_name_with(name, 2, 0, &params)?)
}

/// min over α ∈ [0, 1] of ‖α g₁ + (1 − α) g₂‖ at `x`.
fn min_norm(x: [f64; 2], scale: f64) -> Result<f64> {
    let t = Tensor::from_slice(&x).set_requires_grad(true);
    let f = objectives(&t, scale)?;
    let g: Vec<Vec<f64>> = (0..2)
        .map(|k| -> Result<Vec<f64>> {
            let g = Tensor::run_backward(&[f.get(k)], &[&t], true, false);
            Ok(Vec::<f64>::try_from(&g[0])?)
        })
        .collect::<Result<_>>()?;
    let d = [g[0][0] - g[1][0], g[0][1] - g[1][1]];
    let dd = d[0] * d[0] + d[1] * d[1];
    let alpha = if dd == 0.0 {
        0.5
    } else {
        (-(g[1][0] * d[0] + g[1][1] * d[1]) / dd).clamp(0.0, 1.0)
    };
    let v = [g[1][0] + alpha * d[0], g[1][1] + alpha * d[1]];
    Ok((v[0] * v[0] + v[1] * v[1]).sqrt())
}

fn run(method: &str, start: [f64; 2], steps: usize, scale: f64) -> Result<Run> {
    let x = Tensor::from_slice(&start).set_requires_grad(true);
    let mut m = self::method(method, scale)?;
    let mut params = vec![x.shallow_clone()];
    params.extend(m.parameters());
    let mut opt = OptimizerConfig::adam(1e-3).build(params)?;
    let mut path = Vec::with_capacity(steps / 100 + 1);
    for step in 0..steps {
        if step % 100 == 0 {
            let v = Vec::<f64>::try_from(&x.detach())?;
            path.push((v[0], v[1]));
        }
        opt.zero_grad();
        let f = objectives(&x, scale)?;
        let losses = [f.get(0), f.get(1)];
        Backward::new(&losses, Wrt::Parameters(std::slice::from_ref(&x)))
            .at(step as u64, 0)
            .run(&mut m)?;
        opt.step()?;
    }
    let v = Vec::<f64>::try_from(&x.detach())?;
    let end = [v[0], v[1]];
    path.push((end[0], end[1]));
    let f = mtl::data::toy_objectives_f64(end);
    Ok(Run {
        path,
        end,
        losses: [scale * f[0], f[1]],
        stationary: min_norm(end, scale)?,
    })
}

fn main() -> Result<()> {
    let steps: Option<usize> = arg("--steps").map(|s| s.parse()).transpose()?;
    let methods: Vec<String> = match arg("--methods") {
        Some(list) => list.split(',').map(|m| m.trim().to_string()).collect(),
        None => METHODS.iter().map(|m| m.to_string()).collect(),
    };
    if let Some(m) = methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
        anyhow::bail!("--methods: `{m}` is not one of {}", METHODS.join(", "));
    }
    let scale: f64 = arg("--scale").map_or(Ok(0.1), |s| s.parse())?;
    tch::set_num_threads(1);
    println!(
        "toy problem: f1 scaled by {scale}, Adam lr 1e-3, {} steps",
        steps.map_or("35 000 (FAMO 50 000)".to_string(), |s| s.to_string())
    );
    println!(
        "{:<9} {:>14} {:>18} {:>18} {:>10} Pareto-stationary",
        "method", "start", "end", "f1, f2", "min-norm"
    );
    let mut all: Vec<(&str, Vec<Run>)> = Vec::new();
    for method in methods.iter().map(String::as_str) {
        // The papers' scripts: Nash-MTL's 35 000 steps, FAMO's 50 000.
        let steps = steps.unwrap_or(if method == "famo" { 50_000 } else { 35_000 });
        let mut runs = Vec::new();
        for start in STARTS {
            let r = run(method, start, steps, scale)?;
            println!(
                "{:<9} {:>14} {:>18} {:>18} {:>10.2e} {}",
                method,
                format!("({}, {})", start[0], start[1]),
                format!("({:.2}, {:.2})", r.end[0], r.end[1]),
                format!("{:.3}, {:.3}", r.losses[0], r.losses[1]),
                r.stationary,
                if r.stationary < 1e-2 { "yes" } else { "no" }
            );
            runs.push(r);
        }
        let reached = runs.iter().filter(|r| r.stationary < 1e-2).count();
        println!(
            "{method}: {reached} of {} starts end Pareto-stationary",
            runs.len()
        );
        all.push((method, runs));
    }
    let dir = std::path::Path::new("target/repro");
    std::fs::create_dir_all(dir)?;
    let file = dir.join("toy.png");
    plot(&file, &all)?;
    println!("wrote {}", file.display());
    Ok(())
}

fn plot(file: &std::path::Path, all: &[(&str, Vec<Run>)]) -> Result<()> {
    mtl::plots::register_font();
    let root = BitMapBackend::new(file, (1400, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((2, 4));
    let colours = [RED, BLUE, GREEN, MAGENTA, CYAN];
    for ((method, runs), area) in all.iter().zip(panels.iter()) {
        let mut chart = ChartBuilder::on(area)
            .caption(*method, ("sans-serif", 20))
            .margin(8)
            .x_label_area_size(20)
            .y_label_area_size(25)
            .build_cartesian_2d(-10f64..10f64, -10f64..10f64)?;
        chart.configure_mesh().disable_mesh().draw()?;
        for (r, c) in runs.iter().zip(colours) {
            chart.draw_series(LineSeries::new(r.path.iter().copied(), c))?;
            chart.draw_series(std::iter::once(Circle::new(r.path[0], 3, c.filled())))?;
            chart.draw_series(std::iter::once(Cross::new((r.end[0], r.end[1]), 5, BLACK)))?;
        }
    }
    root.present()?;
    Ok(())
}
