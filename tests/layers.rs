//! The layers hold (issue 21). `src/lib.rs` declares the top-level modules in layers:
//! groups of `pub mod` lines, the lowest first, a blank line between groups. This reads
//! every file of `src/` and fails when a module refers to one of its own layer or a higher
//! one (`crate::…`, or `super::…` that leaves its module), or when two files refer to each
//! other (a folder's `mod.rs` and the files below it are one module, and may). Each finding
//! names the file, the line and the reference. Test code is left out: `tests.rs` files and
//! what follows a file's `#[cfg(test)]` module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layers `lib.rs` declares, lowest first: each module's layer number.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut layer = 0;
    let mut in_group = false;
    let mut out = BTreeMap::new();
    for line in lib.lines().map(str::trim) {
        let declared = line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod "));
        if let Some(name) = declared.and_then(|rest| rest.strip_suffix(';')) {
            out.insert(name.to_owned(), layer);
            in_group = true;
        } else if line.is_empty() && in_group {
            layer += 1;
            in_group = false;
        }
    }
    out
}

/// A file of the crate: its path under `src/`, its module path, its text without tests.
struct File {
    rel: String,
    module: Vec<String>,
    text: String,
}

fn files(dir: &Path, out: &mut Vec<File>) {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
            continue;
        }
        let rel = path.strip_prefix(src()).unwrap().to_string_lossy().into_owned();
        let name = path.file_name().unwrap().to_string_lossy();
        if !rel.ends_with(".rs") || name == "tests.rs" || rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        let mut module: Vec<String> =
            rel.trim_end_matches(".rs").split('/').map(str::to_owned).collect();
        if module.last().is_some_and(|m| m == "mod") {
            module.pop();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let text = match text.find("#[cfg(test)]\nmod ") {
            Some(end) => text[..end].to_owned(),
            None => text,
        };
        out.push(File { rel, module, text });
    }
}

/// One reference of a file to an item of the crate: its line, the line's text, and the
/// item's path from the crate root.
struct Reference {
    line: usize,
    code: String,
    path: Vec<String>,
}

fn identifier(text: &str) -> usize {
    text.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(text.len())
}

/// The paths a `use` tree (or a plain path) at `text` names, relative to its prefix: one
/// for a path, several for a `{…}` group (first segments are enough below that).
fn paths(text: &str) -> Vec<Vec<String>> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let n = identifier(rest);
        if n == 0 {
            break;
        }
        segments.push(rest[..n].to_owned());
        match rest[n..].strip_prefix("::") {
            Some(more) => rest = more,
            None => return vec![segments],
        }
    }
    let Some(group) = rest.strip_prefix('{') else { return vec![segments] };
    let (mut depth, mut start, mut out) = (0, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                out.push(&group[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.iter()
        .flat_map(|item| paths(item.trim_start()))
        .filter(|p| !p.is_empty() && p[0] != "self")
        .map(|p| [segments.clone(), p].concat())
        .collect()
}

fn references(file: &File) -> Vec<Reference> {
    let mut out = Vec::new();
    let text = &file.text;
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    let lines: Vec<&str> = text.lines().collect();
    for prefix in ["crate::", "super::"] {
        for (at, _) in text.match_indices(prefix) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let line = line_of(at);
            let code = lines[line - 1].trim();
            if code.starts_with("//") {
                continue;
            }
            let (mut base, mut rest) = (Vec::new(), &text[at + prefix.len()..]);
            if prefix == "super::" {
                base = file.module.clone();
                base.pop();
                while let Some(more) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = more;
                }
            }
            for path in paths(rest) {
                let path = [base.clone(), path].concat();
                out.push(Reference { line, code: code.to_owned(), path });
            }
        }
    }
    out
}

/// The file that holds the item at `path`: the deepest module of it that is a file.
fn file_of(path: &[String]) -> Option<String> {
    (1..=path.len()).rev().find_map(|k| {
        let joined = path[..k].join("/");
        [format!("{joined}.rs"), format!("{joined}/mod.rs")]
            .into_iter()
            .find(|rel| src().join(rel).is_file())
    })
}

/// Whether `a` and `b` are one module: a folder's `mod.rs` and a file below it.
fn one_module(a: &str, b: &str) -> bool {
    let inside = |m: &str, f: &str| m.strip_suffix("mod.rs").is_some_and(|dir| f.starts_with(dir));
    inside(a, b) || inside(b, a)
}

/// Every finding, as lines to print.
pub fn findings() -> Vec<String> {
    let layers = layers(&std::fs::read_to_string(src().join("lib.rs")).unwrap());
    let mut all = Vec::new();
    files(&src(), &mut all);
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    // (from file, to file) -> the first reference, for the pairs.
    let mut ties: BTreeMap<(String, String), String> = BTreeMap::new();
    for file in &all {
        let from = &file.module[0];
        for r in references(file) {
            let Some(to) = r.path.first() else { continue };
            if let (Some(&mine), Some(&theirs)) = (layers.get(from), layers.get(to))
                && to != from
                && theirs >= mine
                && seen.insert((file.rel.clone(), r.line, to.clone()))
            {
                found.push(format!(
                    "src/{}:{}: `{}`: {from} (layer {mine}) refers to {to} (layer {theirs}); a \
                     module refers only to the layers below its own",
                    file.rel, r.line, r.code
                ));
            }
            if let Some(target) = file_of(&r.path)
                && target != file.rel
                && !one_module(&file.rel, &target)
            {
                let site = format!("src/{}:{}: `{}`", file.rel, r.line, r.code);
                ties.entry((file.rel.clone(), target)).or_insert(site);
            }
        }
    }
    let mut pairs = BTreeSet::new();
    for ((a, b), site) in &ties {
        if let Some(back) = ties.get(&(b.clone(), a.clone()))
            && pairs.insert((a.min(b).clone(), a.max(b).clone()))
        {
            found.push(format!("src/{a} and src/{b} refer to each other: {site}; {back}"));
        }
    }
    found
}

#[test]
fn no_module_refers_to_its_own_layer_or_above_and_no_two_files_to_each_other() {
    let found = findings();
    assert!(found.is_empty(), "{} findings:\n{}", found.len(), found.join("\n"));
}

#[test]
fn the_check_reads_use_trees_and_super_paths() {
    let group = paths("{config::Config, store::{Store, Tree}, self}");
    let firsts: Vec<&str> = group.iter().map(|p| p[0].as_str()).collect();
    assert_eq!(firsts, ["config", "store", "store"]);
    let file = File {
        rel: "fetch/search.rs".into(),
        module: vec!["fetch".into(), "search".into()],
        text: "use super::source::Out;\nuse crate::{net::Http, store};\n// crate::x\nlet a = super::super::query::slug(x);\n".into(),
    };
    let found: Vec<(usize, Vec<String>)> =
        references(&file).into_iter().map(|r| (r.line, r.path)).collect();
    let path = |s: &str| s.split("::").map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        found,
        [
            (2, path("net::Http")),
            (2, path("store")),
            (1, path("fetch::source::Out")),
            (4, path("query::slug"))
        ]
    );
    assert_eq!(layers("pub mod a;\npub mod b;\n\n// c\npub mod c;\n")["c"], 1);
}
