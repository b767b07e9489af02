//! The pretrained recipe on real libtorch (CPU) and real photos: the ImageNet weights, the
//! generator, its training steps and runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pipeline::photo::resize::Preprocessor;
use pipeline::photo::resize::ResizeMode;
use pipeline::train::nets::efficientnet::{
    self, EfficientNetLite0, Input, RESOLUTION, WEIGHTS_FILE,
};
use tch::nn;
use tch::{Device, Kind, Tensor};

use pipeline::dataset::{Built, Split};
use pipeline::train::config::{ColorSpace, Recipe, TrainConfig};
use pipeline::train::loader::{CenterCrops, Pairs};
use pipeline::train::nets::ab_classes::VIVIDNESS_CHOICES;
use pipeline::train::schedule::{Phase, Schedule};
use pipeline::train::{recipes, validation};

use crate::support::{self, Workspace, photos};

fn weights() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(WEIGHTS_FILE)
}

/// Tiny runs of the pretrained recipe: 64 px crops of 72 px builds, two L1 epochs (the
/// first with the encoder frozen), two GAN epochs.
const TINY: &str = "[build]\nsize = 72\ntest_fraction = 0.2\n\n[train]\nrecipe = \"pretrained\"\ncheckpoint_every = 2\nkeep_last = 2\nval_fraction = 0.3\n";

fn tiny() -> String {
    format!(
        "{TINY}\n[train.pretrained]\ncrop = 64\nbatch_size = 4\npretrain_epochs = 2\nepochs = 2\nfreeze_epochs = 1\nndf = 8\nweights = {:?}\n",
        weights()
    )
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
        let pixels =
            Tensor::from_slice(&b).view([1, 3, RESOLUTION, RESOLUTION]).to_kind(Kind::Float);
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

#[test]
fn a_gray_stem_sees_a_gray_photo_as_the_rgb_stem_does() {
    let rgb_vs = nn::VarStore::new(Device::Cpu);
    let rgb = EfficientNetLite0::new(&(rgb_vs.root() / "n"), Input::Rgb, true);
    efficientnet::load_imagenet(&rgb, &rgb_vs, "n", &weights()).unwrap();
    let gray_vs = nn::VarStore::new(Device::Cpu);
    let gray = EfficientNetLite0::new(&(gray_vs.root() / "n"), Input::Gray, true);
    efficientnet::load_imagenet(&gray, &gray_vs, "n", &weights()).unwrap();
    let photo = image::open(&photos("polar_bear")[0]).unwrap().resize_exact(
        224,
        224,
        image::imageops::FilterType::Triangle,
    );
    let luma: Vec<u8> = photo.to_luma8().into_raw();
    let plane = Tensor::from_slice(&luma).view([1, 1, 224, 224]).to_kind(Kind::Float);
    let from_rgb =
        tch::no_grad(|| rgb.classify(&efficientnet::normalise(&plane.repeat([1, 3, 1, 1]))));
    let from_gray = tch::no_grad(|| gray.classify(&efficientnet::normalise(&plane)));
    assert!(from_rgb.allclose(&from_gray, 1e-3, 1e-3, false), "the summed stem is exact");
}

#[test]
fn missing_or_damaged_weights_name_the_file_and_the_command_that_fetches_them() {
    let ws = support::built_bears("[build]\nsize = 72\n\n[train.pretrained]\ncrop = 64\n", 4);
    let run = ws
        .run(&["train", "bears", "--recipe", "pretrained", "--run", "r", "--device", "cpu"])
        .expect_code(1);
    assert!(!ws.store().join("runs/r").exists(), "no run is left behind");
    let missing = ".weights/efficientnet-lite0.safetensors";
    assert!(
        run.stderr.contains(missing) && run.stderr.contains("scripts/weights"),
        "{}",
        run.stderr
    );

    let mut damaged = std::fs::read(weights()).unwrap();
    damaged[1000] ^= 0xFF;
    std::fs::write(ws.path("lite0.safetensors"), damaged).unwrap();
    let config =
        format!("{TINY}\n[train.pretrained]\nweights = \"lite0.safetensors\"\ncrop = 64\n");
    std::fs::write(ws.path("pipeline.toml"), config).unwrap();
    let run = ws.run(&["train", "bears", "--run", "r2", "--device", "cpu"]).expect_code(1);
    assert!(
        run.stderr.contains("lite0.safetensors: blake3") && run.stderr.contains("scripts/weights"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_few_l1_steps_on_a_fixed_batch_lower_the_loss() {
    let ws = support::built_bears(&tiny(), 12);
    let (pairs, batch) = support::first_batch(&ws, ColorSpace::Lab, true);
    assert_eq!(batch.b.size(), [4, 2, 64, 64], "ab");
    let mut train = TrainConfig { recipe: Recipe::Pretrained, ..TrainConfig::default() };
    train.pretrained.weights = weights();
    let mut recipe = recipes::start(&train, Device::Cpu, None, &pairs).unwrap();
    let plan = Schedule::new(&train).plan(1, Duration::ZERO);
    assert_eq!((plan.phase, plan.lr_encoder), (Phase::L1, None), "L1 alone, encoder frozen");
    recipe.begin_epoch(&plan);
    let first = recipe.step(&batch.a, &batch.b).unwrap();
    assert_eq!((first.g_gan, first.d_real), (None, None), "no discriminator yet");
    let mut last = first;
    for _ in 0..30 {
        last = recipe.step(&batch.a, &batch.b).unwrap();
    }
    assert!(last.g_l1 < 0.7 * first.g_l1, "G_L1 {} -> {}", first.g_l1, last.g_l1);
}

/// The G_L1 of every step of `epoch`, and the epoch's validation line.
fn epoch_of(ws: &Workspace, run: &str, epoch: u64) -> (Vec<f64>, serde_json::Value) {
    let text =
        std::fs::read_to_string(ws.store().join("runs").join(run).join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["epoch"] == epoch)
        .collect();
    let losses = lines.iter().filter_map(|v| v["G_L1"].as_f64()).collect();
    let val = lines.iter().find(|v| v.get("val").is_some()).cloned().unwrap_or_default();
    (losses, val)
}

#[test]
fn a_killed_pretrained_run_resumes_with_whole_epochs_equal() {
    let ws = support::built_bears(&tiny(), 24);
    ws.run(&["train", "bears", "--run", "straight", "--device", "cpu"]).expect_code(0);

    let run = ws.store().join("runs/killed");
    let train = ["train", "bears", "--run", "killed", "--device", "cpu"];
    support::kill_once_exists(&ws, &train, &run.join("checkpoints/epoch-00002"));
    assert!(!run.join("checkpoints/epoch-00004").exists(), "killed before the end");
    ws.run(&["train", "--resume", "killed", "--device", "cpu"]).expect_code(0);
    for epoch in 1..=4 {
        let (a, b) = (epoch_of(&ws, "straight", epoch), epoch_of(&ws, "killed", epoch));
        assert!(!a.0.is_empty() && a.1["val"]["images"].as_u64() > Some(0), "{a:?}");
        assert_eq!(b, a, "epoch {epoch} differs after the resume");
    }
    let phases: Vec<String> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["phase"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(phases.first().is_some_and(|p| p == "L1") && phases.last().is_some_and(|p| p == "GAN"));

    // Both runs computed the same thing: eval scores them alike, side by side.
    let eval = ws
        .run(&[
            "eval",
            "--run",
            "straight",
            "--run",
            "killed",
            "--checkpoint",
            "last",
            "--dataset",
            "bears",
            "--json",
            "--device",
            "cpu",
        ])
        .expect_code(0);
    let lines: Vec<serde_json::Value> =
        eval.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "one line per run");
    assert_eq!(lines[0]["checkpoint"], 4);
    assert_eq!(lines[0]["model"], lines[1]["model"]);
    assert_eq!(lines[0]["protocol"]["baseline"], "the image's own L with a = b = 0");
    let table = ws
        .run(&[
            "eval",
            "--run",
            "straight",
            "--run",
            "killed",
            "--dataset",
            "bears",
            "--device",
            "cpu",
        ])
        .expect_code(0);
    assert!(
        table.stdout.contains("straight (ep") && table.stdout.contains("killed (ep"),
        "{}",
        table.stdout
    );

    // The polar bear through both runs: gray | straight | killed | original.
    let photo = &photos("polar_bear")[0];
    ws.run(&[
        "colorize",
        "--run",
        "straight",
        "--run",
        "killed",
        photo.to_str().unwrap(),
        "--out",
        "out",
        "--device",
        "cpu",
    ])
    .expect_code(0);
    let original = image::open(photo).unwrap();
    let sheet =
        image::open(ws.path(&format!("out/{}.png", photo.file_stem().unwrap().to_str().unwrap())))
            .unwrap();
    assert_eq!((sheet.width(), sheet.height()), (4 * original.width(), original.height()));
    let missing = ws
        .run(&[
            "eval",
            "--run",
            "straight",
            "--checkpoint",
            "epoch-99",
            "--dataset",
            "bears",
            "--device",
            "cpu",
        ])
        .expect_code(1);
    assert!(
        missing.stderr.contains("has no checkpoint of epoch 99 (kept: epoch-"),
        "{}",
        missing.stderr
    );
}

#[test]
fn validation_never_prefers_a_gray_model_to_a_colourful_one() {
    let ws = support::built_bears(&tiny(), 12);
    let built = Built::latest(&ws.store(), "bears").unwrap();
    let pairs = Pairs::open(&built, Split::Train).unwrap();
    let crops = CenterCrops::new(&pairs, 0..8, 64, ColorSpace::Lab);
    // The true ab of each crop, and a colorizer that paints each with another's.
    let mut truth = Vec::new();
    for n in 0..8 {
        let (mut a, mut b) = (vec![0f32; 64 * 64], vec![0f32; 2 * 64 * 64]);
        pairs.write(n, 64, (4, 4), false, ColorSpace::Lab, &mut a, &mut b);
        truth.push(Tensor::from_slice(&b).view([1, 2, 64, 64]));
    }
    let truth = Tensor::cat(&truth, 0);
    let gray_ab = truth.zeros_like();
    let score = |candidates: &[(Option<f64>, &Tensor)]| {
        let colorize =
            |_: &Tensor| candidates.iter().map(|(t, b)| (*t, b.shallow_clone())).collect();
        validation::score(&crops, &colorize, Device::Cpu, 0.8)
    };
    let gray = score(&[(None, &gray_ab)]);
    let wrong = score(&[(None, &truth.roll([1], [0]))]);
    let right = score(&[(None, &truth)]);
    assert_eq!(right.vividness, None);
    assert!(right.ciede2000 < 0.5 && (right.colorfulness_ratio - 1.0).abs() < 0.05, "{right:?}");
    assert!(
        gray.ciede2000 < wrong.ciede2000,
        "gray is closer than wrong colours: {gray:?} {wrong:?}"
    );
    assert!(gray.colorfulness_ratio < 0.05 && wrong.colorfulness_ratio > 0.5);
    let best = |candidates: &[(&'static str, Option<validation::ValScore>)], floor: f64| {
        validation::best(candidates.iter().copied(), floor)
    };
    assert_eq!(best(&[("gray", Some(gray)), ("wrong", Some(wrong))], 0.8), Some("wrong"));
    assert_eq!(best(&[("gray", Some(gray)), ("none", None)], 0.8), None);
    // A pale model nearly as right loses to a vivid one while a vivid one reaches the
    // floor; below it, the lowest error among those at half the truth's colour wins.
    let pale = validation::ValScore { colorfulness_ratio: 0.6, ciede2000: 5.0, ..right };
    let vivid = validation::ValScore { colorfulness_ratio: 0.9, ciede2000: 5.5, ..right };
    assert_eq!(best(&[("pale", Some(pale)), ("vivid", Some(vivid))], 0.8), Some("vivid"));
    assert_eq!(best(&[("pale", Some(pale)), ("vivid", Some(vivid))], 0.5), Some("pale"));
    let paler = validation::ValScore { colorfulness_ratio: 0.7, ciede2000: 6.0, ..right };
    assert_eq!(best(&[("pale", Some(pale)), ("paler", Some(paler))], 0.8), Some("pale"));

    // A class head's temperatures, one forward pass: validation keeps the one the same
    // rule picks, and says which; with none at half the truth's colour, the most colourful.
    let at = |t: f64, b| (Some(t), b);
    let (wrong_ab, faint) = (truth.roll([1], [0]), &truth * 0.2);
    let chosen = score(&[at(1.0, &gray_ab), at(0.6, &wrong_ab), at(0.38, &truth)]);
    assert_eq!((chosen.vividness, chosen.ciede2000), (Some(0.38), right.ciede2000));
    let chosen = score(&[at(1.0, &gray_ab), at(0.6, &wrong_ab)]);
    assert_eq!((chosen.vividness, chosen.ciede2000), (Some(0.6), wrong.ciede2000));
    let chosen = score(&[at(1.0, &faint), at(0.6, &gray_ab)]);
    assert!(chosen.colorfulness_ratio < 0.5, "{chosen:?}");
    assert_eq!(chosen.vividness, Some(1.0), "{chosen:?}");
}

#[test]
fn a_budget_ends_the_run_at_the_first_epoch_boundary_past_it() {
    let ws = support::built_bears(&tiny(), 12);
    let done = ws
        .run(&["train", "bears", "--run", "short", "--minutes", "0.001", "--device", "cpu"])
        .expect_code(0);
    assert!(done.stdout.contains("run short:"), "{}", done.stdout);
    let dir = ws.store().join("runs/short");
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("checkpoints/epoch-00001/state.json")).unwrap(),
    )
    .unwrap();
    assert!(state["elapsed_s"].as_f64().unwrap() >= 0.06, "{state}");
    assert!(!dir.join("checkpoints/epoch-00002").exists(), "one epoch was past the budget");
    assert!(dir.join("samples/epoch-00001.png").exists() && dir.join("loss.svg").exists());
    let svg = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert!(svg.contains("val CIEDE2000") && svg.contains("G_L1"), "losses and validation drawn");
}

/// Issue 26: the class head (`head = "classes"`). A few steps on one batch lower its
/// cross-entropy; a run keeps its rebalancing weights in the checkpoint (rare colours
/// weigh more than common ones); `eval --vividness` scores it at each temperature, other
/// colours at each, with the ImageNet classifier's agreement beside gray's;
/// `--vividness` for runs with no class head is a usage error.
#[test]
fn a_class_head_learns_keeps_its_weights_and_decodes_at_each_temperature() {
    let classes = Path::new(env!("CARGO_MANIFEST_DIR")).join(".weights/imagenet-classes.tsv");
    let config = format!(
        "{}head = \"classes\"\n\n[curate]\nweights = {:?}\nclasses = {classes:?}\n",
        tiny(),
        weights()
    );
    let ws = support::built_bears(&config, 16);
    let (pairs, batch) = support::first_batch(&ws, ColorSpace::Lab, false);
    let mut train = TrainConfig { recipe: Recipe::Pretrained, ..TrainConfig::default() };
    train.pretrained.weights = weights();
    train.pretrained.head = pipeline::train::config::ColorHead::Classes;
    let mut recipe = recipes::start(&train, Device::Cpu, None, &pairs).unwrap();
    recipe.begin_epoch(&Schedule::new(&train).plan(1, Duration::ZERO));
    let first = recipe.step(&batch.a, &batch.b).unwrap();
    let mut last = first;
    for _ in 0..30 {
        last = recipe.step(&batch.a, &batch.b).unwrap();
    }
    let (first_ce, last_ce) = (first.g_ce.expect("a G_CE"), last.g_ce.unwrap());
    assert!(last_ce < 0.9 * first_ce, "G_CE {first_ce} -> {last_ce}");

    ws.run(&["train", "bears", "--run", "vivid", "--device", "cpu"]).expect_code(0);
    let nets =
        std::fs::read(ws.store().join("runs/vivid/checkpoints/epoch-00004/nets.safetensors"))
            .unwrap();
    let nets = safetensors::SafeTensors::deserialize(&nets).unwrap();
    let weights = nets.tensor("G_ema:G.class_weights").expect("rebalancing weights saved");
    // Validation chose a temperature with each checkpoint; the colorizer decodes at it.
    let state = ws.store().join("runs/vivid/checkpoints/epoch-00004/state.json");
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(state).unwrap()).unwrap();
    let chosen = state["val"]["vividness"].as_f64().expect("a chosen vividness");
    assert!(VIVIDNESS_CHOICES.contains(&chosen), "{state}");
    let at_last = ["eval", "--run", "vivid", "--checkpoint", "epoch-4", "--dataset", "bears"];
    let out = ws.run(&[&at_last[..], &["--json", "--device", "cpu"]].concat()).expect_code(0);
    let line: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(line["vividness"].as_f64(), Some(chosen), "{line}");
    let export = ["export-model", "--run", "vivid", "--checkpoint", "epoch-4", "--out", "model"];
    ws.run(&export).expect_code(0);
    let config = std::fs::read(ws.path("model/config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(config["class_head"]["vividness"].as_f64(), Some(chosen), "{config}");
    let card = std::fs::read_to_string(ws.path("model/README.md")).unwrap();
    assert!(card.contains(&format!("decoded at vividness {chosen} (chosen on")), "{card}");
    let weights: Vec<f32> =
        weights.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
    let (low, high) = weights.iter().fold((f32::MAX, 0f32), |(l, h), &w| (l.min(w), h.max(w)));
    assert!(high > 1.5 * low, "rare colours weigh more: {low} .. {high}");

    let out = ws
        .run(&[
            "eval",
            "--run",
            "vivid",
            "--dataset",
            "bears",
            "--split",
            "all",
            "--vividness",
            "1,0.1",
            "--json",
            "--device",
            "cpu",
        ])
        .expect_code(0);
    let lines: Vec<serde_json::Value> =
        out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert_eq!(
        (lines[0]["vividness"].as_f64(), lines[1]["vividness"].as_f64()),
        (Some(1.0), Some(0.1))
    );
    let colour = |l: &serde_json::Value| l["model"]["colorfulness"].as_f64().unwrap();
    // Decoded at another temperature, other colours (which is bolder depends on how far
    // the distributions have sharpened: after 4 tiny epochs, not yet).
    assert!((colour(&lines[1]) - colour(&lines[0])).abs() > 0.1, "{}", out.stdout);
    for line in &lines {
        let agreement = &line["agreement"];
        for share in [&agreement["model"], &agreement["baseline"]] {
            assert!((0.0..=1.0).contains(&share.as_f64().unwrap()), "{line}");
        }
    }

    std::fs::write(ws.path("plain.toml"), tiny()).unwrap();
    let plain = ["--config", "plain.toml", "train", "bears", "--run", "plain", "--epochs", "1"];
    ws.run(&[&plain[..], &["--device", "cpu"]].concat()).expect_code(0);
    let refused = ws
        .run(&[
            "eval",
            "--run",
            "plain",
            "--dataset",
            "bears",
            "--vividness",
            "0.5",
            "--device",
            "cpu",
        ])
        .expect_code(2);
    assert!(refused.stderr.contains("class head"), "{}", refused.stderr);
}
