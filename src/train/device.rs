//! `--device auto|cpu|cuda[:N]`.
//!
//! The binary links only libtorch_cpu and c10; CUDA lives in libtorch_cuda.so, which is
//! loaded on demand so that `tch::Cuda::is_available()` can see it.

use tch::Device;

/// How `--device` spells `device`: `cpu`, `cuda:N`.
pub fn name(device: Device) -> String {
    match device {
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Resolves a device spec; `auto` takes CUDA when it loads and a GPU is there.
pub fn pick(spec: &str) -> Result<Device, String> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(if load_cuda().is_ok() && tch::Cuda::is_available() {
            Device::Cuda(0)
        } else {
            Device::Cpu
        }),
        _ => {
            let index = match spec.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => {
                    rest.strip_prefix(':').and_then(|n| n.parse::<usize>().ok()).ok_or_else(
                        || format!("--device {spec}: expected auto, cpu, cuda or cuda:N"),
                    )?
                }
                None => return Err(format!("--device {spec}: expected auto, cpu, cuda or cuda:N")),
            };
            load_cuda().map_err(|e| {
                format!("--device {spec}: libtorch's CUDA library did not load ({e})")
            })?;
            let count = tch::Cuda::device_count() as usize;
            if count == 0 {
                return Err(format!("--device {spec}: no CUDA GPU is available"));
            }
            if index >= count {
                return Err(format!("--device {spec}: only {count} CUDA device(s)"));
            }
            Ok(Device::Cuda(index))
        }
    }
}

fn load_cuda() -> Result<(), String> {
    // SAFETY: libtorch_cuda.so is libtorch's own CUDA backend, built together with the
    // libtorch_cpu already loaded; its initialisers only register CUDA with it. The handle
    // is leaked on purpose: the library must stay loaded for the life of the process.
    let library =
        unsafe { libloading::Library::new("libtorch_cuda.so") }.map_err(|e| e.to_string())?;
    std::mem::forget(library);
    Ok(())
}
