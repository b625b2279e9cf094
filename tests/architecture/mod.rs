//! The layering the README's code map describes, kept by a test: no cycle
//! between top-level modules of `src/`, verifiers that depend on evidence
//! and not on the runner, and the agent server above the faults.
//!
//! Read from the source (`crate::name` paths outside comments and test
//! code), so the check needs no tool and fails with the cycle it found.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules `lib.rs` declares.
fn top_modules() -> Vec<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    lib.lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l
                .strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))?;
            Some(rest.trim_end_matches(';').to_string())
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its test module(s).
fn production_code(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string());
    let name = name.unwrap_or_default();
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).expect("source file");
    let mut code = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        // Test modules sit at the end of a file by this codebase's style.
        if trimmed.starts_with("#[cfg(test)]") {
            break;
        }
        if !trimmed.starts_with("//") {
            code.push_str(line);
            code.push('\n');
        }
    }
    code
}

/// Top-level module → the top-level modules its code names.
fn graph() -> Graph {
    let modules = top_modules();
    let known: BTreeSet<&str> = modules.iter().map(String::as_str).collect();
    let mut graph = Graph::new();
    for module in &modules {
        let mut files = Vec::new();
        let file = src().join(format!("{module}.rs"));
        if file.exists() {
            files.push(file);
        }
        rust_files(&src().join(module), &mut files);
        let deps = graph.entry(module.clone()).or_default();
        for file in files {
            let code = production_code(&file);
            for (i, _) in code.match_indices("crate::") {
                let name: String = code[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != *module && known.contains(name.as_str()) {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// A path from `from` back to itself, if any.
fn cycle_through(graph: &Graph, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_string(), vec![from.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(from.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = graph();
    assert!(graph.len() >= 15, "{graph:?}");
    let cycles: Vec<String> = graph
        .keys()
        .filter_map(|m| cycle_through(&graph, m))
        .map(|c| c.join(" → "))
        .collect();
    assert!(cycles.is_empty(), "module cycles:\n{}", cycles.join("\n"));
}

#[test]
fn verifiers_read_evidence_not_the_runner_and_faults_do_not_know_the_agent() {
    let graph = graph();
    let forbidden = [
        ("verify", "runner"),
        ("verify", "report"),
        ("journal", "runner"),
        ("journal", "verify"),
        ("journal", "report"),
        ("faults", "agent"),
        ("faults", "runner"),
        ("config", "demo"),
        ("config", "report"),
        ("metrics", "runner"),
    ];
    for (from, to) in forbidden {
        assert!(
            !graph[from].contains(to),
            "`{from}` uses `crate::{to}`; it depends on {:?}",
            graph[from]
        );
    }
}

#[test]
fn the_scanner_sees_a_real_dependency() {
    // The check can fail: the runner does use the faults, and the test
    // module's own cut (`#[cfg(test)]`) does not hide production code.
    let graph = graph();
    assert!(graph["runner"].contains("faults"), "{:?}", graph["runner"]);
    assert!(graph["report"].contains("journal"), "{:?}", graph["report"]);
    let mut looped = graph.clone();
    looped
        .entry("journal".into())
        .or_default()
        .insert("runner".into());
    assert!(cycle_through(&looped, "journal").is_some());
}
