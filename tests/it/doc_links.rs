//! Every relative link in the README, the changelog and `docs/` resolves to a file inside the
//! repository (issue 14: the repo never points outside itself, and a moved page breaks here,
//! not for a reader).

use std::path::{Component, Path, PathBuf};

/// The markdown link targets in `text`: what stands between `](` and the next `)`.
fn targets(text: &str) -> Vec<&str> {
    text.match_indices("](")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            rest.find(')').map(|end| &rest[..end]).filter(|t| !t.contains(char::is_whitespace))
        })
        .collect()
}

/// `path` with `.` and `..` folded, so a link cannot leave the repository unnoticed.
fn normalized(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves_inside_the_repo() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md"), root.join("CHANGELOG.md"), root.join("clients/js/README.md")];
    for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
        let path = entry.expect("docs entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        for target in targets(&text) {
            if target.starts_with('#')
                || target.split_once(':').is_some_and(|(s, _)| s.chars().all(char::is_alphabetic))
            {
                continue; // an anchor on the same page, or a URL (https:, mailto:)
            }
            let file = target.split('#').next().unwrap_or_default();
            let resolved = normalized(&page.parent().unwrap().join(file));
            checked += 1;
            if !resolved.starts_with(&root) || !resolved.exists() {
                broken.push(format!("{}: {target}", page.strip_prefix(&root).unwrap().display()));
            }
        }
    }
    assert!(checked > 50, "only {checked} relative links found: is the parser still reading the pages?");
    assert!(broken.is_empty(), "links that do not resolve inside the repository:\n{}", broken.join("\n"));
}
