//! The examples in `spec/examples/` are made by this code with fixed keys and a fixed clock, and
//! the tests below fail when a file differs from what the code makes, so the specification
//! cannot drift from the implementation. `CAREMESH_WRITE_EXAMPLES=1 cargo test -p
//! caremesh-federation examples` rewrites them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use caremesh_domain::Timestamp;
use caremesh_protocol::KeyPair;
use caremesh_protocol::proof::{ProofOptions, create_proof, verify_proof};
use caremesh_store::LocalKey;
use serde_json::{Value, json};
use url::Url;

use crate::actors;
use crate::urls::{Urls, first_key_id};

/// 2026-11-23T08:00:00Z.
const WHEN: i64 = 1_795_420_800_000;

/// The test keys published in `spec/federation.md` (never use them for anything real).
pub fn seed_of(actor: &str) -> [u8; 32] {
    match actor {
        "https://hospital-a.example/actor" => [0x11; 32],
        "https://hospital-a.example/users/dr.wang" => [0x22; 32],
        "https://hospital-b.example/actor" => [0x33; 32],
        "https://hospital-b.example/users/p-7f3k2m9q" => [0x44; 32],
        "https://hospital-a.example/groups/k3n8w2" => [0x55; 32],
        "https://hospital-b.example/users/dr.li" => [0x66; 32],
        other => panic!("no example key for {other}"),
    }
}

fn key_of(actor: &str) -> KeyPair {
    KeyPair::from_seed(&seed_of(actor))
}

fn local_key(actor: &str) -> LocalKey {
    let pair = key_of(actor);
    LocalKey {
        key_id: first_key_id(actor),
        actor_id: actor.to_owned(),
        private_key_pem: String::new(),
        public_key_pem: pair.public_key().to_spki_pem().unwrap(),
        created_at: Timestamp::from_millis(WHEN),
        retired_at: None,
    }
}

fn signed(actor: &str, doc: Value) -> Value {
    let when = UNIX_EPOCH + Duration::from_millis(WHEN as u64);
    let options = ProofOptions::new(first_key_id(actor), when);
    create_proof(&doc, &options, &key_of(actor)).unwrap()
}

const CONTEXT: [&str; 2] = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/data-integrity/v2",
];

/// Every example, by file name (without `.json`).
pub fn all() -> Vec<(&'static str, Value)> {
    let a = Urls::new(Url::parse("https://hospital-a.example/").unwrap());
    let b = Urls::new(Url::parse("https://hospital-b.example/").unwrap());
    let wang = a.person("dr.wang");
    let member = "https://hospital-b.example/users/p-7f3k2m9q".to_owned();
    let group = "https://hospital-a.example/groups/k3n8w2".to_owned();
    let published = Timestamp::from_millis(WHEN).to_rfc3339();
    let edited = Timestamp::from_millis(WHEN + 600_000).to_rfc3339();

    let note = json!({
        "id": a.object("n-5d2c9a"),
        "type": "Note",
        "attributedTo": wang,
        "context": group,
        "to": [group],
        "content": "术后第一周：每天散步两次，每次十分钟。",
        "mediaType": "text/plain",
        "published": published,
    });
    let create = signed(
        &wang,
        json!({
            "@context": CONTEXT,
            "id": a.activity("c-5d2c9a"),
            "type": "Create",
            "actor": wang,
            "to": [group],
            "object": note,
        }),
    );
    let mut edited_note = note.clone();
    edited_note["content"] = json!("术后第一周：每天散步两到三次，每次十分钟。");
    edited_note["updated"] = json!(edited);
    let update = signed(
        &wang,
        json!({
            "@context": CONTEXT,
            "id": a.activity("u-5d2c9a-1"),
            "type": "Update",
            "actor": wang,
            "to": [group],
            "object": edited_note,
        }),
    );
    let delete = signed(
        &wang,
        json!({
            "@context": CONTEXT,
            "id": a.activity("d-5d2c9a"),
            "type": "Delete",
            "actor": wang,
            "to": [group],
            "object": { "id": a.object("n-5d2c9a"), "type": "Tombstone" },
        }),
    );
    let question = signed(
        &member,
        json!({
            "@context": CONTEXT,
            "id": b.activity("c-q81"),
            "type": "Create",
            "actor": member,
            "to": [group],
            "object": {
                "id": b.object("q81"),
                "type": "Note",
                "attributedTo": member,
                "context": group,
                "inReplyTo": a.object("n-5d2c9a"),
                "to": [group],
                "content": "散步时心率多少算正常？",
                "mediaType": "text/plain",
                "published": published,
            },
        }),
    );
    let announce = json!({
        "@context": CONTEXT,
        "id": a.activity("a-q81"),
        "type": "Announce",
        "actor": group,
        "to": [format!("{group}/members")],
        "object": question,
    });
    let follow = json!({
        "@context": CONTEXT,
        "id": b.activity("f-1"),
        "type": "Follow",
        "actor": member,
        "object": group,
    });
    let accept = json!({
        "@context": CONTEXT,
        "id": a.activity("accept-f-1"),
        "type": "Accept",
        "actor": group,
        "object": follow,
    });
    let reject = json!({
        "@context": CONTEXT,
        "id": a.activity("reject-f-1"),
        "type": "Reject",
        "actor": group,
        "object": follow,
    });
    let undo = json!({
        "@context": CONTEXT,
        "id": b.activity("undo-f-1"),
        "type": "Undo",
        "actor": member,
        "object": follow,
    });
    let update_actor = json!({
        "@context": actors::CONTEXT,
        "id": a.activity("key-rotation-1795424400000"),
        "type": "Update",
        "actor": a.instance_actor(),
        "object": a.instance_actor(),
        "published": Timestamp::from_millis(WHEN + 3_600_000).to_rfc3339(),
        "summary": "key rotated to https://hospital-a.example/actor#key-1795424400000",
    });
    let instance = actors::instance_actor(
        &a,
        "唐山市人民医院 Tangshan People's Hospital",
        &[local_key(&a.instance_actor())],
    )
    .unwrap();
    let credential = crate::credentials::credential_document(
        &a,
        "唐山市人民医院 Tangshan People's Hospital",
        "dr.wang",
        "王医生",
        &caremesh_domain::Credential {
            title: "主任医师 Chief physician".into(),
            specialty: "心血管内科 Cardiology".into(),
            licence_number: "110108000000001".into(),
            checked_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
            issued_at: Timestamp::from_millis(WHEN),
            valid_until: Some(Timestamp::from_millis(WHEN + 365 * 24 * 3_600_000)),
            revoked_at: None,
        },
    );
    let credential = signed(&a.instance_actor(), credential);
    let person = actors::person_actor(
        &a,
        "dr.wang",
        "王医生",
        &[local_key(&wang)],
        Some(credential),
    )
    .unwrap();
    let post_state = signed(
        &group,
        json!({
            "@context": CONTEXT,
            "id": a.activity("group-update-7c1e"),
            "type": "Update",
            "actor": group,
            "to": [format!("{group}/members")],
            "object": {
                "id": crate::group_sync::state_id(&group, &b.object("q81")),
                "type": crate::group_sync::POST_STATE,
                "attributedTo": group,
                "context": group,
                "caremesh:post": b.object("q81"),
                "caremesh:pinned": true,
                "caremesh:helpfulCount": 3,
                "caremesh:acceptedAnswer": a.object("r-90"),
                "caremesh:answeredByDoctor": true,
                "caremesh:removed": false,
                "published": published,
                "updated": edited,
            },
        }),
    );
    let membership = signed(
        &group,
        json!({
            "@context": CONTEXT,
            "id": a.activity("group-update-7c1f"),
            "type": "Update",
            "actor": group,
            "to": [format!("{group}/members")],
            "object": {
                "id": crate::group_sync::membership_id(&group, &member),
                "type": crate::group_sync::MEMBERSHIP,
                "attributedTo": group,
                "context": group,
                "caremesh:member": member,
                "caremesh:role": "member",
                "caremesh:state": "banned",
                "published": published,
                "updated": edited,
            },
        }),
    );
    let like_object = json!({
        "type": "Like",
        "actor": member,
        "object": a.object("r-90"),
        "context": group,
    });
    let mut like = like_object.clone();
    like["@context"] = json!(CONTEXT[0]);
    like["id"] = json!(b.activity("like-3"));
    let undo_like = json!({
        "@context": CONTEXT[0],
        "id": b.activity("unlike-4"),
        "type": "Undo",
        "actor": member,
        "object": like_object,
    });
    // A doctor of hospital B, who teaches in A's group, pins a question from her own node; A
    // answers. Built by the same functions the nodes use.
    let dr_li = b.person("dr.li");
    let pin = crate::activity::group_action(
        &b.activity("action-pin-1"),
        &dr_li,
        &group,
        &crate::activity::GroupActionKind::Pin {
            post: b.object("q81"),
            pinned: true,
        },
    );
    let remove = crate::activity::group_action(
        &b.activity("action-remove-2"),
        &dr_li,
        &group,
        &crate::activity::GroupActionKind::RemovePost {
            post: b.object("q82"),
            reason: Some("广告".into()),
        },
    );
    let accept_action = crate::activity::action_answer(
        &a.activity("answer-pin-1"),
        &group,
        &b.activity("action-pin-1"),
        None,
    );
    let reject_action = crate::activity::action_answer(
        &a.activity("answer-remove-2"),
        &group,
        &b.activity("action-remove-2"),
        Some((
            "credential_inactive",
            "the doctor's credential has been revoked by their hospital: teaching here is suspended",
        )),
    );
    let flag = crate::activity::flag(
        &b.activity("flag-9"),
        &member,
        &group,
        &a.object("n-5d2c9a"),
        "广告，请管理员处理",
    );
    let webfinger = json!({
        "subject": a.acct("dr.wang"),
        "links": [{ "rel": "self", "type": crate::ACTIVITY_JSON, "href": wang }],
    });
    vec![
        ("actor-node", instance),
        ("actor-person", person),
        ("webfinger", webfinger),
        ("create-note", create),
        ("create-reply", question),
        ("update-note", update),
        ("delete-note", delete),
        ("announce", announce),
        ("follow", follow),
        ("accept", accept),
        ("reject", reject),
        ("undo-follow", undo),
        ("update-actor", update_actor),
        ("update-post-state", post_state),
        ("update-membership", membership),
        ("like", like),
        ("undo-like", undo_like),
        ("group-action-pin", pin),
        ("group-action-remove-post", remove),
        ("accept-group-action", accept_action),
        ("reject-group-action", reject_action),
        ("flag", flag),
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../spec/examples")
}

#[test]
fn spec_examples_are_what_the_code_makes() {
    let write = std::env::var("CAREMESH_WRITE_EXAMPLES").is_ok_and(|v| v == "1");
    for (name, value) in all() {
        let path = dir().join(format!("{name}.json"));
        if write {
            let mut text = serde_json::to_string_pretty(&value).unwrap();
            text.push('\n');
            std::fs::write(&path, text).unwrap();
            continue;
        }
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let on_disk: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            on_disk, value,
            "spec/examples/{name}.json differs from what the code makes"
        );
    }
    let names: Vec<String> = all().iter().map(|(n, _)| format!("{n}.json")).collect();
    for entry in std::fs::read_dir(dir()).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            names.contains(&file),
            "spec/examples/{file} is not made by the code"
        );
    }
}

/// Every example as a peer would check it: shape, actor and object on one node, proofs.
#[test]
fn spec_examples_pass_the_inbox_checks() {
    for (name, value) in all() {
        if !name.starts_with("actor-") && name != "webfinger" {
            let parsed = crate::activity::parse(&value).unwrap_or_else(|e| panic!("{name}: {e}"));
            let change = parsed.object_change(&value);
            if ["Create", "Update", "Delete"].contains(&parsed.head.kind.as_str())
                && name != "update-actor"
            {
                assert!(change.is_some(), "{name} changes an object");
            }
        }
        for doc in [&value, &value["object"], &value["credential"]] {
            if let Some(proof) = doc.get("proof") {
                let method = proof["verificationMethod"].as_str().unwrap();
                let actor = method.split('#').next().unwrap();
                verify_proof(doc, &key_of(actor).public_key())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                let mut altered = doc.clone();
                altered["id"] = json!("https://hospital-a.example/activities/forged");
                assert!(verify_proof(&altered, &key_of(actor).public_key()).is_err());
            }
        }
    }
}

#[test]
fn published_test_keys_match_the_examples() {
    let (_, node) = all().into_iter().next().unwrap();
    let pem = node["publicKey"]["publicKeyPem"].as_str().unwrap();
    assert_eq!(
        pem,
        key_of("https://hospital-a.example/actor")
            .public_key()
            .to_spki_pem()
            .unwrap()
    );
}
