//! The floors of `docs/architecture.md` hold in the code: every `crate::…` import in `src/`
//! points at a module on a lower floor, or one listed before it on its own floor.
//!
//! The table in the document is the source of truth: this test reads it, so moving a module
//! means changing the design of record first. `crate::app` (the `AppState` handle passed
//! down to every request and task) is the one documented exception.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Module → (floor, position on the floor), from the "Layers" table of the architecture page.
fn floors() -> HashMap<String, (usize, usize)> {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let section = doc.split("## Layers").nth(1).expect("a Layers section").split("\n## ").next().unwrap();
    let mut ranks = HashMap::new();
    for line in section.lines().filter(|l| l.starts_with("| ") && l.as_bytes().get(2).is_some_and(u8::is_ascii_digit)) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        let floor: usize = cols[1].parse().unwrap();
        let mut modules = String::new();
        let mut depth = 0;
        for ch in cols[2].chars() {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ if depth == 0 => modules.push(ch),
                _ => {}
            }
        }
        for (pos, name) in modules.split('`').skip(1).step_by(2).enumerate() {
            let unit = name.trim_end_matches('/').trim_end_matches(".rs").to_string();
            assert!(ranks.insert(unit.clone(), (floor, pos)).is_none(), "{unit} listed twice");
        }
    }
    ranks
}

/// The unit a source file belongs to: its top module, except the inbound door of `channels`.
fn unit_of(rel: &str) -> String {
    let rel = rel.trim_end_matches(".rs");
    if rel.starts_with("channels/inbound") {
        return "channels/inbound".into();
    }
    rel.split('/').next().unwrap().to_string()
}

/// The modules a file's non-test code names through `crate::`.
fn imports(source: &str) -> Vec<String> {
    let code = source.split("#[cfg(test)]").next().unwrap();
    let mut found = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap();
        for rest in line.split("crate::").skip(1) {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if name == "channels" && rest.starts_with("channels::inbound") {
                found.push("channels/inbound".to_string());
            } else if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_one_above_it_in_the_architecture_page() {
    let ranks = floors();
    assert!(ranks.len() >= 20, "the Layers table was not read: {ranks:?}");
    let src = root().join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut broken = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let unit = unit_of(&rel);
        let Some(&own) = ranks.get(&unit) else {
            broken.push(format!("{rel}: module `{unit}` is on no floor of docs/architecture.md"));
            continue;
        };
        for target in imports(&std::fs::read_to_string(&file).unwrap()) {
            if target == unit || target == "app" {
                continue;
            }
            match ranks.get(&target) {
                Some(&theirs) if theirs < own => {}
                Some(&theirs) => broken.push(format!("{rel}: `{unit}` {own:?} imports `{target}` {theirs:?}")),
                None => broken.push(format!("{rel}: imports `{target}`, which is on no floor")),
            }
        }
    }
    assert!(broken.is_empty(), "imports that break the floors:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_an_upward_import() {
    // The hub (floor 4) reaching for conversations (floor 9) must be caught.
    let ranks = floors();
    let found = imports("use crate::conversations::post;\n// crate::api in a comment\n");
    assert_eq!(found, ["conversations"]);
    assert!(ranks["conversations"] > ranks["hub"]);
    assert!(ranks["channels/inbound"] > ranks["conversations"] && ranks["channels"] < ranks["conversations"]);
}
