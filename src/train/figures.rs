//! What a run shows a person: the loss curves (the paper's Figure 3) as SVG, and a grid of
//! A | generated | B for a few fixed test images after every epoch.

use std::collections::BTreeMap;
use std::path::Path;

use image::RgbImage;
use plotters::prelude::*;
use tch::nn::ModuleT;
use tch::{Device, Tensor};

use super::loader::Pairs;
use super::model::Generator;
use super::trainer::{Losses, TrainError, to_unit};
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
    a: Tensor,
    b: Vec<Vec<u8>>,
    crop: usize,
}

impl SampleSet {
    /// The first images of the test split (of the training split when there is no test).
    pub fn open(built: &Built, crop: usize) -> Result<SampleSet, DatasetError> {
        let mut pairs = Pairs::open(built, Split::Test)?;
        if pairs.is_empty() {
            pairs = Pairs::open(built, Split::Train)?;
        }
        let n = pairs.len().min(SAMPLES);
        let offset = (pairs.size() - crop) / 2;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..n {
            let (a_i, b_i) = pairs.center_crop(i, crop, offset);
            a.extend(a_i);
            b.push(b_i);
        }
        let c = crop as i64;
        Ok(SampleSet { a: to_unit(&a, &[n as i64, 1, c, c]), b, crop })
    }

    /// Writes rows of A | G(A) | B.
    pub fn write_grid(&self, g: &Generator, device: Device, path: &Path) -> Result<(), TrainError> {
        let n = self.b.len();
        if n == 0 {
            return Ok(());
        }
        let fake =
            tch::no_grad(|| g.forward_t(&self.a.to_device(device), true)).to_device(Device::Cpu);
        let c = self.crop;
        let mut grid = RgbImage::new(3 * c as u32, (n * c) as u32);
        let to_u8 = |t: &Tensor| -> Vec<u8> {
            let t = ((t + 1.0) * 127.5)
                .clamp(0.0, 255.0)
                .round()
                .to_kind(tch::Kind::Uint8)
                .contiguous();
            Vec::<u8>::try_from(t.flatten(0, -1)).unwrap_or_default()
        };
        let a = to_u8(&self.a);
        let fake = to_u8(&fake);
        let plane = c * c;
        for row in 0..n {
            for y in 0..c {
                for x in 0..c {
                    let p = y * c + x;
                    let gray = a[row * plane + p];
                    let rgb = |planes: &[u8]| {
                        image::Rgb([planes[p], planes[plane + p], planes[2 * plane + p]])
                    };
                    let (gx, gy) = (x as u32, (row * c + y) as u32);
                    grid.put_pixel(gx, gy, image::Rgb([gray; 3]));
                    grid.put_pixel(gx + c as u32, gy, rgb(&fake[row * 3 * plane..]));
                    grid.put_pixel(gx + 2 * c as u32, gy, rgb(&self.b[row]));
                }
            }
        }
        let dir = path.parent().expect("grid paths have a folder");
        std::fs::create_dir_all(dir)
            .map_err(|source| TrainError::Io { path: dir.to_owned(), source })?;
        grid.save(path).map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))
    }
}
