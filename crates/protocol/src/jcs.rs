//! RFC 8785 JSON Canonicalization Scheme (JCS).
//!
//! Object members are sorted by the UTF-16 code units of their names, strings are escaped
//! as ECMAScript's `JSON.stringify` does, numbers are IEEE 754 doubles printed as
//! ECMAScript's `Number.prototype.toString` does (via `ryu-js`), and no whitespace is
//! emitted. Integers beyond 2^53 are therefore rounded to the nearest double, as RFC 8785
//! requires.

use std::fmt::Write as _;

use serde_json::{Map, Number, Value};

use crate::{Error, Result};

/// The canonical form of `value`.
pub fn canonicalize(value: &Value) -> Result<String> {
    let mut out = String::new();
    write_value(value, &mut out)?;
    Ok(out)
}

/// The canonical form of `value`, as UTF-8 bytes (what gets hashed).
pub fn canonicalize_to_vec(value: &Value) -> Result<Vec<u8>> {
    canonicalize(value).map(String::into_bytes)
}

fn write_value(value: &Value, out: &mut String) -> Result<()> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out)?;
            }
            out.push(']');
        }
        Value::Object(map) => write_object(map, out)?,
    }
    Ok(())
}

fn write_object(map: &Map<String, Value>, out: &mut String) -> Result<()> {
    let mut members: Vec<(&String, &Value)> = map.iter().collect();
    // serde_json orders keys by UTF-8 bytes (or by insertion); RFC 8785 wants UTF-16 code
    // units, which differ for characters above U+FFFF versus U+E000..U+FFFF.
    members.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    out.push('{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(key, out);
        out.push(':');
        write_value(value, out)?;
    }
    out.push('}');
    Ok(())
}

fn write_number(n: &Number, out: &mut String) -> Result<()> {
    let Some(f) = n.as_f64().filter(|f| f.is_finite()) else {
        return Err(Error::Canonicalization(format!(
            "{n} is not a finite IEEE 754 double"
        )));
    };
    let mut buffer = ryu_js::Buffer::new();
    out.push_str(buffer.format_finite(f));
    Ok(())
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon_str(json_text: &str) -> String {
        canonicalize(&serde_json::from_str(json_text).unwrap()).unwrap()
    }

    /// RFC 8785 appendix B: IEEE 754 bit patterns and their canonical text.
    #[test]
    fn rfc8785_number_examples() {
        let cases: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for &(bits, expected) in cases {
            let f = f64::from_bits(bits);
            let value = Value::Number(Number::from_f64(f).unwrap());
            assert_eq!(canonicalize(&value).unwrap(), expected, "bits {bits:016x}");
            // The canonical text parses back to the same double.
            let reparsed: f64 = serde_json::from_str(expected).unwrap();
            assert_eq!(reparsed.abs().to_bits(), f.abs().to_bits(), "{expected}");
        }
    }

    /// RFC 8785 section 3.2.2 (the example input and output).
    #[test]
    fn rfc8785_example() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        assert_eq!(
            canon_str(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    /// RFC 8785 section 3.2.3: member names sorted by UTF-16 code units.
    #[test]
    fn rfc8785_sorting_example() {
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        assert_eq!(
            canon_str(input),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
             \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
             \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"
        );
    }

    #[test]
    fn utf16_order_differs_from_utf8_order() {
        // U+1F600 is 0xD83D 0xDE00 in UTF-16 (before U+FB33) but F0.. in UTF-8 (after EF..).
        let value = json!({"\u{fb33}": 1, "\u{1f600}": 2});
        assert_eq!(
            canonicalize(&value).unwrap(),
            "{\"\u{1f600}\":2,\"\u{fb33}\":1}"
        );
    }

    #[test]
    fn nested_structures_and_whitespace() {
        let value = json!({"b": [1, {"z": null, "a": "x"}], "a": {"c": true, "b": false}});
        assert_eq!(
            canonicalize(&value).unwrap(),
            r#"{"a":{"b":false,"c":true},"b":[1,{"a":"x","z":null}]}"#
        );
    }

    #[test]
    fn control_characters_are_escaped_in_lower_hex() {
        let value = json!("\u{1}\u{1f}\u{7f}\u{2028}\t");
        assert_eq!(
            canonicalize(&value).unwrap(),
            "\"\\u0001\\u001f\u{7f}\u{2028}\\t\""
        );
    }

    #[test]
    fn integers_follow_double_semantics() {
        assert_eq!(
            canon_str("[1, -0, 10.0, 1e21, 1e20, 9007199254740993]"),
            "[1,0,10,1e+21,100000000000000000000,9007199254740992]"
        );
    }

    #[test]
    fn fep8b32_document_canonical_form() {
        // Pins the number formatting the proof vector relies on.
        let doc = crate::test_vectors::vectors()["fep8b32_eddsa_jcs_2022"]["document"].clone();
        let canon = canonicalize(&doc).unwrap();
        assert!(
            canon.contains(
                r#""location":{"latitude":25.273962,"longitude":-71.184902,"type":"Place"}"#
            ),
            "{canon}"
        );
        assert!(canon.starts_with(r#"{"@context":["#));
    }
}
