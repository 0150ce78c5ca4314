//! Dense multi-task learning on generated scenes: segmentation, depth and surface
//! normals from one shaded image, the three tasks of NYUv2, with a convolutional
//! encoder shared by a decoder and a head per task.
//!
//!     cargo xtask demo dense            # or: cargo run --example dense
//!     cargo xtask demo dense --epochs 5 --images 300 --out target/dense
//!
//! It trains one single-task model per task, then the multi-task model with EW and two
//! gradient methods, prints every metric and Δm over all of them (LibMTL's rule), and
//! draws the first test images with their targets and each model's predictions into
//! `<out>/dense_predictions.png`. The scenes are `mtl_data::dense_scenes` (seeded and
//! documented there).

use anyhow::{bail, Context, Result};
use mtl::core::ConvNetConfig;
use mtl::data::{dense_scenes, DenseScenesConfig, JointData, TensorDataset, SCENE_CLASSES};
use mtl::heads::{DepthHead, NormalHead, SegmentationHead};
use mtl::prelude::*;
use mtl::{DeltaM, Evaluation};
use plotters::prelude::*;
use std::path::PathBuf;
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

const TASKS: [&str; 3] = ["segment", "depth", "normals"];

struct Args {
    epochs: usize,
    images: usize,
    out: PathBuf,
    seed: u64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        epochs: 12,
        images: 480,
        out: PathBuf::from("target/dense"),
        seed: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--epochs" => a.epochs = value()?.parse().context("--epochs")?,
            "--images" => a.images = value()?.parse().context("--images")?,
            "--out" => a.out = PathBuf::from(value()?),
            "--seed" => a.seed = value()?.parse().context("--seed")?,
            "--" => {}
            other => bail!("unknown option `{other}` (--epochs, --images, --out, --seed)"),
        }
    }
    Ok(a)
}

/// The encoder: three residual stages of 16, 32, 32 channels, the last dilated
/// (downsampling ×2); each task decodes back to 32×32 with its own decoder.
fn model(tasks: &[usize], seed: u64) -> Result<MultiTaskModel> {
    seed_everything(seed);
    let vs = nn::VarStore::new(select_device(DeviceRequest::Auto)?);
    let root = vs.root();
    let arch = ConvNetConfig::new(1)
        .widths([16, 32, 32])
        .out_channels(16)
        .build_with_task_decoders(&(&root / "net"), tasks.len())?;
    let heads = tasks
        .iter()
        .enumerate()
        .map(|(k, &t)| -> mtl::core::Result<Box<dyn TaskHead>> {
            let p = task_path(&root, k) / "head";
            Ok(match t {
                0 => Box::new(SegmentationHead::new(&p, TASKS[0], 16, SCENE_CLASSES)?),
                1 => Box::new(DepthHead::new(&p, TASKS[1], 16)?),
                _ => Box::new(NormalHead::new(&p, TASKS[2], 16)?),
            })
        })
        .collect::<mtl::core::Result<Vec<_>>>()?;
    Ok(MultiTaskModel::new(vs, arch, heads)?)
}

fn config(method: &str, epochs: usize, seed: u64) -> TrainerConfig {
    TrainerConfig::default()
        .epochs(epochs)
        .batch_size(16)
        .optimizer(OptimizerConfig::adam(2e-3))
        .lr_schedule(LrSchedule::cosine(0.05))
        .method(method)
        .seed(seed)
}

struct Trained {
    label: String,
    model: MultiTaskModel,
    test: Evaluation,
    seconds: f64,
}

fn train(
    label: &str,
    tasks: &[usize],
    method: &str,
    train: &TensorDataset,
    val: &TensorDataset,
    test: &TensorDataset,
    a: &Args,
) -> Result<Trained> {
    let mut m = model(tasks, a.seed)?;
    let t0 = Instant::now();
    Trainer::new(config(method, a.epochs, a.seed))?.fit(&mut m, train, Some(val))?;
    let seconds = t0.elapsed().as_secs_f64();
    let test = evaluate(&m, test, 64)?;
    println!("  {label:<22} trained in {seconds:5.1} s");
    Ok(Trained {
        label: label.into(),
        model: m,
        test,
        seconds,
    })
}

fn main() -> Result<()> {
    let a = args()?;
    let data = dense_scenes(&DenseScenesConfig {
        images: a.images,
        seed: a.seed,
        ..Default::default()
    })?;
    let split = data.split(0.2, 0.2, a.seed)?;
    println!(
        "dense scenes: {} train / {} validation / {} test images of 32×32; tasks {:?}",
        split.train.len(),
        split.validation.len(),
        split.test.len(),
        TASKS
    );

    let mut singles = Vec::new();
    for (k, task) in TASKS.iter().enumerate() {
        let only = |d: &TensorDataset| d.only_task(k);
        singles.push(train(
            &format!("single-task {task}"),
            &[k],
            "ew",
            &only(&split.train)?,
            &only(&split.validation)?,
            &only(&split.test)?,
            &a,
        )?);
    }
    // The baselines as one evaluation per task, for Δm.
    let baselines: Vec<Evaluation> = singles.iter().map(|s| s.test.clone()).collect();
    let mut shared = Vec::new();
    for method in ["ew", "pcgrad", "upgrad"] {
        shared.push(train(
            &format!("shared + {method}"),
            &[0, 1, 2],
            method,
            &split.train,
            &split.validation,
            &split.test,
            &a,
        )?);
    }

    println!();
    println!(
        "{:<22} {:>6} {:>6} {:>8} {:>8} {:>7} {:>7} {:>8} {:>7}",
        "test", "mIoU↑", "pixAc↑", "absErr↓", "relErr↓", "mean°↓", "med°↓", "Δm %↓", "time s"
    );
    let metric = |e: &Evaluation, task: &str, name: &str| {
        let k = e.tasks.iter().position(|t| t == task)?;
        e.metric(k, name)
    };
    let cell = |v: Option<f64>, w: usize, p: usize| match v {
        Some(v) => format!("{v:>w$.p$}"),
        None => format!("{:>w$}", "–"),
    };
    for t in singles.iter().chain(&shared) {
        let dm = if t.test.tasks.len() == TASKS.len() {
            Some(DeltaM::compute_all_metrics(&t.test, &baselines)?.delta_m)
        } else {
            None
        };
        println!(
            "{:<22} {} {} {} {} {} {} {} {:>7.1}",
            t.label,
            cell(metric(&t.test, "segment", "miou"), 6, 3),
            cell(metric(&t.test, "segment", "pixel_accuracy"), 6, 3),
            cell(metric(&t.test, "depth", "abs_err"), 8, 3),
            cell(metric(&t.test, "depth", "rel_err"), 8, 3),
            cell(metric(&t.test, "normals", "mean_angle"), 7, 1),
            cell(metric(&t.test, "normals", "median_angle"), 7, 1),
            cell(dm, 8, 2),
            t.seconds
        );
    }
    println!("Δm: LibMTL's mean over tasks of each task's mean signed relative change over");
    println!("all its metrics, against the single-task models (negative: better).");

    std::fs::create_dir_all(&a.out)?;
    let png = a.out.join("dense_predictions.png");
    draw(&png, &split.test, &shared)?;
    println!("predictions: {}", png.display());
    Ok(())
}

/// Rows: the first test images. Columns: the image, then per task the target and each
/// shared model's prediction.
fn draw(path: &std::path::Path, test: &TensorDataset, models: &[Trained]) -> Result<()> {
    const ROWS: i64 = 4;
    const CELL: u32 = 96;
    let rows: Vec<usize> = (0..ROWS.min(JointData::len(test) as i64) as usize).collect();
    let batch = test.batch(&rows)?;
    let size = batch.x.size()[2];
    let mut columns: Vec<(String, Tensor)> = vec![("image".into(), gray(&batch.x.squeeze_dim(1)))];
    columns.push(("segment".into(), classes(&batch.targets[0].values)));
    for m in models {
        let out = tch::no_grad(|| {
            m.model
                .forward_t(&batch.x.to_device(m.model.device()), false)
        })?;
        columns.push((
            m.label.replace("shared + ", ""),
            classes(&out.outputs[0].argmax(1, false).to_device(Device::Cpu)),
        ));
    }
    columns.push(("depth".into(), gray(&depth_view(&batch.targets[1].values))));
    for m in models {
        let out = tch::no_grad(|| {
            m.model
                .forward_t(&batch.x.to_device(m.model.device()), false)
        })?;
        let d = out.outputs[1].squeeze_dim(1).to_device(Device::Cpu);
        columns.push((m.label.replace("shared + ", ""), gray(&depth_view(&d))));
    }
    columns.push(("normals".into(), rgb_normals(&batch.targets[2].values)));
    for m in models {
        let out = tch::no_grad(|| {
            m.model
                .forward_t(&batch.x.to_device(m.model.device()), false)
        })?;
        let n = out.outputs[2].to_device(Device::Cpu);
        let n = &n
            / n.norm_scalaropt_dim(2, [1i64].as_slice(), true)
                .clamp_min(1e-6);
        columns.push((m.label.replace("shared + ", ""), rgb_normals(&n)));
    }
    let width = CELL * columns.len() as u32;
    let height = CELL * rows.len() as u32 + 20;
    // The bundled font: the machine may have none.
    mtl::plots::register_font();
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let scale = CELL as f64 / size as f64;
    for (c, (title, rgb)) in columns.iter().enumerate() {
        let x0 = c as i32 * CELL as i32;
        root.draw(&Text::new(
            title.clone(),
            (x0 + 4, 4),
            ("sans-serif", 13).into_font(),
        ))?;
        for (r, _) in rows.iter().enumerate() {
            let y0 = 20 + r as i32 * CELL as i32;
            for y in 0..size {
                for x in 0..size {
                    let px = |ch: i64| {
                        (rgb.double_value(&[r as i64, ch, y, x]).clamp(0.0, 1.0) * 255.0) as u8
                    };
                    let color = RGBColor(px(0), px(1), px(2));
                    let (ax, ay) = (
                        x0 + (x as f64 * scale) as i32,
                        y0 + (y as f64 * scale) as i32,
                    );
                    let (bx, by) = (
                        x0 + ((x + 1) as f64 * scale) as i32,
                        y0 + ((y + 1) as f64 * scale) as i32,
                    );
                    root.draw(&Rectangle::new([(ax, ay), (bx, by)], color.filled()))?;
                }
            }
        }
    }
    root.present()?;
    Ok(())
}

/// `[B, H, W]` in [0, 1] as `[B, 3, H, W]` gray.
fn gray(v: &Tensor) -> Tensor {
    let lo = v.min();
    let hi = v.max();
    let v = (v - &lo) / (hi - lo).clamp_min(1e-6);
    Tensor::stack(&[&v, &v, &v], 1)
}

/// Depth with the unmeasured zeros shown as the wall (the far end of the scale).
fn depth_view(d: &Tensor) -> Tensor {
    let far = d.max();
    -(d.where_self(&d.gt(0.0), &far))
}

/// One colour per class.
fn classes(c: &Tensor) -> Tensor {
    let palette = Tensor::from_slice(&[
        0.15f32, 0.15, 0.15, 0.90, 0.35, 0.25, 0.25, 0.70, 0.35, 0.30, 0.45, 0.90,
    ])
    .view([4, 3]);
    let c = c.clamp(0, SCENE_CLASSES - 1).to_kind(Kind::Int64);
    palette
        .index_select(0, &c.flatten(0, -1))
        .view([c.size()[0], c.size()[1], c.size()[2], 3])
        .permute([0, 3, 1, 2])
}

/// Normals as colours, x, y, z mapped from [−1, 1] to [0, 1].
fn rgb_normals(n: &Tensor) -> Tensor {
    (n + 1.0) / 2.0
}
