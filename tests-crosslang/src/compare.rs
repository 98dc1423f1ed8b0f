//! Comparing JSON documents: an expectation with an observed outcome, or two
//! observed outcomes with each other. Key order never matters; numbers are equal
//! when their values are (`2` and `2.0` are the same number, as JSON says); every
//! difference is reported with its path, so a failure reads as a list of lines like
//! `steps.step_2.result.value: expected 1296, got 1297`.
//!
//! An expected value may be a *matcher*, a mapping with one `$` key:
//!
//! | Matcher | Matches |
//! |---|---|
//! | `{$any: true}` | any value. The value is language-specific by design (an encoder's message), so it is also left out of the comparison across languages. |
//! | `{$contains: "text"}` | a string containing `text` |
//! | `{$match: "regex"}` | a string the regular expression matches somewhere |
//! | `{$repeat: {text: "ab", times: 3}}` | exactly `"ababab"` (for large payloads; also usable in contexts) |

use regex::Regex;
use serde_json::{Map, Value};
use std::fmt;

/// One difference between two documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Where: `steps.step_1.result.value`, `steps.a.transitions[2]`.
    pub path: String,
    /// What was wanted (rendered, shortened when long).
    pub expected: String,
    /// What was there.
    pub observed: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: expected {}, got {}", self.path, self.expected, self.observed)
    }
}

const MATCHERS: [&str; 4] = ["$any", "$contains", "$match", "$repeat"];

/// The matcher key and argument of `v`, when `v` is a matcher.
fn matcher(v: &Value) -> Option<(&str, &Value)> {
    match v {
        Value::Object(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            k.starts_with('$').then_some((k.as_str(), arg))
        }
        _ => None,
    }
}

/// Checks every matcher in `v` (known names, well-formed arguments).
pub fn check_matchers(v: &Value) -> Result<(), String> {
    if let Some((name, arg)) = matcher(v) {
        return match name {
            "$any" => Ok(()),
            "$contains" if arg.is_string() => Ok(()),
            "$match" => arg
                .as_str()
                .ok_or_else(|| "$match takes a regular expression".to_string())
                .and_then(|r| Regex::new(r).map(|_| ()).map_err(|e| format!("$match: {e}"))),
            "$repeat" => repeat(arg).map(|_| ()),
            "$contains" => Err("$contains takes a string".into()),
            other => Err(format!("unknown matcher `{other}` (known: {})", MATCHERS.join(", "))),
        };
    }
    match v {
        Value::Object(m) => m.values().try_for_each(check_matchers),
        Value::Array(a) => a.iter().try_for_each(check_matchers),
        _ => Ok(()),
    }
}

fn repeat(arg: &Value) -> Result<String, String> {
    let text = arg.get("text").and_then(Value::as_str);
    let times = arg.get("times").and_then(Value::as_u64);
    match (text, times, arg.as_object().map(Map::len)) {
        (Some(t), Some(n), Some(2)) if n <= 64 * 1024 * 1024 => Ok(t.repeat(n as usize)),
        _ => Err("$repeat takes {text: STRING, times: N}".into()),
    }
}

/// `v` with every `$repeat` replaced by the string it stands for (other matchers are
/// refused: a context is plain data).
pub fn expand_repeats(v: &Value) -> Result<Value, String> {
    if let Some((name, arg)) = matcher(v) {
        return match name {
            "$repeat" => repeat(arg).map(Value::String),
            other => Err(format!("`{other}` is not allowed here (only $repeat)")),
        };
    }
    Ok(match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), expand_repeats(x)?)))
                .collect::<Result<_, String>>()?,
        ),
        Value::Array(a) => Value::Array(a.iter().map(expand_repeats).collect::<Result<_, _>>()?),
        other => other.clone(),
    })
}

/// Every difference between `expected` (which may hold matchers) and `observed`.
pub fn compare(expected: &Value, observed: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(expected, observed, &mut String::new(), &mut out);
    out
}

fn walk(expected: &Value, observed: &Value, path: &mut String, out: &mut Vec<Difference>) {
    if let Some((name, arg)) = matcher(expected) {
        let ok = match name {
            "$any" => true,
            "$contains" => observed.as_str().zip(arg.as_str()).is_some_and(|(o, s)| o.contains(s)),
            "$match" => observed
                .as_str()
                .zip(arg.as_str().and_then(|r| Regex::new(r).ok()))
                .is_some_and(|(o, r)| r.is_match(o)),
            "$repeat" => repeat(arg).is_ok_and(|s| observed.as_str() == Some(s.as_str())),
            _ => false,
        };
        if !ok {
            let wanted = match (name, repeat(arg)) {
                ("$repeat", Ok(s)) => render(&Value::String(s)),
                _ => format!("a value matching {}", compact(expected)),
            };
            let got = match (name, repeat(arg), observed.as_str()) {
                ("$repeat", Ok(s), Some(o)) => describe_string_difference(&s, o),
                _ => render(observed),
            };
            out.push(difference(path, wanted, got));
        }
        return;
    }
    match (expected, observed) {
        (Value::Object(e), Value::Object(o)) => {
            let mut keys: Vec<&String> = e.keys().chain(o.keys().filter(|k| !e.contains_key(*k))).collect();
            keys.sort();
            for k in keys {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                match (e.get(k), o.get(k)) {
                    (Some(ev), Some(ov)) => walk(ev, ov, path, out),
                    (Some(ev), None) => out.push(difference(path, render(ev), "nothing (key missing)".into())),
                    (None, Some(ov)) => out.push(difference(path, "no such key".into(), render(ov))),
                    (None, None) => {}
                }
                path.truncate(len);
            }
        }
        (Value::Array(e), Value::Array(o)) if e.len() == o.len() => {
            for (i, (ev, ov)) in e.iter().zip(o).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(ev, ov, path, out);
                path.truncate(len);
            }
        }
        (Value::Array(e), Value::Array(o)) => {
            out.push(difference(path, list(e), list(o)));
        }
        (Value::Number(e), Value::Number(o)) if !same_number(e, o) => {
            out.push(difference(path, render(expected), render(observed)));
        }
        (Value::Number(_), Value::Number(_)) => {}
        (Value::String(e), Value::String(o)) if e != o && (e.len() > 80 || o.len() > 80) => {
            out.push(difference(path, render(expected), describe_string_difference(e, o)));
        }
        (e, o) if e != o => out.push(difference(path, render(e), render(o))),
        _ => {}
    }
}

fn same_number(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    let int = |n: &serde_json::Number| n.as_i64().map(i128::from).or_else(|| n.as_u64().map(i128::from));
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.as_f64() == b.as_f64(),
    }
}

fn difference(path: &str, expected: String, observed: String) -> Difference {
    Difference {
        path: if path.is_empty() {
            "(document)".into()
        } else {
            path.to_string()
        },
        expected,
        observed,
    }
}

/// A list, one element per line when long (transition lists read best that way).
fn list(items: &[Value]) -> String {
    let rendered: Vec<String> = items.iter().map(render).collect();
    let one_line = format!("[{}]", rendered.join(", "));
    if one_line.len() <= 100 {
        one_line
    } else {
        format!("[\n      {}\n    ]", rendered.join(",\n      "))
    }
}

/// A value as compact JSON, shortened when long.
pub fn render(v: &Value) -> String {
    if let Value::String(s) = v {
        let n = s.chars().count();
        if n > 120 {
            let head: String = s.chars().take(100).collect();
            let head = compact(&Value::String(head));
            return format!("{}…\" ({n} characters)", &head[..head.len() - 1]);
        }
    }
    let text = compact(v);
    let chars = text.chars().count();
    if chars <= 200 {
        text
    } else {
        let head: String = text.chars().take(120).collect();
        format!("{head}… ({chars} characters)")
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "?".into())
}

/// Where two long strings first differ, and their lengths.
fn describe_string_difference(expected: &str, observed: &str) -> String {
    let at = expected
        .chars()
        .zip(observed.chars())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| expected.chars().count().min(observed.chars().count()));
    let around: String = observed.chars().skip(at.saturating_sub(10)).take(40).collect();
    format!(
        "a string of {} characters (expected {}) that first differs at character {at}: …{}…",
        observed.chars().count(),
        expected.chars().count(),
        compact(&Value::String(around))
    )
}

/// The paths under a `$any` matcher in `expected`, as pointers into the document
/// (`/steps/x/error/message`): values that differ between languages by design.
pub fn language_specific_paths(expected: &Value) -> Vec<String> {
    fn go(v: &Value, at: String, out: &mut Vec<String>) {
        if let Some(("$any", _)) = matcher(v) {
            out.push(at);
            return;
        }
        match v {
            Value::Object(m) => m.iter().for_each(|(k, x)| go(x, format!("{at}/{}", escape(k)), out)),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| go(x, format!("{at}/{i}"), out)),
            _ => {}
        }
    }
    fn escape(k: &str) -> String {
        k.replace('~', "~0").replace('/', "~1")
    }
    let mut out = Vec::new();
    go(expected, String::new(), &mut out);
    out
}

/// `doc` with the values at `pointers` replaced by a placeholder, so that two runs
/// compare equal there.
pub fn mask(doc: &Value, pointers: &[String]) -> Value {
    let mut doc = doc.clone();
    for p in pointers {
        if let Some(v) = doc.pointer_mut(p) {
            *v = Value::String("(language-specific)".into());
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_documents_have_no_differences_whatever_their_key_order() {
        let a = json!({"b": [1, {"x": null}], "a": "é"});
        let b: Value = serde_json::from_str(r#"{"a": "é", "b": [1, {"x": null}]}"#).unwrap();
        assert_eq!(compare(&a, &b), vec![]);
    }

    #[test]
    fn numbers_are_compared_by_value() {
        assert_eq!(compare(&json!({"v": 2}), &json!({"v": 2.0})), vec![]);
        assert_eq!(
            compare(&json!(9_007_199_254_740_991_i64), &json!(9_007_199_254_740_991_u64)),
            vec![]
        );
        let d = compare(&json!({"v": 2}), &json!({"v": 2.5}));
        assert_eq!(d[0].to_string(), "v: expected 2, got 2.5");
    }

    #[test]
    fn each_difference_names_its_path() {
        let d = compare(
            &json!({"steps": {"s": {"result": {"value": 36}, "transitions": ["a", "b"]}}}),
            &json!({"steps": {"s": {"result": {"value": 37, "extra": true}, "transitions": ["a", "c"]}}}),
        );
        let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "steps.s.result.extra: expected no such key, got true",
                "steps.s.result.value: expected 36, got 37",
                "steps.s.transitions[1]: expected \"b\", got \"c\"",
            ]
        );
    }

    #[test]
    fn a_list_of_another_length_is_shown_whole() {
        let d = compare(&json!(["a", "b"]), &json!(["a"]));
        assert_eq!(d[0].to_string(), r#"(document): expected ["a", "b"], got ["a"]"#);
    }

    #[test]
    fn matchers_match_what_they_say() {
        check_matchers(&json!({"m": {"$match": "^x+$"}, "r": {"$repeat": {"text": "ab", "times": 2}}})).unwrap();
        assert!(check_matchers(&json!({"$anything": 1}))
            .unwrap_err()
            .contains("unknown matcher"));
        assert!(check_matchers(&json!({"$match": "("})).is_err());
        assert_eq!(compare(&json!({"$any": true}), &json!([1, 2])), vec![]);
        assert_eq!(compare(&json!({"$contains": "lo w"}), &json!("hello world")), vec![]);
        assert_eq!(compare(&json!({"$match": "^h.*d$"}), &json!("hello world")), vec![]);
        assert_eq!(
            compare(&json!({"$repeat": {"text": "ab", "times": 3}}), &json!("ababab")),
            vec![]
        );
        assert_eq!(compare(&json!({"$contains": "x"}), &json!("hello")).len(), 1);
        assert_eq!(
            compare(&json!({"$repeat": {"text": "ab", "times": 3}}), &json!("abab")).len(),
            1
        );
    }

    #[test]
    fn a_long_string_difference_says_where_it_starts() {
        let long = "0123456789".repeat(20);
        let mut other = long.clone();
        other.replace_range(150..151, "X");
        let d = compare(&json!(long), &json!(other));
        assert!(d[0].observed.contains("first differs at character 150"), "{}", d[0]);
        assert!(d[0].expected.contains("(200 characters)"), "{}", d[0]);
    }

    #[test]
    fn repeats_expand_in_contexts_and_other_matchers_are_refused() {
        let v = expand_repeats(&json!({"blob": {"$repeat": {"text": "xy", "times": 2}}, "n": 1})).unwrap();
        assert_eq!(v, json!({"blob": "xyxy", "n": 1}));
        assert!(expand_repeats(&json!({"$any": true})).is_err());
    }

    #[test]
    fn any_marks_language_specific_paths_which_masking_hides() {
        let expected = json!({"steps": {"s": {"error": {"message": {"$any": true}, "error_type": "invalid_result"}}}});
        let paths = language_specific_paths(&expected);
        assert_eq!(paths, ["/steps/s/error/message"]);
        let a = json!({"steps": {"s": {"error": {"message": "Python says", "error_type": "invalid_result"}}}});
        let b = json!({"steps": {"s": {"error": {"message": "Ruby says", "error_type": "invalid_result"}}}});
        assert_eq!(compare(&mask(&a, &paths), &mask(&b, &paths)), vec![]);
    }
}
