//! Structural limits on a policy's text, checked before Cedar parses it.
//!
//! Cedar's parser turns its concrete syntax tree into an AST recursively,
//! and the AST is validated, evaluated and dropped recursively too. Nothing
//! in the parser bounds that recursion, so a text nesting a few hundred
//! brackets overflows the thread's stack, and a stack overflow aborts the
//! whole process: it cannot be caught. Cedar's validator and evaluator do
//! check the remaining stack, but that only turns a deep policy into an
//! error, so a long chain of `&&` validated on one thread and then failed
//! every evaluation on a smaller one (a policy that denies every request).
//!
//! So the text is measured first, by a flat scan that cannot itself
//! recurse, and refused unless it is small, shallow and short enough that
//! every later recursive step fits the stacks Settle gives it (see
//! [`COMPILE_STACK`] and [`EVAL_STACK`]). The bounds are conservative upper
//! bounds on the AST's depth: every bracket `(` `[` `{` and every
//! `if` still open counts as one level, and every operator counts as one
//! node, since Cedar nests a chain such as `a && b && c` one level per
//! operator.
//!
//! # How the limits were chosen
//!
//! Measured by running each worst shape (nested brackets, nested sets and
//! records, nested if-then-else, long `+`, `&&`, `||` chains) through parse,
//! validation, evaluation and drop on threads of shrinking stack size, in a
//! debug build (the one with the largest frames): about 55 KiB per bracket
//! level to parse, about 50 KiB per expression level to evaluate, plus
//! about 500 KiB for any evaluation. Sets nested 11 deep around a chain of
//! 45 additions, the deepest evaluation these limits allow, needed
//! 3,159 KiB. So the limits keep the worst allowed policy within
//! [`WORST_CASE_STACK`], which the unit tests prove by running it on a
//! thread of exactly that size, and the threads that compile and evaluate
//! policies get four times that. (Fitting the worst case in 1 MiB in a
//! debug build would allow only about eight operators.)

/// The largest policy text, in bytes. A list of a hundred account ids is
/// about 4 KiB.
pub const MAX_BYTES: usize = 16 * 1024;

/// How deeply brackets `(` `[` `{` and if-then-else may nest, the policy's
/// own `(principal, ...)` and `when { ... }` included.
pub const MAX_DEPTH: usize = 12;

/// How many operators a policy may hold: binary and unary operators,
/// `.` (attributes and method calls), `if`, `has`, `like`, `is` and `in`.
/// Long lists belong in a set: `["a", "b", ...].contains(x)` is one
/// operator whatever the length of the list.
pub const MAX_OPERATORS: usize = 48;

/// The stack the worst policy the limits allow needs to be parsed,
/// validated, evaluated and dropped in a debug build, with margin; the unit
/// tests run that policy on a thread of exactly this size.
pub const WORST_CASE_STACK: usize = 4 * 1024 * 1024;

/// The stack of the thread that parses and validates policy texts (on
/// create, update and every reload of the engine): a dedicated thread, so
/// the size does not depend on whichever thread happens to ask.
pub const COMPILE_STACK: usize = 4 * WORST_CASE_STACK;

/// The stack every thread that evaluates policies must have. Evaluation
/// runs inline on the request's thread (it is the hot path), so the
/// server's runtime workers are built with this size.
pub const EVAL_STACK: usize = 4 * WORST_CASE_STACK;

/// Which limit a text broke, and by how much, worded for its author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("the policy text is {found} bytes long; the limit is {MAX_BYTES} bytes")]
    TooLong { found: usize },
    #[error(
        "the policy nests brackets and if-then-else {found} levels deep; the limit is {MAX_DEPTH} levels \
         (count includes the policy's own parentheses and braces)"
    )]
    TooDeep { found: usize },
    #[error(
        "the policy has {found} operators; the limit is {MAX_OPERATORS} operators \
         (put long lists in a set and use `.contains`)"
    )]
    TooManyOperators { found: usize },
}

/// Measures `text` and refuses it if it breaks a limit, naming the limit
/// and what it found. One pass over the bytes (at most [`MAX_BYTES`]),
/// skipping string literals and `//` comments (their content is not
/// syntax), with an explicit stack of open brackets instead of recursion.
pub fn check(text: &str) -> Result<(), LimitError> {
    if text.len() > MAX_BYTES {
        return Err(LimitError::TooLong { found: text.len() });
    }
    let shape = measure(text.as_bytes());
    if shape.depth > MAX_DEPTH {
        return Err(LimitError::TooDeep { found: shape.depth });
    }
    if shape.operators > MAX_OPERATORS {
        return Err(LimitError::TooManyOperators { found: shape.operators });
    }
    Ok(())
}

/// What [`check`] bounds: the deepest nesting and the number of operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    pub depth: usize,
    pub operators: usize,
}

/// Measures a text of any length, without limits.
pub fn measure(bytes: &[u8]) -> Shape {
    // One entry per open bracket (plus the top level): how many `if`s
    // opened inside it are still open. An `if` ends at the latest where its
    // bracket closes, or at a `,` that starts the next element.
    let mut groups: Vec<usize> = vec![0];
    let mut open_ifs = 0usize;
    let mut shape = Shape::default();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        let mut width = 1;
        match b {
            b'"' => width = string_len(&bytes[i..]),
            b'/' if next == Some(b'/') => {
                width = bytes[i..].iter().position(|&c| c == b'\n').unwrap_or(bytes.len() - i);
            }
            b'(' | b'[' | b'{' => groups.push(0),
            // An unbalanced closer leaves the top level in place (Cedar reports it).
            b')' | b']' | b'}' if groups.len() > 1 => {
                open_ifs = open_ifs.saturating_sub(groups.pop().unwrap_or(0));
            }
            b',' => {
                if let Some(ifs) = groups.last_mut() {
                    open_ifs = open_ifs.saturating_sub(*ifs);
                    *ifs = 0;
                }
            }
            b'=' | b'!' | b'<' | b'>' | b'&' | b'|' => {
                // Two-character operators count once.
                if matches!(
                    (b, next),
                    (b'=' | b'!' | b'<' | b'>', Some(b'=')) | (b'&', Some(b'&')) | (b'|', Some(b'|'))
                ) {
                    width = 2;
                }
                shape.operators += 1;
            }
            b'+' | b'-' | b'*' | b'.' => shape.operators += 1,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                width = bytes[i..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .unwrap_or(bytes.len() - i);
                match &bytes[i..i + width] {
                    b"if" => {
                        shape.operators += 1;
                        open_ifs += 1;
                        if let Some(ifs) = groups.last_mut() {
                            *ifs += 1;
                        }
                    }
                    b"has" | b"like" | b"is" | b"in" => shape.operators += 1,
                    _ => {}
                }
            }
            _ => {}
        }
        shape.depth = shape.depth.max(groups.len() - 1 + open_ifs);
        i += width;
    }
    shape
}

/// The length of the string literal at the start of `rest`, quotes
/// included; an unterminated one runs to the end (Cedar reports it).
fn string_len(rest: &[u8]) -> usize {
    let mut j = 1;
    while j < rest.len() {
        match rest[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    rest.len()
}
