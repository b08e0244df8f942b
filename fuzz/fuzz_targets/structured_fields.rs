//! Structured field values (RFC 9651) as the `sfv` crate parses them for `Signature-Input`,
//! `Signature` and `Content-Digest`: any input is parsed as an item, a list and a dictionary;
//! whatever parses must serialize, and the serialization must parse back to the same value and
//! serialize to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfv::{FieldType, Parser};

fn round_trip<T: FieldType + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let Ok(value) = Parser::new(data).parse::<T>() else {
        return;
    };
    let Some(text) = value.serialize().into() else {
        return; // an empty list or dictionary: the field is left out
    };
    let again: T = Parser::new(&text)
        .parse()
        .unwrap_or_else(|e| panic!("{text:?} does not parse again: {e}"));
    assert_eq!(again, value, "{text:?}");
    assert_eq!(again.serialize().into().as_deref(), Some(text.as_str()));
}

fuzz_target!(|data: &[u8]| {
    round_trip::<sfv::Item>(data);
    round_trip::<sfv::List>(data);
    round_trip::<sfv::Dictionary>(data);
});
