//! Log set-up: human-readable by default, JSON on request; always to stderr so stdout stays
//! for the few lines meant for people and scripts (addresses, generated credentials). Colour
//! only on a terminal, and never with `NO_COLOR` set (https://no-color.org): a log written to
//! a file or a journal must not fill up with escape codes.
//!
//! Logged values can come from outside (event ids, error messages quoting a request), so in
//! the human format every field — the message too — has its control characters escaped: a
//! value holding `\n… ERROR …` cannot forge a log line, and an escape sequence cannot reach
//! the terminal. The JSON format escapes them already (JSON strings cannot hold them raw).

use std::borrow::Cow;
use std::fmt;
use std::io::IsTerminal;

use idverdict::config::LogFormat;
use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("IDVERDICT_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = subscriber(format, filter, colour(), std::io::stderr).try_init();
}

fn colour() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        LogFormat::Human => Box::new(builder.fmt_fields(EscapedFields).finish()),
        LogFormat::Json => Box::new(builder.json().finish()),
    }
}

/// The default human field format, with control characters escaped in every value.
struct EscapedFields;

impl<'w> MakeVisitor<Writer<'w>> for EscapedFields {
    type Visitor = Escaped<DefaultVisitor<'w>>;

    fn make_visitor(&self, target: Writer<'w>) -> Self::Visitor {
        Escaped(DefaultVisitor::new(target, true))
    }
}

/// Hands every value to the inner visitor with its control characters escaped.
struct Escaped<V>(V);

impl<V: Visit> Visit for Escaped<V> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            // The message is written as it is; other strings are written quoted and
            // escaped (`Debug`) by the inner visitor already.
            self.0
                .record_debug(field, &format_args!("{}", escape_controls(value)));
        } else {
            self.0.record_str(field, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here too, formatted with `Display`: raw.
        let text = format!("{value:?}");
        self.0
            .record_debug(field, &format_args!("{}", escape_controls(&text)));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(inner) = source {
            text.push_str(": ");
            text.push_str(&inner.to_string());
            source = inner.source();
        }
        self.0
            .record_debug(field, &format_args!("{}", escape_controls(&text)));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.record_i64(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.record_u64(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.record_bool(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.record_f64(field, value);
    }
}

impl<V: VisitOutput<fmt::Result>> VisitOutput<fmt::Result> for Escaped<V> {
    fn finish(self) -> fmt::Result {
        self.0.finish()
    }
}

impl<V: VisitFmt> VisitFmt for Escaped<V> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        self.0.writer()
    }
}

/// `\n`, `\r`, `\t` as such, other control characters (C0, DEL, C1), line separators and
/// bidirectional overrides as `\u{…}`. Everything else, backslashes included, is kept.
fn escape_controls(text: &str) -> Cow<'_, str> {
    let needs = |c: char| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// An attacker-chosen event id: a forged ERROR line and a screen-clearing escape.
    const FORGED_ID: &str =
        "evt_1\n2026-01-01T00:00:00.000000Z ERROR idverdict: forged line\x1b[2J\x1b[31m";

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Captured {
            self.clone()
        }
    }

    /// Log the same hostile values through every kind of field, in `format`.
    fn log_hostile_values(format: LogFormat, ansi: bool) -> String {
        let out = Captured::default();
        let subscriber = subscriber(format, EnvFilter::new("info"), ansi, out.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("delivery", event = %FORGED_ID);
            let _entered = span.enter();
            tracing::info!(event = %FORGED_ID, "rejected a webhook delivery");
            tracing::warn!(reason = FORGED_ID, "a str field");
            tracing::warn!(detail = ?FORGED_ID, "a debug field");
            tracing::error!("the message itself: {}", FORGED_ID);
            let error = std::io::Error::other(FORGED_ID);
            tracing::error!(
                error = &error as &(dyn std::error::Error + 'static),
                "an error field"
            );
        });
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).expect("UTF-8 logs")
    }

    #[test]
    fn the_human_format_escapes_control_characters_in_every_field() {
        for ansi in [false, true] {
            let text = log_hostile_values(LogFormat::Human, ansi);
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 5, "one line per event:\n{text}");
            assert!(
                lines
                    .iter()
                    .all(|l| !l.contains("forged line") || l.contains("evt_1\\n")),
                "{text}"
            );
            assert!(!text.contains("\n2026-01-01"), "a forged line:\n{text}");
            // The only escape sequences are the formatter's own colours, never the
            // value's (`ESC[2J` clears the screen; the formatter never sends it).
            assert!(!text.contains("\x1b[2J"), "{text:?}");
            if !ansi {
                assert!(!text.contains('\x1b'), "{text:?}");
            }
            assert!(text.contains("evt_1\\n2026-01-01"), "{text}");
            assert!(text.contains("\\u{1b}[2J"), "{text}");
        }
    }

    #[test]
    fn the_json_format_stays_json_and_keeps_the_value() {
        let text = log_hostile_values(LogFormat::Json, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "one line per event:\n{text}");
        for line in &lines {
            let value: serde_json::Value = serde_json::from_str(line).expect("each line is JSON");
            assert!(value["fields"].is_object(), "{value}");
        }
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["fields"]["event"], FORGED_ID);
        assert!(!text.contains('\x1b'), "{text:?}");
    }

    #[test]
    fn plain_text_is_left_alone() {
        assert!(matches!(
            escape_controls("evt_1 ok \\n"),
            Cow::Borrowed("evt_1 ok \\n")
        ));
        assert_eq!(
            escape_controls("a\r\n\tb\u{7f}\u{202e}"),
            "a\\r\\n\\tb\\u{7f}\\u{202e}"
        );
    }
}
