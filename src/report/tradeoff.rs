//! A class-head run's trade-off between error and colour: its test split scored by
//! `eval`'s code at each of [`VIVIDNESS_CHOICES`], drawn as CIEDE2000 against the colourfulness
//! ratio, one point per temperature, with gray (the do-nothing baseline) and the truth
//! marked. Made once per checkpoint and build, like the scores (`tradeoff.json` beside
//! `tradeoff.svg`), and read back after.

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use super::ReportError;
use super::scores::Checkpoint;
use super::site::Site;
use crate::dataset::{Built, Split};
use crate::eval::{self, Evaluation, colorizer::Colorizer};
use crate::train::error::TrainError;
use crate::train::nets::ab_classes::VIVIDNESS_CHOICES;

/// One point of the curve.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Point {
    pub vividness: f64,
    pub ciede2000: f64,
    pub colorfulness_ratio: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tradeoff {
    pub points: Vec<Point>,
    /// The do-nothing baseline's error (its colourfulness is 0).
    pub gray_ciede2000: f64,
}

/// The trade-off picture of `colorizer` (a class-head run at its best checkpoint) on the
/// test split of `built`: its path in the report.
pub fn ensure(
    site: &Site,
    colorizer: &mut Colorizer,
    checkpoint: &Checkpoint,
    built: &Built,
) -> Result<String, ReportError> {
    let m = &built.manifest;
    let Checkpoint { epoch, weights } = checkpoint;
    let folder =
        format!("runs/{}/{}-{}-test-e{epoch}-{weights}", colorizer.run, m.dataset, m.version);
    let (json, svg) = (format!("{folder}/tradeoff.json"), format!("{folder}/tradeoff.svg"));
    if site.has(&svg)
        && std::fs::read(site.path(&json))
            .ok()
            .and_then(|b| serde_json::from_slice::<Tradeoff>(&b).ok())
            .is_some()
    {
        return Ok(svg);
    }
    let own = colorizer.vividness();
    let mut points = Vec::new();
    let mut gray_ciede2000 = f64::NAN;
    for t in VIVIDNESS_CHOICES {
        colorizer.set_vividness(t)?;
        let e: Evaluation =
            eval::evaluate::<TrainError>(colorizer, built, &[Split::Test], None, &mut |_| Ok(()))?;
        gray_ciede2000 = e.baseline.ciede2000;
        let ratio = e.model.colorfulness / e.model.colorfulness_truth.max(1e-9);
        points.push(Point {
            vividness: t,
            ciede2000: e.model.ciede2000,
            colorfulness_ratio: ratio,
        });
    }
    if let Some(t) = own {
        colorizer.set_vividness(t)?;
    }
    let tradeoff = Tradeoff { points, gray_ciede2000 };
    let mut drawn = String::new();
    draw(&tradeoff, &m.dataset, &mut drawn)
        .map_err(|e| ReportError::Picture(format!("{svg}: {e}")))?;
    site.write(&svg, drawn.as_bytes())?;
    site.write(&json, &serde_json::to_vec_pretty(&tradeoff).expect("a trade-off serializes"))?;
    Ok(svg)
}

/// CIEDE2000 (down is right) against colourfulness / truth (1 is the photo's own).
fn draw(
    tradeoff: &Tradeoff,
    dataset: &str,
    out: &mut String,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::with_string(out, (560, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let worst = tradeoff.points.iter().map(|p| p.ciede2000).fold(tradeoff.gray_ciede2000, f64::max);
    let widest = tradeoff.points.iter().map(|p| p.colorfulness_ratio).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{dataset} test: error against colour, per temperature"),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..widest * 1.1, 0.0..worst * 1.15)?;
    chart
        .configure_mesh()
        .x_desc("colourfulness / truth's")
        .y_desc("CIEDE2000 (lower is right)")
        .draw()?;
    let line: Vec<(f64, f64)> =
        tradeoff.points.iter().map(|p| (p.colorfulness_ratio, p.ciede2000)).collect();
    chart.draw_series(LineSeries::new(line.clone(), BLUE))?;
    let label = |text: String, at: (f64, f64), color: RGBColor| {
        EmptyElement::at(at)
            + Circle::new((0, 0), 4, color.filled())
            + Text::new(text, (6, -14), ("sans-serif", 13))
    };
    chart.draw_series(
        tradeoff
            .points
            .iter()
            .zip(&line)
            .map(|(p, &at)| label(format!("T {}", p.vividness), at, BLUE)),
    )?;
    chart.draw_series([
        label("gray".into(), (0.0, tradeoff.gray_ciede2000), BLACK),
        label("truth".into(), (1.0, 0.0), GREEN),
    ])?;
    root.present()?;
    Ok(())
}
