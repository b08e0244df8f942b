//! The HTTP working group's structured-field test suite (`tests/sf-tests/`, see its
//! `UPSTREAM.md`), run against the parser and serializer we use: `sfv` for every header type, and
//! our [`crate::sf::parse_dictionary`] on top of it for dictionaries.
//!
//! A test passes when a `must_fail` input is refused, or when an input parses to `expected` and
//! serializes back to `canonical` (or `raw`). A `can_fail` input (a SHOULD of the RFC) may be
//! refused; such refusals are counted apart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use sfv::{FieldType as _, ListEntry, Parser};

use crate::sf::{self, BareItem, Member};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base32 digit") as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

/// `expected` with byte sequences as hex, the form the converters below produce.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(o) if o.get("__type") == Some(&json!("binary")) => {
            let b32 = o["value"].as_str().unwrap();
            json!({"__type": "binary", "value": hex(&base32_decode(b32))})
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

/// JSON equality, with numbers compared as numbers (`1` and `1.0` are the same decimal).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn decimal(d: sfv::Decimal) -> Value {
    json!(i64::from(d.as_integer_scaled_1000()) as f64 / 1000.0)
}

fn typed(kind: &str, value: Value) -> Value {
    json!({"__type": kind, "value": value})
}

fn sfv_bare(b: &sfv::BareItem) -> Value {
    match b {
        sfv::BareItem::Integer(i) => json!(i64::from(*i)),
        sfv::BareItem::Decimal(d) => decimal(*d),
        sfv::BareItem::String(s) => json!(s.as_str()),
        sfv::BareItem::Token(t) => typed("token", json!(t.as_str())),
        sfv::BareItem::ByteSequence(b) => typed("binary", json!(hex(b))),
        sfv::BareItem::Boolean(b) => json!(b),
        sfv::BareItem::Date(d) => typed("date", json!(i64::from(d.unix_seconds()))),
        sfv::BareItem::DisplayString(s) => typed("displaystring", json!(s)),
    }
}

fn sfv_params(p: &sfv::Parameters) -> Value {
    p.iter()
        .map(|(k, v)| json!([k.as_str(), sfv_bare(v)]))
        .collect()
}

fn sfv_item(i: &sfv::Item) -> Value {
    json!([sfv_bare(&i.bare_item), sfv_params(&i.params)])
}

fn sfv_entry(e: &ListEntry) -> Value {
    match e {
        ListEntry::Item(i) => sfv_item(i),
        ListEntry::InnerList(l) => json!([
            l.items.iter().map(sfv_item).collect::<Value>(),
            sfv_params(&l.params)
        ]),
    }
}

fn our_bare(b: &BareItem) -> Value {
    match b {
        BareItem::Integer(i) => json!(i),
        BareItem::Decimal(d) => decimal(*d),
        BareItem::String(s) => json!(s),
        BareItem::Token(t) => typed("token", json!(t)),
        BareItem::ByteSeq(b) => typed("binary", json!(hex(b))),
        BareItem::Boolean(b) => json!(b),
        BareItem::Date(d) => typed("date", json!(d)),
        BareItem::DisplayString(s) => typed("displaystring", json!(s)),
    }
}

fn our_params(p: &sf::Parameters) -> Value {
    p.iter().map(|(k, v)| json!([k, our_bare(v)])).collect()
}

fn our_item(i: &sf::Item) -> Value {
    json!([our_bare(&i.bare), our_params(&i.params)])
}

fn our_dictionary(d: &[(String, Member)]) -> Value {
    d.iter()
        .map(|(k, m)| {
            let v = match m {
                Member::Item(i) => our_item(i),
                Member::InnerList(items, params) => json!([
                    items.iter().map(our_item).collect::<Value>(),
                    our_params(params)
                ]),
            };
            json!([k, v])
        })
        .collect()
}

/// Parse with `sfv` as `header_type`: the value in the suite's JSON form and its serialization.
fn parse_sfv(header_type: &str, input: &str) -> Result<(Value, Option<String>), sfv::Error> {
    let p = Parser::new(input);
    Ok(match header_type {
        "item" => {
            let item: sfv::Item = p.parse()?;
            (sfv_item(&item), Some(item.serialize()))
        }
        "list" => {
            let list: sfv::List = p.parse()?;
            (list.iter().map(sfv_entry).collect(), list.serialize())
        }
        "dictionary" => {
            let dict: sfv::Dictionary = p.parse()?;
            let value = dict
                .iter()
                .map(|(k, e)| json!([k.as_str(), sfv_entry(e)]))
                .collect();
            (value, dict.serialize())
        }
        other => panic!("unknown header_type {other}"),
    })
}

#[derive(Default)]
struct Tally {
    passed: usize,
    can_fail_refused: usize,
    failures: Vec<String>,
}

fn run_test(t: &Value, file: &str, tally: &mut Tally) {
    let name = format!("{file}: {}", t["name"].as_str().unwrap());
    let header_type = t["header_type"].as_str().unwrap();
    let raw: Vec<&str> = t["raw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    // Several field lines are combined as HTTP does (RFC 9110 §5.3).
    let input = raw.join(", ");
    let must_fail = t["must_fail"].as_bool().unwrap_or(false);
    let can_fail = t["can_fail"].as_bool().unwrap_or(false);

    let parsed = parse_sfv(header_type, &input);
    let ours = (header_type == "dictionary").then(|| sf::parse_dictionary(&input));
    if must_fail {
        if parsed.is_ok() {
            tally
                .failures
                .push(format!("{name}: sfv accepted {input:?}"));
        } else if ours.as_ref().is_some_and(Result::is_ok) {
            tally
                .failures
                .push(format!("{name}: sf accepted {input:?}"));
        } else {
            tally.passed += 1;
        }
        return;
    }
    let (value, serialized) = match parsed {
        Ok(p) => p,
        Err(_) if can_fail => {
            tally.can_fail_refused += 1;
            return;
        }
        Err(e) => {
            tally
                .failures
                .push(format!("{name}: sfv refused {input:?}: {e}"));
            return;
        }
    };
    let expected = normalize(&t["expected"]);
    if !same(&value, &expected) {
        tally
            .failures
            .push(format!("{name}: sfv parsed {value}, expected {expected}"));
        return;
    }
    match ours {
        Some(Ok(d)) if !same(&our_dictionary(&d), &expected) => {
            let got = our_dictionary(&d);
            tally
                .failures
                .push(format!("{name}: sf parsed {got}, expected {expected}"));
            return;
        }
        Some(Err(e)) => {
            tally
                .failures
                .push(format!("{name}: sf refused {input:?}: {e}"));
            return;
        }
        _ => {}
    }
    let canonical: Vec<&str> = t
        .get("canonical")
        .map(|c| {
            c.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect()
        })
        .unwrap_or(raw);
    let canonical = (!canonical.is_empty()).then(|| canonical.join(", "));
    if serialized != canonical {
        tally.failures.push(format!(
            "{name}: serialized as {serialized:?}, canonical {canonical:?}"
        ));
        return;
    }
    tally.passed += 1;
}

#[test]
fn structured_field_test_suite() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sf-tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "the suite's files are in {dir:?}");
    let mut tally = Tally::default();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let tests: Vec<Value> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for t in &tests {
            run_test(t, &file, &mut tally);
        }
    }
    println!(
        "structured-field suite ({} files): {} passed, {} failed, {} optional (can_fail) refused",
        files.len(),
        tally.passed,
        tally.failures.len(),
        tally.can_fail_refused
    );
    assert!(
        tally.failures.is_empty(),
        "{} structured-field tests failed:\n{}",
        tally.failures.len(),
        tally.failures.join("\n")
    );
}
