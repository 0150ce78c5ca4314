//! Printing: one line per finished row, the tables of a run, and the comparison with
//! LibMTL from a merged peer-harness file (`mtl-bench compare`), with the goals marked.

use super::job::{FLOOR_IMPL, IMPL};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::Path;

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn cell(r: &Value) -> String {
    if r["status"] != "ok" {
        return "FAILED".into();
    }
    let mut s = format!(
        "{:.2} [{:.2}-{:.2}]",
        f(&r["median_ms"]).unwrap_or(f64::NAN),
        f(&r["p10_ms"]).unwrap_or(f64::NAN),
        f(&r["p90_ms"]).unwrap_or(f64::NAN)
    );
    if r["steps_reduced"] == true {
        s.push_str(&format!(" (n={})", r["steps"]));
    }
    if r["contended"] == true {
        s.push_str(" !");
    }
    s
}

/// The line printed above the progress bar when a row finishes.
pub fn progress_line(r: &Value) -> String {
    let name = format!(
        "{}/{}{}",
        r["impl"].as_str().unwrap_or("?"),
        r["method"].as_str().unwrap_or("?"),
        r["grad_mode"]
            .as_str()
            .filter(|m| *m == "rep")
            .map(|_| " (rep)")
            .unwrap_or("")
    );
    if r["status"] != "ok" {
        return format!(
            "[{:8}] {name:28} FAILED: {}",
            r["workload"].as_str().unwrap_or("?"),
            r["error"].as_str().unwrap_or("?")
        );
    }
    let peak = f(&r["peak_rss_mib"]).map_or(String::new(), |m| format!("  peak {m:.0} MiB"));
    format!(
        "[{:8}] {name:28} {}{peak}",
        r["workload"].as_str().unwrap_or("?"),
        cell(r)
    )
}

fn table(head: &[&str], body: &[Vec<String>]) {
    let widths: Vec<usize> = (0..head.len())
        .map(|c| {
            body.iter()
                .map(|r| r[c].chars().count())
                .chain(std::iter::once(head[c].len()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(c, s)| format!("{s:<w$}", w = widths[c]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let h = line(head.iter().map(|s| s.to_string()).collect());
    println!("{h}");
    println!("{}", "-".repeat(h.chars().count()));
    for r in body {
        println!("{}", line(r.clone()));
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// The floor goal of a method row: 1.05 for loss-level methods, 1.15 for gradient-level.
fn floor_goal(r: &Value) -> Option<f64> {
    match r["level"].as_str()? {
        "loss" => Some(1.05),
        "gradient" => Some(1.15),
        _ => None,
    }
}

/// Prints the per-workload tables, the rep-grad table and the W4 table of a run.
pub fn print_tables(result: &Value) {
    let rows = result["rows"].as_array().cloned().unwrap_or_default();
    let threads = &result["config"]["threads"];
    let mut workloads: Vec<String> = Vec::new();
    for r in &rows {
        if let Some(w) = r["workload"].as_str() {
            if !workloads.iter().any(|x| x == w) {
                workloads.push(w.to_string());
            }
        }
    }
    for w in &workloads {
        let spec = &result["config"]["workloads"][w];
        println!(
            "\n{w}: K={}, batch {}, {threads} threads; ms/step median [p10-p90]; x floor: / the \
             plain-tch floor (goal <= 1.05 loss-level, <= 1.15 gradient-level; * = missed)",
            spec["num_tasks"], spec["batch"]
        );
        // W5 has a plain-PyTorch twin: PyTorch ms / mtl ms (goal > 1, * = missed).
        let twin = rows
            .iter()
            .any(|r| r["workload"] == w.as_str() && r.get("torch_over_mtl").is_some());
        let body: Vec<Vec<String>> = rows
            .iter()
            .filter(|r| r["workload"] == w.as_str())
            .map(|r| {
                let ratio = f(&r["floor_ratio"]);
                let missed = match (ratio, floor_goal(r)) {
                    (Some(x), Some(g)) if x > g => " *",
                    _ => "",
                };
                let mut line = vec![
                    r["impl"].as_str().unwrap_or("").to_string(),
                    r["method"].as_str().unwrap_or("").to_string(),
                    r["level"].as_str().unwrap_or("-").to_string(),
                    r["grad_mode"].as_str().unwrap_or("-").to_string(),
                    cell(r),
                    format!("{}{missed}", opt(ratio, 2)),
                    opt(f(&r["peak_rss_mib"]), 0),
                ];
                if twin {
                    let t = f(&r["torch_over_mtl"]);
                    let slower = if t.is_some_and(|t| t <= 1.0) {
                        " *"
                    } else {
                        ""
                    };
                    line.push(format!("{}{slower}", opt(t, 2)));
                }
                line
            })
            .collect();
        let mut head = vec![
            "impl",
            "method",
            "level",
            "mode",
            "median [p10-p90] ms",
            "x floor",
            "peak MiB",
        ];
        if twin {
            head.push("PyTorch/mtl");
        }
        table(&head, &body);
    }
    if let Some(rep) = result["rep_grad"].as_array().filter(|r| !r.is_empty()) {
        println!(
            "\nrep-grad vs parameter mode (goal: rep >= 3x faster at K = 10 on the W1 trunk, \
             mlp_k10; * = missed)"
        );
        let body: Vec<Vec<String>> = rep
            .iter()
            .map(|r| {
                vec![
                    r["workload"].as_str().unwrap_or("").to_string(),
                    r["method"].as_str().unwrap_or("").to_string(),
                    opt(f(&r["param_ms"]), 2),
                    opt(f(&r["rep_ms"]), 2),
                    format!(
                        "{}{}",
                        opt(f(&r["speedup"]), 2),
                        if r["workload"] == "mlp_k10" && f(&r["speedup"]).is_some_and(|s| s < 3.0) {
                            " *"
                        } else {
                            ""
                        }
                    ),
                ]
            })
            .collect();
        table(
            &["workload", "method", "param ms", "rep ms", "param/rep"],
            &body,
        );
    }
    if let Some(agg) = result["aggregator_rows"]
        .as_array()
        .filter(|r| !r.is_empty())
    {
        let d = &result["config"]["aggregators"]["dim"];
        println!(
            "\nW4: aggregate() alone on a K x {d} f32 Jacobian, median ms (x the floor of \
             reading it once, J.sum())"
        );
        let mut ks: Vec<String> = Vec::new();
        let mut methods: Vec<String> = Vec::new();
        for r in agg {
            let k = r["workload"].as_str().unwrap_or("").to_string();
            let m = r["method"].as_str().unwrap_or("").to_string();
            if !ks.contains(&k) {
                ks.push(k);
            }
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        let body: Vec<Vec<String>> = methods
            .iter()
            .map(|m| {
                let mut line = vec![m.clone()];
                for k in &ks {
                    let r = agg
                        .iter()
                        .find(|r| r["workload"] == k.as_str() && r["method"] == m.as_str());
                    line.push(match r {
                        None => "-".into(),
                        Some(r) if r["status"] != "ok" => "FAILED".into(),
                        Some(r) => match f(&r["floor_ratio"]) {
                            Some(x) => {
                                format!("{:.2} (x{x:.1})", f(&r["median_ms"]).unwrap_or(f64::NAN))
                            }
                            None => format!("{:.2}", f(&r["median_ms"]).unwrap_or(f64::NAN)),
                        },
                    });
                }
                line
            })
            .collect();
        let head: Vec<String> = std::iter::once("method".to_string())
            .chain(ks.iter().map(|k| k.replace("agg_k", "K=")))
            .collect();
        let head: Vec<&str> = head.iter().map(String::as_str).collect();
        table(&head, &body);
        println!("  -: not applicable at this K (the method needs more tasks)");
    }
    if let Some(tok) = result["tokenization_rows"]
        .as_array()
        .filter(|r| !r.is_empty())
    {
        let c = &result["config"]["tokenization"];
        println!(
            "\nW6 tokenization: TextTokenizer::encode_batch of {} generated sentences to {} \
             tokens (WordPiece, {} entries), median of {} encodes",
            c["sentences"], c["max_len"], c["vocab"], c["reps"]
        );
        let body: Vec<Vec<String>> = tok
            .iter()
            .map(|r| {
                if r["status"] != "ok" {
                    return vec![
                        r["method"].as_str().unwrap_or("").to_string(),
                        "FAILED".into(),
                        r["error"].as_str().unwrap_or("").to_string(),
                    ];
                }
                vec![
                    r["method"].as_str().unwrap_or("").to_string(),
                    cell(r),
                    opt(f(&r["sentences_per_s"]), 0),
                    opt(f(&r["tokens_per_s"]), 0),
                    opt(f(&r["speedup_over_1_thread"]), 2),
                ]
            })
            .map(|mut l| {
                l.resize(5, String::new());
                l
            })
            .collect();
        table(
            &[
                "setting",
                "median [p10-p90] ms",
                "sentences/s",
                "tokens/s",
                "x 1 thread",
            ],
            &body,
        );
    }
    let fails: Vec<&Value> = rows
        .iter()
        .chain(result["tokenization_rows"].as_array().into_iter().flatten())
        .filter(|r| r["status"] != "ok")
        .collect();
    for r in fails {
        println!(
            "  FAILED {}/{}/{}: {}",
            r["impl"].as_str().unwrap_or("?"),
            r["workload"].as_str().unwrap_or("?"),
            r["method"].as_str().unwrap_or("?"),
            r["error"].as_str().unwrap_or("?")
        );
    }
}

/// The speed goal over LibMTL on a workload: loss-level 1.5x (1.1x on lenet),
/// gradient-level 2x.
pub fn speed_goal(level: &str, workload: &str) -> Option<f64> {
    match (level, workload) {
        ("loss", "lenet") => Some(1.1),
        ("loss", _) => Some(1.5),
        ("gradient", _) => Some(2.0),
        _ => None,
    }
}

/// `mtl-bench compare MERGED.json [--memory MEM.json] [--out OUT.json]`: for every
/// workload and method that both LibMTL and mtl ran, LibMTL's median ÷ ours, our floor
/// ratio and (with `memory`, LibMTL's per-row peak RSS from `cargo xtask bench --peer`)
/// the peak memories, each against its goal.
pub fn compare(file: &Path, memory: Option<&Path>, out: Option<&Path>) -> Result<()> {
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
    )
    .with_context(|| format!("parsing {}", file.display()))?;
    let mem: Value = match memory {
        Some(m) => serde_json::from_str(
            &std::fs::read_to_string(m).with_context(|| format!("reading {}", m.display()))?,
        )?,
        None => json!({}),
    };
    let rows = data["rows"].as_array().cloned().unwrap_or_default();
    let find = |imp: &str, w: &str, m: &str| {
        rows.iter()
            .find(|r| r["impl"] == imp && r["workload"] == w && r["method"] == m)
    };
    let mut workloads: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| r["impl"] == "libmtl") {
        let w = r["workload"].as_str().unwrap_or("").to_string();
        if !workloads.contains(&w) {
            workloads.push(w);
        }
    }
    let mut summary = Vec::new();
    println!(
        "\nLibMTL / mtl, ms per training step (median), same run, {} threads. Goals: loss-level \
         >= 1.5x (lenet 1.1x) and <= 1.05x floor; gradient-level >= 2x and <= 1.15x the \
         fwd+K*bwd floor; peak memory <= LibMTL's. * = goal missed",
        data["environment"]["torch_num_threads"]
            .as_i64()
            .or(data["config"]["threads"].as_i64())
            .map_or("?".into(), |t| t.to_string())
    );
    for w in &workloads {
        println!("\n{w}");
        if let (Some(b), Some(fl)) = (find("torch_baseline", w, "EW"), find(FLOOR_IMPL, w, "EW")) {
            println!(
                "  plain PyTorch EW {:.2} ms vs plain tch EW {:.2} ms (PyTorch / tch = {:.2})",
                f(&b["median_ms"]).unwrap_or(f64::NAN),
                f(&fl["median_ms"]).unwrap_or(f64::NAN),
                f(&b["median_ms"]).unwrap_or(f64::NAN) / f(&fl["median_ms"]).unwrap_or(f64::NAN)
            );
        }
        let mut body = Vec::new();
        for r in rows
            .iter()
            .filter(|r| r["impl"] == IMPL && r["workload"] == w.as_str() && r["grad_mode"] != "rep")
        {
            let m = r["method"].as_str().unwrap_or("");
            let lib = match find("libmtl", w, m) {
                Some(l) if l["status"] == "ok" => Some((l, m.to_string())),
                _ => rows
                    .iter()
                    .find(|l| {
                        l["impl"] == "libmtl"
                            && l["workload"] == w.as_str()
                            && l["libmtl_method"] == m
                            && l["status"] == "ok"
                    })
                    .map(|l| (l, l["method"].as_str().unwrap_or(m).to_string())),
            };
            let Some((lib, lib_label)) = lib else {
                continue;
            };
            let level = r["level"].as_str().unwrap_or("");
            let (lm, om) = (f(&lib["median_ms"]), f(&r["median_ms"]));
            let speed = lm.zip(om).map(|(a, b)| a / b);
            let goal = speed_goal(level, w);
            let floor = f(&r["floor_ratio"]);
            let fgoal = floor_goal(r);
            let lib_mem =
                f(&mem[format!("{w}/{lib_label}")]).or_else(|| f(&mem[format!("{w}/{m}")]));
            let our_mem = f(&r["peak_rss_mib"]);
            let mark = |ok: Option<bool>| if ok == Some(false) { " *" } else { "" };
            body.push(vec![
                m.to_string(),
                level.to_string(),
                opt(lm, 2),
                opt(om, 2),
                format!(
                    "{}{}",
                    opt(speed, 2),
                    mark(speed.zip(goal).map(|(s, g)| s >= g))
                ),
                format!(
                    "{}{}",
                    opt(floor, 2),
                    mark(floor.zip(fgoal).map(|(x, g)| x <= g))
                ),
                format!(
                    "{} / {}{}",
                    opt(our_mem, 0),
                    opt(lib_mem, 0),
                    mark(our_mem.zip(lib_mem).map(|(a, b)| a <= b))
                ),
            ]);
            summary.push(json!({
                "workload": w, "method": m, "libmtl_row": lib_label, "level": level,
                "libmtl_ms": lm, "mtl_ms": om, "libmtl_over_mtl": speed, "speed_goal": goal,
                "speed_goal_met": speed.zip(goal).map(|(s, g)| s >= g),
                "floor_ratio": floor, "floor_goal": fgoal,
                "floor_goal_met": floor.zip(fgoal).map(|(x, g)| x <= g),
                "mtl_peak_rss_mib": our_mem, "libmtl_peak_rss_mib": lib_mem,
                "memory_goal_met": our_mem.zip(lib_mem).map(|(a, b)| a <= b),
            }));
        }
        table(
            &[
                "method",
                "level",
                "LibMTL ms",
                "mtl ms",
                "LibMTL/mtl",
                "mtl/floor",
                "peak MiB mtl / LibMTL",
            ],
            &body,
        );
    }
    if let Some(o) = out {
        std::fs::write(
            o,
            serde_json::to_string_pretty(
                &json!({"source": file.display().to_string(), "rows": summary}),
            )?,
        )
        .with_context(|| format!("writing {}", o.display()))?;
        println!("\nwrote {}", o.display());
    }
    Ok(())
}
