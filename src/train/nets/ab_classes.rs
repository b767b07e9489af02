//! Colour as classes (Zhang, Isola & Efros 2016): the ab plane cut into 10 x 10 cells,
//! the cells some sRGB colour falls in, a truth's soft encoding over them, class
//! rebalancing by the inverse of the smoothed cell frequency, and the annealed mean that
//! turns a predicted distribution back into one colour, nearer its most likely one as the
//! temperature falls.
//!
//! Units are the networks': ab / 110 (a cell is 10/110 wide).

use tch::{Device, Kind, Tensor};

use crate::photo::color::rgb8_to_lab;

/// Side of a cell, in ab units.
const CELL: f64 = 10.0;
/// Cells per axis: centres at -110, -100, ..., 110.
const GRID: i64 = 23;
/// The centre of cell 0 of an axis.
const LOW: f64 = -110.0;
/// One in this many levels of each sRGB channel (and 255) finds the cells in gamut.
const LEVEL_STEP: usize = 3;
/// Zhang et al.'s smoothing of the cell frequencies: a Gaussian of 5 ab units.
const SMOOTHING_SIGMA: f64 = 5.0;

/// The temperatures a run's vividness is chosen among on validation (and the report's
/// trade-off draws), from the plain mean to nearly the most likely colour.
pub const VIVIDNESS_CHOICES: [f64; 5] = [1.0, 0.6, 0.38, 0.2, 0.1];

/// A truth as the class head's loss reads it (see [`AbClasses::soft_targets`]).
pub struct SoftTargets {
    pub classes: Tensor,
    pub weights: Tensor,
    pub nearest: Tensor,
}

/// The cells in gamut and the lookups between them and the grid.
#[derive(Debug)]
pub struct AbClasses {
    /// [Q, 2]: each class's centre, in network units.
    centers: Tensor,
    /// [GRID * GRID] (int64): each grid cell's class, Q for a cell out of gamut.
    grid_to_class: Tensor,
    count: i64,
}

/// The grid cell (a row, b column) of an ab value in ab units, clamped to the grid.
fn cell_of(a: f64, b: f64) -> (i64, i64) {
    let index = |v: f64| (((v - LOW) / CELL).round() as i64).clamp(0, GRID - 1);
    (index(a), index(b))
}

impl AbClasses {
    /// The cells that an sRGB colour falls in (found on a lattice of every third level),
    /// in grid order.
    pub fn new(device: Device) -> AbClasses {
        let mut in_gamut = vec![false; (GRID * GRID) as usize];
        let levels: Vec<u8> = (0..=255).step_by(LEVEL_STEP).chain([255]).collect();
        for &r in &levels {
            for &g in &levels {
                for &b in &levels {
                    let [_, a, bb] = rgb8_to_lab([r, g, b]);
                    let (i, j) = cell_of(f64::from(a), f64::from(bb));
                    in_gamut[(i * GRID + j) as usize] = true;
                }
            }
        }
        let mut grid_to_class = Vec::with_capacity(in_gamut.len());
        let mut centers = Vec::new();
        for (cell, &inside) in in_gamut.iter().enumerate() {
            let cell = cell as i64;
            if inside {
                grid_to_class.push((centers.len() / 2) as i64);
                let (i, j) = (cell / GRID, cell % GRID);
                centers.extend([i, j].map(|k| ((LOW + CELL * k as f64) / 110.0) as f32));
            } else {
                grid_to_class.push(-1);
            }
        }
        let count = (centers.len() / 2) as i64;
        let grid_to_class: Vec<i64> =
            grid_to_class.into_iter().map(|c| if c < 0 { count } else { c }).collect();
        AbClasses {
            centers: Tensor::from_slice(&centers).view([count, 2]).to_device(device),
            grid_to_class: Tensor::from_slice(&grid_to_class).to_device(device),
            count,
        }
    }

    /// Q, the number of classes.
    pub fn count(&self) -> i64 {
        self.count
    }

    /// Each grid cell's class (`None` out of gamut), indexed by [`AbClasses::cell_index`]:
    /// for counting the training data's colours.
    pub fn classes_by_cell(&self) -> Vec<Option<usize>> {
        Vec::<i64>::try_from(self.grid_to_class.to_device(Device::Cpu))
            .expect("an int64 table")
            .into_iter()
            .map(|c| (c < self.count).then_some(c as usize))
            .collect()
    }

    /// The grid cell of an ab value in network units.
    pub fn cell_index(a: f32, b: f32) -> usize {
        let (i, j) = cell_of(f64::from(a) * 110.0, f64::from(b) * 110.0);
        (i * GRID + j) as usize
    }

    /// The truth `ab` ([N, 2, H, W]) as targets, each value shared bilinearly between the
    /// four cells around it: their classes ([N, 4, H, W], int64) and weights ([N, 4, H, W],
    /// cells out of gamut weighted 0 and the rest renormalised), and each pixel's nearest
    /// class ([N, H, W]; Q where that cell is out of gamut). Sparse, so that the loss reads
    /// four log-probabilities a pixel instead of a dense [N, Q, H, W] target.
    pub fn soft_targets(&self, ab: &Tensor) -> SoftTargets {
        let (n, h, w) = (ab.size()[0], ab.size()[2], ab.size()[3]);
        let units = ((ab * 110.0 - LOW) / CELL).clamp(0.0, (GRID - 1) as f64 - 1e-4);
        let low = units.floor();
        let frac = &units - &low;
        let low = low.to_kind(Kind::Int64);
        let (ai, bi) = (low.select(1, 0), low.select(1, 1));
        let (af, bf) = (frac.select(1, 0), frac.select(1, 1));
        let corners = [
            (&ai * GRID + &bi, (1.0 - &af) * (1.0 - &bf)),
            (&ai * GRID + &bi + 1, (1.0 - &af) * &bf),
            ((&ai + 1) * GRID + &bi, &af * (1.0 - &bf)),
            ((&ai + 1) * GRID + &bi + 1, &af * &bf),
        ];
        let class_of = |cell: &Tensor| {
            self.grid_to_class.index_select(0, &cell.flatten(0, -1)).view([n, 1, h, w])
        };
        let classes = Tensor::cat(&corners.iter().map(|(c, _)| class_of(c)).collect::<Vec<_>>(), 1);
        let weights =
            Tensor::stack(&corners.iter().map(|(_, w)| w.shallow_clone()).collect::<Vec<_>>(), 1);
        let inside = classes.lt(self.count).to_kind(Kind::Float);
        let weights = &weights * &inside;
        let weights = &weights / weights.sum_dim_intlist(1, true, Kind::Float).clamp_min(1e-6);
        let nearest = ((ab * 110.0 - LOW) / CELL).round().clamp(0.0, (GRID - 1) as f64);
        let nearest = nearest.to_kind(Kind::Int64);
        let cell = nearest.select(1, 0) * GRID + nearest.select(1, 1);
        SoftTargets {
            classes: classes.clamp_max(self.count - 1),
            weights,
            nearest: class_of(&cell).squeeze_dim(1),
        }
    }

    /// The annealed mean of `logits` ([N, Q, H, W]) at `temperature`: the mean colour of
    /// the distribution sharpened to softmax(logits / T), [N, 2, H, W]. T = 1 is the
    /// plain mean; towards 0 it nears the most likely colour (bolder when that colour is
    /// vivid; with rebalancing, the plain mean can be the more colourful, docs/benchmarks.md).
    pub fn annealed_mean(&self, logits: &Tensor, temperature: f64) -> Tensor {
        let p = (logits / temperature).softmax(1, Kind::Float);
        p.permute([0, 2, 3, 1]).matmul(&self.centers).permute([0, 3, 1, 2])
    }

    /// The training data's colour distribution ([Q], summing to 1) from its class counts,
    /// smoothed by a Gaussian of [`SMOOTHING_SIGMA`] ab units.
    pub fn prior(&self, counts: &[f64]) -> Tensor {
        let centers = self.centers.to_device(Device::Cpu) * 110.0;
        let distance = centers.unsqueeze(1) - centers.unsqueeze(0);
        let kernel = (distance.square().sum_dim_intlist(2, false, Kind::Float)
            / (-2.0 * SMOOTHING_SIGMA * SMOOTHING_SIGMA))
            .exp();
        let p = Tensor::from_slice(counts).to_kind(Kind::Float);
        let p = &p / p.sum(Kind::Float).clamp_min(1.0);
        let smooth = kernel.matmul(&p);
        (&smooth / smooth.sum(Kind::Float)).to_device(self.centers.device())
    }

    /// Rebalancing weights ([Q]) from the [`prior`](AbClasses::prior): its inverse after
    /// mixing it with the uniform distribution by `mix` (1: no rebalancing), scaled so
    /// that their mean over the prior is 1.
    pub fn rebalance(&self, prior: &Tensor, mix: f64) -> Tensor {
        let weights = ((1.0 - mix) * prior + mix / self.count as f64).reciprocal();
        let scale = (&weights * prior).sum(Kind::Float);
        weights / scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl AbClasses {
        fn class_of(&self, a: f32, b: f32) -> Option<usize> {
            self.classes_by_cell()[AbClasses::cell_index(a, b)]
        }
    }

    #[test]
    fn every_srgb_colour_falls_in_a_class_and_gray_in_the_middle_one() {
        let classes = AbClasses::new(Device::Cpu);
        assert!((200..=313).contains(&classes.count()), "{} classes", classes.count());
        let by_cell = classes.classes_by_cell();
        for rgb in [[0u8, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [250, 250, 5], [7, 9, 200]]
        {
            let [_, a, b] = rgb8_to_lab(rgb);
            let cell = AbClasses::cell_index(a / 110.0, b / 110.0);
            assert!(by_cell[cell].is_some(), "{rgb:?} (a {a}, b {b}) has no class");
        }
        let gray = classes.class_of(0.0, 0.0).expect("gray has a class");
        let centers = Vec::<f32>::try_from(classes.centers.get(gray as i64)).unwrap();
        assert_eq!(centers, [0.0, 0.0]);
    }

    #[test]
    fn soft_target_weights_sum_to_one_and_their_mean_is_the_truth() {
        let classes = AbClasses::new(Device::Cpu);
        let ab = Tensor::from_slice(&[0.31f32, -0.02, 0.0, 0.1, -0.27, 0.44, 0.0, 0.0])
            .view([1, 2, 2, 2]);
        let targets = classes.soft_targets(&ab);
        let sums = targets.weights.sum_dim_intlist(1, false, Kind::Float);
        assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-5);
        // Bilinear weights of in-gamut cells give the value back as their mean.
        let dense = Tensor::zeros([1, classes.count(), 2, 2], (Kind::Float, Device::Cpu))
            .scatter_add(1, &targets.classes, &targets.weights);
        let back = classes.annealed_mean(&dense.clamp_min(1e-30).log(), 1.0);
        assert!((back - &ab).abs().max().double_value(&[]) < 1e-4);
        let nearest = targets.nearest;
        assert_eq!(nearest.size(), [1, 2, 2]);
        assert_eq!(nearest.int64_value(&[0, 1, 0]), classes.class_of(0.0, 0.0).unwrap() as i64);
    }

    #[test]
    fn a_low_temperature_nears_the_most_likely_colour() {
        let classes = AbClasses::new(Device::Cpu);
        let gray = classes.class_of(0.0, 0.0).unwrap() as i64;
        let red = classes.class_of(0.55, 0.36).unwrap() as i64;
        // Red slightly ahead of gray: the mean is a pale red, and the lower the
        // temperature, the nearer the red.
        let mut logits = vec![0f32; classes.count() as usize];
        logits[gray as usize] = 5.8;
        logits[red as usize] = 6.0;
        let logits = Tensor::from_slice(&logits).view([1, classes.count(), 1, 1]);
        let chroma = |t: f64| {
            classes.annealed_mean(&logits, t).square().sum(Kind::Float).sqrt().double_value(&[])
        };
        let (mean, bold, boldest) = (chroma(1.0), chroma(0.38), chroma(0.01));
        assert!(mean > 0.1 && mean < 0.5, "the mean is between gray and red: {mean}");
        assert!(bold > mean && boldest > bold, "{mean} < {bold} < {boldest}");
        assert!((boldest - 0.655).abs() < 0.01, "T 0.01 is red itself: {boldest}");
    }

    #[test]
    fn rare_colours_weigh_more_and_the_weights_average_one() {
        let classes = AbClasses::new(Device::Cpu);
        let mut counts = vec![1.0; classes.count() as usize];
        let gray = classes.class_of(0.0, 0.0).unwrap();
        counts[gray] = 10_000.0;
        let mix = crate::train::config::PretrainedConfig::default().rebalance;
        let weights = classes.rebalance(&classes.prior(&counts), mix);
        let w = Vec::<f32>::try_from(&weights).unwrap();
        let red = classes.class_of(0.55, 0.36).unwrap();
        assert!(w[red] > 1.5 * w[gray], "red {} gray {}", w[red], w[gray]);
        let none = Vec::<f32>::try_from(classes.rebalance(&classes.prior(&counts), 1.0)).unwrap();
        assert!(none.iter().all(|&v| (v - 1.0).abs() < 1e-4), "mix 1 is no rebalancing");
    }
}
