//! The per-row losses every model shares.

/// The loss each row contributes to a task's data term `Σᵢ ℓ(yᵢ, xᵢᵀwₜ + bₜ)`.
///
/// Neither loss carries a ½ or a `1/n`: a task's data term is the plain sum over its
/// rows, so the penalty weights mean what the objectives in the models' docs say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Least squares, `ℓ(y, η) = (y − η)²`.
    Squared,
    /// The logistic negative log-likelihood for `y ∈ {0, 1}`,
    /// `ℓ(y, η) = log(1 + e^η) − yη`.
    Logistic,
}

impl Loss {
    /// Logistic for a 0/1 target, squared otherwise.
    pub fn for_data(data: &mtl_data::GroupedData) -> Loss {
        if data.binary {
            Loss::Logistic
        } else {
            Loss::Squared
        }
    }

    /// `ℓ(y, η)`.
    pub fn value(self, y: f64, eta: f64) -> f64 {
        match self {
            Loss::Squared => (y - eta) * (y - eta),
            Loss::Logistic => softplus(eta) - y * eta,
        }
    }

    /// `∂ℓ/∂η`.
    pub fn derivative(self, y: f64, eta: f64) -> f64 {
        match self {
            Loss::Squared => 2.0 * (eta - y),
            Loss::Logistic => sigmoid(eta) - y,
        }
    }

    /// `∂²ℓ/∂η²`.
    pub fn curvature(self, eta: f64) -> f64 {
        match self {
            Loss::Squared => 2.0,
            Loss::Logistic => {
                let p = sigmoid(eta);
                p * (1.0 - p)
            }
        }
    }

    /// The prediction from the linear score: `η` itself, or the probability `σ(η)`.
    pub fn mean(self, eta: f64) -> f64 {
        match self {
            Loss::Squared => eta,
            Loss::Logistic => sigmoid(eta),
        }
    }

    /// The name used in reports: `squared` or `logistic`.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Squared => "squared",
            Loss::Logistic => "logistic",
        }
    }
}

/// `log(1 + e^x)` without overflow for large `|x|`.
pub(crate) fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// `1 / (1 + e^{−x})` without overflow for large `|x|`.
pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_derivatives_match_finite_differences() {
        for &(y, eta) in &[(0.0, -3.0), (1.0, 0.4), (1.0, 40.0), (0.0, -40.0)] {
            let h = 1e-6;
            let fd =
                (Loss::Logistic.value(y, eta + h) - Loss::Logistic.value(y, eta - h)) / (2.0 * h);
            assert!(
                (fd - Loss::Logistic.derivative(y, eta)).abs() < 1e-6,
                "{y} {eta}"
            );
            let fd2 = (Loss::Logistic.derivative(y, eta + h)
                - Loss::Logistic.derivative(y, eta - h))
                / (2.0 * h);
            assert!((fd2 - Loss::Logistic.curvature(eta)).abs() < 1e-6);
        }
        assert!(Loss::Logistic.value(0.0, 800.0).is_finite());
        assert!((Loss::Logistic.value(0.0, 800.0) - 800.0).abs() < 1e-9);
    }
}
