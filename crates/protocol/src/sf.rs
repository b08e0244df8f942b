//! The part of RFC 8941 (Structured Field Values) that `Content-Digest`, `Signature-Input`
//! and `Signature` need: dictionaries whose members are items or inner lists, with
//! parameters, and the serialization of inner lists with parameters.

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

/// A bare item (RFC 8941 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BareItem {
    Integer(i64),
    /// Kept as its text: nothing here computes with decimals.
    Decimal(String),
    String(String),
    Token(String),
    ByteSeq(Vec<u8>),
    Boolean(bool),
}

pub(crate) type Parameters = Vec<(String, BareItem)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) bare: BareItem,
    pub(crate) params: Parameters,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Member {
    Item(Item),
    InnerList(Vec<Item>, Parameters),
}

/// RFC 8941 says parsers should not insist on `=` padding in byte sequences.
const BYTES_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

pub(crate) fn parse_dictionary(input: &str) -> Result<Vec<(String, Member)>, String> {
    let mut p = Parser {
        input: input.as_bytes(),
        pos: 0,
    };
    p.skip_sp();
    let mut members: Vec<(String, Member)> = Vec::new();
    while !p.at_end() {
        let key = p.parse_key()?;
        let member = if p.peek() == Some(b'=') {
            p.pos += 1;
            p.parse_item_or_inner_list()?
        } else {
            Member::Item(Item {
                bare: BareItem::Boolean(true),
                params: p.parse_parameters()?,
            })
        };
        // RFC 8941 §4.2.2: a repeated key overwrites the earlier value, in place.
        if let Some(slot) = members.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = member;
        } else {
            members.push((key, member));
        }
        p.skip_ows();
        if p.at_end() {
            break;
        }
        if p.next() != Some(b',') {
            return Err(format!("expected ',' at position {}", p.pos - 1));
        }
        p.skip_ows();
        if p.at_end() {
            return Err("trailing ',' in dictionary".to_owned());
        }
    }
    Ok(members)
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.input.len() || self.rest_is_sp()
    }

    fn rest_is_sp(&self) -> bool {
        self.input[self.pos..].iter().all(|&b| b == b' ')
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek();
        if b.is_some() {
            self.pos += 1;
        }
        b
    }

    fn skip_sp(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn parse_key(&mut self) -> Result<String, String> {
        let start = self.pos;
        match self.peek() {
            Some(b'a'..=b'z' | b'*') => {}
            _ => return Err(format!("expected a key at position {start}")),
        }
        while let Some(b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*') = self.peek() {
            self.pos += 1;
        }
        Ok(self.text(start))
    }

    fn text(&self, start: usize) -> String {
        // Every byte accepted by the callers is ASCII.
        String::from_utf8_lossy(&self.input[start..self.pos]).into_owned()
    }

    fn parse_item_or_inner_list(&mut self) -> Result<Member, String> {
        if self.peek() == Some(b'(') {
            self.pos += 1;
            let mut items = Vec::new();
            loop {
                self.skip_sp();
                if self.peek() == Some(b')') {
                    self.pos += 1;
                    let params = self.parse_parameters()?;
                    return Ok(Member::InnerList(items, params));
                }
                let bare = self.parse_bare_item()?;
                let params = self.parse_parameters()?;
                items.push(Item { bare, params });
                match self.peek() {
                    Some(b' ' | b')') => {}
                    _ => return Err("inner list not closed".to_owned()),
                }
            }
        }
        let bare = self.parse_bare_item()?;
        let params = self.parse_parameters()?;
        Ok(Member::Item(Item { bare, params }))
    }

    fn parse_parameters(&mut self) -> Result<Parameters, String> {
        let mut params: Parameters = Vec::new();
        while self.peek() == Some(b';') {
            self.pos += 1;
            self.skip_sp();
            let key = self.parse_key()?;
            let value = if self.peek() == Some(b'=') {
                self.pos += 1;
                self.parse_bare_item()?
            } else {
                BareItem::Boolean(true)
            };
            if let Some(slot) = params.iter_mut().find(|(k, _)| *k == key) {
                slot.1 = value;
            } else {
                params.push((key, value));
            }
        }
        Ok(params)
    }

    fn parse_bare_item(&mut self) -> Result<BareItem, String> {
        match self.peek() {
            Some(b'-' | b'0'..=b'9') => self.parse_number(),
            Some(b'"') => self.parse_string(),
            Some(b':') => self.parse_byte_seq(),
            Some(b'?') => self.parse_boolean(),
            Some(b'A'..=b'Z' | b'a'..=b'z' | b'*') => Ok(self.parse_token()),
            _ => Err(format!("expected an item at position {}", self.pos)),
        }
    }

    fn parse_number(&mut self) -> Result<BareItem, String> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut decimal_point = None;
        while let Some(b) = self.peek() {
            match b {
                b'0'..=b'9' => self.pos += 1,
                b'.' if decimal_point.is_none() => {
                    decimal_point = Some(self.pos);
                    self.pos += 1;
                }
                _ => break,
            }
        }
        let digits = self.pos - digits_start;
        if digits == 0 || self.input.get(digits_start) == Some(&b'.') {
            return Err(format!("expected a digit at position {digits_start}"));
        }
        let text = self.text(start);
        match decimal_point {
            None => {
                if digits > 15 {
                    return Err("integer longer than 15 digits".to_owned());
                }
                text.parse::<i64>()
                    .map(BareItem::Integer)
                    .map_err(|e| format!("bad integer: {e}"))
            }
            Some(dot) => {
                let int_digits = dot - digits_start;
                let frac_digits = self.pos - dot - 1;
                if int_digits > 12 || frac_digits == 0 || frac_digits > 3 {
                    return Err("malformed decimal".to_owned());
                }
                Ok(BareItem::Decimal(text))
            }
        }
    }

    fn parse_string(&mut self) -> Result<BareItem, String> {
        self.pos += 1; // opening quote
        let mut out = String::new();
        loop {
            match self.next() {
                None => return Err("unterminated string".to_owned()),
                Some(b'"') => return Ok(BareItem::String(out)),
                Some(b'\\') => match self.next() {
                    Some(c @ (b'"' | b'\\')) => out.push(char::from(c)),
                    _ => return Err("bad escape in string".to_owned()),
                },
                Some(c @ 0x20..=0x7e) => out.push(char::from(c)),
                Some(_) => return Err("non-printable character in string".to_owned()),
            }
        }
    }

    fn parse_token(&mut self) -> BareItem {
        let start = self.pos;
        self.pos += 1;
        while let Some(b) = self.peek() {
            if is_tchar(b) || b == b':' || b == b'/' {
                self.pos += 1;
            } else {
                break;
            }
        }
        BareItem::Token(self.text(start))
    }

    fn parse_byte_seq(&mut self) -> Result<BareItem, String> {
        self.pos += 1; // opening colon
        let start = self.pos;
        while let Some(b) = self.peek() {
            match b {
                b':' => {
                    let encoded = &self.input[start..self.pos];
                    self.pos += 1;
                    return BYTES_LENIENT
                        .decode(encoded)
                        .map(BareItem::ByteSeq)
                        .map_err(|e| format!("bad base64 in byte sequence: {e}"));
                }
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => self.pos += 1,
                _ => return Err("bad character in byte sequence".to_owned()),
            }
        }
        Err("unterminated byte sequence".to_owned())
    }

    fn parse_boolean(&mut self) -> Result<BareItem, String> {
        self.pos += 1;
        match self.next() {
            Some(b'0') => Ok(BareItem::Boolean(false)),
            Some(b'1') => Ok(BareItem::Boolean(true)),
            _ => Err("bad boolean".to_owned()),
        }
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Serialize a string item; fails on characters RFC 8941 strings cannot hold.
pub(crate) fn serialize_string(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => return Err(format!("{s:?} cannot be a structured-field string")),
        }
    }
    out.push('"');
    Ok(out)
}

pub(crate) fn serialize_bare_item(item: &BareItem) -> Result<String, String> {
    Ok(match item {
        BareItem::Integer(i) => i.to_string(),
        BareItem::Decimal(d) => d.clone(),
        BareItem::String(s) => serialize_string(s)?,
        BareItem::Token(t) => t.clone(),
        BareItem::ByteSeq(b) => format!(":{}:", general_purpose::STANDARD.encode(b)),
        BareItem::Boolean(true) => "?1".to_owned(),
        BareItem::Boolean(false) => "?0".to_owned(),
    })
}

pub(crate) fn serialize_parameters(params: &Parameters) -> Result<String, String> {
    let mut out = String::new();
    for (key, value) in params {
        out.push(';');
        out.push_str(key);
        if *value != BareItem::Boolean(true) {
            out.push('=');
            out.push_str(&serialize_bare_item(value)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_digest_dictionary() {
        let d = parse_dictionary("sha-256=:AAEC:,  sha-512=:AQ==:;x=1").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].0, "sha-256");
        assert_eq!(
            d[0].1,
            Member::Item(Item {
                bare: BareItem::ByteSeq(vec![0, 1, 2]),
                params: vec![]
            })
        );
        assert_eq!(
            d[1].1,
            Member::Item(Item {
                bare: BareItem::ByteSeq(vec![1]),
                params: vec![("x".to_owned(), BareItem::Integer(1))]
            })
        );
    }

    #[test]
    fn parses_signature_input() {
        let d = parse_dictionary(
            r#"sig-b26=("date" "@method");created=1618884473;keyid="test-key-ed25519";x;d=1.5"#,
        )
        .unwrap();
        let Member::InnerList(items, params) = &d[0].1 else {
            panic!("inner list expected");
        };
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].bare, BareItem::String("@method".to_owned()));
        assert_eq!(
            params[0],
            ("created".to_owned(), BareItem::Integer(1618884473))
        );
        assert_eq!(
            params[1],
            (
                "keyid".to_owned(),
                BareItem::String("test-key-ed25519".to_owned())
            )
        );
        assert_eq!(params[2], ("x".to_owned(), BareItem::Boolean(true)));
        assert_eq!(
            params[3],
            ("d".to_owned(), BareItem::Decimal("1.5".to_owned()))
        );
    }

    #[test]
    fn rejects_malformed_input() {
        for bad in [
            "a=:AA",
            "a=(\"x\"",
            "a=\"unterminated",
            "A=1",
            "a=1,",
            "a=1 b=2",
            "a=1234567890123456",
            "a=:AA*:",
            "a=?2",
            "a=\"bad\\n\"",
        ] {
            assert!(parse_dictionary(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn repeated_key_overwrites() {
        let d = parse_dictionary("a=1, b=2, a=3").unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            d[0].1,
            Member::Item(Item {
                bare: BareItem::Integer(3),
                params: vec![]
            })
        );
    }

    #[test]
    fn serializes_strings_with_escapes() {
        assert_eq!(serialize_string(r#"a"b\c"#).unwrap(), r#""a\"b\\c""#);
        assert!(serialize_string("line\nbreak").is_err());
        assert!(serialize_string("é").is_err());
    }
}
