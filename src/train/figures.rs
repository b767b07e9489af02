//! What a run shows a person: the loss curves (the paper's Figure 3) as SVG, and a grid of
//! A | generated | B for a few fixed test images after every epoch.

use std::collections::BTreeMap;
use std::path::Path;

use image::RgbImage;
use plotters::prelude::*;
use tch::nn::ModuleT;
use tch::{Device, Tensor};

use super::config::ColorSpace;
use super::loader::Pairs;
use super::nets::pix2pix::Generator;
use super::trainer::{Losses, TrainError};
use crate::dataset::{Built, DatasetError, Split};

/// Images shown in each epoch's grid.
const SAMPLES: usize = 4;

/// Draws the per-epoch mean losses.
pub fn loss_curve(
    path: &Path,
    history: &BTreeMap<usize, Losses>,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let last = history.keys().max().copied().unwrap_or(1).max(2);
    type Series = (&'static str, fn(&Losses) -> f64, RGBColor);
    let series: [Series; 4] = [
        ("G_GAN", |l| l.g_gan, RED),
        ("G_L1", |l| l.g_l1, BLUE),
        ("D_real", |l| l.d_real, GREEN),
        ("D_fake", |l| l.d_fake, MAGENTA),
    ];
    let top = history
        .values()
        .flat_map(|l| series.iter().map(move |(_, f, _)| f(l)))
        .fold(1e-3, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption("pix2pix losses (epoch means)", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(1usize..last, 0.0..top * 1.05)?;
    chart.configure_mesh().x_desc("epoch").y_desc("loss").draw()?;
    for (name, value, color) in series {
        chart
            .draw_series(LineSeries::new(history.iter().map(|(e, l)| (*e, value(l))), color))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// A few fixed images, center-cropped, whose colorization is drawn each epoch.
pub struct SampleSet {
    /// The network input, [n, 1, crop, crop].
    a: Tensor,
    a_values: Vec<f32>,
    gray: Vec<Vec<u8>>,
    truth: Vec<Vec<u8>>,
    crop: usize,
    color: ColorSpace,
}

impl SampleSet {
    /// The first images of the test split (of the training split when there is no test).
    pub fn open(built: &Built, crop: usize, color: ColorSpace) -> Result<SampleSet, DatasetError> {
        let mut pairs = Pairs::open(built, Split::Test)?;
        if pairs.is_empty() {
            pairs = Pairs::open(built, Split::Train)?;
        }
        let n = pairs.len().min(SAMPLES);
        let offset = (pairs.size() - crop) / 2;
        let plane = crop * crop;
        let mut a_values = vec![0f32; n * plane];
        let mut scratch = vec![0f32; color.channels() * plane];
        let (mut gray, mut truth) = (Vec::new(), Vec::new());
        for i in 0..n {
            let a_i = &mut a_values[i * plane..(i + 1) * plane];
            pairs.write(i, crop, (offset, offset), false, color, a_i, &mut scratch);
            let (g, b) = pairs.center_crop(i, crop, offset);
            gray.push(g);
            truth.push(b);
        }
        let c = crop as i64;
        let a = Tensor::from_slice(&a_values).view([n as i64, 1, c, c]);
        Ok(SampleSet { a, a_values, gray, truth, crop, color })
    }

    /// Writes rows of A | G(A) | B.
    pub fn write_grid(&self, g: &Generator, device: Device, path: &Path) -> Result<(), TrainError> {
        let n = self.truth.len();
        if n == 0 {
            return Ok(());
        }
        let fake = tch::no_grad(|| g.forward_t(&self.a.to_device(device), true));
        let fake =
            Vec::<f32>::try_from(fake.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default();
        let c = self.crop;
        let plane = c * c;
        let channels = self.color.channels();
        let mut grid = RgbImage::new(3 * c as u32, (n * c) as u32);
        for row in 0..n {
            let out = &fake[row * channels * plane..(row + 1) * channels * plane];
            for p in 0..plane {
                let (x, y) = ((p % c) as u32, (row * c + p / c) as u32);
                let gray = self.gray[row][p];
                let colored = self.color.decode(self.a_values[row * plane + p], out, p, plane);
                let t = &self.truth[row];
                grid.put_pixel(x, y, image::Rgb([gray; 3]));
                grid.put_pixel(x + c as u32, y, image::Rgb(colored));
                grid.put_pixel(
                    x + 2 * c as u32,
                    y,
                    image::Rgb([t[p], t[plane + p], t[2 * plane + p]]),
                );
            }
        }
        let dir = path.parent().expect("grid paths have a folder");
        std::fs::create_dir_all(dir)
            .map_err(|source| TrainError::Io { path: dir.to_owned(), source })?;
        grid.save(path).map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))
    }
}
