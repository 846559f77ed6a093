//! The emulator's decoding of Stripe's form encoding (bodies and query strings, bracketed
//! keys in every spelling the SDKs use): any input decodes to an object or is refused with an
//! error, never a panic, and a decoded tree has strings at its leaves only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn leaves_are_strings(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(items) => items.iter().all(leaves_are_strings),
        Value::Object(map) => map.values().all(leaves_are_strings),
        _ => false,
    }
}

fuzz_target!(|input: &[u8]| {
    if let Ok(tree) = stripe_emulator::decode_form(input) {
        assert!(tree.is_object(), "{tree}");
        assert!(leaves_are_strings(&tree), "{tree}");
    }
});
