//! `export-model` (issue 23) on real runs and real photos: PyTorch 2.11, the wheel the
//! build links (`.engines/python`), loads `colorizer.pt` and reproduces `pipeline
//! colorize`; the weights, config and card say what the run is and the card's scores are
//! `eval`'s.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::support::{self, Workspace, photos};

/// Loads the module, colorizes each gray PNG (one image a call, after
/// `torch.manual_seed(SEED)` when SEED is not -1) and compares it with `pipeline
/// colorize`'s PNG of the same photo; then all of them as one batch, and a batch of an odd
/// size.
const COMPARE: &str = r#"
import json, sys
import numpy, torch
from PIL import Image
module = torch.jit.load(sys.argv[1])
seed = int(sys.argv[2])
pairs = [arg.split("=") for arg in sys.argv[3:]]
def gray(path):
    pixels = numpy.asarray(Image.open(path).convert("L"), dtype=numpy.float32) / 255
    return torch.from_numpy(pixels)[None, None]
out, singles = {"images": []}, []
with torch.no_grad():
    for gray_path, colorized_path in pairs:
        if seed >= 0:
            torch.manual_seed(seed)
        rgb = module(gray(gray_path))
        singles.append(rgb)
        got = (rgb[0] * 255).round().to(torch.int32).permute(1, 2, 0)
        want = torch.from_numpy(numpy.asarray(Image.open(colorized_path).convert("RGB"), dtype=numpy.int32))
        diff = (got - want).abs()
        out["images"].append({"max": int(diff.max()), "mean": float(diff.float().mean())})
    batch = module(torch.cat([gray(g) for g, _ in pairs]))
    out["batch_vs_singles"] = float((batch - torch.cat(singles)).abs().max())
    other = module(torch.rand(2, 1, 37, 53))
    out["other_size"] = list(other.shape)
    out["range"] = [float(other.min()), float(other.max())]
print(json.dumps(out))
"#;

/// Gray copies (R = G = B) of real photos at 150 x 110 (neither the run's side nor a
/// multiple of the network's stride, nor square), in `gray/` of the workspace.
fn gray_photos(ws: &Workspace) -> Vec<PathBuf> {
    let dir = ws.path("gray");
    std::fs::create_dir_all(&dir).unwrap();
    let mut chosen = photos("brown_bear")[..2].to_vec();
    chosen.extend(photos("polar_bear")[..2].to_vec());
    chosen
        .iter()
        .enumerate()
        .map(|(i, photo)| {
            let small = image::open(photo).unwrap().resize_exact(
                150,
                110,
                image::imageops::FilterType::CatmullRom,
            );
            let gray = image::DynamicImage::ImageLuma8(small.to_luma8()).to_rgb8();
            let path = dir.join(format!("photo{i}.png"));
            gray.save(&path).unwrap();
            path
        })
        .collect()
}

/// `pipeline colorize` of `grays` by `run`, then the exported module of `export` on the
/// same pixels in PyTorch.
fn compare(ws: &Workspace, run: &str, export: &Path, grays: &[PathBuf], seed: i64) -> Value {
    let mut args = vec!["colorize", "--run", run, "--out", "colorized", "--device", "cpu"];
    args.extend(grays.iter().map(|p| p.to_str().unwrap()));
    ws.run(&args).expect_code(0);
    let mut command = Command::new(support::engines_python());
    command.args(["-c", COMPARE, export.join("colorizer.pt").to_str().unwrap()]);
    command.arg(seed.to_string());
    for gray in grays {
        let colorized = ws.path("colorized").join(gray.file_name().unwrap());
        command.arg(format!("{}={}", gray.display(), colorized.display()));
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "python: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(text.lines().last().unwrap_or_default()).unwrap();
    eprintln!("{run}: {result}");
    result
}

/// Every pixel within one 8-bit level of `colorize`, and 99% of them equal: the module and
/// the binary run the same libtorch ops (measured: equal everywhere).
fn assert_reproduces(result: &Value) {
    for image in result["images"].as_array().unwrap() {
        assert!(image["max"].as_i64().unwrap() <= 1, "{result}");
        assert!(image["mean"].as_f64().unwrap() <= 0.01, "{result}");
    }
}

/// The card's row of `who` ("model" or "gray") on `data`, split into its cells.
fn card_row(card: &str, data: &str, who: &str) -> Vec<String> {
    let start = format!("| {data}, {who} |");
    let line =
        card.lines().find(|l| l.starts_with(&start)).unwrap_or_else(|| panic!("{start}: {card}"));
    line.split('|').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect()
}

const PRETRAINED: &str = "[build]\nsize = 72\ntest_fraction = 0.2\n\n[train]\nrecipe = \"pretrained\"\ncheckpoint_every = 1\nval_fraction = 0.3\n";

#[test]
fn a_pretrained_export_loads_in_pytorch_and_matches_colorize_and_eval() {
    let config = format!("{PRETRAINED}\n{}", support::tiny_pretrained(""));
    let ws = support::built_bears(&config, 14);
    support::folder(&ws, "polar", &photos("polar_bear")[..6]);
    ws.run(&["import", "polar", "--dataset", "polar"]).expect_code(0);
    ws.run(&["build", "polar"]).expect_code(0);
    ws.run(&["train", "bears", "--run", "r", "--device", "cpu"]).expect_code(0);
    let export = ws.path("model");
    let run = ws.run(&["export-model", "--run", "r", "--out", "model", "--cross-domain", "polar"]);
    let run = run.expect_code(0);
    assert!(run.stdout.contains("exported run r"), "{}", run.stdout);

    let config: Value =
        serde_json::from_slice(&std::fs::read(export.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["recipe"], "pretrained");
    assert_eq!(config["color_space"], "lab");
    assert_eq!(config["input"]["side_multiple"], 32);
    assert_eq!(config["input"]["trained_side"], 64);
    assert_eq!(config["weights"]["averaged"], true);
    assert_eq!(config["encoder_weights"]["blake3"].as_str().unwrap().len(), 64);
    let record: Value =
        serde_json::from_slice(&std::fs::read(ws.store().join("runs/r/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["trained_on"]["version"], record["version"]);

    // The weights are the checkpoint's averaged generator, under the generator's names.
    let exported = tch::Tensor::read_safetensors(export.join("model.safetensors")).unwrap();
    let epoch = config["epoch"].as_u64().unwrap();
    let nets = ws.store().join(format!("runs/r/checkpoints/epoch-{epoch:05}/nets.safetensors"));
    let saved: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(&nets).unwrap().into_iter().collect();
    assert!(exported.len() > 100, "{}", exported.len());
    for (name, tensor) in &exported {
        assert!(name.starts_with("G."), "{name}");
        let averaged = &saved[&format!("G_ema:{name}")];
        assert!(tensor.equal(averaged), "{name} is not the checkpoint's average");
    }

    let result = compare(&ws, "r", &export, &gray_photos(&ws), -1);
    assert_reproduces(&result);
    assert!(result["batch_vs_singles"].as_f64().unwrap() < 1e-4, "{result}");
    assert_eq!(result["other_size"], serde_json::json!([2, 3, 37, 53]));

    // The card's scores are eval's, on the run's test split and on the polar bears.
    let card = std::fs::read_to_string(export.join("README.md")).unwrap();
    assert!(card.starts_with("---\nlicense: "), "{card}");
    assert!(card.contains("torch.jit.load(\"colorizer.pt\")"), "{card}");
    for (dataset, split) in [("bears", "test"), ("polar", "all")] {
        let eval =
            ws.run(&["eval", "--run", "r", "--dataset", dataset, "--split", split, "--json"]);
        let eval = eval.expect_code(0).json();
        let splits = if split == "all" { "train+test" } else { "test" };
        let data = format!("{dataset} {splits}");
        let model = card_row(&card, &data, "model");
        let gray = card_row(&card, &data, "gray");
        let ciede = format!("{:.4}", eval["model"]["ciede2000"].as_f64().unwrap());
        let baseline = format!("{:.4}", eval["baseline"]["ciede2000"].as_f64().unwrap());
        assert_eq!(model.last().unwrap(), &ciede, "{data}: {card}");
        assert_eq!(gray.last().unwrap(), &baseline, "{data}: {card}");
        assert_eq!(model[1], eval["images"].to_string(), "{data}");
    }
    assert!(card.contains("On `polar`, which it never saw"), "{card}");
}

const PIX2PIX: &str = "[build]\nsize = 72\ntest_fraction = 0.2\n\n[train]\nngf = 8\nndf = 8\ncrop = 64\nbatch_size = 4\nepochs = 1\nepochs_decay = 0\ncolor = \"rgb\"\n";

#[test]
fn a_pix2pix_export_reproduces_colorize_when_seeded_per_image() {
    let ws = support::built_bears(PIX2PIX, 10);
    ws.run(&["train", "bears", "--run", "p", "--device", "cpu"]).expect_code(0);
    ws.run(&["export-model", "--run", "p", "--out", "model"]).expect_code(0);
    let export = ws.path("model");
    let config: Value =
        serde_json::from_slice(&std::fs::read(export.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["color_space"], "rgb");
    assert_eq!(config["input"]["side_multiple"], 64, "6 downsamplings at 64 px");
    assert_eq!(config["dropout"]["seed_per_image"], 0);
    let result = compare(&ws, "p", &export, &gray_photos(&ws), 0);
    assert_reproduces(&result);
    assert_eq!(result["other_size"], serde_json::json!([2, 3, 37, 53]));
    let [low, high] = [0, 1].map(|i| result["range"][i].as_f64().unwrap());
    assert!((0.0..=1.0).contains(&low) && (0.0..=1.0).contains(&high), "{result}");
}

#[test]
fn export_model_replaces_an_earlier_export_and_nothing_else() {
    let ws = support::built_bears(PIX2PIX, 6);
    ws.run(&["train", "bears", "--run", "p", "--device", "cpu"]).expect_code(0);
    std::fs::create_dir_all(ws.path("mine")).unwrap();
    std::fs::write(ws.path("mine/notes.txt"), "my notes").unwrap();
    let refused = ws.run(&["export-model", "--run", "p", "--out", "mine"]).expect_code(1);
    assert!(refused.stderr.contains("not an earlier export-model"), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(ws.path("mine/notes.txt")).unwrap(), "my notes");

    ws.run(&["export-model", "--run", "p", "--out", "model"]).expect_code(0);
    std::fs::write(ws.path("model/README.md"), "stale").unwrap();
    ws.run(&["export-model", "--run", "p", "--out", "model", "--checkpoint", "last"])
        .expect_code(0);
    let card = std::fs::read_to_string(ws.path("model/README.md")).unwrap();
    assert!(card.starts_with("---\n"), "{card}");
    let missing = ws.run(&["export-model", "--run", "nope", "--out", "other"]).expect_code(1);
    assert!(missing.stderr.contains("no run named \"nope\""), "{}", missing.stderr);
    assert!(!ws.path("other").exists());
}
