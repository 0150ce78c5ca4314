//! Every method by name: for configs, the CLI, benchmarks and `cargo xtask methods`.
//!
//! Adding a method is one file in `methods/` plus one entry in `ENTRIES`.

use crate::hyper::HyperParams;
use crate::methods::*;
use crate::Method;
use mtl_core::{Error, Result};

/// Whether a method works on losses or on gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MethodLevel {
    /// Combines the K task losses ([`Weighting`](crate::Weighting)).
    Loss,
    /// Combines the K×d task Jacobian ([`Aggregator`](crate::Aggregator)).
    Gradient,
}

/// Registry metadata of one method.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MethodInfo {
    /// The name used in configs (`"pcgrad"`).
    pub name: &'static str,
    /// Loss or gradient level.
    pub level: MethodLevel,
    /// The paper (authors, year, venue).
    pub paper: &'static str,
    /// Default hyper-parameters, as `name=value` pairs.
    pub defaults: &'static str,
    /// The reference outputs it is tested against (`shared/golden` files), or the
    /// property tests when no golden file exists.
    pub tested_by: &'static str,
}

type Builder = fn(num_tasks: usize, seed: u64, params: &mut HyperParams) -> Result<Method>;

/// (metadata, constructor with the paper's defaults) for every method.
const ENTRIES: &[(MethodInfo, Builder)] = &[
    (
        MethodInfo {
            name: "ew",
            level: MethodLevel::Loss,
            paper: "equal weighting (baseline)",
            defaults: "",
            tested_by: "golden libmtl_EW.json",
        },
        |k, _, _| Ok(Method::Weighting(Box::new(EqualWeighting::new(k)))),
    ),
    (
        MethodInfo {
            name: "static",
            level: MethodLevel::Loss,
            paper: "fixed linear scalarisation (Keras loss_weights; baseline)",
            defaults: "weights=1 for every task",
            tested_by: "tests/static_weights.rs (weighted-sum property, validation)",
        },
        |k, _, p| static_weights(p.per_task("weights", k)?.unwrap_or(vec![1.0; k])),
    ),
    (
        MethodInfo {
            name: "uw",
            level: MethodLevel::Loss,
            paper: "Kendall, Gal & Cipolla, Multi-Task Learning Using Uncertainty to Weigh \
                    Losses for Scene Geometry and Semantics, CVPR 2018",
            defaults: "loss_scale_init=-0.5 (learnable, optimised by the trainer)",
            tested_by: "golden libmtl_UW.json",
        },
        |k, _, _| Ok(Method::Weighting(Box::new(UncertaintyWeighting::new(k)))),
    ),
    (
        MethodInfo {
            name: "dwa",
            level: MethodLevel::Loss,
            paper: "Liu, Johns & Davison, End-to-End Multi-Task Learning with Attention, \
                    CVPR 2019 (Dynamic Weight Average)",
            defaults:
                "temperature=2 (T; weights 1 in epochs 0 and 1; per-epoch mean losses accumulated \
                       from the steps)",
            tested_by: "golden libmtl_DWA.json (tests/dwa.rs)",
        },
        |k, _, p| {
            let t = p.f64("temperature", 2.0)?;
            Ok(Method::Weighting(Box::new(Dwa::with_temperature(k, t)?)))
        },
    ),
    (
        MethodInfo {
            name: "rlw",
            level: MethodLevel::Loss,
            paper: "Lin, Ye, Zhang & Tsang, Reasonable Effectiveness of Random Weighting: A \
                    Litmus Test for Multi-Task Learning, TMLR 2022 (Random Loss Weighting)",
            defaults: "weights=softmax(N(0, I)) drawn from the run seed each step",
            tested_by: "golden libmtl_RLW.json, replayed draws (tests/rlw.rs)",
        },
        |k, seed, _| Ok(Method::Weighting(Box::new(Rlw::new(k, seed)))),
    ),
    (
        MethodInfo {
            name: "gls",
            level: MethodLevel::Loss,
            paper: "Chennupati, Sistu, Yogamani & Rawashdeh, MultiNet++: Multi-Stream \
                    Feature Aggregation and Geometric Loss Strategy for Multi-Task \
                    Learning, CVPR Workshops 2019",
            defaults: "(no hyper-parameters; losses must be positive)",
            tested_by: "golden libmtl_GLS.json (tests/gls.rs)",
        },
        |k, _, _| Ok(Method::Weighting(Box::new(Gls::new(k)))),
    ),
    (
        MethodInfo {
            name: "imtl_l",
            level: MethodLevel::Loss,
            paper: "Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, Towards Impartial \
                    Multi-task Learning, ICLR 2021 (IMTL-L, loss balance)",
            defaults: "loss_scale_init=0 (learnable, optimised by the trainer)",
            tested_by: "tests/imtl_l.rs (closed-form gradients, stationary point)",
        },
        |k, _, _| Ok(Method::Weighting(Box::new(ImtlL::new(k)))),
    ),
    (
        MethodInfo {
            name: "stch",
            level: MethodLevel::Loss,
            paper: "Lin, Zhang, Yang, Liu, Wang & Zhang, Smooth Tchebycheff Scalarization \
                    for Multi-Objective Optimization, ICML 2024",
            defaults: "mu=1, warmup_epochs=4 (nadir point = mean losses of epoch 4), \
                       preference=1",
            tested_by: "tests/stch.rs (closed-form weights, warm-up, nadir, mu -> 0 limit)",
        },
        |k, _, p| {
            let mut stch = Stch::new(k)
                .with_mu(p.f64("mu", 1.0)?)?
                .with_warmup_epochs(p.usize("warmup_epochs", 4)?);
            if let Some(pref) = p.per_task("preference", k)? {
                stch = stch.with_preference(pref)?;
            }
            Ok(Method::Weighting(Box::new(stch)))
        },
    ),
    (
        MethodInfo {
            name: "famo",
            level: MethodLevel::Loss,
            paper: "Liu, Feng, Stone & Liu, FAMO: Fast Adaptive Multitask Optimization, \
                    NeurIPS 2023",
            defaults: "w_lr=0.025, gamma=1e-3 (internal Adam on the logits), min_losses=0 \
                       (per task); step t's update finished with step t+1's losses",
            tested_by: "golden libmtl_FAMO.json (tests/famo.rs)",
        },
        |k, _, p| {
            let d = FamoConfig::default();
            let config = FamoConfig {
                w_lr: p.f64("w_lr", d.w_lr)?,
                gamma: p.f64("gamma", d.gamma)?,
            };
            let mut famo = Famo::with_config(k, config)?;
            if let Some(min_losses) = p.per_task("min_losses", k)? {
                famo = famo.with_min_losses(min_losses)?;
            }
            Ok(Method::Weighting(Box::new(famo)))
        },
    ),
    (
        MethodInfo {
            name: "auto_lambda",
            level: MethodLevel::Loss,
            paper: "Liu, James, Davison & Johns, Auto-Lambda: Disentangling Dynamic Task \
                    Relationships, TMLR 2022 (Auto-λ)",
            defaults: "init=0.1, lr=1e-4 (Adam on λ), primary=1 for every task; needs \
                       validation data: one meta step per training step",
            tested_by: "golden autolambda_AutoLambda.json (tests/auto_lambda.rs, \
                        tests/reference/auto_lambda.py), exact second-order meta-gradient",
        },
        |k, _, p| {
            let config = AutoLambdaConfig {
                init: p.f64("init", AutoLambda::DEFAULT_INIT)?,
                lr: p.f64("lr", AutoLambda::DEFAULT_LR)?,
                primary: p.per_task("primary", k)?,
            };
            Ok(Method::Weighting(Box::new(AutoLambda::with_config(
                k, config,
            )?)))
        },
    ),
    (
        MethodInfo {
            name: "gradnorm",
            level: MethodLevel::Gradient,
            paper: "Chen, Badrinarayanan, Lee & Rabinovich, GradNorm: Gradient Normalization \
                    for Adaptive Loss Balancing in Deep Multitask Networks, ICML 2018",
            defaults: "alpha=1.5, weight_lr=0.025 (logits s init 0, w = K softmax(s))",
            tested_by: "golden libmtl_GradNorm.json",
        },
        |k, _, p| {
            let d = GradNormConfig::default();
            let config = GradNormConfig {
                alpha: p.f64("alpha", d.alpha)?,
                weight_lr: p.f64("weight_lr", d.weight_lr)?,
            };
            Ok(Method::Aggregator(Box::new(GradNorm::with_config(
                k, config,
            )?)))
        },
    ),
    (
        MethodInfo {
            name: "pcgrad",
            level: MethodLevel::Gradient,
            paper: "Yu, Kumar, Gupta, Levine, Hausman & Finn, Gradient Surgery for \
                    Multi-Task Learning, NeurIPS 2020",
            defaults: "skip_self=true, eps=0 (paper/TorchJD; LibMTL: skip_self=false, eps=1e-8), \
                       random order per task and step from the seed",
            tested_by: "golden torchjd_PCGrad.json, libmtl_PCGrad.json (replayed orders)",
        },
        |k, seed, p| {
            let d = PcGradConfig::default();
            let config = PcGradConfig {
                skip_self: p.bool("skip_self", d.skip_self)?,
                eps: p.f64("eps", d.eps)?,
            };
            Ok(Method::Aggregator(Box::new(PcGrad::with_config(
                k, seed, config,
            )?)))
        },
    ),
    (
        MethodInfo {
            name: "mean",
            level: MethodLevel::Gradient,
            paper: "mean of the task gradients (baseline; TorchJD Mean)",
            defaults: "",
            tested_by: "golden torchjd_Mean.json (tests/mean.rs), tests/properties.rs",
        },
        |k, _, _| Ok(Method::Aggregator(Box::new(Mean::for_tasks(k)))),
    ),
    (
        MethodInfo {
            name: "sum",
            level: MethodLevel::Gradient,
            paper: "sum of the task gradients (baseline; TorchJD Sum)",
            defaults: "",
            tested_by: "golden torchjd_Sum.json (tests/sum.rs)",
        },
        |k, _, _| Ok(Method::Aggregator(Box::new(Sum::for_tasks(k)))),
    ),
    (
        MethodInfo {
            name: "constant",
            level: MethodLevel::Gradient,
            paper: "fixed linear combination of the task gradients (TorchJD Constant)",
            defaults: "weights=1/K for every task",
            tested_by: "golden torchjd_Constant.json (tests/constant.rs)",
        },
        |k, _, p| {
            let weights = p.per_task("weights", k)?.unwrap_or(Mean::weights(k));
            Ok(Method::Aggregator(Box::new(Constant::new(weights)?)))
        },
    ),
    (
        MethodInfo {
            name: "upgrad",
            level: MethodLevel::Gradient,
            paper: "Quinton & Rey, Jacobian Descent for Multi-Objective Optimization, \
                    arXiv:2406.16232, 2024",
            defaults: "pref_vector=1/K, norm_eps=1e-4, reg_eps=1e-4",
            tested_by: "golden torchjd_UPGrad.json, libmtl_UPGrad.json (tests/upgrad.rs), \
                        tests/properties.rs",
        },
        |k, _, p| {
            let mut upgrad =
                UpGrad::for_tasks(k).with_eps(p.f64("norm_eps", 1e-4)?, p.f64("reg_eps", 1e-4)?)?;
            if let Some(pref) = p.per_task("pref_vector", k)? {
                upgrad = upgrad.with_pref_vector(pref)?;
            }
            Ok(Method::Aggregator(Box::new(upgrad)))
        },
    ),
    (
        MethodInfo {
            name: "dualproj",
            level: MethodLevel::Gradient,
            paper: "Lopez-Paz & Ranzato, Gradient Episodic Memory for Continual Learning, \
                    NeurIPS 2017 (Eq. 11, applied to the mean as in Quinton & Rey 2024)",
            defaults: "pref_vector=1/K, norm_eps=1e-4, reg_eps=1e-4",
            tested_by: "golden torchjd_DualProj.json (tests/dualproj.rs), tests/properties.rs",
        },
        |k, _, p| {
            let mut dualproj = DualProj::for_tasks(k)
                .with_eps(p.f64("norm_eps", 1e-4)?, p.f64("reg_eps", 1e-4)?)?;
            if let Some(pref) = p.per_task("pref_vector", k)? {
                dualproj = dualproj.with_pref_vector(pref)?;
            }
            Ok(Method::Aggregator(Box::new(dualproj)))
        },
    ),
    (
        MethodInfo {
            name: "mgda",
            level: MethodLevel::Gradient,
            paper: "Sener & Koltun, Multi-Task Learning as Multi-Objective Optimization, \
                    NeurIPS 2018",
            defaults: "solver=exact (min-norm QP; torchjd/libmtl Frank-Wolfe variants via \
                       methods::Mgda), normalization=none",
            tested_by: "golden torchjd_MGDA.json, libmtl_MGDA.json (tests/mgda.rs), \
                        tests/properties.rs",
        },
        |k, _, _| Ok(Method::Aggregator(Box::new(Mgda::new().for_tasks(k)))),
    ),
    (
        MethodInfo {
            name: "imtl_g",
            level: MethodLevel::Gradient,
            paper: "Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, Towards Impartial \
                    Multi-task Learning, ICLR 2021 (IMTL-G; pseudo-inverse form of \
                    Quinton & Rey 2024)",
            defaults: "form=pseudo-inverse (closed form = LibMTL via methods::ImtlG)",
            tested_by: "golden torchjd_IMTLG.json, libmtl_IMTL.json (tests/imtl_g.rs)",
        },
        |k, _, _| Ok(Method::Aggregator(Box::new(ImtlG::new().for_tasks(k)))),
    ),
    (
        MethodInfo {
            name: "imtl",
            level: MethodLevel::Gradient,
            paper: "Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, Towards Impartial \
                    Multi-task Learning, ICLR 2021 (IMTL: IMTL-L scales and IMTL-G \
                    weights in one step, as LibMTL's IMTL)",
            defaults: "scale_lr=0.025 (log-scales s init 0, updated by s -= scale_lr \
                       (e^s L - 1)), IMTL-G pseudo-inverse form (closed form = LibMTL \
                       via methods::Imtl::libmtl)",
            tested_by: "golden libmtl_IMTL.json at s = 0, hand-computed scaled steps, \
                        state round trip (tests/imtl.rs)",
        },
        |k, _, p| {
            let lr = p.f64("scale_lr", Imtl::DEFAULT_SCALE_LR)?;
            Ok(Method::Aggregator(Box::new(Imtl::with_scale_lr(k, lr)?)))
        },
    ),
    (
        MethodInfo {
            name: "cagrad",
            level: MethodLevel::Gradient,
            paper: "Liu, Liu, Jin, Stone & Liu, Conflict-Averse Gradient Descent for \
                    Multi-task Learning, NeurIPS 2021",
            defaults: "c=0.5, rescale=1 (official code / LibMTL convention; TorchJD's via \
                       methods::CaGrad::torchjd)",
            tested_by: "golden torchjd_CAGrad.json, libmtl_CAGrad.json (tests/cagrad.rs), \
                        tests/properties.rs",
        },
        |k, _, p| {
            let c = p.f64("c", 0.5)?;
            Ok(Method::Aggregator(Box::new(
                CaGrad::new().with_c(c)?.for_tasks(k),
            )))
        },
    ),
    (
        MethodInfo {
            name: "aligned_mtl",
            level: MethodLevel::Gradient,
            paper: "Senushkin, Patakin, Kuznetsov & Konushin, Independent Component \
                    Alignment for Multi-Task Learning, CVPR 2023",
            defaults: "pref_vector=1 (authors' code, LibMTL; TorchJD uses 1/K), scale=min, \
                       rank tolerance=lambda_max*K*eps(dtype)",
            tested_by: "golden torchjd_AlignedMTL.json, libmtl_Aligned_MTL.json \
                        (tests/aligned_mtl.rs)",
        },
        |k, _, _| Ok(Method::Aggregator(Box::new(AlignedMtl::new().for_tasks(k)))),
    ),
    (
        MethodInfo {
            name: "krum",
            level: MethodLevel::Gradient,
            paper: "Blanchard, El Mhamdi, Guerraoui & Stainer, Machine Learning with \
                    Adversaries: Byzantine Tolerant Gradient Descent, NeurIPS 2017",
            defaults: "n_byzantine=1, n_selected=1 (needs K >= 4), squared distances \
                       (paper; TorchJD's plain distances via methods::Krum::torchjd)",
            tested_by: "golden torchjd_Krum.json (tests/krum.rs)",
        },
        |k, _, p| {
            let krum = Krum::new(p.usize("n_byzantine", 1)?, p.usize("n_selected", 1)?)?;
            Ok(Method::Aggregator(Box::new(krum.for_tasks(k)?)))
        },
    ),
    (
        MethodInfo {
            name: "trimmed_mean",
            level: MethodLevel::Gradient,
            paper: "Yin, Chen, Kannan & Bartlett, Byzantine-Robust Distributed Learning: \
                    Towards Optimal Statistical Rates, ICML 2018",
            defaults: "trim_number=1 (needs K >= 3)",
            tested_by: "golden torchjd_TrimmedMean.json (tests/trimmed_mean.rs)",
        },
        |k, _, p| {
            let trimmed = TrimmedMean::new(p.usize("trim_number", 1)?).for_tasks(k)?;
            Ok(Method::Aggregator(Box::new(trimmed)))
        },
    ),
    (
        MethodInfo {
            name: "config",
            level: MethodLevel::Gradient,
            paper: "Liu, Chu & Thuerey, ConFIG: Towards Conflict-free Training of Physics \
                    Informed Neural Networks, arXiv:2408.11104, 2024",
            defaults: "pref_vector=1",
            tested_by: "golden torchjd_ConFIG.json (tests/config_method.rs)",
        },
        |k, _, p| {
            let mut config = ConFig::new().for_tasks(k);
            if let Some(pref) = p.per_task("pref_vector", k)? {
                config = config.with_pref_vector(pref)?;
            }
            Ok(Method::Aggregator(Box::new(config)))
        },
    ),
    (
        MethodInfo {
            name: "graddrop",
            level: MethodLevel::Gradient,
            paper: "Chen, Ngiam, Huang, Luong, Kretzschmar, Chai & Anguelov, Just Pick a \
                    Sign: Optimizing Deep Multitask Models with Gradient Sign Dropout, \
                    NeurIPS 2020",
            defaults: "f=identity, leak=0, U drawn from the run seed",
            tested_by: "golden torchjd_GradDrop.json, replayed draws (tests/graddrop.rs)",
        },
        |k, seed, p| {
            let mut graddrop = GradDrop::new(seed).for_tasks(k);
            if let Some(leak) = p.per_task("leak", k)? {
                graddrop = graddrop.with_leak(leak)?;
            }
            Ok(Method::Aggregator(Box::new(graddrop)))
        },
    ),
    (
        MethodInfo {
            name: "random",
            level: MethodLevel::Gradient,
            paper: "Lin, Ye, Zhang & Tsang, Reasonable Effectiveness of Random Weighting: \
                    A Litmus Test for Multi-Task Learning, TMLR 2022 (random gradient \
                    weighting)",
            defaults: "weights=softmax(N(0, I)) drawn from the run seed each step",
            tested_by: "golden torchjd_Random.json, replayed draws (tests/random.rs)",
        },
        |k, seed, _| Ok(Method::Aggregator(Box::new(Random::new(seed).for_tasks(k)))),
    ),
    (
        MethodInfo {
            name: "nash_mtl",
            level: MethodLevel::Gradient,
            paper: "Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, \
                    Multi-Task Learning as a Bargaining Game, ICML 2022",
            defaults: "max_norm=1, update_weights_every=1, optim_niter=20 (convex problems \
                       solved by an f64 log-barrier method)",
            tested_by: "golden torchjd_NashMTL.json, libmtl_Nash_MTL.json, \
                        libmtl_Nash_MTL_sequence.json (tests/nash_mtl.rs; 2 cases where \
                        the reference ECOS output violates its constraints are skipped)",
        },
        |k, _, p| {
            let d = NashMtlConfig::default();
            let config = NashMtlConfig {
                max_norm: p.f64("max_norm", d.max_norm)?,
                update_weights_every: p
                    .usize("update_weights_every", d.update_weights_every as usize)?
                    as u64,
                optim_niter: p.usize("optim_niter", d.optim_niter)?,
            };
            Ok(Method::Aggregator(Box::new(NashMtl::with_config(
                k, config,
            )?)))
        },
    ),
    (
        MethodInfo {
            name: "db_mtl",
            level: MethodLevel::Gradient,
            paper: "Lin, Jiang, Ye, Zhang, Chen, Chen, Liu & Kwok, Dual-Balancing for \
                    Multi-Task Learning, arXiv:2308.12029, 2023",
            defaults: "beta=0.9, beta_sigma=0 (LibMTL), log(L + 1e-8) via rows / (L + 1e-8)",
            tested_by: "golden libmtl_DB_MTL.json (tests/db_mtl.rs)",
        },
        |k, _, p| {
            let (beta, beta_sigma) = (p.f64("beta", 0.9)?, p.f64("beta_sigma", 0.0)?);
            Ok(Method::Aggregator(Box::new(DbMtl::with_config(
                k, beta, beta_sigma,
            )?)))
        },
    ),
    (
        MethodInfo {
            name: "gradvac",
            level: MethodLevel::Gradient,
            paper: "Wang, Tsvetkov, Firat & Cao, Gradient Vaccine: Investigating and \
                    Improving Multi-task Optimization in Massively Multilingual Models, \
                    ICLR 2021",
            defaults: "beta=0.5 (LibMTL), whole-model granularity, eps=1e-8, random task \
                       order per task and step from the seed",
            tested_by: "golden libmtl_GradVac.json, replayed orders (tests/gradvac.rs)",
        },
        |k, seed, p| {
            let beta = p.f64("beta", 0.5)?;
            Ok(Method::Aggregator(Box::new(
                GradVac::new(k, seed).with_beta(beta)?,
            )))
        },
    ),
    (
        MethodInfo {
            name: "moco",
            level: MethodLevel::Gradient,
            paper: "Fernando, Shen, Liu, Chaudhury, Murugesan & Chen, Mitigating Gradient \
                    Bias in Multi-objective Learning: A Provably Convergent Approach, \
                    ICLR 2023",
            defaults: "beta=0.5, beta_sigma=0.5, gamma=0.1, gamma_sigma=0.5, rho=0, \
                       lambda back to the simplex by softmax (LibMTL; projection optional)",
            tested_by: "tests/moco.rs (hand-computed steps, tracking, simplex maps)",
        },
        |k, _, p| {
            let d = MocoConfig::default();
            let config = MocoConfig {
                beta: p.f64("beta", d.beta)?,
                beta_sigma: p.f64("beta_sigma", d.beta_sigma)?,
                gamma: p.f64("gamma", d.gamma)?,
                gamma_sigma: p.f64("gamma_sigma", d.gamma_sigma)?,
                rho: p.f64("rho", d.rho)?,
                ..d
            };
            Ok(Method::Aggregator(Box::new(MoCo::with_config(k, config)?)))
        },
    ),
    (
        MethodInfo {
            name: "fairgrad",
            level: MethodLevel::Gradient,
            paper: "Ban & Ji, Fair Resource Allocation in Multi-Task Learning, ICML 2024",
            defaults: "alpha=1 (Gw = w^(-1/alpha) solved by Newton in f64)",
            tested_by: "tests/fairgrad.rs (closed forms, fixed-point residual, Nash-MTL \
                        agreement at alpha=1)",
        },
        |k, _, p| {
            let alpha = p.f64("alpha", 1.0)?;
            Ok(Method::Aggregator(Box::new(
                FairGrad::new(k).with_alpha(alpha)?,
            )))
        },
    ),
    (
        MethodInfo {
            name: "excess_mtl",
            level: MethodLevel::Gradient,
            paper: "He, Zhou, Zhang, Yun, Xu, Zeng, Chilimbi & Zhao, Robust Multi-Task \
                    Learning with Excess Risks, ICML 2024",
            defaults: "robust_step_size=0.01 (LibMTL), weights 1 (sum K), Adagrad-style \
                       diagonal Hessian with eps=1e-7, first step's excess risks as the scale",
            tested_by: "tests/excess_mtl.rs (hand-computed steps, weights sum to K, state \
                        round trip)",
        },
        |k, _, p| {
            let eta = p.f64("robust_step_size", ExcessMtl::DEFAULT_ROBUST_STEP_SIZE)?;
            Ok(Method::Aggregator(Box::new(ExcessMtl::with_step_size(
                k, eta,
            )?)))
        },
    ),
    (
        MethodInfo {
            name: "sdmgrad",
            level: MethodLevel::Gradient,
            paper: "Xiao, Ban & Ji, Direction-oriented Multi-objective Learning: Simple and \
                    Provable Stochastic Algorithms, NeurIPS 2023",
            defaults: "lambda=0.3, niter=20, lr=5, momentum=0.5 (LibMTL / authors' code; \
                       inner weights warm-started, one Jacobian per step so the three \
                       samples coincide)",
            tested_by: "tests/sdmgrad.rs (update rule on plain vectors, hand-computed step, \
                        MGDA limit at lambda=0, simplex property, state round trip)",
        },
        |k, _, p| {
            let d = SdmGradConfig::default();
            let config = SdmGradConfig {
                lambda: p.f64("lambda", d.lambda)?,
                niter: p.usize("niter", d.niter)?,
                lr: p.f64("lr", d.lr)?,
                momentum: p.f64("momentum", d.momentum)?,
            };
            Ok(Method::Aggregator(Box::new(SdmGrad::with_config(
                k, config,
            )?)))
        },
    ),
    (
        MethodInfo {
            name: "cr_mogm",
            level: MethodLevel::Gradient,
            paper: "Zhou, Zhang, Jiang, Zhong, Gu & Zhu, On the Convergence of Stochastic \
                    Multi-Objective Gradient Manipulation and Beyond, NeurIPS 2022 \
                    (CR-MOGM on MGDA)",
            defaults: "alpha=0.9 (this crate's choice; the paper fixes none), lambda_0=1/K, \
                       exact min-norm MGDA weights each step",
            tested_by: "tests/cr_mogm.rs (geometric approach to the MGDA weights, alpha=0 is \
                        MGDA, simplex property, state round trip)",
        },
        |k, _, p| {
            let alpha = p.f64("alpha", CrMogm::DEFAULT_ALPHA)?;
            Ok(Method::Aggregator(Box::new(CrMogm::new(k, alpha)?)))
        },
    ),
    (
        MethodInfo {
            name: "modo",
            level: MethodLevel::Gradient,
            paper: "Chen, Fernando, Ying & Chen, Three-Way Trade-Off in Multi-Objective \
                    Learning: Optimization, Generalization and Conflict-Avoidance, \
                    NeurIPS 2023 (MoDo)",
            defaults: "gamma=1e-3, rho=0.1 (LibMTL), lambda_0=1/K; one Jacobian per step, \
                       so the two lambda samples and the output sample coincide",
            tested_by: "tests/modo.rs (hand-computed steps, simplex property, state round \
                        trip)",
        },
        |k, _, p| {
            let gamma = p.f64("gamma", MoDo::DEFAULT_GAMMA)?;
            let rho = p.f64("rho", MoDo::DEFAULT_RHO)?;
            Ok(Method::Aggregator(Box::new(MoDo::new(k, gamma, rho)?)))
        },
    ),
];

/// Builds [`StaticWeighting`] with explicit weights (K = `weights.len()`), the form
/// configs use for `"static"`.
pub fn static_weights(weights: Vec<f64>) -> Result<Method> {
    Ok(Method::Weighting(Box::new(StaticWeighting::new(weights)?)))
}

/// Metadata of every registered method.
pub fn list() -> Vec<MethodInfo> {
    ENTRIES.iter().map(|(i, _)| i.clone()).collect()
}

/// The registry entry of `name`: names are case-insensitive and `-` and `_` are alike.
/// An unknown name is [`Error::Unknown`] listing every registered name.
fn entry(name: &str) -> Result<&'static (MethodInfo, Builder)> {
    let key = name.to_ascii_lowercase().replace('-', "_");
    ENTRIES
        .iter()
        .find(|(i, _)| i.name == key)
        .ok_or_else(|| Error::Unknown {
            kind: "method",
            name: name.to_string(),
            known: ENTRIES
                .iter()
                .map(|(i, _)| i.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The metadata of the method called `name`, without building it: how a configuration
/// is checked before there is a model (the trainer does so at construction).
///
/// ```
/// assert_eq!(mtl_losses::registry::info("PCGrad")?.name, "pcgrad");
/// let err = mtl_losses::registry::info("pcgard").unwrap_err().to_string();
/// assert!(err.contains("unknown method `pcgard`") && err.contains("pcgrad"), "{err}");
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn info(name: &str) -> Result<MethodInfo> {
    entry(name).map(|(i, _)| i.clone())
}

/// Builds the method called `name` for `num_tasks` tasks with its paper defaults;
/// `seed` drives any randomness it has.
pub fn by_name(name: &str, num_tasks: usize, seed: u64) -> Result<Method> {
    by_name_with(name, num_tasks, seed, &serde_json::Map::new())
}

/// [`by_name`] with hyper-parameters: each key of `params` replaces that paper default
/// (the names are those in [`MethodInfo::defaults`]; per-task values are lists of K
/// numbers). A key the method does not take is an error naming the closest one it does.
///
/// ```
/// use mtl_losses::{registry::by_name_with, Method};
/// let params = serde_json::json!({ "weights": [1.0, 0.3] });
/// let Method::Weighting(w) = by_name_with("static", 2, 0, params.as_object().unwrap())? else {
///     unreachable!()
/// };
/// assert_eq!(w.name(), "static");
/// let typo = serde_json::json!({ "cc": 0.4 });
/// let err = by_name_with("cagrad", 2, 0, typo.as_object().unwrap()).unwrap_err();
/// assert!(err.to_string().contains("did you mean `c`"), "{err}");
/// # Ok::<(), mtl_core::Error>(())
/// ```
pub fn by_name_with(
    name: &str,
    num_tasks: usize,
    seed: u64,
    params: &serde_json::Map<String, serde_json::Value>,
) -> Result<Method> {
    if num_tasks == 0 {
        return Err(Error::TaskCount {
            context: format!("method `{name}`"),
            expected: 0,
            got: 0,
        });
    }
    let (info, build) = entry(name)?;
    let mut hyper = HyperParams::new(info.name, params);
    let method = build(num_tasks, seed, &mut hyper)?;
    hyper.finish()?;
    Ok(method)
}
