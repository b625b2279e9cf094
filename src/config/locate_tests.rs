//! Tests of the position index (`locate.rs`), in their own file to keep
//! that one short.

use super::*;
use crate::config::source::SourceFile;

fn p(segs: &[&str]) -> YamlPath {
    let mut path = YamlPath::root();
    for s in segs {
        match s.parse::<usize>() {
            Ok(i) => path = path.index(i),
            Err(_) => path = path.key(s),
        }
    }
    path
}

const DOC: &str = "name: x
phases:
  - name: a
    durration: 5s
  - {name: \"b c\", duration: 'fast'}
expect:
  \"p99.9\": < 1s
anchor: &a [1, 2]
alias: *a
";

#[test]
fn keys_and_values_are_found_by_path() {
    let loc = Locator::build(DOC);
    // (case, path, key rather than value, (line, column, len))
    type Case<'a> = (&'a str, &'a [&'a str], bool, (usize, usize, usize));
    let cases: &[Case] = &[
        ("a top-level key", &["name"], true, (1, 1, 4)),
        ("a top-level value", &["name"], false, (1, 7, 1)),
        (
            "a key in a block list item",
            &["phases", "0", "durration"],
            true,
            (4, 5, 9),
        ),
        (
            "a block list item points at its first key",
            &["phases", "0"],
            false,
            (3, 5, 4),
        ),
        (
            "a flow mapping points at its brace",
            &["phases", "1"],
            false,
            (5, 5, 1),
        ),
        (
            "a double-quoted value spans its quotes",
            &["phases", "1", "name"],
            false,
            (5, 12, 5),
        ),
        (
            "a single-quoted value spans its quotes",
            &["phases", "1", "duration"],
            false,
            (5, 29, 6),
        ),
        (
            "a quoted key with a dot",
            &["expect", "p99.9"],
            true,
            (7, 3, 7),
        ),
        ("an alias spans its name", &["alias"], false, (9, 8, 2)),
        (
            "an item of a flow list",
            &["anchor", "1"],
            false,
            (8, 16, 1),
        ),
    ];
    for (case, path, key, (line, column, len)) in cases {
        let path = p(path);
        let got = if *key {
            loc.key(&path)
        } else {
            loc.value(&path)
        };
        assert_eq!(
            got,
            Some(Span {
                line: *line,
                column: *column,
                len: *len
            }),
            "{case}"
        );
    }
}

#[test]
fn paths_display_with_quoted_dotted_keys() {
    assert_eq!(
        p(&["phases", "1", "expect", "p99.9"]).to_string(),
        "phases[1].expect.\"p99.9\""
    );
    assert_eq!(p(&["load", "rate"]).to_string(), "load.rate");
    assert_eq!(YamlPath::root().to_string(), "");
}

#[test]
fn positions_fall_back_to_the_nearest_known_ancestor() {
    let mut file = SourceFile::new("x.yaml", DOC);
    file.index();
    // `alias[0]` only exists after alias expansion.
    let span = file.value_span(&p(&["alias", "0"]));
    assert_eq!(span.map(|s| s.line), Some(9));
}

#[test]
fn duplicates_and_extra_documents_are_recorded() {
    let loc = Locator::build("a: 1\nb: 2\na: 3\n---\nc: 4\n");
    assert_eq!(loc.duplicate("a").map(|s| s.line), Some(3));
    assert_eq!(loc.second_document().map(|s| s.line), Some(4));
}

#[test]
fn complex_keys_do_not_confuse_the_index() {
    let loc = Locator::build("? [a, b]\n: 1\nname: x\n");
    assert_eq!(loc.value(&p(&["name"])).map(|s| s.line), Some(3));
}
