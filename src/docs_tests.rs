//! The documentation holds together (issue 22): README.md is a front page, small and with a map
//! of docs/, and the reference lives in docs/*.md, one page per topic. Moving text between pages
//! breaks links silently on GitHub, so every relative link of these pages must reach a file that
//! exists, and every `#anchor` a heading of its target, by GitHub's slug rules.
//!
//! The Nix build's source filter keeps no Markdown, so there these tests are skipped.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The front page must stay a front page: past this the reference is creeping back in.
const README_MAX_BYTES: u64 = 16_000;

/// README.md, then docs/*.md in name order; None (skipped) where the Markdown is absent.
fn pages() -> Option<Vec<PathBuf>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = root.join("README.md");
    if !readme.exists() {
        eprintln!(
            "skipped: README.md is not in this source tree (the Nix build keeps no Markdown)"
        );
        return None;
    }
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    docs.insert(0, readme);
    Some(docs)
}

/// The lines outside fenced code blocks, numbered from 1: a `#` or `](` in a code block is code.
fn outside_fences(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            lines.push((i + 1, line));
        }
    }
    lines
}

/// GitHub's anchor for a heading: lowercase; drop every character but letters, digits, spaces,
/// hyphens and underscores (so backticks, dots, colons, parentheses, `→` go); each space becomes
/// a hyphen. The same slug again gets `-1`, `-2`, … (handled in `anchors`).
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor a Markdown file offers: one per ATX heading outside code blocks.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut anchors = BTreeSet::new();
    for (_, line) in outside_fences(text) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim_end_matches('#'));
        let n = seen.entry(base.clone()).or_insert(0);
        anchors.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    anchors
}

/// The relative link targets of a page, with their line numbers. Inline code is blanked first
/// (a span may run over lines within a paragraph), since `[a](b)` in code is not a link.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut in_code = false;
    for (n, line) in outside_fences(text) {
        if line.trim().is_empty() {
            in_code = false; // a code span never crosses a paragraph
        }
        let mut prose = String::new();
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            }
            prose.push(if in_code || c == '`' { ' ' } else { c });
        }
        for (at, _) in prose.match_indices("](") {
            let rest = &prose[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            let external = ["http://", "https://", "mailto:"];
            if !target.is_empty() && !external.iter().any(|s| target.starts_with(s)) {
                found.push((n, target.to_string()));
            }
        }
    }
    found
}

/// The file a link of `page` points to (the page itself for `#anchor`), and its anchor.
fn resolve(page: &Path, target: &str) -> (PathBuf, Option<String>) {
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a.to_string())),
        None => (target, None),
    };
    let file = if path.is_empty() {
        page.to_path_buf()
    } else {
        page.parent().unwrap().join(path)
    };
    (file, anchor)
}

#[test]
fn slugs_follow_githubs_rules() {
    for (heading, anchor) in [
        (
            "Worker capacity: busy workers are never scaled away",
            "worker-capacity-busy-workers-are-never-scaled-away",
        ),
        (
            "Trigger metadata (`type: temporal`)",
            "trigger-metadata-type-temporal",
        ),
        ("Cluster, Lease and dry run", "cluster-lease-and-dry-run"),
        ("With the image built by Nix", "with-the-image-built-by-nix"),
        ("Moves: 0 → 3 (a/b.c+d)", "moves-0--3-abcd"),
        ("snake_case and kebab-case", "snake_case-and-kebab-case"),
    ] {
        assert_eq!(slug(heading), anchor, "{heading}");
    }
    let twice = anchors("# Tests\n```\n# not a heading\n```\n## Tests\n### Tests\n");
    let expected = ["tests", "tests-1", "tests-2"].map(String::from);
    assert_eq!(twice, BTreeSet::from(expected));
}

#[test]
fn links_reach_existing_files_and_headings() {
    let Some(pages) = pages() else { return };
    let mut problems = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let name = page
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .display();
        for (line, target) in links(&text) {
            let (file, anchor) = resolve(page, &target);
            if !file.exists() {
                problems.push(format!("{name}:{line}: ({target}): no such file"));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if file.extension().is_some_and(|e| e == "md") {
                let headings = anchors(&std::fs::read_to_string(&file).unwrap());
                if !headings.contains(&anchor) {
                    problems.push(format!("{name}:{line}: ({target}): no heading #{anchor}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_readme_is_a_front_page_with_a_map_of_every_doc() {
    let Some(pages) = pages() else { return };
    let readme = &pages[0];
    let size = std::fs::metadata(readme).unwrap().len();
    assert!(
        size <= README_MAX_BYTES,
        "README.md is {size} bytes, over {README_MAX_BYTES}: move reference text into docs/"
    );
    // A page nobody links to from the front page is a page nobody finds.
    let text = std::fs::read_to_string(readme).unwrap();
    let linked: BTreeSet<PathBuf> = links(&text)
        .iter()
        .map(|(_, t)| resolve(readme, t).0.canonicalize().unwrap_or_default())
        .collect();
    let unlinked: Vec<String> = pages[1..]
        .iter()
        .filter(|p| !linked.contains(&p.canonicalize().unwrap()))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        unlinked.is_empty(),
        "docs not linked from README.md: {unlinked:?}"
    );
}
