//! Stripe list objects: newest first, `limit` 1–100 (default 10),
//! `starting_after` / `ending_before` cursors (mutually exclusive).

use serde_json::{json, Value};

use crate::errors::ApiError;
use crate::form::Params;

/// The list parameters every list endpoint accepts, besides its own filters.
pub const LIST_PARAMS: &[&str] = &["limit", "starting_after", "ending_before", "expand"];

/// Pages `items` (already filtered, newest first) into a list object.
/// `object_name` names the resource in "No such …" errors for a bad cursor.
pub fn paginate(
    items: Vec<Value>,
    params: &Params,
    url: &str,
    object_name: &str,
) -> Result<Value, ApiError> {
    let limit = params.int("limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_param(
            "limit",
            format!("Invalid limit: must be between 1 and 100 (got {limit})."),
        ));
    }
    let limit = usize::try_from(limit).unwrap_or(10);
    let after = params.str("starting_after")?.filter(|s| !s.is_empty());
    let before = params.str("ending_before")?.filter(|s| !s.is_empty());
    let position = |cursor: &str, param: &str| {
        items
            .iter()
            .position(|v| v["id"].as_str() == Some(cursor))
            .ok_or_else(|| ApiError::no_such(object_name, cursor).with_param(param))
    };
    let (data, has_more): (Vec<Value>, bool) = match (after, before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_request(
                "You may only specify one of these parameters: ending_before, starting_after.",
            )
            .with_param("ending_before"))
        }
        (Some(cursor), None) => {
            let start = position(&cursor, "starting_after")? + 1;
            let rest = &items[start..];
            (
                rest.iter().take(limit).cloned().collect(),
                rest.len() > limit,
            )
        }
        (None, Some(cursor)) => {
            // The `limit` items just newer than the cursor, still newest first.
            let end = position(&cursor, "ending_before")?;
            let newer = &items[..end];
            let from = newer.len().saturating_sub(limit);
            (newer[from..].to_vec(), from > 0)
        }
        (None, None) => (
            items.iter().take(limit).cloned().collect(),
            items.len() > limit,
        ),
    };
    Ok(json!({ "object": "list", "data": data, "has_more": has_more, "url": url }))
}

/// Splits `expand[]` of a list into the per-item expansions (`data.x` → `x`).
pub fn item_expansions(params: &Params) -> Result<Vec<String>, ApiError> {
    params
        .expand()?
        .into_iter()
        .map(|e| {
            e.strip_prefix("data.")
                .map(str::to_string)
                .ok_or_else(|| ApiError::invalid_param("expand", format!("This property cannot be expanded ({e}). On lists, expand properties of the items with `data.`.")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::decode;

    fn items(n: usize) -> Vec<Value> {
        (0..n)
            .rev()
            .map(|i| json!({"id": format!("x_{i}")}))
            .collect()
    }

    fn ids(v: &Value) -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn pages() {
        let p = Params::new(decode(b"limit=2").unwrap());
        let v = paginate(items(5), &p, "/v1/x", "x").unwrap();
        assert_eq!(ids(&v), ["x_4", "x_3"]);
        assert_eq!(v["has_more"], true);
        let p = Params::new(decode(b"limit=2&starting_after=x_3").unwrap());
        let v = paginate(items(5), &p, "/v1/x", "x").unwrap();
        assert_eq!(ids(&v), ["x_2", "x_1"]);
        assert_eq!(v["has_more"], true);
        let p = Params::new(decode(b"limit=2&ending_before=x_1").unwrap());
        let v = paginate(items(5), &p, "/v1/x", "x").unwrap();
        assert_eq!(ids(&v), ["x_3", "x_2"]);
        assert_eq!(v["has_more"], true);
        let p = Params::new(decode(b"limit=3&ending_before=x_2").unwrap());
        let v = paginate(items(5), &p, "/v1/x", "x").unwrap();
        assert_eq!(ids(&v), ["x_4", "x_3"]);
        assert_eq!(v["has_more"], false);
        for bad in [
            &b"limit=0"[..],
            b"limit=101",
            b"limit=abc",
            b"starting_after=nope",
            b"starting_after=x_1&ending_before=x_2",
        ] {
            assert!(paginate(items(5), &Params::new(decode(bad).unwrap()), "/v1/x", "x").is_err());
        }
    }
}
