//! Canonical JSON: one byte-exact encoding of a JSON value, used wherever a hash of
//! JSON must be stable across builds, platforms and serde feature flags (template
//! content hashes, task identity hashes).
//!
//! The encoding: object keys sorted by their UTF-8 bytes at every depth, no
//! whitespace, arrays in their given order, numbers and strings as serde_json
//! writes them. It does not rely on `serde_json::Map` ordering, which changes
//! when any crate in the build enables serde_json's `preserve_order` feature.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Writes `value` in canonical form (see the module docs).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// SHA-256 of the canonical form of `value`, as lowercase hex.
pub fn canonical_sha256(value: &Value) -> String {
    sha256_hex(canonical_json(value).as_bytes())
}

/// SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_at_every_depth() {
        let v = json!({"b": 1, "a": {"d": [3, {"z": 1, "y": 2}], "c": null}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}"#);
    }

    #[test]
    fn equal_values_written_in_different_key_order_hash_the_same() {
        let a: Value = serde_json::from_str(r#"{"x": 1, "y": "é"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"y": "é", "x": 1}"#).unwrap();
        assert_eq!(canonical_sha256(&a), canonical_sha256(&b));
        assert_ne!(canonical_sha256(&a), canonical_sha256(&json!({"x": 2, "y": "é"})));
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
