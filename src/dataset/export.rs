//! `pipeline export`: a built version in the layouts other tools read.
//!
//! - `pix2pix`: `OUT/{train,test}/<id>.png`, A (gray, as RGB) and B side by side, the
//!   aligned layout the reference pix2pix code reads (`--dataset_mode aligned`).
//! - `webdataset`: one tar per shard, `OUT/<split>-NNNNN.tar`, entries `<id>.gray.png`,
//!   `<id>.color.png`, `<id>.json`, in shard order, with fixed mtime/owner/mode so the same
//!   version always gives the same bytes.
//! - `folders`: `OUT/A/<split>/<id>.png` and `OUT/B/<split>/<id>.png`, what pix2pix's
//!   `datasets/combine_A_and_B.py --fold_A OUT/A --fold_B OUT/B` reads.
//!
//! PNG everywhere: lossless, so an export reads back exactly as the shards hold it. Every
//! image keeps its provenance: the dataset card (`README.md`) at the top, and each pair's
//! source, licence and credit in `<split>/metadata.jsonl` (pix2pix: the Hugging Face
//! image-folder layout), `metadata/<split>.jsonl` (folders) or its `.json` entry
//! (webdataset).

use std::collections::BTreeMap;
use std::fs;
use std::io::Cursor;
use std::path::Path;

use image::{GrayImage, ImageFormat, RgbImage};
use rayon::prelude::*;

use crate::dataset::{Built, DatasetError, ManifestMember, ShardError};
use crate::photo::color::interleave;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    Pix2pix,
    Webdataset,
    Folders,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Shard(#[from] ShardError),
    #[error(transparent)]
    Io(#[from] crate::durable::PathError),
}

/// One exported pair, encoded.
struct Encoded<'a> {
    member: &'a ManifestMember,
    gray: Vec<u8>,
    color: Vec<u8>,
    side_by_side: Option<Vec<u8>>,
}

/// Writes every pair of `built` under `out`; returns how many.
pub fn export(built: &Built, format: ExportFormat, out: &Path) -> Result<usize, ExportError> {
    fs::create_dir_all(out).map_err(crate::durable::at(out))?;
    let card = out.join(super::card::FILE);
    fs::write(&card, super::card::card(&built.manifest)).map_err(crate::durable::at(&card))?;
    let mut metadata: BTreeMap<&str, String> = BTreeMap::new();
    let mut written = 0;
    for (index, info) in built.manifest.shards.iter().enumerate() {
        let shard = built.shard(index)?;
        let members: Vec<&ManifestMember> =
            built.manifest.members.iter().filter(|m| m.shard == index).collect();
        let size = shard.size() as u32;
        let encoded: Vec<Encoded> = members
            .par_iter()
            .map(|member| {
                let pair = shard.pair(member.index);
                let gray = GrayImage::from_raw(size, size, pair.a.to_vec()).expect("plane size");
                let color =
                    RgbImage::from_raw(size, size, interleave(pair.b, (size * size) as usize))
                        .expect("plane size");
                let side_by_side =
                    (format == ExportFormat::Pix2pix).then(|| png(&beside(&gray, &color)));
                Encoded { member, gray: png(&gray), color: png(&color), side_by_side }
            })
            .collect();
        let split = info.split.as_str();
        match format {
            ExportFormat::Pix2pix => {
                let dir = out.join(split);
                fs::create_dir_all(&dir).map_err(crate::durable::at(&dir))?;
                for e in &encoded {
                    let name = format!("{}.png", e.member.id);
                    let path = dir.join(&name);
                    fs::write(&path, e.side_by_side.as_deref().unwrap_or_default())
                        .map_err(crate::durable::at(&path))?;
                    let lines = metadata.entry(split).or_default();
                    lines.push_str(&record(e.member, &[("file_name", name)]).to_string());
                    lines.push('\n');
                }
            }
            ExportFormat::Folders => {
                for (half, pick) in [("A", 0), ("B", 1)] {
                    let dir = out.join(half).join(split);
                    fs::create_dir_all(&dir).map_err(crate::durable::at(&dir))?;
                    for e in &encoded {
                        let path = dir.join(format!("{}.png", e.member.id));
                        fs::write(&path, if pick == 0 { &e.gray } else { &e.color })
                            .map_err(crate::durable::at(&path))?;
                    }
                }
                for e in &encoded {
                    let files = [
                        ("gray_file_name", format!("A/{split}/{}.png", e.member.id)),
                        ("color_file_name", format!("B/{split}/{}.png", e.member.id)),
                    ];
                    let lines = metadata.entry(split).or_default();
                    lines.push_str(&record(e.member, &files).to_string());
                    lines.push('\n');
                }
            }
            ExportFormat::Webdataset => {
                let path = out.join(info.file.replace(".safetensors", ".tar"));
                write_tar(&path, &encoded)?;
            }
        }
        written += encoded.len();
    }
    for (split, lines) in metadata {
        // `folders` keeps `A/` and `B/` to split folders of images alone, as
        // `combine_A_and_B.py` lists them.
        let path = match format {
            ExportFormat::Folders => out.join("metadata").join(format!("{split}.jsonl")),
            _ => out.join(split).join("metadata.jsonl"),
        };
        let dir = path.parent().expect("a metadata file has a folder");
        fs::create_dir_all(dir).map_err(crate::durable::at(dir))?;
        fs::write(&path, lines).map_err(crate::durable::at(&path))?;
    }
    Ok(written)
}

/// A pair's provenance as one JSON object, with `files` (its image paths): where it was
/// found and under what licence. Every key is present and a string where it can be (`""`:
/// unknown), so every row and every split has the same columns and types (the Hugging
/// Face loader refuses splits whose metadata types differ, and a null column is typed
/// `null`).
fn record(m: &ManifestMember, files: &[(&str, String)]) -> serde_json::Value {
    let credit = m.credit.clone().unwrap_or_default();
    let text = |field: Option<String>| field.unwrap_or_default();
    let mut row = serde_json::json!({
        "id": m.id, "split": m.split, "rank": m.rank, "source": m.source, "url": m.url,
        "page_url": text(m.page_url.clone()), "title": text(m.title.clone()),
        "license": text(credit.license), "license_url": text(credit.license_url),
        "creator": text(credit.creator), "attribution": text(credit.attribution),
    });
    for (key, path) in files {
        row[*key] = path.as_str().into();
    }
    row
}

fn write_tar(path: &Path, encoded: &[Encoded]) -> Result<(), ExportError> {
    let file = fs::File::create(path).map_err(crate::durable::at(path))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    for e in encoded {
        let m = e.member;
        let json = serde_json::to_vec(&record(m, &[])).expect("json");
        let entries = [
            (format!("{}.gray.png", m.id), e.gray.as_slice()),
            (format!("{}.color.png", m.id), e.color.as_slice()),
            (format!("{}.json", m.id), json.as_slice()),
        ];
        for (name, bytes) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, &name, bytes).map_err(crate::durable::at(path))?;
        }
    }
    tar.into_inner()
        .and_then(|mut w| std::io::Write::flush(&mut w))
        .map_err(crate::durable::at(path))?;
    Ok(())
}

/// A (gray, as RGB) on the left, B on the right.
fn beside(gray: &GrayImage, color: &RgbImage) -> RgbImage {
    let (w, h) = color.dimensions();
    RgbImage::from_fn(2 * w, h, |x, y| {
        if x < w {
            let v = gray.get_pixel(x, y).0[0];
            image::Rgb([v, v, v])
        } else {
            *color.get_pixel(x - w, y)
        }
    })
}

fn png<P>(image: &image::ImageBuffer<P, Vec<u8>>) -> Vec<u8>
where
    P: image::PixelWithColorType<Subpixel = u8>,
{
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).expect("PNG encoding to memory cannot fail");
    out.into_inner()
}
