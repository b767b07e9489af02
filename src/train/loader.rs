//! The streaming loader: memory-mapped shards in, training batches out.
//!
//! Each epoch visits the split in an order shuffled from (seed, epoch); each pair gets one
//! random crop and one coin-flip mirror, applied to A and B alike; batches are assembled
//! as float tensors in [-1, 1] on a background thread and handed over through a bounded
//! channel of `prefetch` batches, so the trainer does not wait on data. Everything random
//! is derived from (seed, epoch), so an epoch is the same whether or not the run was
//! resumed before it. [`CenterCrops`] are the fixed inputs of validation, `eval` and the
//! sample grids.

use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Duration;

use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use tch::Tensor;

use super::config::ColorSpace;
use crate::dataset::{Built, DatasetError, Shard, Split};

/// What a batch is made of.
#[derive(Debug, Clone, Copy)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Side of the random crop (the reference: 256 out of 286).
    pub crop: usize,
    pub flip: bool,
    pub color: ColorSpace,
    pub seed: u64,
    /// Batches assembled ahead of the trainer.
    pub prefetch: usize,
    /// (rank, ranks) of a distributed run, (0, 1) otherwise: each rank takes every
    /// `ranks`-th sample of the epoch's order from its own, as torch's DistributedSampler.
    pub rank: (usize, usize),
}

/// One pair of a batch: its index in the split, the crop's top-left corner, mirrored or not.
type Sample = (usize, (usize, usize), bool);

/// One batch: A `[N,1,c,c]` and B `[N,3,c,c]`, float in [-1, 1], on the CPU.
pub struct Batch {
    pub a: Tensor,
    pub b: Tensor,
    /// Time the producer spent assembling it.
    pub assembly: Duration,
}

/// The pairs of one split (or of a part of it), mapped.
pub struct Pairs {
    shards: Vec<Shard>,
    /// (shard, index) of every pair, in shard order.
    index: Vec<(usize, usize)>,
    size: usize,
    /// Each pair in Lab as the networks see it (L, a, b planes at the stored size), kept
    /// once computed when the pairs are few enough ([`LAB_CACHE_BYTES`]): the conversion
    /// costs more than the rest of a batch's assembly.
    lab: Option<Vec<OnceLock<Vec<f32>>>>,
}

/// The most memory the Lab planes of one set of pairs may keep.
const LAB_CACHE_BYTES: usize = 1 << 30;

impl Pairs {
    /// Every pair of `split`.
    pub fn open(built: &Built, split: Split) -> Result<Pairs, DatasetError> {
        Pairs::open_where(built, split, |_| true)
    }

    /// The pairs of `split` whose member id passes `keep`.
    pub fn open_where(
        built: &Built,
        split: Split,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Pairs, DatasetError> {
        let mut shards = Vec::new();
        let mut index = Vec::new();
        for (i, info) in built.manifest.shards.iter().enumerate() {
            if info.split != split {
                continue;
            }
            let shard = built.shard(i)?;
            index.extend(
                shard
                    .ids()
                    .iter()
                    .enumerate()
                    .filter(|(_, id)| keep(id))
                    .map(|(j, _)| (shards.len(), j)),
            );
            shards.push(shard);
        }
        let size = built.manifest.settings.size as usize;
        let lab = (index.len() * 3 * size * size * std::mem::size_of::<f32>() <= LAB_CACHE_BYTES)
            .then(|| index.iter().map(|_| OnceLock::new()).collect());
        Ok(Pairs { shards, index, size, lab })
    }

    /// Pair `n`'s Lab planes, computed once, when the pairs are cached.
    fn lab_planes(&self, n: usize) -> Option<&[f32]> {
        let cell = &self.lab.as_ref()?[n];
        Some(cell.get_or_init(|| self.lab_of(n)))
    }

    fn lab_of(&self, n: usize) -> Vec<f32> {
        let (shard, i) = self.index[n];
        let pair = self.shards[shard].pair(i);
        let plane = self.size * self.size;
        let mut planes = vec![0f32; 3 * plane];
        let (l, ab) = planes.split_at_mut(plane);
        for (p, l) in l.iter_mut().enumerate() {
            let rgb = [pair.b[p], pair.b[plane + p], pair.b[2 * plane + p]];
            *l = ColorSpace::Lab.encode(pair.a[p], rgb, ab, p, plane);
        }
        planes
    }

    /// Pair `n` in Lab as the networks see it: the L, a and b planes at the stored size.
    pub fn lab(&self, n: usize) -> std::borrow::Cow<'_, [f32]> {
        match self.lab_planes(n) {
            Some(planes) => std::borrow::Cow::Borrowed(planes),
            None => std::borrow::Cow::Owned(self.lab_of(n)),
        }
    }

    /// The member id of pair `n`.
    pub fn id(&self, n: usize) -> &str {
        let (shard, i) = self.index[n];
        &self.shards[shard].ids()[i]
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Pair `n` cropped at (x, y) to `crop`, mirrored if `flip`, encoded in `color` into
    /// `a` (crop²) and `b` (channels x crop², planar).
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &self,
        n: usize,
        crop: usize,
        (x, y): (usize, usize),
        flip: bool,
        color: ColorSpace,
        a: &mut [f32],
        b: &mut [f32],
    ) {
        let s = self.size;
        let source = |row: usize, col: usize| {
            let source_col = if flip { crop - 1 - col } else { col };
            (y + row) * s + x + source_col
        };
        if let Some(planes) = self.lab_planes(n).filter(|_| color == ColorSpace::Lab) {
            let plane = crop * crop;
            for row in 0..crop {
                for col in 0..crop {
                    let (from, to) = (source(row, col), row * crop + col);
                    a[to] = planes[from];
                    b[to] = planes[s * s + from];
                    b[plane + to] = planes[2 * s * s + from];
                }
            }
            return;
        }
        let (shard, i) = self.index[n];
        let pair = self.shards[shard].pair(i);
        for row in 0..crop {
            for col in 0..crop {
                let (from, to) = (source(row, col), row * crop + col);
                let rgb = [pair.b[from], pair.b[s * s + from], pair.b[2 * s * s + from]];
                a[to] = color.encode(pair.a[from], rgb, b, to, crop * crop);
            }
        }
    }

    /// Pair `n` center-cropped to `crop` at (offset, offset), as u8: A (crop²) and B
    /// (3 crop², planar).
    pub fn center_crop(&self, n: usize, crop: usize, offset: usize) -> (Vec<u8>, Vec<u8>) {
        let (shard, i) = self.index[n];
        let pair = self.shards[shard].pair(i);
        let s = self.size;
        let mut a = Vec::with_capacity(crop * crop);
        let mut b = vec![0u8; 3 * crop * crop];
        for row in 0..crop {
            let from = (offset + row) * s + offset;
            a.extend_from_slice(&pair.a[from..from + crop]);
            for c in 0..3 {
                let to = c * crop * crop + row * crop;
                b[to..to + crop]
                    .copy_from_slice(&pair.b[c * s * s + from..c * s * s + from + crop]);
            }
        }
        (a, b)
    }

    /// The batches of `epoch`, in order: deterministic for (seed, epoch).
    fn epoch_plan(&self, config: &LoaderConfig, epoch: usize) -> Vec<Vec<Sample>> {
        let mut rng = ChaCha8Rng::seed_from_u64(
            config.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut rng);
        let room = self.size - config.crop;
        let samples: Vec<_> = order
            .into_iter()
            .map(|n| {
                (
                    n,
                    (rng.random_range(0..=room), rng.random_range(0..=room)),
                    config.flip && rng.random_bool(0.5),
                )
            })
            .collect();
        // Every rank draws the same order, crops and flips, then keeps its stride of the
        // first multiple of `ranks` samples: all ranks take the same number of steps.
        let (rank, ranks) = config.rank;
        let usable = samples.len() / ranks * ranks;
        let mine: Vec<Sample> =
            samples[..usable].iter().skip(rank).step_by(ranks).copied().collect();
        mine.chunks(config.batch_size).map(<[_]>::to_vec).collect()
    }

    /// How many batches an epoch has on one rank.
    pub fn batches_per_epoch(&self, config: &LoaderConfig) -> usize {
        (self.len() / config.rank.1).div_ceil(config.batch_size)
    }

    /// Assembles one batch (on the calling thread).
    fn batch(&self, config: &LoaderConfig, samples: &[Sample]) -> Batch {
        let started = std::time::Instant::now();
        let (n, crop, channels) = (samples.len(), config.crop, config.color.channels());
        let plane = crop * crop;
        let mut a = vec![0f32; n * plane];
        let mut b = vec![0f32; n * channels * plane];
        for (k, &(index, at, flip)) in samples.iter().enumerate() {
            let a_k = &mut a[k * plane..(k + 1) * plane];
            let b_k = &mut b[k * channels * plane..(k + 1) * channels * plane];
            self.write(index, crop, at, flip, config.color, a_k, b_k);
        }
        let c = crop as i64;
        Batch {
            a: Tensor::from_slice(&a).view([n as i64, 1, c, c]),
            b: Tensor::from_slice(&b).view([n as i64, channels as i64, c, c]),
            assembly: started.elapsed(),
        }
    }
}

/// Center crops of some pairs, as the networks see them and as people see them: the
/// inputs of validation, of `eval` and of the sample grids.
pub struct CenterCrops {
    /// Network inputs A, [n, 1, crop, crop].
    pub a: Tensor,
    a_values: Vec<f32>,
    /// The gray crops (crop² each) and the true colour ones (3 crop², planar).
    pub gray: Vec<Vec<u8>>,
    pub truth: Vec<Vec<u8>>,
    pub crop: usize,
    pub color: ColorSpace,
}

impl CenterCrops {
    /// Pairs `indices` of `pairs`, center-cropped to `crop`.
    pub fn new(
        pairs: &Pairs,
        indices: impl IntoIterator<Item = usize>,
        crop: usize,
        color: ColorSpace,
    ) -> CenterCrops {
        let offset = (pairs.size() - crop) / 2;
        let plane = crop * crop;
        let mut scratch = vec![0f32; color.channels() * plane];
        let (mut a_values, mut gray, mut truth) = (Vec::new(), Vec::new(), Vec::new());
        for n in indices {
            let mut a = vec![0f32; plane];
            pairs.write(n, crop, (offset, offset), false, color, &mut a, &mut scratch);
            a_values.extend(a);
            let (g, b) = pairs.center_crop(n, crop, offset);
            gray.push(g);
            truth.push(b);
        }
        let c = crop as i64;
        let a = Tensor::from_slice(&a_values).view([gray.len() as i64, 1, c, c]);
        CenterCrops { a, a_values, gray, truth, crop, color }
    }

    pub fn len(&self) -> usize {
        self.gray.len()
    }

    pub fn is_empty(&self) -> bool {
        self.gray.is_empty()
    }

    /// Crop `i` coloured by B (channels x crop², planar, as the networks give it): RGB,
    /// interleaved.
    pub fn decode(&self, i: usize, b: &[f32]) -> Vec<u8> {
        let plane = self.crop * self.crop;
        let a = &self.a_values[i * plane..(i + 1) * plane];
        (0..plane).flat_map(|p| self.color.decode(a[p], b, p, plane)).collect()
    }

    /// Crop `i` as the do-nothing colorizer leaves it: RGB, interleaved.
    pub fn do_nothing(&self, i: usize) -> Vec<u8> {
        let plane = self.crop * self.crop;
        let a = &self.a_values[i * plane..(i + 1) * plane];
        (0..plane).flat_map(|p| self.color.do_nothing(self.gray[i][p], a[p])).collect()
    }

    /// The true colours of crop `i`: RGB, interleaved.
    pub fn truth_rgb(&self, i: usize) -> Vec<u8> {
        crate::photo::color::interleave(&self.truth[i], self.crop * self.crop)
    }

    /// Runs `colorize` on the crops, `chunk` at a time on `device`; B of each, planar.
    pub fn colorize(
        &self,
        colorize: &dyn Fn(&Tensor) -> Tensor,
        device: tch::Device,
        chunk: usize,
    ) -> Vec<Vec<f32>> {
        let each = self.colorize_each(&|a| vec![((), colorize(a))], device, chunk);
        each.into_iter().next().map(|(_, b)| b).unwrap_or_default()
    }

    /// Runs `colorize`, which gives several labelled colorizations of a batch (one per
    /// temperature), on the crops, `chunk` at a time on `device`: each label with B of each
    /// crop, planar.
    pub fn colorize_each<K: Clone>(
        &self,
        colorize: &dyn Fn(&Tensor) -> Vec<(K, Tensor)>,
        device: tch::Device,
        chunk: usize,
    ) -> Vec<(K, Vec<Vec<f32>>)> {
        let mut out: Vec<(K, Vec<Vec<f32>>)> = Vec::new();
        for start in (0..self.len()).step_by(chunk.max(1)) {
            let n = chunk.min(self.len() - start);
            let each = colorize(&self.a.narrow(0, start as i64, n as i64).to_device(device));
            if out.is_empty() {
                out =
                    each.iter().map(|(k, _)| (k.clone(), Vec::with_capacity(self.len()))).collect();
            }
            for ((_, crops), (_, b)) in out.iter_mut().zip(each) {
                let b = b.to_device(tch::Device::Cpu);
                for k in 0..n {
                    crops.push(
                        Vec::<f32>::try_from(b.get(k as i64).flatten(0, -1)).unwrap_or_default(),
                    );
                }
            }
        }
        out
    }
}

/// Starts assembling the batches of `epoch` on a background thread.
pub fn epoch(pairs: std::sync::Arc<Pairs>, config: LoaderConfig, epoch: usize) -> Receiver<Batch> {
    epoch_from(pairs, config, epoch, 0)
}

/// The batches of `epoch` after its first `skip` (a run resumed mid-epoch): the same as
/// the whole epoch's from there on.
pub fn epoch_from(
    pairs: std::sync::Arc<Pairs>,
    config: LoaderConfig,
    epoch: usize,
    skip: usize,
) -> Receiver<Batch> {
    let (tx, rx) = sync_channel(config.prefetch.max(1));
    std::thread::spawn(move || {
        for samples in pairs.epoch_plan(&config, epoch).into_iter().skip(skip) {
            if tx.send(pairs.batch(&config, &samples)).is_err() {
                return; // The trainer stopped early.
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_and_flip_apply_to_a_and_b_alike() {
        // A 4x4 pair whose pixel values encode their position.
        let size = 4;
        let a: Vec<u8> = (0..16).collect();
        let b: Vec<u8> = (0..48).map(|v| v as u8 + 100).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train-00000.safetensors");
        crate::dataset::write_shard(&path, size, &a, &b, &["x".repeat(64)]).unwrap();
        let pairs = Pairs {
            shards: vec![Shard::open(&path).unwrap()],
            index: vec![(0, 0)],
            size: size as usize,
            lab: Some(vec![OnceLock::new()]),
        };
        let (mut ca, mut cb) = (vec![0f32; 4], vec![0f32; 12]);
        pairs.write(0, 2, (1, 2), true, ColorSpace::Rgb, &mut ca, &mut cb);
        let back = |v: f32| ((v + 1.0) * 127.5).round() as u8;
        // Rows 2-3, columns 1-2, mirrored: (2,2) (2,1) / (3,2) (3,1).
        assert_eq!(ca.iter().map(|v| back(*v)).collect::<Vec<_>>(), [10, 9, 14, 13]);
        assert_eq!(cb[..4].iter().map(|v| back(*v)).collect::<Vec<_>>(), [110, 109, 114, 113]);
        assert_eq!(cb[8..].iter().map(|v| back(*v)).collect::<Vec<_>>(), [142, 141, 146, 145]);

        // Lab from the kept planes is what the conversion gives pixel by pixel.
        let (mut kept_a, mut kept_b) = (vec![0f32; 4], vec![0f32; 8]);
        pairs.write(0, 2, (1, 2), true, ColorSpace::Lab, &mut kept_a, &mut kept_b);
        assert!(pairs.lab.as_ref().unwrap()[0].get().is_some(), "computed once, then kept");
        let uncached = Pairs { lab: None, ..pairs };
        let (mut fresh_a, mut fresh_b) = (vec![0f32; 4], vec![0f32; 8]);
        uncached.write(0, 2, (1, 2), true, ColorSpace::Lab, &mut fresh_a, &mut fresh_b);
        assert_eq!((kept_a, kept_b), (fresh_a, fresh_b));
    }
}
