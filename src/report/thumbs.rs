//! Gallery thumbnails: a square center crop of each stored image, made once and cached
//! by content hash (`thumbs/ab/<blake3>.jpg`: the image's id names its thumbnail, so a
//! rerun, or another dataset holding the same image, reuses it).

use indicatif::ProgressBar;
use rayon::prelude::*;

use super::ReportError;
use super::site::Site;
use crate::photo::jpeg;
use crate::photo::resize::Preprocessor;
use crate::photo::resize::ResizeMode;
use crate::store::Blobs;

/// Side of a thumbnail in pixels (shown at 160 CSS pixels, sharp at 1.2x).
pub const SIDE: u32 = 192;
const QUALITY: i32 = 82;

/// The thumbnail of image `id`, relative to the report's folder.
pub fn rel(id: &str) -> String {
    format!("thumbs/{}/{id}.jpg", crate::store::blob_folder(id))
}

/// What [`ensure`] did.
#[derive(Debug, Default)]
pub struct Made {
    pub made: usize,
    pub cached: usize,
    /// Images without a thumbnail: id and why.
    pub failed: Vec<(String, String)>,
}

/// Why an image got no thumbnail.
enum Failure {
    /// Its blob could not be read or decoded: that image only.
    Image(String),
    /// The report's folder refused the write: the whole report stops.
    Write(ReportError),
}

/// Makes the thumbnail of each `(id, blob extension)` that has none, on every core. An
/// unreadable image is noted and skipped; a write the folder refuses ends it at once.
pub fn ensure(
    site: &Site,
    blobs: &Blobs,
    images: &[(String, String)],
    bar: &ProgressBar,
) -> Result<Made, ReportError> {
    let todo: Vec<&(String, String)> =
        images.iter().filter(|(id, _)| !site.has(&rel(id))).collect();
    bar.set_length(todo.len() as u64);
    let outcomes: Vec<Option<(String, String)>> = todo
        .par_iter()
        .map_init(Preprocessor::default, |pre, (id, ext)| {
            let outcome = make(site, blobs, pre, id, ext);
            bar.inc(1);
            match outcome {
                Ok(()) => Ok(None),
                Err(Failure::Image(why)) => Ok(Some((id.clone(), why))),
                Err(Failure::Write(e)) => Err(e),
            }
        })
        .collect::<Result<_, _>>()?;
    bar.finish_and_clear();
    let failed: Vec<(String, String)> = outcomes.into_iter().flatten().collect();
    Ok(Made { made: todo.len() - failed.len(), cached: images.len() - todo.len(), failed })
}

fn make(
    site: &Site,
    blobs: &Blobs,
    pre: &mut Preprocessor,
    id: &str,
    ext: &str,
) -> Result<(), Failure> {
    let path = blobs.path(id, ext);
    let bytes =
        std::fs::read(&path).map_err(|e| Failure::Image(format!("{}: {e}", path.display())))?;
    let rgb = pre
        .square(&bytes, SIDE, ResizeMode::CenterCrop)
        .map_err(|e| Failure::Image(e.to_string()))?;
    let side = SIDE as usize;
    let jpeg =
        jpeg::encode_rgb(rgb, side, side, QUALITY).map_err(|e| Failure::Image(e.to_string()))?;
    site.write(&rel(id), &jpeg).map(|_| ()).map_err(Failure::Write)
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

        let first = ensure(&site, &blobs, &images, &ProgressBar::hidden()).unwrap();
        assert_eq!((first.made, first.cached), (1, 0));
        assert_eq!(first.failed.len(), 1);
        assert_eq!(first.failed[0].0, bad);
        let thumb = image::open(site.path(&rel(&good))).unwrap();
        assert_eq!((thumb.width(), thumb.height()), (SIDE, SIDE));

        let second = ensure(&site, &blobs, &images, &ProgressBar::hidden()).unwrap();
        assert_eq!((second.made, second.cached, second.failed.len()), (0, 1, 1));
    }

    #[test]
    fn a_folder_that_refuses_writes_stops_the_report_not_each_image() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let photo = image::RgbImage::from_fn(300, 300, |x, y| image::Rgb([x as u8, y as u8, 9]));
        let mut png = Vec::new();
        photo.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let id = blake3::hash(&png).to_hex().to_string();
        blobs.write(&id, "png", &png).unwrap();
        let site = Site::create(&dir.path().join("report")).unwrap();
        // A file where the thumbnails' folder goes: every write there fails, even as root.
        std::fs::write(site.path("thumbs"), "in the way").unwrap();
        let err = ensure(&site, &blobs, &[(id, "png".into())], &ProgressBar::hidden()).unwrap_err();
        assert!(err.to_string().contains("thumbs"), "{err}");
    }
}
