//! Traceability between `spec/` and the checks.
//!
//! A rule is defined by a heading `### <ID> — <title>` in `spec/*.md`, where `<ID>` is upper-case
//! letters, a hyphen and digits. This test fails when:
//!
//! * a rule is defined twice, or a heading that starts with a rule ID is not of that form;
//! * a defined rule is missing from the index table of `spec/README.md` (the table whose first
//!   column is headed `rule ID`), the index lists a rule that is not defined, or its checks cell
//!   says `pending`;
//! * a check named in backticks in the index or on a rule's `Checked by:` line does not exist, or
//!   the file holding it does not cite the rule (`name` is a function, `dir/file.rs` a file,
//!   `dir/file.rs::name` a function in that file; other backticked text is not a claim);
//! * a rule is cited by no check: no `.rs` file under `verify/` or `tests/`, and no doc comment in
//!   `src/` that holds a doc-test, mentions its ID;
//! * any scanned file (`.rs` under `verify/`, `tests/`, `src/`, `.md` under `spec/`, `verify/`,
//!   `tests/`, and the top-level `README.md`) cites an ID whose prefix is a defined prefix but
//!   which is not itself defined (a dangling citation).
//!
//! This file is not scanned: its self-tests hold deliberately broken examples (with made-up
//! prefixes), and nothing it says about a real rule would be a check of that rule.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// A rule defined in a spec file.
#[derive(Debug, Clone)]
struct RuleDef {
    id: String,
    file: String,
    line: usize,
    /// The text of the rule's `Checked by:` item, if it has one.
    checked_by: Option<String>,
}

/// One row of the index table.
#[derive(Debug, Clone)]
struct IndexRow {
    id: String,
    checks: String,
    line: usize,
}

/// A scanned file: its path relative to the crate, its whole text (for dangling citations and
/// function lookup) and the part of it whose citations count as checks.
#[derive(Debug, Clone)]
struct Source {
    path: String,
    text: String,
    check_text: String,
}

/// What the audit found.
#[derive(Debug, Default)]
struct Report {
    problems: Vec<String>,
    /// For each defined rule, the files whose checks cite it.
    cited_by: BTreeMap<String, BTreeSet<String>>,
    dangling: usize,
}

// ---------------------------------------------------------------------------------------------
// Tokens

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether `s` is a rule ID: `[A-Z]+-[0-9]+`.
fn is_rule_id(s: &str) -> bool {
    match s.split_once('-') {
        Some((p, n)) => {
            !p.is_empty()
                && !n.is_empty()
                && p.bytes().all(|b| b.is_ascii_uppercase())
                && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

fn prefix(id: &str) -> &str {
    id.split_once('-').map_or(id, |(p, _)| p)
}

/// Every whole-word token of the form `[A-Z]+-[0-9]+` in `text`, with its 1-based line.
/// `ARC-1` yields `ARC-1`, never `RC-1`; `GIL-1x` and `GIL-n` yield nothing.
fn rule_tokens(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let starts_word = i == 0 || !is_word_byte(b[i - 1]);
            if !(starts_word && b[i].is_ascii_uppercase()) {
                i += 1;
                continue;
            }
            let mut j = i;
            while j < b.len() && b[j].is_ascii_uppercase() {
                j += 1;
            }
            let mut k = j + 1;
            while k < b.len() && b[k].is_ascii_digit() {
                k += 1;
            }
            let has_digits = j < b.len() && b[j] == b'-' && k > j + 1;
            if has_digits && (k == b.len() || !is_word_byte(b[k])) {
                out.push((line[i..k].to_string(), n + 1));
            }
            i = j.max(i + 1);
        }
    }
    out
}

/// The rule citations in `text` whose prefix is one of `prefixes`.
fn citations(text: &str, prefixes: &BTreeSet<String>) -> Vec<(String, usize)> {
    rule_tokens(text)
        .into_iter()
        .filter(|(id, _)| prefixes.contains(prefix(id)))
        .collect()
}

/// The contents of the backtick spans in `text`.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

// ---------------------------------------------------------------------------------------------
// Spec files

/// The rule definitions of one spec file, and its malformed rule headings. Headings inside fenced
/// code blocks are not headings.
fn parse_definitions(file: &str, md: &str) -> (Vec<RuleDef>, Vec<String>) {
    let (mut defs, mut problems) = (Vec::<RuleDef>::new(), Vec::new());
    let lines: Vec<&str> = md.lines().collect();
    // `open`: no other heading since the last rule's, so a `Checked by:` line belongs to it.
    let (mut in_fence, mut open) = (false, false);
    for (n, line) in lines.iter().enumerate() {
        if line.starts_with("```") {
            in_fence = !in_fence;
        } else if in_fence {
            continue;
        } else if line.starts_with('#') {
            open = false;
            let Some(rest) = line.strip_prefix("### ") else {
                continue;
            };
            let (id, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            if !is_rule_id(id) {
                continue;
            }
            let titled = tail
                .strip_prefix("— ")
                .is_some_and(|t| !t.trim().is_empty());
            if !titled {
                problems.push(format!(
                    "{file}:{}: rule heading `{line}` is not of the form `### {id} — <title>`",
                    n + 1
                ));
            }
            defs.push(RuleDef {
                id: id.to_string(),
                file: file.to_string(),
                line: n + 1,
                checked_by: None,
            });
            open = true;
        } else if let Some(def) = defs.last_mut().filter(|d| open && d.checked_by.is_none())
            && let Some(at) = line.find("Checked by:")
        {
            def.checked_by = Some(list_item(&lines[n..], at));
        }
    }
    (defs, problems)
}

/// The text of the list item starting at column `at` of `lines[0]`, with its indented
/// continuation lines joined on.
fn list_item(lines: &[&str], at: usize) -> String {
    let mut item = lines[0][at..].to_string();
    for cont in &lines[1..] {
        if !cont.starts_with("  ") || cont.trim().is_empty() {
            break;
        }
        item.push(' ');
        item.push_str(cont.trim());
    }
    item
}

/// The rows of the index table (the table whose first header cell is `rule ID`).
fn parse_index(md: &str) -> Result<Vec<IndexRow>, String> {
    let lines: Vec<&str> = md.lines().collect();
    let header = lines
        .iter()
        .position(|l| table_cells(l).is_some_and(|c| c[0].eq_ignore_ascii_case("rule id")))
        .ok_or("spec/README.md has no index table (a table whose first column is `rule ID`)")?;
    let width = table_cells(lines[header]).map_or(0, |c| c.len());
    if width != 5 {
        return Err(format!(
            "spec/README.md:{}: the index needs 5 columns (rule ID | statement | checks | tool | bounds), found {width}",
            header + 1
        ));
    }
    let mut rows = Vec::new();
    for (n, line) in lines.iter().enumerate().skip(header + 2) {
        let Some(cells) = table_cells(line) else {
            break;
        };
        if cells.len() != width {
            return Err(format!(
                "spec/README.md:{}: index row has {} cells, expected {width}",
                n + 1,
                cells.len()
            ));
        }
        let Some((id, _)) = rule_tokens(&cells[0]).into_iter().next() else {
            return Err(format!(
                "spec/README.md:{}: index row names no rule ID",
                n + 1
            ));
        };
        rows.push(IndexRow {
            id,
            checks: cells[2].clone(),
            line: n + 1,
        });
    }
    Ok(rows)
}

/// The trimmed cells of a Markdown table row, or `None` if `line` is not one.
fn table_cells(line: &str) -> Option<Vec<String>> {
    let inner = line.trim().strip_prefix('|')?;
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    Some(inner.split('|').map(|c| c.trim().to_string()).collect())
}

// ---------------------------------------------------------------------------------------------
// Source files

/// Whether a doc-comment fence line (```info) opens a doc-test that rustdoc compiles.
fn is_doc_test_fence(info: &str) -> bool {
    const RUST: [&str; 4] = ["rust", "compile_fail", "should_panic", "no_run"];
    info.split(',').map(str::trim).all(|t| {
        t.is_empty()
            || RUST.contains(&t)
            || t.starts_with("edition")
            || (t.starts_with('E') && t.len() > 1 && t[1..].bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The doc content of a `///` or `//!` line, if it is one.
fn doc_content(line: &str) -> Option<&str> {
    let t = line.trim_start();
    let rest = t.strip_prefix("///").or_else(|| t.strip_prefix("//!"))?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// Whether a block of doc-comment lines opens a fence that rustdoc runs as a doc-test. Only
/// opening fences count: the info of a closing fence is empty.
fn holds_doc_test(block: &[&str]) -> bool {
    let mut in_fence = false;
    for line in block {
        let content = doc_content(line).unwrap_or("").trim_start();
        if let Some(info) = content.strip_prefix("```") {
            if !in_fence && is_doc_test_fence(info) {
                return true;
            }
            in_fence = !in_fence;
        }
    }
    false
}

/// `src` with every line blanked except the doc-comment blocks that hold a doc-test (so line
/// numbers are kept). Citations in such a block count as checked by its doc-tests.
fn doc_test_blocks(src: &str) -> String {
    let lines: Vec<&str> = src.lines().collect();
    let mut keep = vec![false; lines.len()];
    let mut start = 0;
    while start < lines.len() {
        if doc_content(lines[start]).is_none() {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < lines.len() && doc_content(lines[end]).is_some() {
            end += 1;
        }
        let has_test = holds_doc_test(&lines[start..end]);
        keep[start..end].iter_mut().for_each(|k| *k = has_test);
        start = end;
    }
    lines
        .iter()
        .zip(keep)
        .map(|(l, k)| if k { *l } else { "" })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `text` defines a function called `name`.
fn defines_fn(text: &str, name: &str) -> bool {
    let pat = format!("fn {name}");
    text.match_indices(&pat).any(|(at, _)| {
        let before_ok = at == 0 || !is_word_byte(text.as_bytes()[at - 1]);
        let after = text.as_bytes().get(at + pat.len()).copied();
        before_ok && after.is_none_or(|b| !is_word_byte(b))
    })
}

// ---------------------------------------------------------------------------------------------
// The audit

/// Checks definitions, index, check claims, coverage and dangling citations. `docs` are scanned
/// for dangling citations only.
fn audit(defs: &[RuleDef], index: &[IndexRow], sources: &[Source], docs: &[Source]) -> Report {
    let mut r = Report::default();
    let defined: BTreeMap<&str, &RuleDef> = defs.iter().map(|d| (d.id.as_str(), d)).collect();
    let prefixes: BTreeSet<String> = defs.iter().map(|d| prefix(&d.id).to_string()).collect();
    check_duplicates(defs, &mut r);
    check_index(&defined, index, &mut r);
    r.cited_by = coverage(defs, sources, &prefixes);
    check_coverage(&mut r);
    let cited_by = r.cited_by.clone();
    for row in index {
        let at = format!("spec/README.md:{}", row.line);
        check_claims(&row.id, &row.checks, &at, sources, &cited_by, &mut r);
    }
    for d in defs {
        let at = format!("{}:{}", d.file, d.line);
        match &d.checked_by {
            Some(item) => check_claims(&d.id, item, &at, sources, &cited_by, &mut r),
            None => r
                .problems
                .push(format!("{at}: {} has no `Checked by:` line", d.id)),
        }
    }
    check_dangling(&defined, &prefixes, sources.iter().chain(docs), &mut r);
    r
}

/// For each defined rule, the files whose checks cite it.
fn coverage(
    defs: &[RuleDef],
    sources: &[Source],
    prefixes: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut cited_by: BTreeMap<String, BTreeSet<String>> = defs
        .iter()
        .map(|d| (d.id.clone(), BTreeSet::new()))
        .collect();
    for s in sources {
        for (id, _) in citations(&s.check_text, prefixes) {
            if let Some(files) = cited_by.get_mut(&id) {
                files.insert(s.path.clone());
            }
        }
    }
    cited_by
}

fn check_coverage(r: &mut Report) {
    let uncited: Vec<&str> = r
        .cited_by
        .iter()
        .filter(|(_, files)| files.is_empty())
        .map(|(id, _)| id.as_str())
        .collect();
    if !uncited.is_empty() {
        r.problems.push(format!(
            "rules cited by no check (verify/, tests/ or a src/ doc-test): {}",
            uncited.join(", ")
        ));
    }
}

fn check_dangling<'a>(
    defined: &BTreeMap<&str, &RuleDef>,
    prefixes: &BTreeSet<String>,
    files: impl Iterator<Item = &'a Source>,
    r: &mut Report,
) {
    for s in files {
        for (id, line) in citations(&s.text, prefixes) {
            if !defined.contains_key(id.as_str()) {
                r.dangling += 1;
                r.problems.push(format!(
                    "{}:{line}: cites {id}, which no spec file defines",
                    s.path
                ));
            }
        }
    }
}

fn check_duplicates(defs: &[RuleDef], r: &mut Report) {
    let mut first = BTreeMap::<&str, &RuleDef>::new();
    for d in defs {
        match first.get(d.id.as_str()) {
            Some(f) => r.problems.push(format!(
                "{}:{}: {} is defined again (first at {}:{})",
                d.file, d.line, d.id, f.file, f.line
            )),
            None => {
                first.insert(&d.id, d);
            }
        }
    }
}

fn check_index(defined: &BTreeMap<&str, &RuleDef>, index: &[IndexRow], r: &mut Report) {
    let mut listed = BTreeSet::new();
    for row in index {
        let at = format!("spec/README.md:{}", row.line);
        if !defined.contains_key(row.id.as_str()) {
            r.problems.push(format!(
                "{at}: the index lists {}, which is not defined",
                row.id
            ));
        }
        if !listed.insert(row.id.as_str()) {
            r.problems
                .push(format!("{at}: the index lists {} twice", row.id));
        }
        if row.checks.to_ascii_lowercase().contains("pending") || row.checks.is_empty() {
            r.problems.push(format!(
                "{at}: the index names no check for {} (pending)",
                row.id
            ));
        }
    }
    for id in defined.keys() {
        if !listed.contains(id) {
            r.problems.push(format!(
                "spec/README.md: {id} is defined but missing from the index"
            ));
        }
    }
}

/// Each backticked check named in `text` must exist, in a file whose checks cite `id`.
fn check_claims(
    id: &str,
    text: &str,
    at: &str,
    sources: &[Source],
    cited_by: &BTreeMap<String, BTreeSet<String>>,
    r: &mut Report,
) {
    let citing = cited_by.get(id);
    for claim in backticked(text) {
        let (path, name) = match claim.split_once("::") {
            Some((p, n)) => (Some(p), Some(n)),
            None if claim.contains('/') || claim.ends_with(".rs") => (Some(claim), None),
            None if !claim.is_empty() && claim.bytes().all(is_word_byte) => (None, Some(claim)),
            None => continue,
        };
        let holders: Vec<&Source> = sources
            .iter()
            .filter(|s| path.is_none_or(|p| s.path == p))
            .filter(|s| name.is_none_or(|n| defines_fn(&s.text, n)))
            .collect();
        if holders.is_empty() {
            r.problems.push(format!(
                "{at}: {id} names check `{claim}`, which does not exist"
            ));
        } else if !holders
            .iter()
            .any(|s| citing.is_some_and(|c| c.contains(&s.path)))
        {
            let files: Vec<&str> = holders.iter().map(|s| s.path.as_str()).collect();
            r.problems.push(format!(
                "{at}: {id} names check `{claim}`, but {} does not cite {id}",
                files.join(", ")
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the crate

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Files under `dir` (recursively) whose name ends with `ext`, sorted.
fn files_under(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p, ext));
        } else if p.to_string_lossy().ends_with(ext) {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn relative(p: &Path) -> String {
    p.strip_prefix(root())
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

const THIS_FILE: &str = "tests/spec_trace.rs";

/// The `.rs` files whose citations count as checks (with the part that counts).
fn check_sources() -> Vec<Source> {
    let mut out = Vec::new();
    for dir in ["verify", "tests", "src"] {
        for p in files_under(&root().join(dir), ".rs") {
            let (path, text) = (relative(&p), read(&p));
            if path == THIS_FILE {
                continue;
            }
            let check_text = if dir == "src" {
                doc_test_blocks(&text)
            } else {
                text.clone()
            };
            out.push(Source {
                path,
                text,
                check_text,
            });
        }
    }
    out
}

/// Markdown files scanned for dangling citations.
fn doc_sources() -> Vec<Source> {
    let mut paths = Vec::new();
    for dir in ["spec", "verify", "tests"] {
        paths.extend(files_under(&root().join(dir), ".md"));
    }
    let readme = root().join("README.md");
    if readme.exists() {
        paths.push(readme);
    }
    paths
        .into_iter()
        .map(|p| Source {
            path: relative(&p),
            text: read(&p),
            check_text: String::new(),
        })
        .collect()
}

fn spec_definitions() -> (Vec<RuleDef>, Vec<String>) {
    let (mut defs, mut problems) = (Vec::new(), Vec::new());
    for p in files_under(&root().join("spec"), ".md") {
        let (d, pr) = parse_definitions(&relative(&p), &read(&p));
        defs.extend(d);
        problems.extend(pr);
    }
    (defs, problems)
}

/// Prints, for each rule, the files whose checks cite it, then the summary line.
fn print_summary(defs: &[RuleDef], report: &Report) {
    for (id, files) in &report.cited_by {
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let shown = if files.is_empty() {
            "NOT CHECKED".to_string()
        } else {
            files.join(", ")
        };
        println!("  {id:<7} {shown}");
    }
    let mut per_prefix = BTreeMap::<&str, usize>::new();
    for d in defs {
        *per_prefix.entry(prefix(&d.id)).or_default() += 1;
    }
    let per_prefix: Vec<String> = per_prefix.iter().map(|(p, n)| format!("{p} {n}")).collect();
    let unchecked = report.cited_by.values().filter(|f| f.is_empty()).count();
    let checked = match unchecked {
        0 => "every rule checked".to_string(),
        n => format!("{n} not checked"),
    };
    println!(
        "traceability: {} rules ({}), {checked}, {} dangling citations",
        defs.len(),
        per_prefix.join(", "),
        report.dangling
    );
}

#[test]
fn every_rule_is_indexed_and_checked_and_no_citation_dangles() {
    let (defs, mut problems) = spec_definitions();
    assert!(
        !defs.is_empty(),
        "no rule headings `### ID — title` in spec/*.md"
    );
    let index =
        parse_index(&read(&root().join("spec/README.md"))).unwrap_or_else(|e| panic!("{e}"));
    let report = audit(&defs, &index, &check_sources(), &doc_sources());
    problems.extend(report.problems.iter().cloned());

    print_summary(&defs, &report);
    assert!(
        problems.is_empty(),
        "traceability failed ({} problem(s)):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// Self-tests: the helpers on small in-memory examples, each broken case next to the sound one.
// They use made-up prefixes (AB, CD) so that nothing here reads as a citation of a real rule.

fn def(id: &str) -> RuleDef {
    RuleDef {
        id: id.into(),
        file: "spec/x.md".into(),
        line: 1,
        checked_by: Some("Checked by: `t_ab`".into()),
    }
}

fn row(id: &str, checks: &str) -> IndexRow {
    IndexRow {
        id: id.into(),
        checks: checks.into(),
        line: 1,
    }
}

fn src(path: &str, text: &str) -> Source {
    Source {
        path: path.into(),
        text: text.into(),
        check_text: text.into(),
    }
}

const SPEC: &str = "# X\n\n### AB-1 — First\n\nText.\n\n* **Checked by:** `t_ab`\n  and `verify/ab.rs`.\n\n### AB-2 — Second\n\n## Other\n\n* **Checked by:** `stray`\n\n```\n### AB-3 — in a code block\n```\n";

#[test]
fn self_test_definitions_and_checked_by_are_parsed() {
    let (defs, problems) = parse_definitions("spec/x.md", SPEC);
    let ids: Vec<&str> = defs.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["AB-1", "AB-2"]);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        defs[0].checked_by.as_deref(),
        Some("Checked by:** `t_ab` and `verify/ab.rs`.")
    );
    assert_eq!(
        defs[1].checked_by, None,
        "a later section's line is not AB-2's"
    );
}

#[test]
fn self_test_malformed_heading_is_reported() {
    let (defs, problems) = parse_definitions(
        "spec/x.md",
        "### AB-1 - hyphen, not em dash\n### Not a rule\n",
    );
    assert_eq!(defs.len(), 1);
    assert_eq!(problems.len(), 1, "{problems:?}");
}

#[test]
fn self_test_tokens_respect_word_boundaries() {
    let got: Vec<String> = rule_tokens("AB-1, XAB-2 AB-3x AB-n (AB-12) CD-4.\nAB-5—AB-6")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(got, ["AB-1", "XAB-2", "AB-12", "CD-4", "AB-5", "AB-6"]);
    let prefixes = BTreeSet::from(["AB".to_string()]);
    let cited: Vec<String> = citations("XAB-2 AB-7 CD-4", &prefixes)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(cited, ["AB-7"], "only defined prefixes, only whole words");
}

#[test]
fn self_test_index_is_parsed() {
    let md = "intro\n\n| rule ID | statement | checks | tool | bounds |\n|---|---|---|---|---|\n| AB-1 | s | `t_ab` | loom | exhaustive |\n| AB-2 | s | pending | — | — |\n\nafter\n";
    let rows = parse_index(md).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[1].id.as_str(), rows[1].checks.as_str()),
        ("AB-2", "pending")
    );
    assert!(
        parse_index("| rule ID | statement |\n|---|---|\n").is_err(),
        "wrong width"
    );
    assert!(parse_index("no table\n").is_err());
}

#[test]
fn self_test_doc_test_blocks_only() {
    let code = "/// AB-1: no test here\nfn a() {}\n/// AB-2: has one\n///\n/// ```compile_fail,E0277\n/// x\n/// ```\nfn b() {}\n/// AB-3\n/// ```text\n/// y\n/// ```\nfn c() {}\n// AB-4 plain comment\n";
    let kept = doc_test_blocks(code);
    let ids: Vec<String> = rule_tokens(&kept).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["AB-2"]);
    assert_eq!(
        kept.split('\n').count(),
        code.lines().count(),
        "line numbers kept"
    );
}

/// The sound example: two rules, both indexed, both cited, claims resolve.
fn sound() -> (Vec<RuleDef>, Vec<IndexRow>, Vec<Source>) {
    let defs = vec![def("AB-1"), def("AB-2")];
    let index = vec![row("AB-1", "`t_ab`"), row("AB-2", "`verify/ab.rs::t_ab`")];
    let sources = vec![src(
        "verify/ab.rs",
        "/// AB-1, AB-2\n#[test]\nfn t_ab() {}\n",
    )];
    (defs, index, sources)
}

#[test]
fn self_test_sound_example_passes() {
    let (defs, index, sources) = sound();
    let r = audit(&defs, &index, &sources, &[]);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.dangling, 0);
}

#[test]
fn self_test_twin_missing_from_index_is_caught() {
    let (defs, mut index, sources) = sound();
    index.pop();
    let r = audit(&defs, &index, &sources, &[]);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("AB-2 is defined but missing from the index")),
        "{:?}",
        r.problems
    );
}

#[test]
fn self_test_twin_undefined_index_row_is_caught() {
    let (defs, mut index, sources) = sound();
    index.push(row("AB-9", "`t_ab`"));
    let r = audit(&defs, &index, &sources, &[]);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("lists AB-9, which is not defined")),
        "{:?}",
        r.problems
    );
}

#[test]
fn self_test_twin_uncited_rule_is_caught() {
    let (defs, index, _) = sound();
    let sources = vec![src("verify/ab.rs", "/// AB-1\nfn t_ab() {}\n")];
    let r = audit(&defs, &index, &sources, &[]);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("cited by no check") && p.ends_with("AB-2")),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems.iter().any(|p| p.contains("does not cite AB-2")),
        "the claim is stale too"
    );
}

#[test]
fn self_test_twin_dangling_citation_is_caught() {
    let (defs, index, mut sources) = sound();
    sources.push(src("tests/other.rs", "// checks AB-3 and CD-3\n"));
    let docs = [src("spec/x.md", "see AB-4")];
    let r = audit(&defs, &index, &sources, &docs);
    assert_eq!(
        r.dangling, 2,
        "AB-3 and AB-4; CD is not a defined prefix: {:?}",
        r.problems
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.starts_with("tests/other.rs:1: cites AB-3"))
    );
}

#[test]
fn self_test_twin_pending_and_missing_checks_are_caught() {
    let (defs, mut index, sources) = sound();
    index[0].checks = "pending".into();
    index[1].checks = "`no_such_test`".into();
    let r = audit(&defs, &index, &sources, &[]);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("no check for AB-1 (pending)")),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("`no_such_test`, which does not exist")),
        "{:?}",
        r.problems
    );
}

#[test]
fn self_test_twin_duplicate_definition_is_caught() {
    let (mut defs, index, sources) = sound();
    defs.push(def("AB-1"));
    let r = audit(&defs, &index, &sources, &[]);
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("AB-1 is defined again")),
        "{:?}",
        r.problems
    );
}
