//! Shard files: safetensors with u8 `A` [N,1,S,S] and `B` [N,3,S,S], the member ids as
//! JSON in the metadata key `ids`. Written by `build`, memory-mapped by readers.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors};

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error(transparent)]
    Io(#[from] crate::durable::PathError),
    #[error("{path}: not a valid shard: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Writes and fsyncs one shard of `ids.len()` pairs of side `size` (A planes in `a`, B
/// planes in `b`), and returns its blake3 hex ([`file_hash`]), hashed from the bytes on
/// their way out rather than read back. Written in place (no temporary name): callers
/// write into a folder that is published whole, build's `.partial-*` or a bucket task's
/// scratch.
///
/// The header is safetensors' own (`Metadata`, as `serialize_to_file` writes it); the
/// bytes go out a mebibyte a call: one `write` of a whole tensor measured 1.7x slower
/// into the page cache here than the same bytes in 1 MiB pieces.
pub fn write_shard(
    path: &Path,
    size: u32,
    a: &[u8],
    b: &[u8],
    ids: &[String],
) -> Result<String, ShardError> {
    let invalid = |message: String| ShardError::Invalid { path: path.to_owned(), message };
    let (n, s) = (ids.len(), size as usize);
    let (a_len, b_len) = (n * s * s, n * 3 * s * s);
    if a.len() != a_len || b.len() != b_len {
        let sizes = format!("{} and {} bytes", a.len(), b.len());
        return Err(invalid(format!("{n} pairs of {s}x{s} need {a_len} and {b_len}, not {sizes}")));
    }
    let info = |planes, offsets| TensorInfo {
        dtype: Dtype::U8,
        shape: vec![n, planes, s, s],
        data_offsets: offsets,
    };
    let tensors = vec![
        ("A".to_owned(), info(1, (0, a_len))),
        ("B".to_owned(), info(3, (a_len, a_len + b_len))),
    ];
    // One metadata key only: safetensors keeps metadata in a HashMap, and one key is the
    // only way its JSON comes out in the same order every time.
    let ids = serde_json::to_string(ids).expect("ids serialize");
    let metadata = Metadata::new(Some(HashMap::from([("ids".to_owned(), ids)])), tensors)
        .map_err(|e| invalid(e.to_string()))?;
    let mut header = serde_json::to_vec(&metadata).expect("a header serializes");
    header.resize(header.len().next_multiple_of(8), b' ');
    let length = (header.len() as u64).to_le_bytes();
    let mut file = File::create(path).map_err(crate::durable::at(path))?;
    let mut hasher = blake3::Hasher::new();
    for piece in [&length[..], &header, a, b].into_iter().flat_map(|part| part.chunks(1 << 20)) {
        file.write_all(piece).map_err(crate::durable::at(path))?;
        hasher.update(piece);
    }
    file.sync_all().map_err(crate::durable::at(path))?;
    Ok(hasher.finalize().to_hex().to_string())
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

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    /// Issue 27: the shard writer streams its own bytes; they must stay exactly what
    /// safetensors serializes (builds are byte-identical across the change), and the hash
    /// it returns must be the file's.
    #[test]
    fn a_shard_is_what_safetensors_serializes_and_its_hash_is_the_files() {
        let (n, s) = (5, 300); // B, 1,350,000 bytes, goes out in two pieces
        let a: Vec<u8> = (0..n * s * s).map(|i| (i * 7 % 251) as u8).collect();
        let b: Vec<u8> = (0..n * 3 * s * s).map(|i| (i * 13 % 253) as u8).collect();
        let ids: Vec<String> = ["a", "b", "c", "d", "e"].map(|c| c.repeat(64)).to_vec();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-00000.safetensors");
        let hash = write_shard(&path, s as u32, &a, &b, &ids).unwrap();

        let metadata = HashMap::from([("ids".to_owned(), serde_json::to_string(&ids).unwrap())]);
        let view = |planes, data| TensorView::new(Dtype::U8, vec![n, planes, s, s], data).unwrap();
        let expected =
            safetensors::serialize([("A", view(1, &a)), ("B", view(3, &b))], Some(metadata))
                .unwrap();
        let written = std::fs::read(&path).unwrap();
        assert!(written == expected, "{} bytes against {}", written.len(), expected.len());
        assert_eq!(hash, file_hash(&path).unwrap());
        assert_eq!(Shard::open(&path).unwrap().len(), n);

        let err = write_shard(&path, s as u32, &a[1..], &b, &ids).unwrap_err();
        assert!(err.to_string().contains("need 450000 and 1350000, not 449999"), "{err}");
    }
}
