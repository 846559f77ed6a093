//! The value grammar every setting shares, whether it comes from the TOML file, an environment
//! variable or a flag: booleans, durations, lists, numbers. One parser per kind, so
//! `IDVERDICT_RECONCILE=off` and `delivery.allow_private_targets = "off"` mean the same thing.
//!
//! The `de_*` functions are the same parsers as serde field deserializers for the file, which
//! also accept the native TOML type (`true`, `300`, `["a", "b"]`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// `true`/`false`, `on`/`off`, `yes`/`no`, `1`/`0`, in any case.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "`{}` is not true or false (or on/off)",
            text.trim()
        )),
    }
}

/// A duration with its unit: `250ms`, `5s`, `30m`, `2h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{s}` has no unit (use ms, s, m, h or d)"))?;
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` does not start with a whole number"))?;
    let ms_per = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit `{unit}` (use ms, s, m, h or d)"
            ))
        }
    };
    n.checked_mul(ms_per)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{s}` is too long"))
}

/// A whole number of seconds: plain (`300`, as the `*_SECS` variables always took) or with a
/// unit (`5m`).
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| format!("`{s}` is too large"));
    }
    let d = parse_duration(s).map_err(|_| {
        format!("`{s}` is not a number of seconds or a duration such as 30s, 5m, 2h")
    })?;
    if d.subsec_nanos() != 0 {
        return Err(format!("`{s}` is not a whole number of seconds"));
    }
    Ok(d.as_secs())
}

/// A comma-separated list; blanks around items and empty items are dropped.
pub fn parse_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// [`parse_list`] for a setting (it cannot fail).
pub fn parse_strings(text: &str) -> Result<Vec<String>, String> {
    Ok(parse_list(text))
}

/// A file or directory path (trimmed).
pub fn parse_path(text: &str) -> Result<std::path::PathBuf, String> {
    Ok(text.trim().into())
}

/// A whole, non-negative number of the field's type (a count, a port, a byte size).
pub fn parse_number<T: FromStr>(text: &str) -> Result<T, String> {
    let s = text.trim();
    if s.parse::<u128>().is_err() {
        return Err(format!("`{s}` is not a non-negative whole number"));
    }
    s.parse().map_err(|_| format!("`{s}` is too large"))
}

/// Text, trimmed (addresses, paths, names).
pub fn parse_text(text: &str) -> Result<String, String> {
    Ok(text.trim().to_string())
}

/// A secret, exactly as given (a password may end in a space).
pub fn parse_secret(text: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(text.to_string()))
}

/// A comma-separated list of secrets.
pub fn parse_secrets(text: &str) -> Result<Vec<SecretString>, String> {
    Ok(parse_list(text)
        .into_iter()
        .map(SecretString::from)
        .collect())
}

/// A list of durations (each one checked, kept as written).
pub fn parse_durations(text: &str) -> Result<Vec<String>, String> {
    let items = parse_list(text);
    for (i, item) in items.iter().enumerate() {
        parse_duration(item).map_err(|e| format!("item {}: {e}", i + 1))?;
    }
    Ok(items)
}

/// One of a fixed set of words (an enum's `FromStr`).
pub fn parse_choice<T: FromStr<Err = String>>(text: &str) -> Result<T, String> {
    text.trim().parse()
}

// ---------------------------------------------------------------------------- the file side

/// `tolerance_secs = 300` or `tolerance_secs = "5m"`.
pub fn de_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number of seconds or a duration such as \"30s\" or \"5m\"")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("`{v}` is negative")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            parse_seconds(v).map_err(E::custom)
        }
    }
    d.deserialize_any(V)
}

/// `pause_after = "3d"` (a duration with its unit, as in the environment).
pub fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text: String = serde::Deserialize::deserialize(d)?;
    parse_duration(&text).map_err(de::Error::custom)
}

/// `allow_private_targets = true` or `= "on"`.
pub fn de_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("true or false")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            parse_bool(v).map_err(E::custom)
        }
    }
    d.deserialize_any(V)
}

/// `urls = ["a", "b"]` or `urls = "a, b"`. Array items are trimmed and kept even when empty,
/// so validation can point at the blank one.
pub fn de_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of strings or one comma-separated string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(parse_list(v))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                out.push(item.trim().to_string());
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// [`de_list`] for secrets.
pub fn de_secrets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    Ok(de_list(d)?.into_iter().map(SecretString::from).collect())
}

/// A word parsed by the type's `FromStr` (the same parser the environment variable uses).
pub fn de_choice<'de, D: Deserializer<'de>, T: FromStr<Err = String>>(d: D) -> Result<T, D::Error> {
    let text: String = serde::Deserialize::deserialize(d)?;
    parse_choice(&text).map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_take_every_usual_spelling() {
        for yes in ["1", "true", "TRUE", "yes", "on", " On "] {
            assert_eq!(parse_bool(yes), Ok(true), "{yes}");
        }
        for no in ["0", "false", "False", "no", "off", "OFF"] {
            assert_eq!(parse_bool(no), Ok(false), "{no}");
        }
        for bad in ["", "2", "enabled", "y"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration(" 2h "), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 s").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn seconds_are_plain_numbers_or_durations() {
        assert_eq!(parse_seconds("300"), Ok(300));
        assert_eq!(parse_seconds("0"), Ok(0));
        assert_eq!(parse_seconds("5m"), Ok(300));
        assert_eq!(parse_seconds("72h"), Ok(259_200));
        assert_eq!(parse_seconds("2000ms"), Ok(2));
        assert!(parse_seconds("1500ms").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("").is_err());
    }

    #[test]
    fn lists_split_on_commas_and_drop_blanks() {
        assert_eq!(parse_list(" a, b ,,c,"), vec!["a", "b", "c"]);
        assert!(parse_list(" , ").is_empty());
        assert_eq!(
            parse_durations("1s, 2m"),
            Ok(vec!["1s".into(), "2m".into()])
        );
        assert!(parse_durations("1s,2x").unwrap_err().starts_with("item 2"));
    }

    #[test]
    fn numbers_refuse_signs_and_overflow() {
        assert_eq!(parse_number::<u16>(" 465 "), Ok(465));
        assert!(parse_number::<u16>("70000")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_number::<u64>("-1").is_err());
        assert!(parse_number::<usize>("ten").is_err());
    }

    #[test]
    fn file_values_take_native_types_and_strings() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(deserialize_with = "de_seconds")]
            a: u64,
            #[serde(deserialize_with = "de_seconds")]
            b: u64,
            #[serde(deserialize_with = "de_bool")]
            c: bool,
            #[serde(deserialize_with = "de_bool")]
            d: bool,
            #[serde(deserialize_with = "de_list")]
            e: Vec<String>,
            #[serde(deserialize_with = "de_list")]
            f: Vec<String>,
        }
        let t: T = toml::from_str(
            "a = 30\nb = \"2m\"\nc = true\nd = \"off\"\ne = [\" x \", \"y\"]\nf = \"x, y\"\n",
        )
        .unwrap();
        assert_eq!((t.a, t.b, t.c, t.d), (30, 120, true, false));
        assert_eq!(t.e, vec!["x", "y"]);
        assert_eq!(t.f, vec!["x", "y"]);
        let err = toml::from_str::<T>("a = -1\nb = 1\nc = true\nd = true\ne = []\nf = []\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
    }
}
