//! What a run shows a person: the loss curves (the paper's Figure 3) and the validation
//! scores as SVG, and a grid of gray | colorized | original for a few fixed test images
//! after every epoch.

use std::collections::BTreeMap;
use std::path::Path;

use image::RgbImage;
use plotters::coord::Shift;
use plotters::prelude::*;
use tch::{Device, Tensor};

use super::error::TrainError;
use super::loader::CenterCrops;
use super::metrics_log::EpochRecord;

type Series = (&'static str, fn(&EpochRecord) -> Option<f64>, RGBColor);
type Panel<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Draws the per-epoch mean losses, and below them the validation scores when there are,
/// with `best`'s colourfulness floor (`train.best_colorfulness`) as a dashed line.
pub fn loss_curve(
    path: &Path,
    history: &BTreeMap<usize, EpochRecord>,
    colorfulness: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let has_val = history.values().any(|r| r.val.is_some());
    let root = SVGBackend::new(path, (800, if has_val { 960 } else { 480 })).into_drawing_area();
    root.fill(&WHITE)?;
    let losses: [Series; 5] = [
        ("G_GAN", |r| r.losses.g_gan, RED),
        ("G_L1", |r| Some(r.losses.g_l1), BLUE),
        ("G_CE", |r| r.losses.g_ce, CYAN),
        ("D_real", |r| r.losses.d_real, GREEN),
        ("D_fake", |r| r.losses.d_fake, MAGENTA),
    ];
    let (top, bottom) = root.split_vertically(480);
    panel(&top, "losses (epoch means)", history, &losses, None)?;
    if !has_val {
        root.present()?;
        return Ok(());
    }
    let (left, right) = bottom.split_horizontally(400);
    let distances: [Series; 2] = [
        ("val CIEDE2000", |r| r.val.map(|v| v.ciede2000), RED),
        ("val PSNR (dB)", |r| r.val.map(|v| v.psnr), BLUE),
    ];
    panel(&left, "validation", history, &distances, None)?;
    let colour: [Series; 1] =
        [("val colourfulness / truth", |r| r.val.map(|v| v.colorfulness_ratio), GREEN)];
    panel(&right, "validation colour", history, &colour, Some(colorfulness))?;
    root.present()?;
    Ok(())
}

/// One chart of `series` over the epochs, with an optional dashed guard line.
fn panel(
    area: &Panel,
    caption: &str,
    history: &BTreeMap<usize, EpochRecord>,
    series: &[Series],
    guard: Option<f64>,
) -> Result<(), Box<dyn std::error::Error>> {
    let first = history.keys().min().copied().unwrap_or(1);
    let last = history.keys().max().copied().unwrap_or(1).max(first + 1);
    let values = || history.values().flat_map(|r| series.iter().filter_map(move |(_, f, _)| f(r)));
    let top = values().chain(guard).filter(|v| v.is_finite()).fold(1e-3, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(first..last, 0.0..top * 1.05)?;
    chart.configure_mesh().x_desc("epoch").draw()?;
    for &(name, value, color) in series {
        let points =
            history.iter().filter_map(|(e, r)| value(r).filter(|v| v.is_finite()).map(|v| (*e, v)));
        chart
            .draw_series(LineSeries::new(points, color))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    if let Some(level) = guard {
        chart.draw_series(DashedLineSeries::new(
            [(first, level), (last, level)],
            5,
            5,
            BLACK.into(),
        ))?;
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

/// Writes rows of gray | colorized | original for `crops`.
pub fn sample_grid(
    path: &Path,
    crops: &CenterCrops,
    colorize: &dyn Fn(&Tensor) -> Tensor,
    device: Device,
) -> Result<(), TrainError> {
    if crops.is_empty() {
        return Ok(());
    }
    let c = crops.crop as u32;
    let mut grid = RgbImage::new(3 * c, crops.len() as u32 * c);
    for (row, b) in crops.colorize(colorize, device, crops.len()).iter().enumerate() {
        let panels = [
            crops.gray[row].iter().flat_map(|v| [*v; 3]).collect(),
            crops.decode(row, b),
            crops.truth_rgb(row),
        ];
        for (k, rgb) in panels.iter().enumerate() {
            for (p, px) in rgb.chunks_exact(3).enumerate() {
                let (x, y) = (k as u32 * c + p as u32 % c, row as u32 * c + p as u32 / c);
                grid.put_pixel(x, y, image::Rgb([px[0], px[1], px[2]]));
            }
        }
    }
    let dir = path.parent().expect("grid paths have a folder");
    std::fs::create_dir_all(dir).map_err(|source| {
        TrainError::Io(crate::durable::PathError { path: dir.to_owned(), source })
    })?;
    grid.save(path).map_err(|e| TrainError::Invalid(format!("{}: {e}", path.display())))
}
