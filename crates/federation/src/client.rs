//! Outgoing server-to-server HTTP: every request, GET and POST, is signed with the node's key
//! (draft-cavage, hs2019) and may only go to a partner. Redirects are not followed, responses are
//! size-limited, and every request has a timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use caremesh_domain::{Clock, Timestamp};
use caremesh_protocol::PublicKey;
use caremesh_protocol::httpsig::signed_request_headers;
use caremesh_protocol::multikey::Multikey;
use caremesh_store::{RemoteActor, RemoteKey, Store};
use serde_json::Value;
use url::Url;

use crate::error::FederationError;
use crate::keys::KeyRing;
use crate::partners::Partners;
use crate::urls::{authority_of, key_owner, origin_of};

pub const ACTIVITY_JSON: &str = "application/activity+json";
pub const LD_JSON: &str = "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"";

/// Largest response body read from a peer.
const MAX_RESPONSE: usize = 1024 * 1024;

pub fn system_time(t: Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(t.as_millis()).unwrap_or(0))
}

pub struct SignedClient {
    http: reqwest::Client,
    keys: Arc<KeyRing>,
    partners: Arc<Partners>,
    clock: Arc<dyn Clock>,
}

/// What a peer answered to a POST.
#[derive(Debug)]
pub struct PostOutcome {
    pub status: u16,
    /// The start of the body, for the operator's eyes.
    pub body: String,
}

impl SignedClient {
    pub fn new(
        keys: Arc<KeyRing>,
        partners: Arc<Partners>,
        clock: Arc<dyn Clock>,
        timeout: Duration,
    ) -> Result<Self, FederationError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Caremesh/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FederationError::Remote(e.to_string()))?;
        Ok(Self {
            http,
            keys,
            partners,
            clock,
        })
    }

    async fn signed(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: &[u8],
    ) -> Result<reqwest::RequestBuilder, FederationError> {
        let authority = authority_of(url)
            .ok_or_else(|| FederationError::Malformed(format!("{url} has no host")))?;
        let mut path = url.path().to_owned();
        if let Some(q) = url.query() {
            path.push('?');
            path.push_str(q);
        }
        let (key_id, key) = self.keys.instance_key().await?;
        let headers = signed_request_headers(
            method.as_str(),
            &path,
            &authority,
            body,
            system_time(self.clock.now()),
            &key_id,
            &key,
        )?;
        let mut req = self.http.request(method, url.clone());
        for (name, value) in headers {
            req = req.header(name, value);
        }
        Ok(req)
    }

    /// A signed GET of an ActivityStreams document from a partner.
    pub async fn get_json(&self, url: &str) -> Result<Value, FederationError> {
        let url = self.partners.check_url(url).await?;
        let resp = self
            .signed(reqwest::Method::GET, &url, b"")
            .await?
            .header("accept", format!("{ACTIVITY_JSON}, {LD_JSON}"))
            .send()
            .await
            .map_err(|e| FederationError::Remote(format!("GET {url}: {e}")))?;
        let status = resp.status();
        let body = read_limited(resp).await?;
        if !status.is_success() {
            return Err(FederationError::Remote(format!("GET {url}: HTTP {status}")));
        }
        serde_json::from_slice(&body)
            .map_err(|e| FederationError::Remote(format!("GET {url}: not JSON: {e}")))
    }

    /// A signed GET of a file from a partner, at most `limit` bytes.
    pub async fn get_bytes(&self, url: &str, limit: usize) -> Result<Vec<u8>, FederationError> {
        let url = self.partners.check_url(url).await?;
        let resp = self
            .signed(reqwest::Method::GET, &url, b"")
            .await?
            .send()
            .await
            .map_err(|e| FederationError::Remote(format!("GET {url}: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(FederationError::Remote(format!("GET {url}: HTTP {status}")));
        }
        read_up_to(resp, limit).await
    }

    /// A signed POST of an activity to a partner's inbox.
    pub async fn post(&self, url: &str, body: Vec<u8>) -> Result<PostOutcome, FederationError> {
        let url = self.partners.check_url(url).await?;
        let resp = self
            .signed(reqwest::Method::POST, &url, &body)
            .await?
            .header("content-type", ACTIVITY_JSON)
            .body(body)
            .send()
            .await
            .map_err(|e| FederationError::Remote(format!("POST {url}: {e}")))?;
        let status = resp.status().as_u16();
        let body = read_limited(resp).await.unwrap_or_default();
        let mut text = String::from_utf8_lossy(&body).into_owned();
        text.truncate(300);
        Ok(PostOutcome { status, body: text })
    }
}

async fn read_limited(resp: reqwest::Response) -> Result<Vec<u8>, FederationError> {
    read_up_to(resp, MAX_RESPONSE).await
}

async fn read_up_to(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, FederationError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| FederationError::Remote(e.to_string()))?
    {
        if out.len() + chunk.len() > limit {
            return Err(FederationError::Remote(format!(
                "response larger than {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Finds remote actors' public keys: from the cache, or by a signed GET of the actor document.
pub struct KeyResolver {
    store: Arc<dyn Store>,
    client: Arc<SignedClient>,
    partners: Arc<Partners>,
    clock: Arc<dyn Clock>,
    /// When each actor was last fetched, so a flood of bad signatures cannot make this node
    /// hammer a partner.
    last_fetch: Mutex<HashMap<String, Instant>>,
    /// Keys in memory, so that verifying a delivery costs no database read.
    memory: Mutex<HashMap<String, (RemoteKey, Instant)>>,
}

/// How long a key is trusted from memory before it is read from the database again.
const MEMORY_TTL: Duration = Duration::from_secs(300);
const MEMORY_MAX: usize = 10_000;

const MIN_REFETCH: Duration = Duration::from_secs(10);

/// How long a fetched key is used before its actor is fetched again, whatever verifies with it:
/// a key its actor stopped publishing (a rotated key after its grace period) is refused at most
/// this long after.
pub const KEY_MAX_AGE_SECS: i64 = 3600;

const MAX_TRACKED_FETCHES: usize = 10_000;

impl KeyResolver {
    pub fn new(
        store: Arc<dyn Store>,
        client: Arc<SignedClient>,
        partners: Arc<Partners>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            client,
            partners,
            clock,
            last_fetch: Mutex::new(HashMap::new()),
            memory: Mutex::new(HashMap::new()),
        }
    }

    /// The key `key_id`, from the cache unless `refresh`; fetched from its actor otherwise.
    /// Returns the key and whether it came from the cache.
    pub async fn key(
        &self,
        key_id: &str,
        refresh: bool,
    ) -> Result<(RemoteKey, bool), FederationError> {
        let owner = key_owner(key_id)
            .ok_or_else(|| FederationError::KeyUnavailable(format!("{key_id:?} is not a URL")))?;
        let origin = origin_of(&owner)
            .ok_or_else(|| FederationError::KeyUnavailable(format!("{key_id:?} has no host")))?;
        let Some(partner) = self.partners.for_url(&owner).await? else {
            return Err(FederationError::NotPartner(origin));
        };
        if !crate::urls::is_actor_url(&partner.base_url, &owner) {
            return Err(FederationError::KeyUnavailable(format!(
                "{key_id:?} is not the key of an actor of {origin}"
            )));
        }
        let now = self.clock.now();
        // A key fetched too long ago is not used: its actor may have stopped publishing it.
        let fresh = |k: &RemoteKey| k.fetched_at.plus_secs(KEY_MAX_AGE_SECS) > now;
        if !refresh {
            let memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((k, at)) = memory.get(key_id)
                && at.elapsed() < MEMORY_TTL
                && fresh(k)
            {
                return Ok((k.clone(), true));
            }
        }
        let cached = self.store.remote_key(key_id).await?.filter(|k| fresh(k));
        if let Some(k) = &cached {
            self.remember(k);
        }
        if let Some(k) = &cached
            && !refresh
        {
            return Ok((k.clone(), true));
        }
        let throttled = {
            let mut last = self.last_fetch.lock().unwrap_or_else(|p| p.into_inner());
            let recent = last
                .get(owner.as_str())
                .is_some_and(|t| t.elapsed() < MIN_REFETCH);
            if !recent {
                if last.len() >= MAX_TRACKED_FETCHES {
                    last.retain(|_, t| t.elapsed() < MIN_REFETCH);
                }
                if last.len() >= MAX_TRACKED_FETCHES {
                    last.clear();
                }
                last.insert(owner.to_string(), Instant::now());
            }
            recent
        };
        // Fetched moments ago: what is cached is as fresh as a new fetch would be.
        if throttled && let Some(k) = cached {
            return Ok((k, true));
        }
        self.fetch_actor(owner.as_str()).await?;
        match self.store.remote_key(key_id).await? {
            Some(k) => {
                self.remember(&k);
                Ok((k, false))
            }
            None => Err(FederationError::KeyUnavailable(format!(
                "{owner} does not publish the key {key_id}"
            ))),
        }
    }

    fn remember(&self, key: &RemoteKey) {
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if memory.len() >= MEMORY_MAX {
            memory.clear();
        }
        memory.insert(key.key_id.clone(), (key.clone(), Instant::now()));
    }

    /// Fetches an actor document and stores it with its keys (forgetting the old ones).
    pub async fn fetch_actor(&self, actor_id: &str) -> Result<RemoteActor, FederationError> {
        let doc = self.client.get_json(actor_id).await?;
        let (actor, keys) = parse_actor(&doc, actor_id, self.clock.now())?;
        self.store.save_remote_actor(actor.clone(), keys).await?;
        self.memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (k, _)| k.actor_id != actor.actor_id);
        Ok(actor)
    }
}

/// Reads an actor document: its id must be the URL it was fetched from; keys come from
/// `publicKey` (PEM) and `assertionMethod` (FEP-521a Multikey) and must be controlled by it.
pub fn parse_actor(
    doc: &Value,
    fetched_from: &str,
    now: Timestamp,
) -> Result<(RemoteActor, Vec<RemoteKey>), FederationError> {
    let bad = |why: String| FederationError::KeyUnavailable(format!("{fetched_from}: {why}"));
    let id = doc["id"]
        .as_str()
        .ok_or_else(|| bad("actor has no id".into()))?;
    if id != fetched_from {
        return Err(bad(format!("actor id {id} differs from its URL")));
    }
    let actor_type = doc["type"].as_str().unwrap_or("Object").to_owned();
    let mut keys: Vec<RemoteKey> = Vec::new();
    let mut push = |key_id: &str, controller: &str, pem: String| -> Result<(), FederationError> {
        if controller != id || !key_id.starts_with(&format!("{id}#")) {
            return Err(bad(format!("key {key_id} is not controlled by the actor")));
        }
        if !keys.iter().any(|k| k.key_id == key_id) {
            keys.push(RemoteKey {
                key_id: key_id.to_owned(),
                actor_id: id.to_owned(),
                public_key_pem: pem,
                fetched_at: now,
            });
        }
        Ok(())
    };
    let as_list = |v: &Value| -> Vec<Value> {
        match v {
            Value::Array(a) => a.clone(),
            Value::Null => Vec::new(),
            other => vec![other.clone()],
        }
    };
    for k in as_list(&doc["publicKey"]) {
        let (Some(kid), Some(owner), Some(pem)) = (
            k["id"].as_str(),
            k["owner"].as_str(),
            k["publicKeyPem"].as_str(),
        ) else {
            continue;
        };
        let parsed = PublicKey::from_spki_pem(pem)
            .map_err(|e| bad(format!("key {kid} is not an Ed25519 SPKI key: {e}")))?;
        push(kid, owner, parsed.to_spki_pem()?)?;
    }
    for k in as_list(&doc["assertionMethod"]) {
        let Ok(mk) = serde_json::from_value::<Multikey>(k.clone()) else {
            continue;
        };
        let parsed = mk
            .public_key()
            .map_err(|e| bad(format!("multikey {}: {e}", mk.id)))?;
        push(&mk.id, &mk.controller, parsed.to_spki_pem()?)?;
    }
    if keys.is_empty() {
        return Err(bad("actor publishes no usable Ed25519 key".into()));
    }
    let inbox = doc["inbox"].as_str().map(str::to_owned);
    let shared_inbox = doc["endpoints"]["sharedInbox"].as_str().map(str::to_owned);
    Ok((
        RemoteActor {
            actor_id: id.to_owned(),
            actor_type,
            inbox,
            shared_inbox,
            document: doc.to_string(),
            fetched_at: now,
        },
        keys,
    ))
}
