//! The image checks and the metrics on real photos from ../shared/data (unit tests in
//! src/ use no files, so a fresh checkout's `cargo test --lib` needs nothing beside it).

use pipeline::photo::check::{Rejection, Validator};
use pipeline::photo::color::luma;
use pipeline::photo::config::ImagesConfig;
use pipeline::photo::quality::Metrics;

use crate::support::photos;

fn first_polar_jpeg() -> std::path::PathBuf {
    photos("polar_bear").into_iter().find(|p| p.extension().is_some_and(|e| e == "jpg")).unwrap()
}

#[test]
fn verdicts_do_not_depend_on_what_came_before() {
    let good = std::fs::read(first_polar_jpeg()).unwrap();
    let truncated = good[..good.len() * 6 / 10].to_vec();
    let mut garbage = vec![0xFF, 0xD8, 0xFF, 0xE0];
    garbage.extend((0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    let validator = Validator::new(ImagesConfig::default());
    for _ in 0..10 {
        assert!(validator.check(&garbage).is_err());
        assert!(matches!(validator.check(&truncated), Err(Rejection::Truncated(_))));
        assert!(validator.check(&good).is_ok());
    }
}

/// The "do-nothing" baseline of docs/pix2pix.md §4.2 on a real photo: its grey version
/// loses all colour and keeps most, not all, of the structure SSIM sees on RGB.
#[test]
fn greyscale_baseline_on_a_real_photo() {
    let path = first_polar_jpeg();
    let photo = image::open(&path).expect("decodable photo").to_rgb8();
    let (w, h) = (photo.width() as usize, photo.height() as usize);
    let truth = photo.into_raw();
    let grey: Vec<u8> = truth.chunks_exact(3).flat_map(|p| [luma(p[0], p[1], p[2]); 3]).collect();
    let m = Metrics::compute(&grey, &truth, w, h).unwrap();
    assert_eq!(m.colorfulness, 0.0);
    assert!(m.colorfulness < m.colorfulness_truth, "{m:?}");
    assert!(m.ssim > 0.5 && m.ssim < 1.0, "{m:?}");
    assert!(m.ssim_luma > m.ssim && m.psnr.is_finite() && m.ciede2000 > 0.0, "{m:?}");
}
