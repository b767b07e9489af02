//! Single-process locks: an exclusive `flock` on a file that also records the holder's
//! pid, so "busy" can say who holds it. `store/lock` guards the store; `runs/RUN.lock`
//! guards one training run (`train` does not take the store lock). The kernel drops a
//! lock when its process dies, however it dies, so a crash never leaves anything locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use super::StoreError;

pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Takes the lock on `path` (created if needed) or fails at once with
    /// [`StoreError::Busy`]; `what` names the thing locked in that message.
    pub fn acquire(path: &Path, what: &'static str) -> Result<StoreLock, StoreError> {
        let io = |source| StoreError::from(crate::durable::at(path)(source));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid =
                    file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(StoreError::Busy { what, path: path.to_owned(), pid });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(StoreLock { _file: file })
    }
}
