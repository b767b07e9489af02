//! Adam, written out so its state can be checkpointed (tch's optimizer keeps its moments
//! inside libtorch, out of reach). The update is PyTorch's `torch.optim.Adam` exactly:
//! `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.

use std::collections::BTreeMap;

use tch::{Tensor, nn};

pub struct Adam {
    pub lr: f64,
    /// Used only to clear gradients: libtorch's optimizers reset them to undefined
    /// (`set_to_none`), so the next backward writes fresh gradients instead of adding into
    /// zeroed ones, as PyTorch does. It never steps.
    clearer: nn::Optimizer,
    beta1: f64,
    beta2: f64,
    eps: f64,
    step: i64,
    /// First and second moments, by parameter name.
    moments: BTreeMap<String, (Tensor, Tensor)>,
}

impl Adam {
    pub fn new(vs: &nn::VarStore, lr: f64, beta1: f64, beta2: f64) -> Result<Adam, tch::TchError> {
        let moments = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(name, t)| (name, (t.zeros_like(), t.zeros_like())))
            .collect();
        let clearer = nn::OptimizerConfig::build(nn::Sgd::default(), vs, 0.0)?;
        Ok(Adam { lr, clearer, beta1, beta2, eps: 1e-8, step: 0, moments })
    }

    /// Applies one update from the gradients in `vs`.
    pub fn step(&mut self, vs: &nn::VarStore) {
        self.step += 1;
        let correction1 = 1.0 - self.beta1.powi(self.step as i32);
        let correction2 = (1.0 - self.beta2.powi(self.step as i32)).sqrt();
        let variables = vs.variables();
        tch::no_grad(|| {
            for (name, (m, v)) in self.moments.iter_mut() {
                let mut param = variables[name].shallow_clone();
                let grad = param.grad();
                if !grad.defined() {
                    continue;
                }
                // In place, as torch.optim.Adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g².
                let _ = m.lerp_(&grad, 1.0 - self.beta1);
                let _ = v.lerp_(&grad.square(), 1.0 - self.beta2);
                // p -= step * m / denom, written as p += m / (denom * -1/step).
                let step = self.lr / correction1;
                if step == 0.0 {
                    continue; // lr 0 (the reference's last epoch): moments move, weights stay.
                }
                let mut denom = v.sqrt();
                // (sqrt(v) / c2 + eps) * (-1 / step), in two passes.
                let _ = denom
                    .g_mul_scalar_(-1.0 / (step * correction2))
                    .g_add_scalar_(-self.eps / step);
                let _ = param.addcdiv_(m, &denom);
            }
        });
    }

    /// Clears the gradients of the optimizer's variables.
    pub fn zero_grad(&mut self) {
        self.clearer.zero_grad();
    }

    /// The state as named tensors, for a checkpoint.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let mut out = vec![(format!("{prefix}.step"), Tensor::from_slice(&[self.step]))];
        for (name, (m, v)) in &self.moments {
            out.push((format!("{prefix}.m.{name}"), m.shallow_clone()));
            out.push((format!("{prefix}.v.{name}"), v.shallow_clone()));
        }
        out
    }

    /// Restores what [`Adam::state`] saved; false if something is missing or misshapen.
    pub fn restore(&mut self, prefix: &str, tensors: &BTreeMap<String, Tensor>) -> bool {
        let Some(step) = tensors.get(&format!("{prefix}.step")) else { return false };
        self.step = step.int64_value(&[0]);
        for (name, (m, v)) in self.moments.iter_mut() {
            let (Some(saved_m), Some(saved_v)) = (
                tensors.get(&format!("{prefix}.m.{name}")),
                tensors.get(&format!("{prefix}.v.{name}")),
            ) else {
                return false;
            };
            if saved_m.size() != m.size() || saved_v.size() != v.size() {
                return false;
            }
            *m = saved_m.to_device(m.device());
            *v = saved_v.to_device(v.device());
        }
        true
    }
}
