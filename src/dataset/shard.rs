//! Shard files: safetensors with u8 `A` [N,1,S,S] and `B` [N,3,S,S], the member ids as
//! JSON in the metadata key `ids`. Written by `build`, memory-mapped by readers.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Io(#[from] crate::durable::PathError),
    #[error("{path}: not a valid shard: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Writes one shard of `ids.len()` pairs of side `size` (A planes in `a`, B planes in `b`).
pub fn write_shard(
    path: &Path,
    size: u32,
    a: &[u8],
    b: &[u8],
    ids: &[String],
) -> Result<(), ShardError> {
    let invalid = |message: String| ShardError::Invalid { path: path.to_owned(), message };
    let (n, s) = (ids.len(), size as usize);
    let tensor_a =
        TensorView::new(Dtype::U8, vec![n, 1, s, s], a).map_err(|e| invalid(e.to_string()))?;
    let tensor_b =
        TensorView::new(Dtype::U8, vec![n, 3, s, s], b).map_err(|e| invalid(e.to_string()))?;
    // One metadata key only: safetensors keeps metadata in a HashMap, and one key is the
    // only way its JSON comes out in the same order every time.
    let metadata =
        HashMap::from([("ids".to_owned(), serde_json::to_string(ids).expect("ids serialize"))]);
    safetensors::serialize_to_file([("A", tensor_a), ("B", tensor_b)], Some(metadata), path)
        .map_err(|e| invalid(e.to_string()))
}

/// The blake3 hex of a shard file, as recorded in the manifest (`build` writes it,
/// `verify` checks it).
pub fn file_hash(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, File::open(path)?);
    std::io::copy(&mut reader, &mut hasher)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// A memory-mapped shard, its header parsed once.
pub struct Shard {
    map: Mmap,
    ids: Vec<String>,
    size: usize,
    a: std::ops::Range<usize>,
    b: std::ops::Range<usize>,
}

/// One pair inside a shard, borrowed from the mapping.
pub struct Pair<'a> {
    /// S*S bytes.
    pub a: &'a [u8],
    /// 3*S*S bytes, planar RGB.
    pub b: &'a [u8],
}

impl Shard {
    /// Maps and checks a shard: u8 tensors, A `[N,1,S,S]` and B `[N,3,S,S]`, N ids.
    pub fn open(path: &Path) -> Result<Shard, ShardError> {
        let io =
            |source| ShardError::Io(crate::durable::PathError { path: path.to_owned(), source });
        let invalid = |message: String| ShardError::Invalid { path: path.to_owned(), message };
        let file = File::open(path).map_err(io)?;
        // SAFETY: shards are immutable once published (written to a partial folder, then
        // renamed); nothing writes to a mapped file.
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let (header_len, metadata) =
            SafeTensors::read_metadata(&map).map_err(|e| invalid(e.to_string()))?;
        let ids: Vec<String> = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get("ids"))
            .and_then(|ids| serde_json::from_str(ids).ok())
            .ok_or_else(|| invalid("no member ids in the metadata".into()))?;
        let n = ids.len();
        let tensor = |name: &str, channels: usize| {
            let info = metadata.info(name).ok_or_else(|| invalid(format!("no tensor {name}")))?;
            let shape = &info.shape;
            if info.dtype != Dtype::U8
                || shape.len() != 4
                || shape[..2] != [n, channels]
                || shape[2] != shape[3]
            {
                let message = format!(
                    "{name} is {:?} {shape:?}, expected U8 [{n}, {channels}, S, S]",
                    info.dtype
                );
                return Err(invalid(message));
            }
            let start = 8 + header_len;
            Ok((shape[2], start + info.data_offsets.0..start + info.data_offsets.1))
        };
        let (size, a) = tensor("A", 1)?;
        let (size_b, b) = tensor("B", 3)?;
        if size != size_b || b.end > map.len() || a.end > map.len() {
            return Err(invalid("A and B disagree, or the file is truncated".into()));
        }
        Ok(Shard { map, ids, size, a, b })
    }

    /// Member ids, in shard order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Pairs in the shard.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Side of the stored images.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Pair `index`.
    pub fn pair(&self, index: usize) -> Pair<'_> {
        let plane = self.size * self.size;
        let a = &self.map[self.a.clone()];
        let b = &self.map[self.b.clone()];
        Pair {
            a: &a[index * plane..(index + 1) * plane],
            b: &b[index * 3 * plane..(index + 1) * 3 * plane],
        }
    }
}
