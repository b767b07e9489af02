//! Data-parallel training (`train --dist`) over torch's own c10d: a `TCPStore` rendezvous
//! and a `ProcessGroupGloo` from the libtorch tch links, reached through the C++ shim
//! `dist.cpp` with tch's tensor pointers. No collective is written here.
//!
//! The launcher says who this process is: torchrun (or anyone) through `RANK`,
//! `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`; Slurm's `srun` through
//! `SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`.
//!
//! Peers are not trusted to be the run's own: the rendezvous listens only on the address
//! it was given (`MASTER_ADDR`, or `PIPELINE_RENDEZVOUS_BIND` to choose another, such as
//! `0.0.0.0` for every interface), each rank claims its number once, and before any
//! collective the ranks compare what they are about to train (run, dataset and version,
//! recipe and settings, pipeline's version): rank 0 judges, and every rank fails at once
//! with the same message when they differ. Without `MASTER_PORT` the port comes from the
//! job (`SLURM_JOB_ID`), else the run's name, never one constant every job shares.

use std::cell::Cell;
use std::ffi::{CStr, CString, c_char, c_int, c_longlong, c_void};
use std::os::fd::IntoRawFd;
use std::time::{Duration, Instant};

use serde_json::Value;
use tch::Tensor;

/// Tensors one collective call carries at most (DDP's default bucket, 25 MiB).
const BUCKET_BYTES: i64 = 25 << 20;

/// Ports a rendezvous without `MASTER_PORT` takes: 20000 and the next 10000 (below
/// Linux's ephemeral ports), by the job's id or the run's name.
const DERIVED_PORTS: (u16, u16) = (20000, 10000);

/// How long rank 0, which serves the rendezvous, waits for the others to read a verdict
/// that ends the run before it exits.
const VERDICT_GRACE: Duration = Duration::from_secs(10);

/// Differences listed per rank when ranks disagree.
const SHOWN_DIFFERENCES: usize = 6;

unsafe extern "C" {
    fn dist_join(
        rank: c_int,
        world: c_int,
        addr: *const c_char,
        port: c_int,
        listen_fd: c_int,
        timeout_ms: c_longlong,
        error: *mut *mut c_char,
    ) -> *mut c_void;
    fn dist_store_set(
        group: *mut c_void,
        key: *const c_char,
        value: *const c_char,
        len: c_longlong,
        error: *mut *mut c_char,
    ) -> bool;
    fn dist_store_get(
        group: *mut c_void,
        key: *const c_char,
        value: *mut *mut c_char,
        len: *mut c_longlong,
        error: *mut *mut c_char,
    ) -> bool;
    fn dist_store_add(
        group: *mut c_void,
        key: *const c_char,
        delta: c_longlong,
        sum: *mut c_longlong,
        error: *mut *mut c_char,
    ) -> bool;
    fn dist_connect(
        group: *mut c_void,
        host: *const c_char,
        timeout_ms: c_longlong,
        error: *mut *mut c_char,
    ) -> bool;
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
    fn dist_free_text(error: *mut c_char);
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
    /// Where rank 0 listens: `PIPELINE_RENDEZVOUS_BIND`, else `master_addr`.
    pub bind_addr: String,
}

impl Launch {
    /// From the launcher's variables (`env` reads one): torchrun's, else srun's. Without
    /// MASTER_ADDR, a one-node Slurm step meets on 127.0.0.1; without MASTER_PORT, on a
    /// port of the job's (`SLURM_JOB_ID`), else of the run's name.
    pub fn from_env(env: impl Fn(&str) -> Option<String>, run: &str) -> Result<Launch, String> {
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
            None => derived_port(env("SLURM_JOB_ID").as_deref().unwrap_or(run)),
        };
        let bind_addr = env("PIPELINE_RENDEZVOUS_BIND").unwrap_or_else(|| master_addr.clone());
        Ok(Launch { rank, world, local_rank, master_addr, master_port, bind_addr })
    }

    /// Whether every rank runs on this machine: the rendezvous is on a loopback address.
    fn on_one_machine(&self) -> bool {
        self.master_addr == "localhost"
            || self.master_addr.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// The rendezvous port of a job (or run) named `name`: the same on every rank, and
/// another for another job.
fn derived_port(name: &str) -> u16 {
    let hash = blake3::hash(name.as_bytes());
    let n = u16::from_le_bytes([hash.as_bytes()[0], hash.as_bytes()[1]]);
    DERIVED_PORTS.0 + n % DERIVED_PORTS.1
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

/// This process at the rendezvous: it met the others, and they have not agreed yet.
pub struct Rendezvous {
    group: Group,
    launch: Launch,
    timeout: Duration,
}

impl Rendezvous {
    /// Meets the others at the rendezvous `launch` describes (rank 0 listens on its bind
    /// address only); waits up to `timeout` for them, and gives each later collective as
    /// long. Each rank number is claimed once: a process of another job that comes to
    /// the same address as the same rank is refused.
    pub fn join(launch: &Launch, timeout: Duration) -> Result<Rendezvous, DistError> {
        let fail = |message: String| DistError {
            rank: launch.rank,
            world: launch.world,
            what: "joining",
            message,
        };
        let listen_fd = if launch.rank == 0 {
            let at = (launch.bind_addr.as_str(), launch.master_port);
            let listener = std::net::TcpListener::bind(at).map_err(|e| {
                fail(format!(
                    "cannot listen on {}:{}: {e} (is rank 0 on the MASTER_ADDR host? is the \
                     port taken? set MASTER_PORT)",
                    launch.bind_addr, launch.master_port
                ))
            })?;
            listener.into_raw_fd()
        } else {
            -1
        };
        let addr = CString::new(launch.master_addr.as_str()).map_err(|e| fail(e.to_string()))?;
        let mut error = std::ptr::null_mut();
        // SAFETY: the string outlives the call; `error` is set only when null is returned;
        // the listening socket's ownership passes to the store.
        let handle = unsafe {
            dist_join(
                launch.rank as c_int,
                launch.world as c_int,
                addr.as_ptr(),
                c_int::from(launch.master_port),
                listen_fd,
                timeout.as_millis() as c_longlong,
                &mut error,
            )
        };
        if handle.is_null() {
            return Err(fail(take(error)));
        }
        let group =
            Group { handle, rank: launch.rank, world: launch.world, spent: Cell::default() };
        let claims = group.store_add(&format!("pipeline/rank/{}", launch.rank), 1)?;
        if claims > 1 {
            return Err(fail(format!(
                "another process joined {}:{} as rank {} too: another job meets there (set \
                 MASTER_PORT)",
                launch.master_addr, launch.master_port, launch.rank
            )));
        }
        Ok(Rendezvous { group, launch: launch.clone(), timeout })
    }

    /// Compares what each rank is about to train (`settings`, a JSON object): rank 0 reads
    /// every rank's, all read its verdict, and all fail with it when they differ. Then
    /// the process group is made.
    pub fn agree(self, settings: &Value) -> Result<Group, DistError> {
        let Rendezvous { group, launch, timeout } = self;
        let fail = |message: String| DistError {
            rank: group.rank,
            world: group.world,
            what: "agreeing",
            message,
        };
        group.store_set(&format!("pipeline/settings/{}", group.rank), &settings.to_string())?;
        if group.is_leader() {
            let mut verdict = Vec::new();
            for rank in 1..group.world {
                let theirs = group.store_get(&format!("pipeline/settings/{rank}"))?;
                let theirs: Value = serde_json::from_str(&theirs).unwrap_or(Value::Null);
                let mut differences = Vec::new();
                differences_between("", settings, &theirs, &mut differences);
                if !differences.is_empty() {
                    differences.truncate(SHOWN_DIFFERENCES);
                    verdict.push(format!("rank {rank} has {}", differences.join(", ")));
                }
            }
            group.store_set("pipeline/verdict", &verdict.join("; "))?;
        }
        let verdict = group.store_get("pipeline/verdict")?;
        if !group.is_leader() {
            group.store_add("pipeline/verdict-read", 1)?;
        } else if !verdict.is_empty() {
            // Rank 0 serves the store: it stays until the others have read why they fail.
            let deadline = Instant::now() + VERDICT_GRACE;
            let others = (group.world - 1) as i64;
            while group.store_add("pipeline/verdict-read", 0)? < others && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if !verdict.is_empty() {
            return Err(fail(format!(
                "the ranks do not train the same thing: {verdict}; start every rank with the \
                 same run, dataset, config and arguments"
            )));
        }
        let host = if launch.on_one_machine() { launch.master_addr.as_str() } else { "" };
        let host = CString::new(host).map_err(|e| fail(e.to_string()))?;
        // SAFETY: the handle is live; the string outlives the call.
        group.call("connecting", |error| unsafe {
            dist_connect(group.handle, host.as_ptr(), timeout.as_millis() as c_longlong, error)
        })?;
        Ok(group)
    }
}

/// Where `theirs` differs from rank 0's `ours`, field by field (`train.epochs 4 (rank 0:
/// 3)`).
fn differences_between(path: &str, ours: &Value, theirs: &Value, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let field = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                let missing = Value::Null;
                let (x, y) = (a.get(key).unwrap_or(&missing), b.get(key).unwrap_or(&missing));
                differences_between(&field, x, y, out);
            }
        }
        _ if ours != theirs => out.push(format!("{path} {theirs} (rank 0: {ours})")),
        _ => {}
    }
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
    fn store_set(&self, key: &str, value: &str) -> Result<(), DistError> {
        let key = CString::new(key).expect("store keys have no NUL");
        let n = value.len() as c_longlong;
        // SAFETY: the handle is live; `key` and `value` outlive the call.
        self.call("rendezvous", |error| unsafe {
            dist_store_set(self.handle, key.as_ptr(), value.as_ptr().cast(), n, error)
        })
    }

    /// The value of `key`, once some rank has set it.
    fn store_get(&self, key: &str) -> Result<String, DistError> {
        let key = CString::new(key).expect("store keys have no NUL");
        let (mut value, mut len) = (std::ptr::null_mut(), 0);
        // SAFETY: the handle is live; the shim sets `value` (malloc'd) and `len` on success.
        self.call("rendezvous", |error| unsafe {
            dist_store_get(self.handle, key.as_ptr(), &mut value, &mut len, error)
        })?;
        // SAFETY: `len` bytes at `value`, freed here once.
        let bytes = unsafe { std::slice::from_raw_parts(value.cast::<u8>(), len as usize) };
        let text = String::from_utf8_lossy(bytes).into_owned();
        unsafe { dist_free_text(value) };
        Ok(text)
    }

    fn store_add(&self, key: &str, delta: i64) -> Result<i64, DistError> {
        let key = CString::new(key).expect("store keys have no NUL");
        let mut sum = 0;
        // SAFETY: the handle is live; `key` outlives the call.
        self.call("rendezvous", |error| unsafe {
            dist_store_add(self.handle, key.as_ptr(), delta, &mut sum, error)
        })?;
        Ok(sum)
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
    unsafe { dist_free_text(error) };
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
            bind_addr: "node-a".into(),
        };
        assert_eq!(Launch::from_env(torchrun, "r").unwrap(), want);
        let srun = Launch::from_env(
            env(&[
                ("SLURM_PROCID", "1"),
                ("SLURM_NTASKS", "2"),
                ("SLURM_LOCALID", "1"),
                ("SLURM_JOB_ID", "4242"),
            ]),
            "r",
        );
        let want = Launch {
            rank: 1,
            world: 2,
            local_rank: 1,
            master_addr: "127.0.0.1".into(),
            master_port: derived_port("4242"),
            bind_addr: "127.0.0.1".into(),
        };
        assert_eq!(srun.unwrap(), want);
        let nodes = Launch::from_env(
            env(&[("SLURM_PROCID", "1"), ("SLURM_NTASKS", "8"), ("SLURM_NNODES", "2")]),
            "r",
        );
        assert!(nodes.unwrap_err().contains("set MASTER_ADDR"));
        assert!(Launch::from_env(env(&[]), "r").unwrap_err().contains("no launcher found"));
        let bad = Launch::from_env(env(&[("RANK", "2"), ("WORLD_SIZE", "2")]), "r");
        assert_eq!(bad.unwrap_err(), "--dist: rank 2 is not below the world size 2");
        let everywhere = Launch::from_env(
            env(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("PIPELINE_RENDEZVOUS_BIND", "0.0.0.0")]),
            "r",
        );
        assert_eq!(everywhere.unwrap().bind_addr, "0.0.0.0", "binding every interface, asked");
    }

    /// Issue 20, finding 8: without MASTER_PORT, each job (or run) meets on a port of its
    /// own, the same on every rank: never one constant every job shares.
    #[test]
    fn the_default_port_comes_from_the_job_then_the_run() {
        let port = |job: Option<&str>, run: &str| {
            let vars = |var: &str| match var {
                "RANK" => Some("0".to_owned()),
                "WORLD_SIZE" => Some("2".to_owned()),
                "SLURM_JOB_ID" => job.map(str::to_owned),
                _ => None,
            };
            Launch::from_env(vars, run).unwrap().master_port
        };
        let (a, b) = (port(Some("101"), "x"), port(Some("102"), "x"));
        assert_ne!(a, b, "two jobs, two ports");
        assert_eq!(a, port(Some("101"), "another run"), "the job decides");
        assert_ne!(port(None, "run-a"), port(None, "run-b"), "else the run's name does");
        for p in [a, b, port(None, "run-a")] {
            assert!((20000..30000).contains(&p) && p != 29500, "{p}");
        }
    }

    #[test]
    fn differences_name_each_field() {
        let ours = serde_json::json!({"run": "a", "train": {"epochs": 3, "seed": 0}});
        let theirs = serde_json::json!({"run": "b", "train": {"epochs": 4, "seed": 0}, "x": 1});
        let mut out = Vec::new();
        differences_between("", &ours, &theirs, &mut out);
        let want =
            ["run \"b\" (rank 0: \"a\")", "train.epochs 4 (rank 0: 3)", "x 1 (rank 0: null)"];
        assert_eq!(out, want);
    }

    /// Runs `body` as rank 0 and rank 1 of a group on 127.0.0.1, each in a thread; their
    /// results in rank order.
    fn two_ranks<T: Send + 'static>(body: fn(Group) -> T) -> Vec<T> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let threads: Vec<_> = (0..2)
            .map(|rank| {
                std::thread::spawn(move || {
                    let master_addr = "127.0.0.1".to_owned();
                    let bind_addr = master_addr.clone();
                    let launch = Launch {
                        rank,
                        world: 2,
                        local_rank: 0,
                        master_addr,
                        master_port: port,
                        bind_addr,
                    };
                    let met = Rendezvous::join(&launch, Duration::from_secs(30)).unwrap();
                    body(met.agree(&serde_json::json!({"run": "test"})).unwrap())
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
