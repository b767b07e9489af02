//! The leak check: test images that nearly duplicate a training image, of the same build
//! or of another dataset's latest build, by the distance of their perceptual hashes
//! (looked up in `photo::near`'s index, not scanned).

use crate::dataset::curation::Leak;
use crate::photo::check::PerceptualHash;
use crate::photo::near::NearIndex;

/// A training image the test split is checked against.
pub struct TrainImage<'a> {
    pub id: &'a str,
    pub dataset: &'a str,
    pub phash: &'a PerceptualHash,
}

/// For each test image, the nearest training image within `max_distance` bits, if any.
pub fn find(
    test: &[(&str, &PerceptualHash)],
    train: &[TrainImage],
    max_distance: u32,
) -> Vec<Leak> {
    let mut index = NearIndex::new(max_distance);
    for t in train {
        index.insert(*t.phash);
    }
    test.iter()
        .filter_map(|&(id, phash)| {
            index
                .within(phash)
                .into_iter()
                .map(|(k, d)| (d, &train[k]))
                .min_by_key(|(d, t)| (*d, t.dataset, t.id))
                .map(|(distance, t)| Leak {
                    test: id.to_owned(),
                    train: t.id.to_owned(),
                    dataset: t.dataset.to_owned(),
                    distance,
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_training_image_within_the_distance_is_named() {
        let a = PerceptualHash([0, 0, 0, 0]);
        let near = PerceptualHash([0b111, 0, 0, 0]);
        let nearer = PerceptualHash([0b1, 0, 0, 0]);
        let far = PerceptualHash([u64::MAX, 0, 0, 0]);
        let train = [
            TrainImage { id: "near", dataset: "d", phash: &near },
            TrainImage { id: "nearer", dataset: "e", phash: &nearer },
            TrainImage { id: "far", dataset: "d", phash: &far },
        ];
        let leaks = find(&[("t", &a), ("u", &far)], &train, 4);
        assert_eq!(leaks.len(), 2);
        assert_eq!(
            (leaks[0].train.as_str(), leaks[0].dataset.as_str(), leaks[0].distance),
            ("nearer", "e", 1)
        );
        assert_eq!((leaks[1].test.as_str(), leaks[1].train.as_str()), ("u", "far"));
        assert!(find(&[("t", &a)], &train[2..], 4).is_empty());
    }
}
