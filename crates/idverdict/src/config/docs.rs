//! The README's configuration table, rendered from [`SETTINGS`]. A unit test holds README.md to
//! it, so a setting added to the list cannot be missing from the documentation (or the other way
//! round).

use std::fmt::Write;

use super::settings::{DefaultValue, SETTINGS};

/// The line before the generated table in README.md.
pub const BEGIN: &str = "<!-- settings table: generated from crates/idverdict/src/config/settings.rs (IDVERDICT_WRITE_README=1 cargo test -p idverdict config::docs rewrites it) -->";
/// The line after it.
pub const END: &str = "<!-- end of settings table -->";

/// The Markdown table, one row per setting.
pub fn table() -> String {
    let mut out = String::from(
        "| TOML key | Environment variable | Kind | Default | Meaning |\n|---|---|---|---|---|\n",
    );
    for s in SETTINGS {
        let code = |t: Option<&str>| t.map_or_else(|| "—".to_string(), |t| format!("`{t}`"));
        let default = match s.default {
            DefaultValue::Is(v) => format!("`{v}`"),
            DefaultValue::Note(n) => n.to_string(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            code(s.key),
            code(s.env),
            s.kind.describe(),
            default,
            s.about
        );
    }
    out
}

/// The README with its table replaced by [`table`] (`None` when the markers are missing).
pub fn with_table(readme: &str) -> Option<String> {
    replace_between(readme, BEGIN, END, &table())
}

/// `readme` with the text between the `begin` and `end` marker lines replaced by `body`.
pub(crate) fn replace_between(readme: &str, begin: &str, end: &str, body: &str) -> Option<String> {
    let start = readme.find(begin)? + begin.len();
    let stop = start + readme[start..].find(end)?;
    Some(format!("{}\n{body}{}", &readme[..start], &readme[stop..]))
}

/// Hold README.md's section between `begin` and `end` to `body`; with `IDVERDICT_WRITE_README`
/// set, rewrite it instead.
#[cfg(test)]
pub(crate) fn check_readme(begin: &str, end: &str, body: &str) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let expected = replace_between(&readme, begin, end, body)
        .unwrap_or_else(|| panic!("README.md needs the lines\n{begin}\n{end}"));
    if expected == readme {
        return;
    }
    if std::env::var_os("IDVERDICT_WRITE_README").is_some() {
        std::fs::write(path, expected).unwrap();
        return;
    }
    panic!(
        "README.md differs after the line\n{begin}\nPaste this between the markers (or run the test with IDVERDICT_WRITE_README=1):\n\n{body}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_table_is_the_settings_list() {
        check_readme(BEGIN, END, &table());
    }

    #[test]
    fn cells_cannot_break_the_table() {
        for s in SETTINGS {
            for cell in [s.key.unwrap_or(""), s.env.unwrap_or(""), s.about] {
                assert!(!cell.contains('|') && !cell.contains('\n'), "{cell}");
            }
        }
    }
}
