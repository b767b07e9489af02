//! The dataset card: `README.md` of a built version and of each export, in the layout of
//! the Hugging Face Hub (a YAML header its loaders and search read, then Markdown). It says
//! what the pairs are, where the images came from and when, how opt-outs were treated,
//! what curation left out, how the splits were made, each licence and whom to credit for
//! each image. Written from the manifest alone, so a version always gives the same card.
//! Text from outside (queries, titles, creators) is escaped: it cannot add a link, HTML
//! or a table cell; links go only to http(s) URLs.

use std::fmt::Write;

use super::{FORMAT, Manifest, ManifestMember};
use crate::credit::{UNKNOWN, count_by_license, covering, hub_license};
use crate::markdown::{escape as md, link, yaml_string as quoted};

/// The card's file name, in a version's folder and an export's.
pub const FILE: &str = "README.md";

/// The card of `manifest`'s version.
pub fn card(manifest: &Manifest) -> String {
    let mut out = String::new();
    header(&mut out, manifest);
    about(&mut out, manifest);
    origin(&mut out, manifest);
    opt_outs(&mut out, manifest);
    curation(&mut out, manifest);
    splits(&mut out, manifest);
    licences(&mut out, manifest);
    credits(&mut out, manifest);
    out
}

/// The Hub's licence id for the whole of `m`: the licence whose terms include every
/// member's; else `other`, the card's licence table giving the breakdown (`unknown` when
/// no member's licence is known).
pub fn license(m: &Manifest) -> String {
    let licenses = count_by_license(m.members.iter().map(|member| member.credit.as_ref()));
    match covering(licenses.keys().map(String::as_str)) {
        Some(id) => hub_license(id),
        None if licenses.keys().eq([UNKNOWN]) => UNKNOWN.to_owned(),
        None => "other".to_owned(),
    }
}

/// The YAML header: the licence, task, size and tags. Every value is a quoted string.
fn header(out: &mut String, m: &Manifest) {
    let license = license(m);
    let total = m.counts.train + m.counts.test;
    let size = match total {
        ..1_000 => "n<1K",
        1_000..10_000 => "1K<n<10K",
        10_000..100_000 => "10K<n<100K",
        100_000..1_000_000 => "100K<n<1M",
        _ => "1M<n<10M",
    };
    let _ = writeln!(
        out,
        "---\npretty_name: {}\nlicense: {}\ntask_categories:\n- \"image-to-image\"\ntags:\n\
         - \"colorization\"\n- \"pix2pix\"\nsize_categories:\n- {}\n---\n",
        quoted(&m.dataset),
        quoted(&license),
        quoted(size)
    );
}

fn about(out: &mut String, m: &Manifest) {
    let s = &m.settings;
    let _ = writeln!(
        out,
        "# {}\n\n{} pairs for image colorization: each colour photo (B) and its grayscale copy \
         (A), {}x{} pixels ({}). A is computed from B as `{}`.\n\nBuilt by `pipeline`: \
         version `{}`, format {FORMAT}; `manifest.json` holds every figure below.\n",
        md(&m.dataset),
        m.counts.train + m.counts.test,
        s.size,
        s.size,
        match s.resize {
            crate::photo::resize::ResizeMode::Squash => "squashed to a square",
            crate::photo::resize::ResizeMode::CenterCrop => "centre square crop",
        },
        m.luma,
        m.version,
    );
}

fn origin(out: &mut String, m: &Manifest) {
    let p = &m.provenance;
    out.push_str(
        "## Where the images come from\n\n| Query, list or folder | Images |\n|---|---|\n",
    );
    for (query, n) in &p.queries {
        let _ = writeln!(out, "| {} | {n} |", md(query));
    }
    let sources: Vec<String> = p.sources.iter().map(|(s, n)| format!("{} {n}", md(s))).collect();
    let _ = writeln!(out, "\nFound by: {}.", sources.join(", "));
    if let (Some(first), Some(last)) = (&p.first_added, &p.last_added) {
        let _ = writeln!(out, "Added between {first} and {last}.");
    }
    out.push('\n');
}

fn opt_outs(out: &mut String, m: &Manifest) {
    let o = &m.provenance.opt_outs;
    out.push_str("## Opt-outs from AI training\n\n");
    match o.honoured {
        Some(true) => {
            let signals: Vec<String> = o.signals.iter().map(|s| md(s)).collect();
            let _ = writeln!(
                out,
                "Honoured by every fetch from the web: images whose site opted out were left \
                 out before download, from each image's response headers (`X-Robots-Tag`, \
                 `tdm-reservation`, `Content-Usage`) and each host's `robots.txt` \
                 (`Content-Usage`, `Content-Signal`) and `/.well-known/tdmrep.json`. Signals \
                 honoured: {}.\n\n{} image URL(s) were left out this way.\n",
                signals.join(", "),
                o.excluded
            );
        }
        Some(false) => out.push_str(
            "**Not honoured** by at least one fetch into this dataset (`[opt_outs] honour = \
             false`): images whose site opted out of AI training may be included.\n\n",
        ),
        None => out.push_str(
            "No fetch from the web recorded how it treated opt-outs (imports only, or \
             fetched before `pipeline` honoured them).\n\n",
        ),
    }
}

fn curation(out: &mut String, m: &Manifest) {
    let c = &m.curation;
    out.push_str("## Curation\n\n");
    let _ = writeln!(
        out,
        "- gray images left out below mean chroma {}; tinted ones below colour spread {}",
        c.min_chroma, c.min_spread
    );
    if !c.require.is_empty() {
        let classes: Vec<String> = c.require.iter().map(|r| md(r)).collect();
        let _ = writeln!(
            out,
            "- kept only when one of {} is among its top {} ImageNet classes (probability at \
             least {})",
            classes.join(", "),
            c.top_k,
            c.min_probability
        );
    }
    if !c.licenses.is_empty() {
        let ids: Vec<String> = c.licenses.iter().map(|l| md(l)).collect();
        let _ = writeln!(out, "- kept only under the licences {}", ids.join(", "));
    }
    let _ = writeln!(
        out,
        "- a test image within {} bits of a training image leaks: {}",
        c.leak_distance,
        format!("{:?}", c.on_leak).to_lowercase()
    );
    let dropped: Vec<String> =
        m.counts.dropped.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
    let _ = writeln!(
        out,
        "\nLeft out: {}. Published despite leaking: {}. Could not be preprocessed: {}.\n",
        if dropped.is_empty() { "none".into() } else { dropped.join(", ") },
        m.leaks.len(),
        m.counts.skipped
    );
}

fn splits(out: &mut String, m: &Manifest) {
    let _ = writeln!(
        out,
        "## Splits\n\n| Split | Pairs |\n|---|---|\n| train | {} |\n| test | {} |\n\n\
         An image's split follows from its content hash alone (blake3; test fraction {}): \
         adding or removing other images never moves it.\n",
        m.counts.train, m.counts.test, m.settings.test_fraction
    );
}

fn licences(out: &mut String, m: &Manifest) {
    out.push_str("## Licences\n\n| Licence | Images |\n|---|---|\n");
    for (id, n) in count_by_license(m.members.iter().map(|member| member.credit.as_ref())) {
        let _ = writeln!(out, "| {} | {n} |", md(&id));
    }
    let _ = writeln!(
        out,
        "\nEach image keeps its own licence: use it on its terms and credit it as below. \
         `{UNKNOWN}`: the source named none, so none may be assumed.\n"
    );
}

fn credits(out: &mut String, m: &Manifest) {
    out.push_str("## Credits\n\n| Image | Split | Licence | Creator | Title or attribution |\n");
    out.push_str("|---|---|---|---|---|\n");
    for member in &m.members {
        let _ = writeln!(out, "{}", credit_row(member));
    }
}

/// One member's row: its id linking to the page it was found on (or to itself), its
/// licence linking to the licence's text, its creator, its attribution line or title.
fn credit_row(member: &ManifestMember) -> String {
    let id = &member.id[..member.id.len().min(16)];
    let page = member.page_url.as_deref().unwrap_or(&member.url);
    let credit = member.credit.clone().unwrap_or_default();
    let license = credit.license.as_deref().unwrap_or(UNKNOWN);
    let what = credit.attribution.or_else(|| member.title.clone()).unwrap_or_default();
    format!(
        "| {} | {} | {} | {} | {} |",
        link(&format!("`{id}`"), page),
        member.split.as_str(),
        link(&md(license), credit.license_url.as_deref().unwrap_or_default()),
        md(credit.creator.as_deref().unwrap_or_default()),
        md(&what),
    )
}
