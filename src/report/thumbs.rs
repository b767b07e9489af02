//! Gallery thumbnails: a square center crop of each stored image, made once and cached
//! by content hash (`thumbs/ab/<blake3>.jpg`: the image's id names its thumbnail, so a
//! rerun, or another dataset holding the same image, reuses it).

use indicatif::ProgressBar;
use rayon::prelude::*;

use super::site::Site;
use crate::build::preprocess::Preprocessor;
use crate::dataset::ResizeMode;
use crate::photo::jpeg;
use crate::store::Blobs;

/// Side of a thumbnail in pixels (shown at 160 CSS pixels, sharp at 1.2x).
pub const SIDE: u32 = 192;
const QUALITY: i32 = 82;

/// The thumbnail of image `id`, relative to the report's folder.
pub fn rel(id: &str) -> String {
    format!("thumbs/{}/{id}.jpg", &id[..2])
}

/// What [`ensure`] did.
#[derive(Debug, Default)]
pub struct Made {
    pub made: usize,
    pub cached: usize,
    /// Images without a thumbnail: id and why.
    pub failed: Vec<(String, String)>,
}

/// Makes the thumbnail of each `(id, blob extension)` that has none, on every core.
pub fn ensure(site: &Site, blobs: &Blobs, images: &[(String, String)], bar: &ProgressBar) -> Made {
    let todo: Vec<&(String, String)> =
        images.iter().filter(|(id, _)| !site.has(&rel(id))).collect();
    bar.set_length(todo.len() as u64);
    let failed: Vec<(String, String)> = todo
        .par_iter()
        .map_init(Preprocessor::default, |pre, (id, ext)| {
            let outcome = make(site, blobs, pre, id, ext);
            bar.inc(1);
            outcome.err().map(|why| (id.clone(), why))
        })
        .flatten()
        .collect();
    bar.finish_and_clear();
    Made { made: todo.len() - failed.len(), cached: images.len() - todo.len(), failed }
}

fn make(
    site: &Site,
    blobs: &Blobs,
    pre: &mut Preprocessor,
    id: &str,
    ext: &str,
) -> Result<(), String> {
    let path = blobs.path(id, ext);
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let rgb = pre.square(&bytes, SIDE, ResizeMode::CenterCrop).map_err(|e| e.to_string())?;
    let side = SIDE as usize;
    let jpeg = jpeg::encode_rgb(rgb, side, side, QUALITY).map_err(|e| e.to_string())?;
    site.write(&rel(id), &jpeg).map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnails_are_made_once_and_a_damaged_blob_is_named_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let photo = image::RgbImage::from_fn(400, 300, |x, y| image::Rgb([x as u8, y as u8, 90]));
        let mut png = Vec::new();
        photo.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let good = blake3::hash(&png).to_hex().to_string();
        blobs.write(&good, "png", &png).unwrap();
        let bad = blake3::hash(b"not an image").to_hex().to_string();
        blobs.write(&bad, "jpg", b"not an image").unwrap();
        let site = Site::create(&dir.path().join("report")).unwrap();
        let images = vec![(good.clone(), "png".to_owned()), (bad.clone(), "jpg".to_owned())];

        let first = ensure(&site, &blobs, &images, &ProgressBar::hidden());
        assert_eq!((first.made, first.cached), (1, 0));
        assert_eq!(first.failed.len(), 1);
        assert_eq!(first.failed[0].0, bad);
        let thumb = image::open(site.path(&rel(&good))).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (SIDE, SIDE));

        let second = ensure(&site, &blobs, &images, &ProgressBar::hidden());
        assert_eq!((second.made, second.cached, second.failed.len()), (0, 1, 1));
    }
}
