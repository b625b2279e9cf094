//! A cheap, linear scan of a YAML text for its nesting depth, run before
//! any YAML parser sees the text.
//!
//! Both parsers keep a "simple key" per open flow collection and revisit all
//! of them at every token, so 64,000 nested `[` or `{a: ` took 27 to 68 s
//! and 128,000 unclosed `[` more than 100 s. This scan only needs to be
//! conservative: it may count a level that is not one (a line of a block
//! scalar it could not tell apart), never miss one, so a text it lets
//! through nests at most [`MAX_DEPTH`](super::limits::MAX_DEPTH) deep.
//!
//! What it understands of YAML: block indentation (each deeper indent, and
//! each `- ` or `? ` on a line, is a level), flow collections (`[` and `{`
//! open one where a node can start, and anywhere inside another flow
//! collection), quoted scalars (may span lines), comments, and block
//! scalars (`|`, `>`), whose more-indented lines are skipped.

/// Where the text first nests deeper than the limit: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    pub line: usize,
    pub column: usize,
}

/// A block scalar being skipped: the indent its lines must exceed, and
/// once known the indent of its first line.
#[derive(Clone, Copy)]
struct BlockScalar {
    parent: usize,
    content: Option<usize>,
}

#[derive(Default)]
struct Scan {
    /// The open block levels: indent, and whether it is a sequence (a
    /// sequence may sit at its parent key's indent, `key:\n- item`).
    levels: Vec<(usize, bool)>,
    /// Open flow collections.
    flow: usize,
    /// Inside a quoted scalar: its quote character.
    quote: Option<u8>,
    block_scalar: Option<BlockScalar>,
}

/// Checks that `text` nests at most `max` levels deep.
pub fn check_depth(text: &str, max: usize) -> Result<(), TooDeep> {
    let mut scan = Scan::default();
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        scan.line(line, max).map_err(|byte| TooDeep {
            line: n + 1,
            column: line.get(..byte).map_or(byte, |s| s.chars().count()) + 1,
        })?;
    }
    Ok(())
}

fn indent_of(line: &str) -> usize {
    line.bytes().take_while(|&b| b == b' ').count()
}

/// YAML's white space within a line.
fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_blank(s: &str) -> bool {
    s.bytes().all(|b| b == b' ' || b == b'\t')
}

impl Scan {
    fn depth(&self) -> usize {
        self.levels.len() + self.flow
    }

    /// Scans one line; `Err(byte)` (0-based) where it got too deep.
    fn line(&mut self, line: &str, max: usize) -> Result<(), usize> {
        let indent = indent_of(line);
        if let Some(block) = &mut self.block_scalar {
            if is_blank(line) {
                return Ok(());
            }
            match block.content {
                None if indent > block.parent => {
                    block.content = Some(indent);
                    return Ok(());
                }
                Some(content) if indent >= content => return Ok(()),
                _ => self.block_scalar = None,
            }
        }
        // Bytes, not chars: every character that matters is ASCII, and a
        // UTF-8 continuation byte never is.
        let chars = line.as_bytes();
        let mut i = 0;
        let mut start = false;
        if self.quote.is_none() && self.flow == 0 {
            let rest = &line[indent..];
            if is_blank(rest) || rest.starts_with('#') {
                return Ok(());
            }
            while self.levels.last().is_some_and(|&(top, _)| top > indent) {
                self.levels.pop();
            }
            let dash = chars.get(indent) == Some(&b'-')
                && chars.get(indent + 1).is_none_or(|&c| is_space(c));
            if !dash && self.levels.last() == Some(&(indent, true)) {
                // A key after the items of a sequence at its indent.
                self.levels.pop();
            }
            self.push_level(indent, dash, max)?;
            i = indent;
            start = true;
            // `--- [` and `... ` at the left margin: a node may follow.
            if indent == 0
                && (line.starts_with("---") || line.starts_with("..."))
                && chars.get(3).is_none_or(|&c| is_space(c))
            {
                i = 3;
            }
            // Each `- `, `? ` or `: ` is a level at its column (`- - x`),
            // and the node after the last one a level of its own.
            let mut content = None;
            loop {
                while chars.get(i).is_some_and(|&c| c == b' ') {
                    i += 1;
                }
                // `: ` at the start of a line is the value of a `? ` key.
                let marker = matches!(chars.get(i), Some(b'-' | b'?' | b':'))
                    && chars.get(i + 1).is_none_or(|&c| is_space(c));
                if !marker {
                    break;
                }
                // `- ` is a sequence at its column, `? `/`: ` a mapping (complex key).
                self.push_level(i, chars[i] == b'-', max)?;
                i += 1;
                content = Some(i + chars[i..].iter().take_while(|&&c| c == b' ').count());
            }
            if let Some(column) = content {
                self.push_level(column, false, max)?;
            }
        }
        let mut prev_space = i == 0 || chars.get(i.wrapping_sub(1)).is_some_and(|&c| is_space(c));
        while i < chars.len() {
            let c = chars[i];
            if let Some(q) = self.quote {
                if q == b'"' && c == b'\\' {
                    i += 2;
                    continue;
                }
                if c == q {
                    if q == b'\'' && chars.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    self.quote = None;
                    start = false;
                }
                i += 1;
                prev_space = false;
                continue;
            }
            let next_space = chars.get(i + 1).is_none_or(|&c| is_space(c));
            match c {
                b' ' | b'\t' => {
                    prev_space = true;
                    i += 1;
                    continue;
                }
                b'#' if prev_space => return Ok(()),
                b'\'' | b'"' if start => self.quote = Some(c),
                b'[' | b'{' if start || self.flow > 0 => {
                    self.flow += 1;
                    if self.depth() > max {
                        return Err(i);
                    }
                    start = true;
                    prev_space = false;
                    i += 1;
                    continue;
                }
                b']' | b'}' if self.flow > 0 => self.flow -= 1,
                b',' if self.flow > 0 => {
                    start = true;
                    prev_space = false;
                    i += 1;
                    continue;
                }
                // A value follows `: ` (in flow also `:` right after a key).
                b':' if next_space || self.flow > 0 => {
                    start = true;
                    prev_space = false;
                    i += 1;
                    continue;
                }
                b'|' | b'>' if start && self.flow == 0 => {
                    // The parent's indent is at most the innermost open level.
                    let parent = self.levels.last().map_or(0, |&(indent, _)| indent);
                    self.block_scalar = Some(BlockScalar {
                        parent,
                        content: None,
                    });
                    return Ok(());
                }
                // An anchor or tag comes before the node it names: skip it
                // and let the node start after it.
                b'&' | b'!' if start => {
                    while chars.get(i).is_some_and(|&c| !is_space(c)) {
                        if self.flow > 0 && matches!(chars[i], b',' | b'[' | b']' | b'{' | b'}') {
                            break;
                        }
                        i += 1;
                    }
                    prev_space = false;
                    continue;
                }
                _ => {}
            }
            start = false;
            prev_space = false;
            i += 1;
        }
        Ok(())
    }

    /// Opens a block level at `indent` (a sequence when `seq`) unless one
    /// is open there already; a sequence may open at its parent's indent.
    fn push_level(&mut self, indent: usize, seq: bool, max: usize) -> Result<(), usize> {
        let open = match self.levels.last() {
            None => true,
            Some(&(top, top_seq)) => top < indent || (top == indent && seq && !top_seq),
        };
        if open {
            self.levels.push((indent, seq));
            if self.depth() > max {
                return Err(indent);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_ok(text: &str, max: usize) -> bool {
        check_depth(text, max).is_ok()
    }

    #[test]
    fn flow_and_block_levels_are_counted() {
        // (case, text, the smallest limit it passes)
        let cases: &[(&str, &str, usize)] = &[
            ("a flat mapping", "a: 1\nb: 2\n", 1),
            ("a block mapping in a mapping", "a:\n  b:\n    c: 1\n", 3),
            ("a flow list as a value", "a: [1, 2]\n", 2),
            ("nested flow", "a: {b: [[1]]}\n", 4),
            (
                "a block list of mappings",
                "phases:\n  - name: a\n    d: 1\n",
                3,
            ),
            ("nested dashes on one line", "a:\n- - - x\n", 5),
            ("a list at its key's indent", "a:\n- b:\n  - c: 1\n", 5),
            ("flow spanning lines", "a: [\n  [1,\n   2],\n]\n", 3),
            ("an anchored flow value", "a: &x [[1]]\n", 3),
            ("a tagged flow value", "a: !t [[1]]\n", 3),
            ("a document start", "--- [[1]]\n", 3),
            ("a quoted key", "\"k\": [[1]]\n", 3),
            ("a JSON-style key in flow", "{\"k\":[[1]]}\n", 4),
        ];
        for (case, text, need) in cases {
            assert!(depth_ok(text, *need), "{case}: should pass at {need}");
            assert!(
                !depth_ok(text, need - 1),
                "{case}: should fail at {}",
                need - 1
            );
        }
    }

    #[test]
    fn brackets_in_scalars_and_comments_are_not_levels() {
        let text = "a: it's [not a list\n\
                    b: 'q [[[' # [[[[\n\
                    c: \"x\\\" [[[\"\n\
                    d: x[1]\n\
                    e: |\n  [[[[\n    [[[[\n\
                    f: >\n  [[[[\n\
                    g: '[[[\n  [[[['\n";
        assert_eq!(check_depth(text, 1), Ok(()));
    }

    #[test]
    fn a_line_after_a_block_scalar_is_scanned_again() {
        // `  b:` ends the block scalar (less indented than its first line).
        let text = "- a: |\n      text\n  b: [[[1]]]\n";
        assert!(check_depth(text, 4).is_err());
        assert!(check_depth(text, 5).is_ok());
    }

    /// Nesting of a parsed value: a scalar 0, a collection 1 + its deepest child.
    fn value_depth(value: &serde_yaml::Value) -> usize {
        use serde_yaml::Value;
        match value {
            Value::Sequence(items) => 1 + items.iter().map(value_depth).max().unwrap_or(0),
            Value::Mapping(map) => {
                1 + map
                    .iter()
                    .map(|(k, v)| value_depth(k).max(value_depth(v)))
                    .max()
                    .unwrap_or(0)
            }
            Value::Tagged(tagged) => value_depth(&tagged.value),
            _ => 0,
        }
    }

    #[test]
    fn random_documents_never_nest_deeper_than_the_scan_counts() {
        // The scan may over-count, never under-count: for every random text
        // serde_yaml accepts (without aliases, which copy nesting from
        // elsewhere), a limit one below the real depth must be refused.
        const TOKENS: &[&str] = &[
            "[",
            "]",
            "{",
            "}",
            ", ",
            ": ",
            ":",
            "- ",
            "\n",
            "\n  ",
            "\n    ",
            "a",
            "b c",
            "'",
            "\"",
            "# c",
            " ",
            "|",
            ">",
            "&x ",
            "!t ",
            "? ",
            "--- ",
            "'[",
            "\"{",
            "\\",
            "\t",
            "\n- ",
            "\n  - ",
            "...",
            "|2",
            ">-",
            "'a''b'",
            "\"a\\\"b\"",
            "\r\n",
            "\n: ",
            "{a: ",
            "[a, ",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..30_000 {
            let len = 1 + next() % 60;
            let text: String = (0..len)
                .map(|_| TOKENS[(next() % TOKENS.len() as u64) as usize])
                .collect();
            let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(&text) else {
                continue;
            };
            parsed += 1;
            let real = value_depth(&value);
            if real > 0 {
                assert!(
                    check_depth(&text, real - 1).is_err(),
                    "the scan missed a level of {text:?} (depth {real})"
                );
            }
        }
        assert!(parsed > 1_000, "only {parsed} random texts parsed");
    }

    #[test]
    fn the_position_is_where_the_limit_is_passed() {
        let text = format!("name: x\nphases: {}", "[".repeat(100));
        assert_eq!(
            check_depth(&text, 64),
            Err(TooDeep {
                line: 2,
                column: 8 + 63 + 1
            })
        );
    }
}
