//! The library's layers point one way: every `crate::` path in `src/` (and every `super::` path that climbs to the
//! crate root) names a module of a lower layer, or its own module. The order is the one written in `src/lib.rs`'s
//! "Layers" section, read from there, so the documentation and this test cannot drift apart.
//!
//! The binary (`src/main.rs`, `src/cli/`) sits above everything and uses the library through `pgshadow::`, so it is
//! not checked here. Comment lines (doc links included) are not imports and are skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The layers of `src/lib.rs`'s "Layers" section, low to high: each line lists the modules of one layer.
fn layers(lib: &str) -> Vec<Vec<String>> {
    let section = lib.split("//! # Layers").nth(1).expect("src/lib.rs has a `# Layers` section");
    let block = section.split("//! ```text\n").nth(1).expect("the Layers section has a ```text block");
    let block = block.split("//! ```\n").next().expect("the ```text block is closed");
    block
        .lines()
        .map(|line| line.trim_start_matches("//!").strip_prefix(' ').unwrap_or_default())
        // A line that starts with a space goes on with the one before.
        .filter(|line| !line.is_empty() && !line.starts_with(' '))
        .map(|line| {
            let names = line.split("  ").next().unwrap_or_default();
            names.split(',').map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()).collect()
        })
        .collect()
}

/// The module each name `src/lib.rs` re-exports comes from (`Schema` → `source`), so that `crate::Schema` counts as
/// a use of `source`.
fn reexports(lib: &str) -> HashMap<String, String> {
    let mut from = HashMap::new();
    for statement in lib.split(';').map(str::trim).filter_map(|s| s.strip_prefix("pub use ")) {
        let mut idents = statement.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty());
        let Some(module) = idents.next() else { continue };
        for name in idents.filter(|&n| n != "self" && n != "as") {
            from.insert(name.to_owned(), module.to_owned());
        }
    }
    from
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The identifier at the start of `text`.
fn ident(text: &str) -> &str {
    let end = text.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(text.len());
    &text[..end]
}

/// The first path segment of every item of a `{...}` group at the start of `text` (`{measure, source::x, Plan}`).
fn group_heads(text: &str) -> Vec<&str> {
    let mut depth = 0;
    let mut heads = Vec::new();
    let mut start = 1;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' | ',' if depth == 1 => {
                heads.push(ident(text[start..i].trim_start()));
                start = i + 1;
                if c == '}' {
                    break;
                }
            }
            '}' => depth -= 1,
            _ => {}
        }
    }
    heads.into_iter().filter(|h| !h.is_empty()).collect()
}

/// Every module of the crate root a piece of code names, with the line it is named on: `crate::X`, `crate::{X, Y}`,
/// `super::...::X` where the `super`s climb to the root (`depth`: how deep the file's module is), and in
/// `src/lib.rs` itself (`root`) the bare `X::` of a module.
fn named(code: &str, depth: usize, root: bool, modules: &[String]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut inline_modules = 0;
    let mut offset = 0;
    for (n, line) in code.split('\n').enumerate() {
        let start = offset;
        offset += line.len() + 1;
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if line.starts_with("mod ") || line.starts_with("pub mod ") || line.starts_with("pub(crate) mod ") {
            inline_modules += usize::from(line.trim_end().ends_with('{'));
        }
        // A `use crate::{...}` group may span lines: read it from here to its end.
        let rest_of_file = &code[start..];
        let at_line = line;
        for (i, _) in at_line.match_indices("crate::") {
            if i > 0 && at_line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let after = &rest_of_file[i + "crate::".len()..];
            if after.starts_with('{') {
                found.extend(group_heads(after).into_iter().map(|h| (n + 1, h.to_owned())));
            } else {
                found.push((n + 1, ident(after).to_owned()));
            }
        }
        for (i, _) in at_line.match_indices("super::") {
            if i > 0 && at_line[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut after = &at_line[i..];
            let mut climbs = 0;
            while let Some(rest) = after.strip_prefix("super::") {
                climbs += 1;
                after = rest;
            }
            if climbs >= depth + inline_modules.min(1) {
                found.push((n + 1, ident(after).to_owned()));
            }
        }
        if root && !trimmed.starts_with("pub mod ") && !trimmed.starts_with("mod ") {
            for module in modules {
                let path = format!("{module}::");
                for (i, _) in at_line.match_indices(&path) {
                    let before = &at_line[..i];
                    if !before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                        found.push((n + 1, module.clone()));
                    }
                }
            }
        }
    }
    found
}

/// What breaks the order, one line per import: `file:line: ...`.
fn violations(src: &Path) -> Vec<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let layers = layers(&lib);
    let rank: HashMap<&str, usize> =
        layers.iter().enumerate().flat_map(|(i, line)| line.iter().map(move |m| (m.as_str(), i))).collect();
    let modules: Vec<String> = layers.iter().flatten().filter(|m| *m != "lib").cloned().collect();
    let from = reexports(&lib);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src/");
        let parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let top = parts[0].trim_end_matches(".rs").to_owned();
        if top == "main" || top == "cli" {
            continue;
        }
        let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod.rs"));
        let Some(&own) = rank.get(top.as_str()) else {
            problems.push(format!(
                "src/{}: module `{top}` has no layer: add it to the Layers section of src/lib.rs",
                relative.display()
            ));
            continue;
        };
        let code = std::fs::read_to_string(&file).expect("a source file");
        for (line, name) in named(&code, depth, top == "lib", &modules) {
            let target = match name.as_str() {
                n if rank.contains_key(n) && n != "lib" => n.to_owned(),
                n => from.get(n).cloned().unwrap_or_else(|| "lib".to_owned()),
            };
            if target == top {
                continue;
            }
            let Some(&theirs) = rank.get(target.as_str()) else {
                problems.push(format!("src/{}:{line}: `{target}` has no layer in src/lib.rs", relative.display()));
                continue;
            };
            if theirs >= own {
                problems.push(format!(
                    "src/{}:{line}: `{top}` uses `{target}` (crate::{name}), which is {} it in the layers of src/lib.rs",
                    relative.display(),
                    if theirs == own { "beside" } else { "above" }
                ));
            }
        }
    }
    problems
}

#[test]
fn every_import_points_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = violations(&src);
    assert!(problems.is_empty(), "imports against the layer order:\n{}", problems.join("\n"));
}

#[test]
fn the_layers_are_read_from_lib_rs() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).expect("lib.rs");
    let layers = layers(&lib);
    assert_eq!(layers.first().map(Vec::as_slice), Some(&["text", "error", "test_server"].map(String::from)[..]));
    assert_eq!(layers.iter().flatten().filter(|m| !m.chars().all(|c| c.is_ascii_lowercase() || c == '_')).count(), 0);
    assert!(layers.iter().any(|l| l == &["shadow"]));
    assert_eq!(reexports(&lib).get("Schema").map(String::as_str), Some("source"));
}

#[test]
fn an_import_against_the_order_is_named_with_its_file_and_line() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let src = dir.path();
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).expect("lib.rs");
    std::fs::write(src.join("lib.rs"), &lib).expect("write lib.rs");
    std::fs::create_dir(src.join("shadow")).expect("mkdir");
    std::fs::write(
        src.join("shadow/mod.rs"),
        "//! A doc link to [`crate::source::load`] is no import.\n\
         use crate::text::quote_ident;\n\
         use crate::{plan, Schema};\n\
         mod inner {\n    use super::*;\n}\n\
         fn f(d: &crate::measure::Thing) {}\n",
    )
    .expect("write shadow/mod.rs");
    std::fs::write(src.join("text.rs"), "fn g() -> super::Report { todo!() }\n").expect("write text.rs");
    assert_eq!(
        violations(src),
        [
            "src/shadow/mod.rs:3: `shadow` uses `source` (crate::Schema), which is above it in the layers of src/lib.rs",
            "src/shadow/mod.rs:7: `shadow` uses `measure` (crate::measure), which is above it in the layers of \
             src/lib.rs",
            "src/text.rs:1: `text` uses `report` (crate::Report), which is above it in the layers of src/lib.rs",
        ]
    );
}
