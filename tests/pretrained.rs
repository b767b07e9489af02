//! The pretrained recipe on real libtorch (CPU) and real photos: the ImageNet weights, the
//! generator, its training steps and runs.

use std::path::{Path, PathBuf};

use pipeline::build::preprocess::{Preprocessor, ResizeMode};
use pipeline::train::nets::efficientnet::{
    self, EfficientNetLite0, Input, RESOLUTION, WEIGHTS_FILE,
};
use tch::nn;
use tch::{Device, Kind, Tensor};

use crate::support::photos;

fn weights() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(WEIGHTS_FILE)
}

/// Share of `set`'s photos whose top 5 holds ImageNet class `class`, center-cropped to
/// 224 px.
fn top5_share(net: &EfficientNetLite0, set: &str, class: i64) -> f64 {
    let side = RESOLUTION as usize;
    let mut pre = Preprocessor::default();
    let (mut a, mut b) = (vec![0u8; side * side], vec![0u8; 3 * side * side]);
    let (mut hits, mut total) = (0, 0);
    for photo in photos(set) {
        let bytes = std::fs::read(&photo).unwrap();
        pre.pair(&bytes, side as u32, ResizeMode::CenterCrop, &mut a, &mut b)
            .unwrap_or_else(|e| panic!("{}: {e}", photo.display()));
        let pixels = Tensor::from_slice(&b).view([1, 3, RESOLUTION, RESOLUTION]).to_kind(Kind::Float);
        let logits = tch::no_grad(|| net.classify(&efficientnet::normalise(&pixels)));
        let (_, top) = logits.topk(5, 1, true, true);
        let top: Vec<i64> = Vec::try_from(top.flatten(0, -1)).unwrap();
        hits += usize::from(top.contains(&class));
        total += 1;
    }
    eprintln!("{set}: class {class} in the top 5 for {hits} of {total}");
    hits as f64 / total as f64
}

#[test]
fn the_imagenet_classifier_knows_brown_bears_from_ice_bears() {
    let vs = nn::VarStore::new(Device::Cpu);
    let net = EfficientNetLite0::new(&(vs.root() / "lite0"), Input::Rgb, true);
    efficientnet::load_imagenet(&net, &vs, "lite0", &weights()).unwrap();
    // ImageNet 294 = brown bear, 296 = ice bear (lukemelas' labels_map.txt).
    assert!(top5_share(&net, "brown_bear", 294) >= 0.8);
    assert!(top5_share(&net, "polar_bear", 296) >= 0.6);
}
