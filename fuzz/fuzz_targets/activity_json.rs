//! The activity parser (`head`, `parse`) on arbitrary JSON documents built from the fuzzer's
//! bytes: objects whose keys and strings are mostly the ones activities use, so that the parser's
//! deeper branches (nested objects, announces of announces, group actions, proofs) are reached
//! far more often than through JSON text.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use caremesh_federation::activity;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

const KEYS: &[&str] = &[
    "type",
    "id",
    "@context",
    "object",
    "actor",
    "to",
    "cc",
    "context",
    "target",
    "content",
    "name",
    "summary",
    "published",
    "updated",
    "attributedTo",
    "inReplyTo",
    "mediaType",
    "url",
    "attachment",
    "proof",
    "proofValue",
    "verificationMethod",
    "proofPurpose",
    "cryptosuite",
    "created",
    "owner",
    "inbox",
    "sharedInbox",
    "endpoints",
    "publicKey",
    "publicKeyPem",
    "preferredUsername",
    "credential",
    "issuer",
    "credentialSubject",
    "validFrom",
    "validUntil",
    "caremesh:answer",
    "caremesh:code",
    "caremesh:folder",
    "caremesh:inviteToken",
    "caremesh:kind",
    "caremesh:pinned",
    "href",
    "status",
    "tag",
    "sensitive",
];

const STRINGS: &[&str] = &[
    "Create",
    "Update",
    "Delete",
    "Follow",
    "Accept",
    "Reject",
    "Undo",
    "Announce",
    "Like",
    "Flag",
    "Note",
    "Person",
    "Application",
    "Group",
    "Tombstone",
    "Question",
    "caremesh:Pin",
    "caremesh:Unpin",
    "caremesh:AcceptAnswer",
    "caremesh:ClearAnswer",
    "caremesh:RemovePost",
    "caremesh:RemoveMember",
    "caremesh:BanMember",
    "caremesh:UnbanMember",
    "caremesh:SaveToLibrary",
    "caremesh:RemoveFromLibrary",
    "caremesh:CreateFolder",
    "caremesh:DeleteFolder",
    "DataIntegrityProof",
    "eddsa-jcs-2022",
    "assertionMethod",
    "https://www.w3.org/ns/activitystreams",
    "https://www.w3.org/ns/activitystreams#Public",
    "https://a.example/actor",
    "https://a.example/users/ann",
    "https://a.example/g/1",
    "https://a.example/posts/1",
    "https://b.example/actor#main-key",
    "http://a.example/x",
    "https://a.example:8443/actor",
    "2024-01-01T00:00:00Z",
    "2024-01-01T00:00:00.123+02:00",
    "",
    "text/html",
    "question",
    "answer",
];

fn string(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    if u.ratio(3, 4)? {
        Ok((*u.choose(STRINGS)?).to_owned())
    } else {
        String::arbitrary(u)
    }
}

fn value(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    let leaf = depth >= 5 || u.is_empty();
    Ok(match u.int_in_range(0..=if leaf { 4 } else { 6 })? {
        0 => Value::Null,
        1 => Value::Bool(bool::arbitrary(u)?),
        2 => match u.int_in_range(0..=2)? {
            0 => Value::from(i64::arbitrary(u)?),
            1 => Value::from(u64::arbitrary(u)?),
            _ => {
                serde_json::Number::from_f64(f64::arbitrary(u)?).map_or(Value::Null, Value::Number)
            }
        },
        3 | 4 => Value::String(string(u)?),
        5 => {
            let n = u.int_in_range(0..=3)?;
            Value::Array(
                (0..n)
                    .map(|_| value(u, depth + 1))
                    .collect::<Result<_, _>>()?,
            )
        }
        _ => Value::Object(object(u, depth + 1)?),
    })
}

fn object(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Map<String, Value>> {
    let mut map = Map::new();
    let n = u.int_in_range(0..=8)?;
    for _ in 0..n {
        let key = if u.ratio(7, 8)? {
            (*u.choose(KEYS)?).to_owned()
        } else {
            String::arbitrary(u)?
        };
        map.insert(key, value(u, depth)?);
    }
    Ok(map)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(doc) = object(&mut u, 0) else {
        return;
    };
    let doc = Value::Object(doc);
    if let Ok(head) = activity::head(&doc) {
        let _ = activity::is_actor_update(&doc, &head);
    }
    let _ = activity::parse(&doc);
});
