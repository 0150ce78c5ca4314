//! The classic two-head PyTorch tutorial model, rebuilt with `mtl`.
//!
//! The PyTorch version (58 lines without blank lines and imports) defines
//! `fc1`, `fc2` shared and `fc3`, `fc4` task heads, sums `loss1 + γ·loss2`, and hand-writes
//! the train/evaluate loop with early stopping:
//!
//! ```text
//! class Net(nn.Module):
//!     def __init__(self):
//!         super().__init__()
//!         self.fc1 = nn.Linear(8, 64); self.fc2 = nn.Linear(64, 32)
//!         self.fc3 = nn.Linear(32, 3); self.fc4 = nn.Linear(32, 9)
//!     def forward(self, x):
//!         x = F.relu(self.fc2(F.relu(self.fc1(x))))
//!         return self.fc3(x), self.fc4(x)
//! ...
//! for epoch in range(epochs):
//!     for x, y1, y2 in train_loader:
//!         opt.zero_grad(); o1, o2 = net(x)
//!         loss = ce(o1, y1) + gamma * ce(o2, y2); loss.backward(); opt.step()
//!     val = evaluate(net, val_loader)            # accuracy per task
//!     if val > best: best, best_state, wait = val, deepcopy(net.state_dict()), 0
//!     else: wait += 1; if wait >= patience: break
//! net.load_state_dict(best_state)
//! ```
//!
//! Here the same model, loss and loop take the lines below.

use anyhow::Result;
use mtl::data::{olive_oil, Standardizer};
use mtl::heads::ClassificationHead;
use mtl::losses::methods::StaticWeighting;
use mtl::prelude::*;
use tch::nn;

fn main() -> Result<()> {
    seed_everything(0);
    let split = olive_oil(mtl::data::data_dir())?.split(0.2, 0.2, 0)?;
    let scale = Standardizer::fit(&split.train);
    let (train, val, test) = (
        scale.apply(&split.train)?,
        scale.apply(&split.validation)?,
        scale.apply(&split.test)?,
    );

    let vs = nn::VarStore::new(select_device(DeviceRequest::Auto)?);
    let fc1_fc2 = MlpConfig::new([8, 64, 32]).build(&(vs.root() / "shared"))?;
    let fc3 = ClassificationHead::new(&(task_path(&vs.root(), 0) / "fc3"), "region", 32, 3)?;
    let fc4 = ClassificationHead::new(&(task_path(&vs.root(), 1) / "fc4"), "area", 32, 9)?;
    let mut net = MultiTaskModel::new(
        vs,
        HardSharing::new(fc1_fc2, 2)?,
        vec![Box::new(fc3), Box::new(fc4)],
    )?;

    let gamma = 0.5; // loss = loss1 + γ·loss2
    let config = TrainerConfig::default()
        .epochs(100)
        .optimizer(OptimizerConfig::adam(1e-2))
        .early_stopping(EarlyStopping::new(Monitor::MeanPrimary, 10));
    let weighted_sum = Method::Weighting(Box::new(StaticWeighting::new(vec![1.0, gamma])?));
    let report =
        Trainer::new(config)?
            .with_method(weighted_sum)
            .fit(&mut net, &train, Some(&val))?;

    let test_eval = evaluate(&net, &test, 256)?;
    println!(
        "stopped after {} epochs (best {})",
        report.epochs.len(),
        report.best_epoch
    );
    for (k, task) in test_eval.tasks.iter().enumerate() {
        println!(
            "{task}: test accuracy {:.3}",
            test_eval.metric(k, "accuracy").unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
