//! Federation between real nodes on loopback: signed delivery, partners, forged input, outages,
//! key rotation, several processes over one database. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use caremesh_domain::{Clock, Role};
use caremesh_federation::client::system_time;
use caremesh_protocol::KeyPair;
use caremesh_protocol::httpsig::signed_request_headers;
use caremesh_testkit::{Backend, START, TestNode, on_both_backends, wait_for};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends!(
    two_nodes_exchange_signed_activities_in_order,
    one_post_per_peer_to_three_nodes,
    non_partners_are_refused_and_nothing_is_stored,
    forged_and_broken_requests_are_refused,
    duplicates_are_acknowledged_and_change_nothing,
    a_peer_that_was_down_receives_everything_in_order,
    rotated_keys_keep_verifying,
    actors_webfinger_and_nodeinfo,
    replicas_over_one_database_never_double_deliver,
    each_partner_is_rate_limited,
    junk_naming_a_partners_key_does_not_cut_it_off,
    a_partner_listed_as_https_is_never_reached_over_http,
    rotated_out_keys_stop_verifying_after_the_grace,
    doctor_credentials_are_verified_everywhere_and_revocations_follow,
    a_partner_back_from_an_outage_is_reached_within_the_probe_interval,
);

async fn partners(a: &TestNode, b: &TestNode) {
    a.add_partner(b).await;
    b.add_partner(a).await;
}

/// A doctor's note as an activity with the doctor's integrity proof.
async fn note(node: &TestNode, author: &str, n: usize, content: &str) -> Value {
    let urls = &node.federation.urls;
    let actor = urls.person(author);
    let activity = json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/data-integrity/v2"],
        "id": urls.activity(&format!("create-{author}-{n}")),
        "type": "Create",
        "actor": actor,
        "object": {
            "id": urls.object(&format!("{author}-{n}")),
            "type": "Note",
            "attributedTo": actor,
            "content": content,
            "published": node.clock.now().to_rfc3339(),
        },
    });
    node.federation.sign_as(&actor, &activity).await.unwrap()
}

async fn publish(from: &TestNode, activity: &Value, to: &[&TestNode]) {
    let authorities: Vec<String> = to.iter().map(|n| n.authority()).collect();
    let peers = from.federation.peers(&authorities).await.unwrap();
    from.federation.publish(activity, &peers).await.unwrap();
}

async fn received(node: &TestNode) -> Vec<String> {
    node.store
        .received_activities(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.activity_id)
        .collect()
}

async fn two_nodes_exchange_signed_activities_in_order(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(bn) = TestNode::spawn(b).await else {
        return;
    };
    partners(&a, &bn).await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    bn.create_account(Role::Doctor, "dr.li", "doctor password")
        .await;
    let mut sent = Vec::new();
    for n in 0..12 {
        let act = note(&a, "dr.wang", n, &format!("术后第{n}天：可以散步十分钟")).await;
        sent.push(act["id"].as_str().unwrap().to_owned());
        publish(&a, &act, &[&bn]).await;
    }
    let reply = note(&bn, "dr.li", 0, "Answer from hospital B").await;
    publish(&bn, &reply, &[&a]).await;
    wait_for("B to receive 12 activities", || async {
        received(&bn).await.len() == 12
    })
    .await;
    assert_eq!(received(&bn).await, sent, "delivered once each, in order");
    wait_for("A to receive the reply", || async {
        received(&a).await.len() == 1
    })
    .await;
    let obj = bn
        .store
        .federated_object(&a.federation.urls.object("dr.wang-3"))
        .await
        .unwrap()
        .expect("the note is stored on B");
    let doc: Value = serde_json::from_str(obj.document.as_deref().unwrap()).unwrap();
    assert_eq!(doc["content"], "术后第3天：可以散步十分钟");
    assert_eq!(obj.attributed_to, a.federation.urls.person("dr.wang"));
    // B records an activity before it answers A, so A's queue drains a moment after B has it.
    wait_for("A's queue to B to drain", || async {
        let queue = a.store.peer_queues().await.unwrap();
        queue[0].pending == 0
    })
    .await;
    let queue = a.store.peer_queues().await.unwrap();
    assert_eq!((queue[0].pending, queue[0].parked), (0, 0));
}

async fn one_post_per_peer_to_three_nodes(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(bn) = TestNode::spawn(b).await else {
        return;
    };
    let Some(c) = TestNode::spawn(b).await else {
        return;
    };
    partners(&a, &bn).await;
    partners(&a, &c).await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    let act = note(&a, "dr.wang", 1, "一次发给两家医院").await;
    publish(&a, &act, &[&bn, &c]).await;
    for node in [&bn, &c] {
        wait_for("delivery", || async { received(node).await.len() == 1 }).await;
    }
    // One inbox POST per peer node, whatever the number of recipients there.
    for node in [&bn, &c] {
        let text = node
            .http
            .get(node.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains(
                "caremesh_http_requests_total{method=\"POST\",route=\"/inbox\",status=\"202\"} 1"
            ),
            "{text}"
        );
    }
}

async fn non_partners_are_refused_and_nothing_is_stored(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(stranger) = TestNode::spawn(b).await else {
        return;
    };
    // The stranger lists A; A does not list the stranger.
    stranger.add_partner(&a).await;
    stranger
        .create_account(Role::Doctor, "dr.x", "doctor password")
        .await;
    let act = note(&stranger, "dr.x", 1, "unsolicited").await;
    publish(&stranger, &act, &[&a]).await;
    wait_for("the refused delivery to be parked", || async {
        stranger.store.parked_entries(10).await.unwrap().len() == 1
    })
    .await;
    let parked = stranger.store.parked_entries(10).await.unwrap();
    assert!(
        parked[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("HTTP 403"),
        "{parked:?}"
    );
    assert!(
        parked[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("not_a_partner")
    );
    assert!(received(&a).await.is_empty());
    // A did not even fetch the stranger's actor.
    let stranger_actor = stranger.federation.urls.instance_actor();
    assert!(
        a.store
            .remote_actor(&stranger_actor)
            .await
            .unwrap()
            .is_none()
    );
    // And A will not send to, or fetch from, a node that is not its partner.
    let err = a
        .federation
        .peers(&[stranger.authority()])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_a_partner");
    let err = a
        .federation
        .client
        .get_json(&stranger_actor)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_a_partner");
    // Once the admin adds the partner, the parked activity can be retried and arrives.
    a.add_partner(&stranger).await;
    assert_eq!(
        stranger
            .store
            .retry_parked(&[], stranger.clock.now())
            .await
            .unwrap(),
        1
    );
    stranger.federation.wake();
    wait_for("the retried delivery", || async {
        received(&a).await.len() == 1
    })
    .await;
}

/// Sends `body` to `to`'s shared inbox signed with `key` under `key_id`, letting the caller
/// spoil the request in between.
struct Raw {
    method: &'static str,
    path: String,
    host: String,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Raw {
    fn signed(
        to: &TestNode,
        key_id: &str,
        key: &KeyPair,
        body: Vec<u8>,
        when: std::time::SystemTime,
    ) -> Self {
        let host = to.authority();
        let headers = signed_request_headers("POST", "/inbox", &host, &body, when, key_id, key)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        Self {
            method: "POST",
            path: "/inbox".into(),
            host,
            body,
            headers,
        }
    }

    fn set(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self
    }

    async fn send(self, to: &TestNode) -> (StatusCode, Value) {
        let http = to.http.clone();
        self.send_with(to, &http).await
    }

    /// Sends through `http` (a client bound to another source address, say).
    async fn send_with(self, to: &TestNode, http: &reqwest::Client) -> (StatusCode, Value) {
        let mut req = http
            .request(
                self.method.parse().unwrap(),
                format!("http://{}{}", to.config.listen, self.path),
            )
            .header("content-type", "application/activity+json")
            .body(self.body);
        for (k, v) in &self.headers {
            if k.eq_ignore_ascii_case("host") {
                continue;
            }
            req = req.header(k, v);
        }
        // reqwest sets Host from the URL; a spoiled Host is sent by overriding it.
        if let Some((_, h)) = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        {
            req = req.header("host", h);
        } else {
            req = req.header("host", &self.host);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

async fn instance_key(node: &TestNode) -> (String, KeyPair) {
    let (id, pair) = node.federation.keys.instance_key().await.unwrap();
    (id, KeyPair::from_seed(&pair.seed()))
}

async fn forged_and_broken_requests_are_refused(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(bn) = TestNode::spawn_with(b, |c| c.federation.max_activity_bytes = 4096).await else {
        return;
    };
    let Some(c) = TestNode::spawn(b).await else {
        return;
    };
    partners(&a, &bn).await;
    partners(&c, &bn).await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    a.create_account(Role::Doctor, "dr.li", "doctor password")
        .await;
    let (key_id, key) = instance_key(&a).await;
    let now = system_time(START);
    let good = note(&a, "dr.wang", 1, "genuine").await;
    let body = |v: &Value| serde_json::to_vec(v).unwrap();

    let mut tampered = good.clone();
    tampered["object"]["content"] = json!("tampered after signing");
    let mut unsigned_create = good.clone();
    unsigned_create.as_object_mut().unwrap().remove("proof");
    let by_other_author = {
        let mut v = note(&a, "dr.li", 1, "signed by li").await;
        v["actor"] = json!(a.federation.urls.person("dr.wang"));
        v
    };
    let mut foreign_object = good.clone();
    foreign_object["object"]["attributedTo"] = json!(a.federation.urls.person("dr.li"));
    let foreign_object = a
        .federation
        .sign_as(&a.federation.urls.person("dr.wang"), &{
            let mut v = foreign_object;
            v.as_object_mut().unwrap().remove("proof");
            v
        })
        .await
        .unwrap();
    let mut actor_elsewhere = good.clone();
    actor_elsewhere["actor"] = json!(c.federation.urls.person("dr.c"));
    let mut id_elsewhere = good.clone();
    id_elsewhere["id"] = json!(c.federation.urls.activity("x"));
    let delete_foreign = json!({
        "id": a.federation.urls.activity("del-foreign"),
        "type": "Delete",
        "actor": a.federation.urls.person("dr.wang"),
        "object": c.federation.urls.object("someone-elses"),
    });
    let delete_foreign = a
        .federation
        .sign_as(&a.federation.urls.person("dr.wang"), &delete_foreign)
        .await
        .unwrap();
    let stranger_key = KeyPair::from_seed(&[7u8; 32]);
    let ten_min = Duration::from_secs(600);
    let other_digest = caremesh_protocol::digest::legacy_digest(b"{}");

    let cases: Vec<(&str, Raw, StatusCode, &str)> = vec![
        (
            "no signature",
            Raw::signed(&bn, &key_id, &key, body(&good), now).without("signature"),
            StatusCode::UNAUTHORIZED,
            "signature_missing",
        ),
        (
            "garbage signature header",
            Raw::signed(&bn, &key_id, &key, body(&good), now).set("signature", "nonsense"),
            StatusCode::UNAUTHORIZED,
            "signature_invalid",
        ),
        (
            "signed by a stranger's key under A's key id",
            Raw::signed(&bn, &key_id, &stranger_key, body(&good), now),
            StatusCode::UNAUTHORIZED,
            "signature_invalid",
        ),
        (
            "key of a non-partner domain",
            Raw::signed(
                &bn,
                "https://evil.example/actor#main-key",
                &stranger_key,
                body(&good),
                now,
            ),
            StatusCode::FORBIDDEN,
            "not_a_partner",
        ),
        (
            "body altered after signing",
            Raw {
                body: body(&tampered),
                ..Raw::signed(&bn, &key_id, &key, body(&good), now)
            },
            StatusCode::UNAUTHORIZED,
            "digest_mismatch",
        ),
        (
            "digest replaced to match an altered body",
            Raw {
                body: b"{}".to_vec(),
                ..Raw::signed(&bn, &key_id, &key, body(&good), now)
            }
            .set("digest", &other_digest),
            StatusCode::UNAUTHORIZED,
            "signature_invalid",
        ),
        (
            "replayed old request",
            Raw::signed(&bn, &key_id, &key, body(&good), now - ten_min),
            StatusCode::UNAUTHORIZED,
            "signature_expired",
        ),
        (
            "date in the future",
            Raw::signed(&bn, &key_id, &key, body(&good), now + ten_min),
            StatusCode::UNAUTHORIZED,
            "signature_expired",
        ),
        (
            "no date",
            Raw::signed(&bn, &key_id, &key, body(&good), now).without("date"),
            StatusCode::UNAUTHORIZED,
            "signature_invalid",
        ),
        (
            "unparsable date",
            Raw::signed(&bn, &key_id, &key, body(&good), now).set("date", "yesterday"),
            StatusCode::UNAUTHORIZED,
            "signature_expired",
        ),
        (
            "no digest",
            Raw::signed(&bn, &key_id, &key, body(&good), now).without("digest"),
            StatusCode::UNAUTHORIZED,
            "signature_invalid",
        ),
        (
            "signed for another host",
            Raw::signed(&bn, &key_id, &key, body(&good), now).set("host", &c.authority()),
            StatusCode::UNAUTHORIZED,
            "wrong_host",
        ),
        (
            "unknown key id",
            Raw::signed(
                &bn,
                &format!("{}#no-such-key", a.federation.urls.instance_actor()),
                &key,
                body(&good),
                now,
            ),
            StatusCode::UNAUTHORIZED,
            "key_unavailable",
        ),
        (
            "malformed JSON",
            Raw::signed(&bn, &key_id, &key, b"{\"id\": ".to_vec(), now),
            StatusCode::BAD_REQUEST,
            "malformed_activity",
        ),
        (
            "JSON that is not an object",
            Raw::signed(&bn, &key_id, &key, b"[1,2,3]".to_vec(), now),
            StatusCode::BAD_REQUEST,
            "malformed_activity",
        ),
        (
            "activity without id",
            Raw::signed(
                &bn,
                &key_id,
                &key,
                body(&json!({"type": "Follow", "actor": a.federation.urls.instance_actor()})),
                now,
            ),
            StatusCode::BAD_REQUEST,
            "malformed_activity",
        ),
        (
            "actor on another node than the signer",
            Raw::signed(&bn, &key_id, &key, body(&actor_elsewhere), now),
            StatusCode::FORBIDDEN,
            "actor_mismatch",
        ),
        (
            "activity id on another node",
            Raw::signed(&bn, &key_id, &key, body(&id_elsewhere), now),
            StatusCode::FORBIDDEN,
            "actor_mismatch",
        ),
        (
            "Create without a proof",
            Raw::signed(&bn, &key_id, &key, body(&unsigned_create), now),
            StatusCode::BAD_REQUEST,
            "proof_invalid",
        ),
        (
            "post altered after its author signed it",
            Raw::signed(&bn, &key_id, &key, body(&tampered), now),
            StatusCode::BAD_REQUEST,
            "proof_invalid",
        ),
        (
            "proof by another author's key",
            Raw::signed(&bn, &key_id, &key, body(&by_other_author), now),
            StatusCode::BAD_REQUEST,
            "proof_invalid",
        ),
        (
            "object attributed to someone else",
            Raw::signed(&bn, &key_id, &key, body(&foreign_object), now),
            StatusCode::FORBIDDEN,
            "actor_mismatch",
        ),
        (
            "delete of another node's object",
            Raw::signed(&bn, &key_id, &key, body(&delete_foreign), now),
            StatusCode::FORBIDDEN,
            "actor_mismatch",
        ),
        (
            "body over the activity size limit",
            Raw::signed(&bn, &key_id, &key, vec![b' '; 5000], now),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    assert!(cases.len() >= 20);
    for (what, raw, status, code) in cases {
        let (got, body) = raw.send(&bn).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
    }
    let wrong_type = bn
        .http
        .post(bn.url("/inbox"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(received(&bn).await.is_empty(), "nothing refused was stored");
    assert!(
        bn.store
            .federated_object(&a.federation.urls.object("dr.wang-1"))
            .await
            .unwrap()
            .is_none()
    );
    // The genuine activity, sent the same way, is accepted.
    let (status, body) = Raw::signed(&bn, &key_id, &key, body(&good), now)
        .send(&bn)
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::ACCEPTED, Some("stored"))
    );
}

async fn duplicates_are_acknowledged_and_change_nothing(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(bn) = TestNode::spawn(b).await else {
        return;
    };
    partners(&a, &bn).await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    let (key_id, key) = instance_key(&a).await;
    let act = serde_json::to_vec(&note(&a, "dr.wang", 1, "once").await).unwrap();
    let first = Raw::signed(&bn, &key_id, &key, act.clone(), system_time(START))
        .send(&bn)
        .await;
    assert_eq!(
        (first.0, first.1["status"].as_str()),
        (StatusCode::ACCEPTED, Some("stored"))
    );
    bn.clock.advance_secs(30);
    let again = Raw::signed(&bn, &key_id, &key, act, system_time(bn.clock.now()))
        .send(&bn)
        .await;
    assert_eq!(
        (again.0, again.1["status"].as_str()),
        (StatusCode::ACCEPTED, Some("duplicate"))
    );
    assert_eq!(received(&bn).await.len(), 1);
}

async fn a_peer_that_was_down_receives_everything_in_order(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(mut bn) = TestNode::spawn(b).await else {
        return;
    };
    partners(&a, &bn).await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    // B has A's key already; then B's network goes down.
    let warmup = note(&a, "dr.wang", 0, "before the outage").await;
    publish(&a, &warmup, &[&bn]).await;
    wait_for("the first delivery", || async {
        received(&bn).await.len() == 1
    })
    .await;
    bn.pause().await;
    let mut sent = vec![warmup["id"].as_str().unwrap().to_owned()];
    for n in 1..=15 {
        let act = note(&a, "dr.wang", n, &format!("停电期间的第{n}条")).await;
        sent.push(act["id"].as_str().unwrap().to_owned());
        publish(&a, &act, &[&bn]).await;
    }
    wait_for("A to notice the outage", || async {
        let q = a.store.peer_queues().await.unwrap();
        q[0].consecutive_failures >= 2 && q[0].pending == 15
    })
    .await;
    let q = &a.store.peer_queues().await.unwrap()[0];
    assert!(q.last_error.is_some());
    assert!(
        a.store.parked_entries(10).await.unwrap().is_empty(),
        "outages never park"
    );
    bn.resume().await;
    wait_for("everything to arrive after the outage", || async {
        received(&bn).await.len() == 16
    })
    .await;
    assert_eq!(received(&bn).await, sent);
    // The sender records the last acknowledgement just after the receiver stored it.
    wait_for("A to record the deliveries", || async {
        let q = &a.store.peer_queues().await.unwrap()[0];
        (q.pending, q.consecutive_failures) == (0, 0)
    })
    .await;
}

async fn rotated_keys_keep_verifying(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(bn) = TestNode::spawn(b).await else {
        return;
    };
    partners(&a, &bn).await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    let (old_id, old_key) = instance_key(&a).await;
    publish(&a, &note(&a, "dr.wang", 1, "before rotation").await, &[&bn]).await;
    wait_for("first delivery", || async {
        received(&bn).await.len() == 1
    })
    .await;
    a.clock.advance_secs(5);
    bn.clock.advance_secs(5);
    let new_id = a.federation.rotate_instance_key().await.unwrap();
    assert_ne!(new_id, old_id);
    // The rotation is announced to B with an Update of A's actor, signed with the new key, which
    // B does not know yet: B fetches A's actor again and accepts it.
    wait_for("the Update announcing the new key", || async {
        received(&bn).await.len() == 2
    })
    .await;
    let got = bn.store.received_activities(0, 10).await.unwrap();
    assert_eq!(got[1].activity_type, "Update");
    assert!(bn.store.remote_key(&new_id).await.unwrap().is_some());
    // During the grace period a request signed with the old key still verifies.
    let late =
        serde_json::to_vec(&note(&a, "dr.wang", 2, "signed with the old key").await).unwrap();
    let (status, _) = Raw::signed(&bn, &old_id, &old_key, late, system_time(bn.clock.now()))
        .send(&bn)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    // The actor document publishes both keys; after the grace period only the new one.
    let doc: Value = a
        .http
        .get(a.url("/actor"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["publicKey"]["id"], new_id.as_str());
    assert_eq!(doc["assertionMethod"].as_array().unwrap().len(), 2);
    a.clock.advance_secs(73 * 3600);
    let doc: Value = a
        .http
        .get(a.url("/actor"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["assertionMethod"].as_array().unwrap().len(), 1);
}

async fn actors_webfinger_and_nodeinfo(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(bn) = TestNode::spawn(b).await else {
        return;
    };
    let Some(stranger) = TestNode::spawn(b).await else {
        return;
    };
    partners(&a, &bn).await;
    stranger.add_partner(&a).await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    a.create_account(Role::Patient, "patient1", "patient password")
        .await;
    for accept in [
        "application/activity+json",
        "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"",
    ] {
        let resp = a
            .http
            .get(a.url("/actor"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/activity+json");
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["type"], "Application");
        assert_eq!(doc["id"], a.federation.urls.instance_actor());
        assert_eq!(
            doc["endpoints"]["sharedInbox"],
            a.federation.urls.shared_inbox()
        );
        assert!(
            doc["publicKey"]["publicKeyPem"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        assert_eq!(doc["assertionMethod"][0]["type"], "Multikey");
        assert!(
            doc["assertionMethod"][0]["publicKeyMultibase"]
                .as_str()
                .unwrap()
                .starts_with("z6Mk")
        );
        assert!(
            !doc.to_string().contains("PRIVATE"),
            "private keys are never served"
        );
    }
    let acct = format!("acct:dr.wang@{}", a.authority());
    let wf: Value = a
        .http
        .get(a.url(&format!("/.well-known/webfinger?resource={acct}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wf["subject"], acct.as_str());
    assert_eq!(wf["links"][0]["href"], a.federation.urls.person("dr.wang"));
    let patient = a
        .http
        .get(a.url(&format!(
            "/.well-known/webfinger?resource=acct:patient1@{}",
            a.authority()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(
        patient.status(),
        StatusCode::NOT_FOUND,
        "patients are never discoverable"
    );
    let ni: Value = a
        .http
        .get(a.url("/nodeinfo/2.1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ni["software"]["name"], "caremesh");
    assert_eq!(ni["protocols"][0], "activitypub");
    let links: Value = a
        .http
        .get(a.url("/.well-known/nodeinfo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(links["links"][0]["href"], a.url("/nodeinfo/2.1"));
    // A person's actor needs a signed GET from a partner.
    let unsigned = a.http.get(a.url("/users/dr.wang")).send().await.unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let doc = bn
        .federation
        .client
        .get_json(&a.federation.urls.person("dr.wang"))
        .await
        .unwrap();
    assert_eq!(doc["type"], "Person");
    assert_eq!(doc["preferredUsername"], "dr.wang");
    let err = bn
        .federation
        .client
        .get_json(&a.federation.urls.person("patient1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    let err = stranger
        .federation
        .client
        .get_json(&a.federation.urls.person("dr.wang"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
}

async fn replicas_over_one_database_never_double_deliver(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let a2 = a.spawn_replica().await;
    let mut peers = Vec::new();
    for _ in 0..3 {
        let Some(p) = TestNode::spawn(b).await else {
            return;
        };
        partners(&a, &p).await;
        peers.push(p);
    }
    a2.federation.partners.invalidate().await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    let targets: Vec<&TestNode> = peers.iter().collect();
    let mut sent = Vec::new();
    for n in 0..40 {
        let act = note(&a, "dr.wang", n, "replicated").await;
        sent.push(act["id"].as_str().unwrap().to_owned());
        // Half of the activities are queued through each replica.
        let from = if n % 2 == 0 { &a } else { &a2 };
        publish(from, &act, &targets).await;
    }
    for p in &peers {
        wait_for("all activities at every peer", || async {
            received(p).await.len() == 40
        })
        .await;
    }
    for p in &peers {
        assert_eq!(received(p).await, sent, "in order at every peer");
        assert_eq!(
            p.requests_served("POST", "/inbox").await,
            40,
            "each activity POSTed exactly once"
        );
    }
}

async fn each_partner_is_rate_limited(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(bn) = TestNode::spawn_with(b, |c| c.federation.inbox_requests_per_minute = 3).await
    else {
        return;
    };
    partners(&a, &bn).await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    let (key_id, key) = instance_key(&a).await;
    let mut statuses = Vec::new();
    for n in 0..5 {
        let act = serde_json::to_vec(&note(&a, "dr.wang", n, "burst").await).unwrap();
        let (status, body) = Raw::signed(&bn, &key_id, &key, act, system_time(bn.clock.now()))
            .send(&bn)
            .await;
        statuses.push((status.as_u16(), body["error"].as_str().map(str::to_owned)));
    }
    assert_eq!(&statuses[..3], &[(202, None), (202, None), (202, None)]);
    assert_eq!(statuses[3], (429, Some("rate_limited".to_owned())));
    assert_eq!(
        received(&bn).await.len(),
        3,
        "refused requests stored nothing"
    );
}

/// A client whose requests come from another loopback address than the nodes' own (which all
/// send from 127.0.0.1).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn junk_naming_a_partners_key_does_not_cut_it_off(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(bn) = TestNode::spawn_with(b, |c| {
        c.federation.inbox_requests_per_minute = 3;
        c.federation.inbox_unverified_requests_per_minute = 5;
    })
    .await
    else {
        return;
    };
    partners(&a, &bn).await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    // Someone else, from another address, floods B with requests naming A's key but signed
    // with a key of their own.
    let (key_id, _) = instance_key(&a).await;
    let forger = KeyPair::from_seed(&[0x99; 32]);
    let attacker = client_from("127.0.0.2");
    let mut statuses = Vec::new();
    for n in 0..9 {
        let junk = serde_json::to_vec(&json!({
            "id": a.federation.urls.activity(&format!("junk-{n}")),
            "type": "Create",
            "actor": a.federation.urls.instance_actor(),
        }))
        .unwrap();
        let (status, body) = Raw::signed(&bn, &key_id, &forger, junk, system_time(bn.clock.now()))
            .send_with(&bn, &attacker)
            .await;
        statuses.push((status.as_u16(), body["error"].as_str().map(str::to_owned)));
    }
    // The junk is refused, then limited by its address once over the unverified rate.
    let refused = (401, Some("signature_invalid".to_owned()));
    let limited = (429, Some("rate_limited".to_owned()));
    assert_eq!(&statuses[..5], &vec![refused; 5][..], "{statuses:?}");
    assert_eq!(&statuses[5..], &vec![limited; 4][..], "{statuses:?}");
    assert!(received(&bn).await.is_empty(), "junk stored nothing");
    // A's own deliveries still get through, within A's rate.
    let mut sent = Vec::new();
    for n in 0..3 {
        let act = note(&a, "dr.wang", n, "after the flood").await;
        sent.push(act["id"].as_str().unwrap().to_owned());
        publish(&a, &act, &[&bn]).await;
    }
    wait_for("A's deliveries despite the flood", || async {
        received(&bn).await.len() == 3
    })
    .await;
    assert_eq!(received(&bn).await, sent);
    wait_for("A's queue to drain", || async {
        let q = &a.store.peer_queues().await.unwrap()[0];
        q.pending == 0
    })
    .await;
    assert!(a.store.parked_entries(10).await.unwrap().is_empty());
}

async fn a_partner_listed_as_https_is_never_reached_over_http(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(bn) = TestNode::spawn(b).await else {
        return;
    };
    // A lists B as it is; B lists A under HTTPS, while A speaks plain HTTP.
    a.add_partner(&bn).await;
    let (authority, base_url) =
        caremesh_federation::parse_partner(&format!("https://{}", a.authority())).unwrap();
    assert_eq!(authority, a.authority());
    bn.store
        .add_partner(caremesh_store::Partner {
            authority,
            base_url,
            added_at: bn.clock.now(),
            source: "cli".into(),
        })
        .await
        .unwrap();
    bn.federation.partners.invalidate().await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    let act = note(&a, "dr.wang", 1, "over plain http").await;
    publish(&a, &act, &[&bn]).await;
    wait_for("the refused delivery to be parked", || async {
        a.store.parked_entries(10).await.unwrap().len() == 1
    })
    .await;
    let parked = a.store.parked_entries(10).await.unwrap();
    let error = parked[0].last_error.as_deref().unwrap();
    assert!(
        error.contains("HTTP 403") && error.contains("not_a_partner"),
        "{error}"
    );
    assert!(received(&bn).await.is_empty());
    // B fetched nothing from A over HTTP: not its actor, not its key.
    let actor = a.federation.urls.instance_actor();
    assert!(bn.store.remote_actor(&actor).await.unwrap().is_none());
    let (key_id, _) = instance_key(&a).await;
    assert!(bn.store.remote_key(&key_id).await.unwrap().is_none());
    assert_eq!(a.requests_served("GET", "/actor").await, 0);
    // And will not.
    let err = bn.federation.client.get_json(&actor).await.unwrap_err();
    assert_eq!(err.code(), "not_a_partner");
    let err = bn.federation.resolver.key(&key_id, true).await.unwrap_err();
    assert_eq!(err.code(), "not_a_partner");
    assert_eq!(a.requests_served("GET", "/actor").await, 0);
}

async fn rotated_out_keys_stop_verifying_after_the_grace(b: Backend) {
    let Some(a) = TestNode::spawn(b).await else {
        return;
    };
    let Some(bn) = TestNode::spawn(b).await else {
        return;
    };
    partners(&a, &bn).await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    let (old_id, old_key) = instance_key(&a).await;
    publish(&a, &note(&a, "dr.wang", 1, "before rotation").await, &[&bn]).await;
    wait_for("first delivery", || async {
        received(&bn).await.len() == 1
    })
    .await;
    let new_id = a.federation.rotate_instance_key().await.unwrap();
    wait_for("the Update announcing the new key", || async {
        received(&bn).await.len() == 2
    })
    .await;
    let (_, new_key) = instance_key(&a).await;
    let both = |hours: i64| {
        a.clock.advance_secs(hours * 3600);
        bn.clock.advance_secs(hours * 3600);
    };
    let send = |n: usize, key_id: String, key: KeyPair| {
        let (a, bn) = (&a, &bn);
        async move {
            let act = note(a, "dr.wang", n, "signed with one key or the other").await;
            let body = serde_json::to_vec(&act).unwrap();
            let (status, body) = Raw::signed(bn, &key_id, &key, body, system_time(bn.clock.now()))
                .send(bn)
                .await;
            (status, body["error"].as_str().map(str::to_owned))
        }
    };
    let old = || KeyPair::from_seed(&old_key.seed());
    // During the grace, the old key verifies, also once B's copy of it is old enough to be
    // fetched again (A still publishes it).
    assert_eq!(send(2, old_id.clone(), old()).await.0, StatusCode::ACCEPTED);
    both(2);
    assert_eq!(send(3, old_id.clone(), old()).await.0, StatusCode::ACCEPTED);
    // After the grace, A publishes only its new key, and B refuses the old one.
    both(71);
    assert_eq!(
        send(4, old_id.clone(), old()).await,
        (StatusCode::UNAUTHORIZED, Some("key_unavailable".to_owned()))
    );
    assert_eq!(
        send(5, new_id.clone(), new_key).await.0,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send(6, old_id.clone(), old()).await,
        (StatusCode::UNAUTHORIZED, Some("key_unavailable".to_owned()))
    );
    assert_eq!(
        received(&bn).await.len(),
        5,
        "refused requests stored nothing"
    );
}

async fn badge(node: &TestNode, actor: &str) -> caremesh_federation::credentials::CredentialBadge {
    let stored = node
        .store
        .remote_actor(actor)
        .await
        .unwrap()
        .expect("actor known");
    let doc: Value = serde_json::from_str(&stored.document).unwrap();
    node.federation.check_remote_credential(&doc).await
}

async fn doctor_credentials_are_verified_everywhere_and_revocations_follow(b: Backend) {
    use caremesh_federation::credentials::BadgeStatus;
    let Some(a) = TestNode::spawn_with(b, |c| c.hospital_name = "唐山市人民医院".into()).await
    else {
        return;
    };
    let Some(bn) = TestNode::spawn(b).await else {
        return;
    };
    let Some(c) = TestNode::spawn_with(b, |c| c.hospital_name = "Other Hospital".into()).await
    else {
        return;
    };
    partners(&a, &bn).await;
    partners(&c, &bn).await;
    let admin = a.account_with_token(Role::Admin, "admin").await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    let put = a
        .http
        .put(a.url("/api/v1/admin/accounts/dr.wang/credential"))
        .bearer_auth(&admin)
        .json(&json!({
            "title": "主任医师", "specialty": "心血管内科", "licence_number": "110108",
            "checked_on": "2026-11-20", "valid_until": "2027-11-20T00:00:00Z"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    // Recording the credential sends an Update of the doctor's actor to every partner; B takes the
    // new document and verifies the credential against A's key.
    let wang = a.federation.urls.person("dr.wang");
    wait_for("B to learn the credential", || async {
        bn.store.remote_actor(&wang).await.unwrap().is_some()
            && badge(&bn, &wang).await.status == BadgeStatus::Verified
    })
    .await;
    let got = badge(&bn, &wang).await;
    assert_eq!(got.status, BadgeStatus::Verified, "{got:?}");
    assert_eq!(got.issuer_name.as_deref(), Some("唐山市人民医院"));
    assert_eq!(got.title.as_deref(), Some("主任医师"));
    // The licence number stays at the issuing hospital.
    let doc = bn.federation.client.get_json(&wang).await.unwrap();
    assert!(!doc.to_string().contains("110108"), "{doc}");

    // Forgeries: an altered title, and a credential for A's doctor signed by another hospital.
    let mut altered = doc.clone();
    altered["credential"]["credentialSubject"]["title"] = json!("院长");
    let forged = bn.federation.check_remote_credential(&altered).await;
    assert_eq!(forged.status, BadgeStatus::Unverified, "{forged:?}");
    let mut foreign = doc.clone();
    let mut cred = doc["credential"].clone();
    cred.as_object_mut().unwrap().remove("proof");
    cred["issuer"]["id"] = json!(c.federation.urls.instance_actor());
    foreign["credential"] = {
        let (kid, key) = c.federation.keys.instance_key().await.unwrap();
        let options = caremesh_protocol::proof::ProofOptions::new(kid, system_time(c.clock.now()));
        caremesh_protocol::proof::create_proof(&cred, &options, &key).unwrap()
    };
    let foreign = bn.federation.check_remote_credential(&foreign).await;
    assert_eq!(foreign.status, BadgeStatus::Unverified);
    assert!(foreign.reason.unwrap().contains("own doctors"));

    // The badge names A as B knows A's node, whatever the credential writes: here A's own key
    // signs a credential naming another hospital.
    let resign = |cred: &Value, kid: String, key: &caremesh_protocol::KeyPair| {
        let mut cred = cred.clone();
        cred.as_object_mut().unwrap().remove("proof");
        let options = caremesh_protocol::proof::ProofOptions::new(kid, system_time(a.clock.now()));
        caremesh_protocol::proof::create_proof(&cred, &options, key).unwrap()
    };
    let mut renamed = doc.clone();
    let mut cred = doc["credential"].clone();
    cred["issuer"]["name"] = json!("北京协和医院");
    let (kid, key) = a.federation.keys.instance_key().await.unwrap();
    renamed["credential"] = resign(&cred, kid, &key);
    let named = bn.federation.check_remote_credential(&renamed).await;
    assert_eq!(named.status, BadgeStatus::Verified, "{named:?}");
    assert_eq!(named.issuer_name.as_deref(), Some("唐山市人民医院"));
    // A credential the doctor signed for themselves vouches for nothing.
    let mut selfsigned = doc.clone();
    let mut cred = doc["credential"].clone();
    cred["issuer"]["id"] = json!(wang);
    let (kid, key) = a.federation.keys.current(&wang).await.unwrap();
    selfsigned["credential"] = resign(&cred, kid, &key);
    let selfsigned = bn.federation.check_remote_credential(&selfsigned).await;
    assert_eq!(selfsigned.status, BadgeStatus::Unverified, "{selfsigned:?}");
    assert_eq!(selfsigned.issuer_name, None);

    // Expiry is read from the signed validity.
    bn.clock.advance_secs(366 * 24 * 3600);
    assert_eq!(badge(&bn, &wang).await.status, BadgeStatus::Expired);
    bn.clock.advance_secs(-366 * 24 * 3600);

    // Revocation reaches B with the next Update.
    let before = received(&bn).await.len();
    let revoke = a
        .http
        .delete(a.url("/api/v1/admin/accounts/dr.wang/credential"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), StatusCode::OK);
    wait_for("the revocation", || async {
        received(&bn).await.len() > before && badge(&bn, &wang).await.status == BadgeStatus::Revoked
    })
    .await;
}

/// However long the backoff has grown, a failing partner is tried again at least every
/// `max_probe_interval_secs` (120 by default): a partner back after an outage gets its deliveries
/// within two minutes, not at the backoff cap of an hour.
async fn a_partner_back_from_an_outage_is_reached_within_the_probe_interval(b: Backend) {
    let Some(a) = TestNode::spawn_with(b, |c| {
        let d = &mut c.federation.delivery;
        d.backoff_max_secs = 3600;
        d.breaker_threshold = 2;
        assert_eq!(d.max_probe_interval_secs, 120, "the default");
    })
    .await
    else {
        return;
    };
    let Some(mut bn) = TestNode::spawn(b).await else {
        return;
    };
    partners(&a, &bn).await;
    a.create_account(Role::Doctor, "dr.wang", "doctor password")
        .await;
    let warmup = note(&a, "dr.wang", 0, "before the outage").await;
    publish(&a, &warmup, &[&bn]).await;
    wait_for("the first delivery", || async {
        received(&bn).await.len() == 1
    })
    .await;
    bn.pause().await;
    let during = note(&a, "dr.wang", 1, "written during the outage").await;
    publish(&a, &during, &[&bn]).await;
    // Past the breaker threshold the delay is the longest there is.
    wait_for("A's breaker to open", || async {
        a.store.peer_queues().await.unwrap()[0].consecutive_failures >= 3
    })
    .await;
    let q = &a.store.peer_queues().await.unwrap()[0];
    let wait_ms = q.next_attempt_at.as_millis() - a.clock.now().as_millis();
    assert!(wait_ms <= 120_000, "next probe in {wait_ms} ms");
    assert!(a.store.parked_entries(10).await.unwrap().is_empty());
    // B comes back; two minutes later (on both clocks) the post has arrived, with no admin.
    bn.resume().await;
    a.clock.advance_secs(121);
    bn.clock.advance_secs(121);
    wait_for("the post written during the outage", || async {
        received(&bn).await.len() == 2
    })
    .await;
    assert_eq!(
        received(&bn).await,
        [
            warmup["id"].as_str().unwrap(),
            during["id"].as_str().unwrap()
        ]
    );
}
