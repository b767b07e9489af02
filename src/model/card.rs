//! `README.md` of an exported model: a model card in the Hugging Face layout (a YAML
//! header, then Markdown). What the model does and how to load it in three lines of Python,
//! what it trained on (from the dataset card's manifest: counts, sources, licences,
//! curation, opt-outs), the recipe and its budget, `eval`'s scores on the run's test split
//! and on the cross-domain sets beside the do-nothing baseline, and its known limits. Text
//! from outside is escaped as in the dataset card.

use std::fmt::Write;

use super::Scored;
use super::config::ModelConfig;
use crate::dataset::Manifest;
use crate::eval::ROWS;
use crate::markdown::{escape, yaml_string};
use crate::train::config::Recipe;

/// The card of the model `config` describes, trained on `trained_on`, scored by `scores`
/// (its own test split first).
pub fn card(config: &ModelConfig, trained_on: &Manifest, scores: &[Scored]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "---\nlicense: {}\nlibrary_name: \"pytorch\"\npipeline_tag: \"image-to-image\"\ntags:\n\
         - \"colorization\"\n- \"{}\"\n- \"torchscript\"\n- \"safetensors\"\n---\n",
        yaml_string(&crate::dataset::card::license(trained_on)),
        match config.recipe {
            Recipe::Pix2pix => "pix2pix",
            Recipe::Pretrained => "efficientnet-lite0",
        }
    );
    about(&mut out, config);
    usage(&mut out, config);
    data(&mut out, trained_on);
    recipe(&mut out, config);
    evaluation(&mut out, scores);
    limits(&mut out, config, scores);
    out
}

fn about(out: &mut String, c: &ModelConfig) {
    let _ = writeln!(
        out,
        "# {}\n\nColorizes gray photos: a {} trained by `pipeline` ({} recipe, checkpoint of \
         epoch {}). It sees only the gray image and predicts its colours {}.\n",
        escape(&c.run),
        c.architecture,
        recipe_name(c.recipe),
        c.epoch,
        match c.color_space {
            crate::train::config::ColorSpace::Lab => "as a* and b* under the photo's own L*",
            crate::train::config::ColorSpace::Rgb => "as RGB",
        }
    );
}

fn recipe_name(recipe: Recipe) -> &'static str {
    match recipe {
        Recipe::Pix2pix => "pix2pix",
        Recipe::Pretrained => "pretrained",
    }
}

fn usage(out: &mut String, c: &ModelConfig) {
    let _ = writeln!(
        out,
        "## Use it\n\n```python\nimport torch\nmodel = torch.jit.load(\"{}\")  # map_location=\"cuda\" \
         for a GPU\nrgb = model(gray)  # gray: N x 1 x H x W in [0, 1]; rgb: N x 3 x H x W in [0, 1]\n```\n\n\
         Any H and W: the module holds the whole path of `pipeline colorize`, which gives \
         the same pixels: the photo squashed to {} x {} (the side it trained at), the \
         network, its colours brought back to H x W, colour conversion included. `{}` holds \
         the same weights (names as in the run's checkpoints) and `config.json` the path \
         around them.",
        c.torchscript.file, c.input.trained_side, c.input.trained_side, c.weights.file,
    );
    if let Some(dropout) = &c.dropout {
        let _ = writeln!(
            out,
            "\nAs in the reference pix2pix, dropout stays on at inference (rate {}): call \
             `torch.manual_seed({})` before each image, one per batch, to get exactly what \
             `pipeline colorize` gives.",
            dropout.rate, dropout.seed_per_image
        );
    }
    out.push('\n');
}

fn data(out: &mut String, m: &Manifest) {
    let sources: Vec<String> =
        m.provenance.sources.iter().map(|(s, n)| format!("{} {n}", escape(s))).collect();
    let licences: Vec<String> =
        crate::credit::count_by_license(m.members.iter().map(|member| member.credit.as_ref()))
            .into_iter()
            .map(|(id, n)| format!("{} {n}", escape(&id)))
            .collect();
    let dropped: Vec<String> =
        m.counts.dropped.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
    let opt_outs = match m.provenance.opt_outs.honoured {
        Some(true) => format!(
            "honoured by every fetch ({} image URLs left out)",
            m.provenance.opt_outs.excluded
        ),
        Some(false) => "not honoured by at least one fetch".to_owned(),
        None => "not recorded (imports only)".to_owned(),
    };
    let _ = writeln!(
        out,
        "## Training data\n\nDataset `{}`, version `{}`: {} training and {} test pairs of \
         {} px (gray A, colour B). Found by: {}. Licences: {}. Curation left out: {}. \
         Opt-outs from AI training: {}. Its dataset card (`README.md` of the build) credits \
         every image.\n",
        escape(&m.dataset),
        m.version,
        m.counts.train,
        m.counts.test,
        m.settings.size,
        if sources.is_empty() { "none recorded".into() } else { sources.join(", ") },
        licences.join(", "),
        if dropped.is_empty() { "none".into() } else { dropped.join(", ") },
        opt_outs,
    );
}

fn recipe(out: &mut String, c: &ModelConfig) {
    let t = &c.train;
    let shape = t.data_shape();
    let budget = match t.max_minutes {
        Some(minutes) => format!("{minutes} minutes"),
        None => format!("{} epochs", t.total_epochs()),
    };
    let _ = writeln!(
        out,
        "## Recipe and budget\n\n| | |\n|---|---|\n| recipe | {} |\n| crop | {} px |\n\
         | batch | {} |\n| budget | {budget} |\n| checkpoint | epoch {} |\n| weights | {} |\n\
         | seed | {} |",
        recipe_name(c.recipe),
        shape.crop,
        shape.batch_size,
        c.epoch,
        if c.weights.averaged { "moving average of the generator's" } else { "the generator's" },
        t.seed,
    );
    if let Some(head) = &c.class_head {
        let _ = writeln!(
            out,
            "| colour | a distribution over ab cells, decoded at vividness {} (chosen on \
             validation) |",
            head.vividness
        );
    }
    out.push('\n');
}

fn evaluation(out: &mut String, scores: &[Scored]) {
    out.push_str(
        "## Evaluation\n\n`pipeline eval`'s numbers: centre crops at the training size, the \
         model against the do-nothing baseline (the gray image itself) on the same pixels. \
         CIEDE2000 is the colour error (lower is better).\n\n| Data | Images |",
    );
    for (name, _) in ROWS {
        let _ = write!(out, " {name} |");
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(ROWS.len()));
    out.push('\n');
    for s in scores {
        for (who, metrics) in [("model", &s.evaluation.model), ("gray", &s.evaluation.baseline)] {
            let _ = write!(
                out,
                "| {} {}, {who} | {} |",
                escape(&s.dataset),
                s.splits,
                s.evaluation.images
            );
            for (_, value) in ROWS {
                let _ = write!(out, " {:.4} |", value(metrics));
            }
            out.push('\n');
        }
    }
    out.push('\n');
}

fn limits(out: &mut String, c: &ModelConfig, scores: &[Scored]) {
    let _ = writeln!(
        out,
        "## Limits\n\nIt learnt from {} photos of what one search found: it paints what those \
         photos showed, and other subjects take their colours.",
        c.trained_on.train_pairs
    );
    for s in scores.iter().skip(1) {
        let (model, gray) = (s.evaluation.model.ciede2000, s.evaluation.baseline.ciede2000);
        let verdict = match model < gray {
            true => "it colours them closer to the truth than leaving them gray",
            false => {
                "it does no better than leaving them gray: it paints them in the colours it learnt"
            }
        };
        let _ = writeln!(
            out,
            "- On `{}`, which it never saw, {verdict} (CIEDE2000 {model:.2} vs {gray:.2}).",
            escape(&s.dataset)
        );
    }
    out.push('\n');
}
