//! Structured Field Values (RFC 9651, which obsoletes RFC 8941) for `Content-Digest`,
//! `Signature-Input` and `Signature`: a thin layer over the [`sfv`] crate.
//!
//! These headers come from other nodes, so their parser is not ours to write: `sfv` is the
//! maintained Rust implementation of RFC 9651, run by its authors against the HTTP working
//! group's structured-field test suite, as we run it too (`sf_suite.rs`, with the suite's files in
//! `tests/sf-tests/`). This module turns its dictionaries into the few small types the signature
//! and digest code match on, and serializes the inner list that `@signature-params` is made of.

use sfv::{FieldType as _, KeyRef, ListEntry, Parser, StringRef};

/// A bare item (RFC 9651 §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BareItem {
    Integer(i64),
    /// Nothing here computes with decimals; kept as `sfv` gives it, so it serializes back exactly.
    Decimal(sfv::Decimal),
    String(String),
    Token(String),
    ByteSeq(Vec<u8>),
    Boolean(bool),
    /// A date (RFC 9651 §3.3.7), in seconds since the epoch.
    Date(i64),
    /// A display string (RFC 9651 §3.3.8).
    DisplayString(String),
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

/// Parse a dictionary field value. Members keep their order; a repeated key overwrites the
/// earlier value in place (RFC 9651 §4.2.2).
pub(crate) fn parse_dictionary(input: &str) -> Result<Vec<(String, Member)>, String> {
    let dict: sfv::Dictionary = Parser::new(input).parse().map_err(|e| e.to_string())?;
    Ok(dict
        .into_iter()
        .map(|(key, entry)| {
            let member = match entry {
                ListEntry::Item(item) => Member::Item(from_sfv_item(item)),
                ListEntry::InnerList(list) => Member::InnerList(
                    list.items.into_iter().map(from_sfv_item).collect(),
                    from_sfv_params(list.params),
                ),
            };
            (key.into(), member)
        })
        .collect())
}

fn from_sfv_item(item: sfv::Item) -> Item {
    Item {
        bare: from_sfv_bare(item.bare_item),
        params: from_sfv_params(item.params),
    }
}

fn from_sfv_params(params: sfv::Parameters) -> Parameters {
    params
        .into_iter()
        .map(|(k, v)| (k.into(), from_sfv_bare(v)))
        .collect()
}

fn from_sfv_bare(bare: sfv::BareItem) -> BareItem {
    match bare {
        sfv::BareItem::Integer(i) => BareItem::Integer(i.into()),
        sfv::BareItem::Decimal(d) => BareItem::Decimal(d),
        sfv::BareItem::String(s) => BareItem::String(s.into()),
        sfv::BareItem::Token(t) => BareItem::Token(t.into()),
        sfv::BareItem::ByteSequence(b) => BareItem::ByteSeq(b),
        sfv::BareItem::Boolean(b) => BareItem::Boolean(b),
        sfv::BareItem::Date(d) => BareItem::Date(d.unix_seconds().into()),
        sfv::BareItem::DisplayString(s) => BareItem::DisplayString(s),
    }
}

fn to_sfv_bare(bare: &BareItem) -> Result<sfv::BareItem, String> {
    let bad = |e: sfv::Error| e.to_string();
    Ok(match bare {
        BareItem::Integer(i) => sfv::Integer::try_from(*i).map_err(bad)?.into(),
        BareItem::Decimal(d) => (*d).into(),
        BareItem::String(s) => StringRef::from_str(s).map_err(bad)?.into(),
        BareItem::Token(t) => sfv::TokenRef::from_str(t).map_err(bad)?.into(),
        BareItem::ByteSeq(b) => b.as_slice().into(),
        BareItem::Boolean(b) => (*b).into(),
        BareItem::Date(d) => {
            sfv::Date::from_unix_seconds(sfv::Integer::try_from(*d).map_err(bad)?).into()
        }
        BareItem::DisplayString(s) => sfv::BareItem::DisplayString(s.clone()),
    })
}

/// Serialize a string item; fails on characters structured-field strings cannot hold.
pub(crate) fn serialize_string(s: &str) -> Result<String, String> {
    let s = StringRef::from_str(s).map_err(|e| format!("{s:?} cannot be a string: {e}"))?;
    Ok(sfv::ItemSerializer::new().bare_item(s).finish())
}

/// Serialize an inner list of strings with parameters, e.g. `("@method" "@path");created=1`.
pub(crate) fn serialize_inner_list(
    items: &[String],
    params: &[(String, BareItem)],
) -> Result<String, String> {
    let items = items
        .iter()
        .map(|s| StringRef::from_str(s).map_err(|e| format!("{s:?} cannot be a string: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let params = params
        .iter()
        .map(|(k, v)| {
            let key = KeyRef::from_str(k).map_err(|e| format!("{k:?} cannot be a key: {e}"))?;
            Ok((key, to_sfv_bare(v)?))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let list = sfv::List::from([ListEntry::InnerList(sfv::InnerList::with_params(
        items.into_iter().map(sfv::Item::new).collect(),
        params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    ))]);
    list.serialize()
        .ok_or_else(|| "an inner list always serializes".to_owned())
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
            (
                "d".to_owned(),
                BareItem::Decimal(sfv::Decimal::try_from(1.5).unwrap())
            )
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

    #[test]
    fn serializes_inner_lists_with_parameters() {
        let params = vec![
            ("created".to_owned(), BareItem::Integer(1618884473)),
            ("keyid".to_owned(), BareItem::String("k".to_owned())),
            ("x".to_owned(), BareItem::Boolean(true)),
            ("n".to_owned(), BareItem::Boolean(false)),
        ];
        assert_eq!(
            serialize_inner_list(&["@method".to_owned(), "@path".to_owned()], &params).unwrap(),
            r#"("@method" "@path");created=1618884473;keyid="k";x;n=?0"#
        );
        assert_eq!(serialize_inner_list(&[], &[]).unwrap(), "()");
        assert!(serialize_inner_list(&["é".to_owned()], &[]).is_err());
        let bad_key = vec![("Key".to_owned(), BareItem::Integer(1))];
        assert!(serialize_inner_list(&[], &bad_key).is_err());
    }
}
