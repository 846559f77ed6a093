//! Decoding of Stripe's form encoding (`application/x-www-form-urlencoded`
//! bodies and query strings) into a JSON tree.
//!
//! Stripe clients disagree on how they spell nested keys: stripe-node sends
//! `enabled_events[0]=a`, stripe-python percent-encodes the brackets
//! (`enabled_events%5B0%5D=a`), curl examples use `enabled_events[]=a`. All of
//! them decode to the same tree here, so handlers never see the difference.
//! Leaves are always strings: the typed accessors in [`Params`] do the
//! coercion, which is also where a bad value gets its `param` name.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::errors::ApiError;

/// One node of the tree being built; arrays keep their indices until the end so
/// that `a[1]=x&a[0]=y` comes out in index order.
enum Node {
    Leaf(String),
    Map(BTreeMap<String, Node>),
    Indexed(BTreeMap<u64, Node>),
    Appended(Vec<Node>),
}

impl Node {
    fn into_value(self) -> Value {
        match self {
            Node::Leaf(s) => Value::String(s),
            Node::Map(m) => {
                Value::Object(m.into_iter().map(|(k, v)| (k, v.into_value())).collect())
            }
            Node::Indexed(m) => Value::Array(m.into_values().map(Node::into_value).collect()),
            Node::Appended(v) => Value::Array(v.into_iter().map(Node::into_value).collect()),
        }
    }
}

/// A key path segment: `name`, `[name]`, `[3]` or `[]`.
enum Seg {
    Key(String),
    Index(u64),
    Append,
}

fn split_key(raw: &str) -> Option<Vec<Seg>> {
    let (head, mut rest) = match raw.find('[') {
        Some(i) => (&raw[..i], &raw[i..]),
        None => (raw, ""),
    };
    if head.is_empty() {
        return None;
    }
    let mut segs = vec![Seg::Key(head.to_string())];
    while !rest.is_empty() {
        let close = rest.find(']')?;
        if !rest.starts_with('[') {
            return None;
        }
        let inner = &rest[1..close];
        segs.push(if inner.is_empty() {
            Seg::Append
        } else if let Ok(i) = inner.parse::<u64>() {
            Seg::Index(i)
        } else {
            Seg::Key(inner.to_string())
        });
        rest = &rest[close + 1..];
    }
    Some(segs)
}

fn insert(
    slot: &mut Option<Node>,
    segs: &[Seg],
    value: String,
    full_key: &str,
) -> Result<(), ApiError> {
    let conflict = || {
        ApiError::invalid_param(full_key, format!("Invalid value for {full_key}: the key is used both as a value and as a hash or array."))
    };
    let Some((first, rest)) = segs.split_first() else {
        // A repeated scalar key keeps the last value, like most form decoders.
        *slot = Some(Node::Leaf(value));
        return Ok(());
    };
    match first {
        Seg::Key(k) => {
            // `metadata=` (empty) followed by `metadata[a]=b` is legal; the
            // empty string simply gives way to the hash.
            if matches!(slot, None | Some(Node::Leaf(_))) {
                if let Some(Node::Leaf(s)) = slot {
                    if !s.is_empty() {
                        return Err(conflict());
                    }
                }
                *slot = Some(Node::Map(BTreeMap::new()));
            }
            match slot {
                Some(Node::Map(m)) => {
                    let mut child = m.remove(k);
                    insert(&mut child, rest, value, full_key)?;
                    if let Some(c) = child {
                        m.insert(k.clone(), c);
                    }
                    Ok(())
                }
                _ => Err(conflict()),
            }
        }
        Seg::Index(i) => {
            if matches!(slot, None | Some(Node::Leaf(_))) {
                *slot = Some(Node::Indexed(BTreeMap::new()));
            }
            match slot {
                Some(Node::Indexed(m)) => {
                    let mut child = m.remove(i);
                    insert(&mut child, rest, value, full_key)?;
                    if let Some(c) = child {
                        m.insert(*i, c);
                    }
                    Ok(())
                }
                _ => Err(conflict()),
            }
        }
        Seg::Append => {
            if matches!(slot, None | Some(Node::Leaf(_))) {
                *slot = Some(Node::Appended(Vec::new()));
            }
            match slot {
                Some(Node::Appended(v)) => {
                    let mut child = None;
                    insert(&mut child, rest, value, full_key)?;
                    if let Some(c) = child {
                        v.push(c);
                    }
                    Ok(())
                }
                _ => Err(conflict()),
            }
        }
    }
}

/// Decodes a form body or query string into a JSON object whose leaves are strings.
pub fn decode(input: &[u8]) -> Result<Value, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(input).map_err(|_| {
        ApiError::invalid_request(
            "The request body could not be decoded as application/x-www-form-urlencoded.",
        )
    })?;
    let mut root: Option<Node> = Some(Node::Map(BTreeMap::new()));
    for (k, v) in pairs {
        let segs = split_key(&k)
            .ok_or_else(|| ApiError::invalid_param(&k, format!("Invalid parameter name: {k}")))?;
        insert(&mut root, &segs, v, &k)?;
    }
    Ok(root
        .map(Node::into_value)
        .unwrap_or_else(|| Value::Object(Map::new())))
}

/// Typed, validating access to decoded parameters.
#[derive(Debug, Clone)]
pub struct Params {
    root: Map<String, Value>,
}

impl Params {
    pub fn new(value: Value) -> Self {
        match value {
            Value::Object(root) => Params { root },
            _ => Params { root: Map::new() },
        }
    }

    pub fn as_value(&self) -> Value {
        Value::Object(self.root.clone())
    }

    /// Rejects any top-level parameter not in `allowed`, as Stripe does.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ApiError> {
        match self.root.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ApiError::invalid_param(
                k,
                format!("Received unknown parameter: {k}"),
            )),
            None => Ok(()),
        }
    }

    pub fn str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.root.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::invalid_param(
                name,
                format!("Invalid string: {name} must be a string"),
            )),
        }
    }

    /// A string parameter where the empty string means "unset" (returns `Some(None)`).
    pub fn nullable_str(&self, name: &str) -> Result<Option<Option<String>>, ApiError> {
        Ok(self
            .str(name)?
            .map(|s| if s.is_empty() { None } else { Some(s) }))
    }

    pub fn required_str(&self, name: &str) -> Result<String, ApiError> {
        match self.str(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(ApiError::missing_param(name)),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.str(name)?.as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::invalid_param(
                name,
                format!("Invalid boolean: {name} must be true or false"),
            )),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.str(name)? {
            None => Ok(None),
            Some(s) => s
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::invalid_param(name, format!("Invalid integer: {s}"))),
        }
    }

    /// An array of strings (`a[]`, `a[0]`); a single plain value counts as a one-element array.
    pub fn str_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.root.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(Some(Vec::new())),
            Some(Value::String(s)) => Ok(Some(vec![s.clone()])),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(ApiError::invalid_param(
                        name,
                        format!("Invalid array: {name} must be an array of strings"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::invalid_param(
                name,
                format!("Invalid array: {name} must be an array of strings"),
            )),
        }
    }

    /// A nested hash as its own `Params`; the empty string means "clear" (returns an empty hash).
    pub fn hash(&self, name: &str) -> Result<Option<Params>, ApiError> {
        match self.root.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(Some(Params { root: Map::new() })),
            Some(Value::Object(m)) => Ok(Some(Params { root: m.clone() })),
            Some(_) => Err(ApiError::invalid_param(
                name,
                format!("Invalid hash: {name} must be a hash"),
            )),
        }
    }

    pub fn expand(&self) -> Result<Vec<String>, ApiError> {
        Ok(self.str_list("expand")?.unwrap_or_default())
    }

    /// `created=123` or `created[gt|gte|lt|lte]=123`.
    pub fn range(&self, name: &str) -> Result<Option<Range>, ApiError> {
        match self.root.get(name) {
            None => Ok(None),
            Some(Value::String(_)) => Ok(self.int(name)?.map(|v| Range {
                gte: Some(v),
                lte: Some(v),
                ..Range::default()
            })),
            Some(Value::Object(_)) => {
                let h = self.hash(name)?.unwrap_or_else(|| Params::new(Value::Null));
                h.only(&["gt", "gte", "lt", "lte"])
                    .map_err(|e| e.nested(name))?;
                let get = |k: &str| h.int(k).map_err(|e| e.with_param(&format!("{name}[{k}]")));
                Ok(Some(Range {
                    gt: get("gt")?,
                    gte: get("gte")?,
                    lt: get("lt")?,
                    lte: get("lte")?,
                }))
            }
            Some(_) => Err(ApiError::invalid_param(
                name,
                format!("Invalid {name}: must be an integer or a hash of gt, gte, lt, lte"),
            )),
        }
    }

    /// Metadata updates: `metadata=` clears, `metadata[k]=` removes a key,
    /// anything else sets it. Stripe's size limits are enforced.
    pub fn apply_metadata(&self, target: &mut BTreeMap<String, String>) -> Result<(), ApiError> {
        let Some(raw) = self.root.get("metadata") else {
            return Ok(());
        };
        match raw {
            Value::String(s) if s.is_empty() => {
                target.clear();
                Ok(())
            }
            Value::Object(m) => {
                for (k, v) in m {
                    let param = format!("metadata[{k}]");
                    let Value::String(v) = v else {
                        return Err(ApiError::invalid_param(
                            &param,
                            "Metadata values must be strings.",
                        ));
                    };
                    if k.chars().count() > 40 {
                        return Err(ApiError::invalid_param(
                            &param,
                            "Metadata keys can have a maximum length of 40 characters.",
                        ));
                    }
                    if v.chars().count() > 500 {
                        return Err(ApiError::invalid_param(
                            &param,
                            "Metadata values can have a maximum length of 500 characters.",
                        ));
                    }
                    if v.is_empty() {
                        target.remove(k);
                    } else {
                        target.insert(k.clone(), v.clone());
                    }
                }
                if target.len() > 50 {
                    return Err(ApiError::invalid_param(
                        "metadata",
                        "You can have a maximum of 50 metadata keys.",
                    ));
                }
                Ok(())
            }
            _ => Err(ApiError::invalid_param(
                "metadata",
                "Invalid hash: metadata must be a hash",
            )),
        }
    }
}

/// A `created` style filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Range {
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
}

impl Range {
    pub fn contains(&self, v: i64) -> bool {
        self.gt.is_none_or(|b| v > b)
            && self.gte.is_none_or(|b| v >= b)
            && self.lt.is_none_or(|b| v < b)
            && self.lte.is_none_or(|b| v <= b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_indexed_appended_and_encoded_brackets_agree() {
        let a = decode(b"enabled_events[0]=a&enabled_events[1]=b&metadata[k]=v&options[document][allowed_types][]=passport").unwrap();
        let b = decode(b"enabled_events%5B%5D=a&enabled_events%5B%5D=b&metadata%5Bk%5D=v&options%5Bdocument%5D%5Ballowed_types%5D%5B0%5D=passport").unwrap();
        let want = json!({"enabled_events":["a","b"],"metadata":{"k":"v"},"options":{"document":{"allowed_types":["passport"]}}});
        assert_eq!(a, want);
        assert_eq!(b, want);
    }

    #[test]
    fn indices_sort_and_values_decode() {
        let v = decode(b"a[1]=y&a[0]=x&q=hello+world%21").unwrap();
        assert_eq!(v, json!({"a":["x","y"],"q":"hello world!"}));
    }

    #[test]
    fn empty_then_nested_is_allowed_but_value_then_nested_is_not() {
        assert_eq!(
            decode(b"metadata=&metadata[a]=b").unwrap(),
            json!({"metadata":{"a":"b"}})
        );
        assert!(decode(b"metadata=x&metadata[a]=b").is_err());
        assert!(decode(b"a[b=1").is_err());
    }

    #[test]
    fn ranges() {
        let p = Params::new(decode(b"created[gte]=10&created[lt]=20").unwrap());
        let r = p.range("created").unwrap().unwrap();
        assert!(r.contains(10) && r.contains(19) && !r.contains(20) && !r.contains(9));
        let p = Params::new(decode(b"created=5").unwrap());
        assert!(p.range("created").unwrap().unwrap().contains(5));
        let p = Params::new(decode(b"created[foo]=5").unwrap());
        assert!(p.range("created").is_err());
    }
}
