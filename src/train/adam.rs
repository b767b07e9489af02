//! Adam, written out so its state can be checkpointed (tch's optimizer keeps its moments
//! inside libtorch, out of reach). The update is PyTorch's `torch.optim.Adam` exactly:
//! `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`, with t counted per
//! parameter (a parameter that was frozen starts at t = 1 when it first gets a gradient).
//! Variables under a name prefix may have their own learning rate (a pretrained encoder).
//! In a distributed run (`--dist`) each update first averages the gradients over the ranks
//! and takes rank 0's buffers (batch-norm statistics), as DDP does: identical gradients
//! give identical moments, so the replicas stay equal with no optimizer state exchanged.

use std::collections::BTreeMap;
use std::rc::Rc;

use tch::{Tensor, nn};

use super::dist::{DistError, Group, variables_by_name};

pub struct Adam {
    pub lr: f64,
    /// Learning rates of the variables whose names start with a prefix, instead of `lr`.
    pub lr_by_prefix: Vec<(String, f64)>,
    /// Used only to clear gradients: libtorch's optimizers reset them to undefined
    /// (`set_to_none`), so the next backward writes fresh gradients instead of adding into
    /// zeroed ones, as PyTorch does. It never steps.
    clearer: nn::Optimizer,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// First and second moments and the updates made, by parameter name.
    moments: BTreeMap<String, Moments>,
    /// The ranks of a distributed run.
    group: Option<Rc<Group>>,
}

struct Moments {
    m: Tensor,
    v: Tensor,
    step: i64,
}

impl Adam {
    pub fn new(vs: &nn::VarStore, lr: f64, beta1: f64, beta2: f64) -> Result<Adam, tch::TchError> {
        let moments = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(name, t)| (name, Moments { m: t.zeros_like(), v: t.zeros_like(), step: 0 }))
            .collect();
        let clearer = nn::OptimizerConfig::build(nn::Sgd::default(), vs, 0.0)?;
        let eps = 1e-8;
        Ok(Adam { lr, lr_by_prefix: Vec::new(), clearer, beta1, beta2, eps, moments, group: None })
    }

    /// Makes every later step average its gradients over `group`'s ranks first.
    pub fn distribute(&mut self, group: Rc<Group>) {
        self.group = Some(group);
    }

    /// Distributed: the gradients of `vs` averaged over the ranks, its buffers rank 0's.
    fn synchronize(&self, vs: &nn::VarStore) -> Result<(), DistError> {
        let Some(group) = &self.group else { return Ok(()) };
        // By name, the order of every rank; every rank has the same variables and phase, so
        // the same gradients are defined.
        let (trained, buffers): (Vec<_>, Vec<_>) = variables_by_name(vs)
            .into_iter()
            .partition(|(name, _)| self.moments.contains_key(name));
        let grads: Vec<Tensor> =
            trained.iter().map(|(_, t)| t.grad()).filter(Tensor::defined).collect();
        group.all_reduce_mean(&grads)?;
        let buffers: Vec<Tensor> = buffers.into_iter().map(|(_, t)| t).collect();
        group.broadcast(&buffers, 0)
    }

    fn lr_of(&self, name: &str) -> f64 {
        self.lr_by_prefix
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix.as_str()))
            .map_or(self.lr, |(_, lr)| *lr)
    }

    /// Applies one update from the gradients in `vs` (in a distributed run, once the
    /// ranks have averaged them; a rank that died is an error here).
    pub fn step(&mut self, vs: &nn::VarStore) -> Result<(), DistError> {
        self.synchronize(vs)?;
        let variables = vs.variables();
        let lrs: Vec<f64> = self.moments.keys().map(|name| self.lr_of(name)).collect();
        tch::no_grad(|| {
            for ((name, moments), lr) in self.moments.iter_mut().zip(lrs) {
                let mut param = variables[name].shallow_clone();
                let grad = param.grad();
                if !grad.defined() {
                    continue;
                }
                let Moments { m, v, step } = moments;
                *step += 1;
                let correction1 = 1.0 - self.beta1.powi(*step as i32);
                let correction2 = (1.0 - self.beta2.powi(*step as i32)).sqrt();
                // In place, as torch.optim.Adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g².
                let _ = m.lerp_(&grad, 1.0 - self.beta1);
                let _ = v.lerp_(&grad.square(), 1.0 - self.beta2);
                // p -= step * m / denom, written as p += m / (denom * -1/step).
                let step = lr / correction1;
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
        Ok(())
    }

    /// Clears the gradients of the optimizer's variables.
    pub fn zero_grad(&mut self) {
        self.clearer.zero_grad();
    }

    /// The state as named tensors, for a checkpoint.
    pub fn state(&self, prefix: &str) -> Vec<(String, Tensor)> {
        let steps: Vec<i64> = self.moments.values().map(|m| m.step).collect();
        let mut out = vec![(format!("{prefix}.steps"), Tensor::from_slice(&steps))];
        for (name, Moments { m, v, .. }) in &self.moments {
            out.push((format!("{prefix}.m.{name}"), m.shallow_clone()));
            out.push((format!("{prefix}.v.{name}"), v.shallow_clone()));
        }
        out
    }

    /// Restores what [`Adam::state`] saved; false if something is missing or misshapen.
    /// A checkpoint from before per-parameter steps has one `step` for all.
    pub fn restore(&mut self, prefix: &str, tensors: &BTreeMap<String, Tensor>) -> bool {
        let steps: Vec<i64> =
            match (tensors.get(&format!("{prefix}.steps")), tensors.get(&format!("{prefix}.step")))
            {
                (Some(steps), _) => Vec::try_from(steps).unwrap_or_default(),
                (None, Some(step)) => vec![step.int64_value(&[0]); self.moments.len()],
                (None, None) => return false,
            };
        if steps.len() != self.moments.len() {
            return false;
        }
        for ((name, moments), step) in self.moments.iter_mut().zip(steps) {
            let (Some(saved_m), Some(saved_v)) = (
                tensors.get(&format!("{prefix}.m.{name}")),
                tensors.get(&format!("{prefix}.v.{name}")),
            ) else {
                return false;
            };
            if saved_m.size() != moments.m.size() || saved_v.size() != moments.v.size() {
                return false;
            }
            moments.m = saved_m.to_device(moments.m.device());
            moments.v = saved_v.to_device(moments.v.device());
            moments.step = step;
        }
        true
    }
}
