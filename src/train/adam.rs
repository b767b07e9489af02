//! Adam, written out so its state can be checkpointed (tch's optimizer keeps its moments
//! inside libtorch, out of reach). The update is PyTorch's `torch.optim.Adam` exactly:
//! `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.

use std::collections::BTreeMap;

use tch::{Tensor, nn};

pub struct Adam {
    pub lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    step: i64,
    /// First and second moments, by parameter name.
    moments: BTreeMap<String, (Tensor, Tensor)>,
}

impl Adam {
    pub fn new(vs: &nn::VarStore, lr: f64, beta1: f64, beta2: f64) -> Adam {
        let moments = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(name, t)| (name, (t.zeros_like(), t.zeros_like())))
            .collect();
        Adam { lr, beta1, beta2, eps: 1e-8, step: 0, moments }
    }

    /// Applies one update from the gradients in `vs`, then clears them.
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
                *m = &*m * self.beta1 + &grad * (1.0 - self.beta1);
                *v = &*v * self.beta2 + (&grad * &grad) * (1.0 - self.beta2);
                let denom = v.sqrt() / correction2 + self.eps;
                let update = &*m / denom * (self.lr / correction1);
                let _ = param.f_sub_(&update).expect("parameter update");
                let _ = param.grad().zero_();
            }
        });
    }

    /// Clears the gradients of `vs`.
    pub fn zero_grad(vs: &nn::VarStore) {
        for t in vs.trainable_variables() {
            let mut grad = t.grad();
            if grad.defined() {
                let _ = grad.zero_();
            }
        }
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
