//! Data-parallel training (`train --dist`) over torch's own c10d: a `TCPStore` rendezvous
//! and a `ProcessGroupGloo` from the libtorch tch links, reached through the C++ shim
//! `dist.cpp` with tch's tensor pointers. No collective is written here.
//!
//! The launcher says who this process is: torchrun (or anyone) through `RANK`,
//! `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`; Slurm's `srun` through
//! `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`.

use std::cell::Cell;
use std::ffi::{CStr, CString, c_char, c_int, c_longlong, c_void};
use std::time::{Duration, Instant};

use tch::Tensor;

/// Tensors one collective call carries at most (DDP's default bucket, 25 MiB).
const BUCKET_BYTES: i64 = 25 << 20;

/// torch's default rendezvous port.
const DEFAULT_PORT: u16 = 29500;

unsafe extern "C" {
    fn dist_init(
        rank: c_int,
        world: c_int,
        addr: *const c_char,
        port: c_int,
        timeout_ms: c_longlong,
        error: *mut *mut c_char,
    ) -> *mut c_void;
    fn dist_broadcast(
        group: *mut c_void,
        tensors: *const *mut c_void,
        n: c_int,
        root: c_int,
        bucket_bytes: c_longlong,
        error: *mut *mut c_char,
    ) -> bool;
    fn dist_allreduce_mean(
        group: *mut c_void,
        tensors: *const *mut c_void,
        n: c_int,
        bucket_bytes: c_longlong,
        error: *mut *mut c_char,
    ) -> bool;
    fn dist_barrier(group: *mut c_void, error: *mut *mut c_char) -> bool;
    fn dist_free(group: *mut c_void);
    fn dist_free_error(error: *mut c_char);
}

/// Where this process stands in a distributed run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub rank: usize,
    pub world: usize,
    /// Its index on its machine: which GPU it takes.
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
}

impl Launch {
    /// From the launcher's variables (`env` reads one): torchrun's, else srun's. Without
    /// MASTER_ADDR, a one-node Slurm step meets on 127.0.0.1; without MASTER_PORT, 29500.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Launch, String> {
        let number = |var: &str| -> Result<Option<usize>, String> {
            env(var)
                .map(|v| v.trim().parse().map_err(|_| format!("{var}={v:?} is not a number")))
                .transpose()
        };
        let (rank, world, local_rank) = match (number("RANK")?, number("WORLD_SIZE")?) {
            (Some(rank), Some(world)) => (rank, world, number("LOCAL_RANK")?.unwrap_or(0)),
            _ => match (number("SLURM_PROCID")?, number("SLURM_NTASKS")?) {
                (Some(rank), Some(world)) => (rank, world, number("SLURM_LOCALID")?.unwrap_or(0)),
                _ => {
                    return Err("--dist: no launcher found: set RANK and WORLD_SIZE (torchrun \
                                does), or run under srun (SLURM_PROCID, SLURM_NTASKS)"
                        .into());
                }
            },
        };
        if world == 0 || rank >= world {
            return Err(format!("--dist: rank {rank} is not below the world size {world}"));
        }
        let one_node = number("SLURM_NNODES")?.is_none_or(|n| n == 1);
        let master_addr = match env("MASTER_ADDR") {
            Some(addr) => addr,
            None if one_node => "127.0.0.1".to_owned(),
            None => {
                return Err("--dist: set MASTER_ADDR to the first host of the allocation \
                            (scontrol show hostnames | head -1)"
                    .into());
            }
        };
        let master_port = match env("MASTER_PORT") {
            Some(port) => {
                port.trim().parse().map_err(|_| format!("MASTER_PORT={port:?} is not a port"))?
            }
            None => DEFAULT_PORT,
        };
        Ok(Launch { rank, world, local_rank, master_addr, master_port })
    }
}

/// A failed collective: the peer that died, the timeout, the rendezvous, as c10d says it.
#[derive(Debug, thiserror::Error)]
#[error("rank {rank} of {world}: {what}: {message}")]
pub struct DistError {
    pub rank: usize,
    pub world: usize,
    pub what: &'static str,
    pub message: String,
}

/// This process's membership of the run's process group (Gloo).
pub struct Group {
    handle: *mut c_void,
    pub rank: usize,
    pub world: usize,
    /// Time spent in collectives so far.
    spent: Cell<Duration>,
}

impl Group {
    /// Joins the group `launch` describes; waits up to `timeout` for the others, and
    /// gives each later collective as long.
    pub fn join(launch: &Launch, timeout: Duration) -> Result<Group, DistError> {
        let fail = |message: String| DistError {
            rank: launch.rank,
            world: launch.world,
            what: "joining",
            message,
        };
        let addr = CString::new(launch.master_addr.as_str()).map_err(|e| fail(e.to_string()))?;
        let mut error = std::ptr::null_mut();
        // SAFETY: the strings outlive the call; `error` is set only when null is returned.
        let handle = unsafe {
            dist_init(
                launch.rank as c_int,
                launch.world as c_int,
                addr.as_ptr(),
                c_int::from(launch.master_port),
                timeout.as_millis() as c_longlong,
                &mut error,
            )
        };
        if handle.is_null() {
            return Err(fail(take(error)));
        }
        Ok(Group { handle, rank: launch.rank, world: launch.world, spent: Cell::default() })
    }

    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }

    /// Time spent in collectives since the group was joined.
    pub fn time_in_collectives(&self) -> Duration {
        self.spent.get()
    }

    /// Runs one collective call of the shim, timed; `what` names it in errors.
    fn call(
        &self,
        what: &'static str,
        collective: impl FnOnce(*mut *mut c_char) -> bool,
    ) -> Result<(), DistError> {
        let started = Instant::now();
        let mut error = std::ptr::null_mut();
        let ok = collective(&mut error);
        self.spent.set(self.spent.get() + started.elapsed());
        if ok {
            return Ok(());
        }
        Err(DistError { rank: self.rank, world: self.world, what, message: take(error) })
    }

    /// Rank `root`'s values of `tensors`, copied into them on every rank.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<(), DistError> {
        let pointers = pointers(tensors);
        let n = pointers.len() as c_int;
        // SAFETY: every pointer is a live `torch::Tensor*` borrowed for the call.
        self.call("broadcast", |error| unsafe {
            dist_broadcast(self.handle, pointers.as_ptr(), n, root as c_int, BUCKET_BYTES, error)
        })
    }

    /// Replaces each tensor by its mean over the ranks.
    pub fn all_reduce_mean(&self, tensors: &[Tensor]) -> Result<(), DistError> {
        let pointers = pointers(tensors);
        let n = pointers.len() as c_int;
        // SAFETY: as in `broadcast`.
        self.call("all-reduce", |error| unsafe {
            dist_allreduce_mean(self.handle, pointers.as_ptr(), n, BUCKET_BYTES, error)
        })
    }

    /// Waits until every rank is here.
    pub fn barrier(&self) -> Result<(), DistError> {
        // SAFETY: the handle is live until drop.
        self.call("barrier", |error| unsafe { dist_barrier(self.handle, error) })
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: made by dist_init, freed once.
        unsafe { dist_free(self.handle) }
    }
}

/// The variables of `vs`, by name: the order every rank lists them in (a `VarStore`'s own
/// map has a different order in each process).
pub fn variables_by_name(vs: &tch::nn::VarStore) -> Vec<(String, Tensor)> {
    let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    variables.sort_by(|a, b| a.0.cmp(&b.0));
    variables
}

/// Just the tensors of [`variables_by_name`].
pub fn tensors_by_name(vs: &tch::nn::VarStore) -> Vec<Tensor> {
    variables_by_name(vs).into_iter().map(|(_, t)| t).collect()
}

fn pointers(tensors: &[Tensor]) -> Vec<*mut c_void> {
    // The shim writes through the tensors into their storage, never into the handles.
    tensors.iter().map(|t| t.as_ptr().cast_mut().cast::<c_void>()).collect()
}

/// The shim's error message, freed.
fn take(error: *mut c_char) -> String {
    if error.is_null() {
        return "unknown error".into();
    }
    // SAFETY: a NUL-terminated string the shim allocated, freed here once.
    let message = unsafe { CStr::from_ptr(error) }.to_string_lossy().into_owned();
    unsafe { dist_free_error(error) };
    // c10's errors go on with the C++ backtrace: the first part says what happened.
    let what = message.split("\nException raised from").next().unwrap_or_default();
    what.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |var| pairs.iter().find(|(k, _)| *k == var).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_launch_comes_from_torchrun_then_srun() {
        let torchrun = env(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node-a"),
            ("MASTER_PORT", "29400"),
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "2"),
        ]);
        let want = Launch {
            rank: 3,
            world: 8,
            local_rank: 1,
            master_addr: "node-a".into(),
            master_port: 29400,
        };
        assert_eq!(Launch::from_env(torchrun).unwrap(), want);
        let srun = Launch::from_env(env(&[
            ("SLURM_PROCID", "1"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_LOCALID", "1"),
        ]));
        let want = Launch {
            rank: 1,
            world: 2,
            local_rank: 1,
            master_addr: "127.0.0.1".into(),
            master_port: 29500,
        };
        assert_eq!(srun.unwrap(), want);
        let nodes = Launch::from_env(env(&[
            ("SLURM_PROCID", "1"),
            ("SLURM_NTASKS", "8"),
            ("SLURM_NNODES", "2"),
        ]));
        assert!(nodes.unwrap_err().contains("set MASTER_ADDR"));
        assert!(Launch::from_env(env(&[])).unwrap_err().contains("no launcher found"));
        let bad = Launch::from_env(env(&[("RANK", "2"), ("WORLD_SIZE", "2")]));
        assert_eq!(bad.unwrap_err(), "--dist: rank 2 is not below the world size 2");
    }

    /// Runs `body` as rank 0 and rank 1 of a group on 127.0.0.1, each in a thread; their
    /// results in rank order.
    fn two_ranks<T: Send + 'static>(body: fn(Group) -> T) -> Vec<T> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let threads: Vec<_> = (0..2)
            .map(|rank| {
                std::thread::spawn(move || {
                    let master_addr = "127.0.0.1".to_owned();
                    let launch =
                        Launch { rank, world: 2, local_rank: 0, master_addr, master_port: port };
                    body(Group::join(&launch, Duration::from_secs(30)).unwrap())
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    }

    /// A small net with batch norm, its variables set to fixed values (no RNG: the
    /// threads below would race for torch's global generator).
    fn net(vs: &tch::nn::VarStore) -> tch::nn::SequentialT {
        use tch::nn;
        let root = vs.root();
        let net = nn::seq_t()
            .add(nn::conv2d(&root / "c1", 1, 4, 3, Default::default()))
            .add(nn::batch_norm2d(&root / "bn", 4, Default::default()))
            .add_fn(|x| x.relu())
            .add(nn::conv2d(&root / "c2", 4, 3, 3, Default::default()));
        tch::no_grad(|| {
            for (i, (_, mut t)) in variables_by_name(vs).into_iter().enumerate() {
                let values =
                    (Tensor::arange(t.numel() as i64, (tch::Kind::Float, tch::Device::Cpu)) * 0.37
                        + i as f64)
                        .sin()
                        * 0.3;
                t.copy_(&values.view(t.size().as_slice()));
            }
        });
        net
    }

    /// Half `k` of a batch of 4 (input, target), fixed values.
    fn half(k: i64) -> (Tensor, Tensor) {
        let x = (Tensor::arange(2 * 64, (tch::Kind::Float, tch::Device::Cpu))
            * (0.11 + k as f64 * 0.07))
            .cos();
        let y = (Tensor::arange(2 * 3 * 16, (tch::Kind::Float, tch::Device::Cpu))
            * (0.05 + k as f64 * 0.03))
            .sin();
        (x.view([2, 1, 8, 8]), y.view([2, 3, 4, 4]))
    }

    fn trained(vs: &tch::nn::VarStore) -> Vec<(String, Vec<f32>)> {
        let mut out: Vec<_> = vs
            .trainable_variables()
            .iter()
            .zip(0..)
            .map(|(t, i)| (i.to_string(), Vec::<f32>::try_from(&t.flatten(0, -1)).unwrap()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[test]
    fn a_data_parallel_step_equals_one_process_averaging_the_half_batch_gradients() {
        use crate::train::adam::Adam;
        use tch::nn::ModuleT;
        const STEPS: usize = 3;
        // One process: the gradients of each half, averaged, then Adam.
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let model = net(&vs);
        let mut adam = Adam::new(&vs, 2e-3, 0.5, 0.999).unwrap();
        for _ in 0..STEPS {
            let mut halves = Vec::new();
            for k in 0..2 {
                adam.zero_grad();
                let (x, y) = half(k);
                model.forward_t(&x, true).l1_loss(&y, tch::Reduction::Mean).backward();
                halves.push(
                    vs.trainable_variables().iter().map(|t| t.grad().copy()).collect::<Vec<_>>(),
                );
            }
            tch::no_grad(|| {
                for ((t, g0), g1) in vs.trainable_variables().iter().zip(&halves[0]).zip(&halves[1])
                {
                    t.grad().copy_(&((g0 + g1) / 2.0));
                }
            });
            adam.step(&vs).unwrap();
        }
        let reference = trained(&vs);

        // Two ranks through Gloo, each on its half.
        let ranks = two_ranks(|group| {
            let rank = group.rank;
            let vs = tch::nn::VarStore::new(tch::Device::Cpu);
            let model = net(&vs);
            let mut adam = Adam::new(&vs, 2e-3, 0.5, 0.999).unwrap();
            adam.distribute(std::rc::Rc::new(group));
            let (x, y) = half(rank as i64);
            for _ in 0..STEPS {
                adam.zero_grad();
                model.forward_t(&x, true).l1_loss(&y, tch::Reduction::Mean).backward();
                adam.step(&vs).unwrap();
            }
            trained(&vs)
        });
        assert_eq!(ranks[0], ranks[1], "the ranks hold identical weights");
        for ((name, want), (_, got)) in reference.iter().zip(&ranks[0]) {
            let worst = want.iter().zip(got).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst <= 1e-6, "variable {name}: differs by {worst}");
        }
    }

    #[test]
    fn two_ranks_broadcast_and_average_through_gloo() {
        let ranks = two_ranks(|group| {
            let r = group.rank as f64;
            // Two dtypes (two buckets), and a tensor larger than one bucket.
            let tensors = [
                Tensor::from_slice(&[r, 10.0 + r]),
                Tensor::from_slice(&[r as f32 * 4.0]),
                Tensor::full([7 << 20], r + 1.0, (tch::Kind::Float, tch::Device::Cpu)),
            ];
            group.all_reduce_mean(&tensors).unwrap();
            let mine = Tensor::from_slice(&[r * 100.0, 1.0]);
            group.broadcast(std::slice::from_ref(&mine), 1).unwrap();
            group.barrier().unwrap();
            (
                Vec::<f64>::try_from(&tensors[0]).unwrap(),
                f32::try_from(&tensors[1].get(0)).unwrap(),
                f64::try_from(tensors[2].mean(None)).unwrap(),
                Vec::<f64>::try_from(&mine).unwrap(),
            )
        });
        for (a, b, c, d) in ranks {
            assert_eq!(a, [0.5, 10.5]);
            assert_eq!(b, 2.0);
            assert!((c - 1.5).abs() < 1e-6, "{c}");
            assert_eq!(d, [100.0, 1.0], "rank 1's values everywhere");
        }
    }
}
