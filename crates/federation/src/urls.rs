//! Every public URL and id this node mints, built in one place.

use caremesh_domain::Timestamp;
use url::Url;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Urls {
    base: Url,
}

impl Urls {
    /// `base` must end in `/` (the configuration guarantees it).
    pub fn new(base: Url) -> Self {
        Self { base }
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `host` or `host:port`: how partners and signatures name this node.
    pub fn authority(&self) -> String {
        authority_of(&self.base).unwrap_or_default()
    }

    fn join(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The node's own actor (`Application`), which signs every server-to-server request.
    pub fn instance_actor(&self) -> String {
        self.join("actor")
    }

    pub fn instance_inbox(&self) -> String {
        self.join("actor/inbox")
    }

    pub fn shared_inbox(&self) -> String {
        self.join("inbox")
    }

    pub fn person(&self, username: &str) -> String {
        self.join(&format!("users/{username}"))
    }

    pub fn person_inbox(&self, username: &str) -> String {
        self.join(&format!("users/{username}/inbox"))
    }

    /// A group hosted on this node.
    pub fn group(&self, public_id: &str) -> String {
        self.join(&format!("groups/{public_id}"))
    }

    /// A patient's per-group pseudonym.
    pub fn pseudonym(&self, public_id: &str) -> String {
        self.join(&format!("pseudonyms/{public_id}"))
    }

    pub fn activity(&self, id: &str) -> String {
        self.join(&format!("activities/{id}"))
    }

    pub fn object(&self, id: &str) -> String {
        self.join(&format!("objects/{id}"))
    }

    pub fn nodeinfo(&self) -> String {
        self.join("nodeinfo/2.1")
    }

    /// `acct:username@authority` for WebFinger.
    pub fn acct(&self, username: &str) -> String {
        format!("acct:{username}@{}", self.authority())
    }
}

/// The first key of an actor.
pub fn first_key_id(actor_id: &str) -> String {
    format!("{actor_id}#main-key")
}

/// A key made by rotation gets a fragment of its own, so that signatures made with the previous
/// key stay verifiable by its id during the grace period.
pub fn rotated_key_id(actor_id: &str, at: Timestamp) -> String {
    format!("{actor_id}#key-{}", at.as_millis())
}

/// The actor a key id belongs to: the URL without its fragment.
pub fn key_owner(key_id: &str) -> Option<Url> {
    let mut url = Url::parse(key_id).ok()?;
    url.set_fragment(None);
    Some(url)
}

/// Whether `url` is the address of an actor of the node at `base` (its base URL, ending in `/`):
/// the node's own (`actor`), a person's (`users/{name}`), a pseudonym's or a group's, with no
/// query. Keys are fetched only from such addresses, so a request that names any other path of a
/// partner as its key cannot make this node send a signed GET there.
pub fn is_actor_url(base: &str, url: &Url) -> bool {
    if url.query().is_some() || url.fragment().is_some() {
        return false;
    }
    let Some(rest) = url.as_str().strip_prefix(base) else {
        return false;
    };
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
            && s != "."
            && s != ".."
    };
    match rest.split_once('/') {
        None => rest == "actor",
        Some((kind, id)) => matches!(kind, "users" | "pseudonyms" | "groups") && segment_ok(id),
    }
}

/// `host` or `host:port` (the port only when it is not the scheme's default), lower case.
pub fn authority_of(url: &Url) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

/// The authority of a URL given as text.
pub fn authority_of_str(url: &str) -> Option<String> {
    Url::parse(url).ok().as_ref().and_then(authority_of)
}

/// `scheme://authority`: what identifies a node. Two URLs are on the same node only when their
/// origins are equal: `https://b.example` and `http://b.example` are different nodes, so that
/// nothing a partner listed as HTTPS says is ever taken, or fetched, over plain HTTP.
pub fn origin_of(url: &Url) -> Option<String> {
    authority_of(url).map(|a| format!("{}://{a}", url.scheme()))
}

/// The origin of a URL given as text.
pub fn origin_of_str(url: &str) -> Option<String> {
    Url::parse(url).ok().as_ref().and_then(origin_of)
}

/// Whether two ids are on the same node: same scheme, host and port (never true when either is
/// not an http(s) URL).
pub fn same_node(a: &str, b: &str) -> bool {
    match (origin_of_str(a), origin_of_str(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_are_fetched_only_from_actors() {
        let base = "https://b.example/";
        let ok = [
            "https://b.example/actor",
            "https://b.example/users/dr.wang",
            "https://b.example/pseudonyms/p-7f3k2m9q",
            "https://b.example/groups/tLEifVYff5t0zWYtsh_1rw",
        ];
        for u in ok {
            assert!(is_actor_url(base, &Url::parse(u).unwrap()), "{u}");
        }
        let refused = [
            "https://b.example/api/v1/admin/accounts",
            "https://b.example/users/dr.wang/inbox",
            "https://b.example/users/",
            "https://b.example/users/..",
            "https://b.example/actor?x=1",
            "https://b.example/media/abc",
            "https://b.example/actor/inbox",
            "https://c.example/actor",
            "http://b.example/actor",
            "https://b.example/users/%2e%2e",
        ];
        for u in refused {
            assert!(!is_actor_url(base, &Url::parse(u).unwrap()), "{u}");
        }
    }

    #[test]
    fn ids_and_authorities() {
        let u = Urls::new(Url::parse("https://Caremesh.Hospital-A.example/").unwrap());
        assert_eq!(
            u.instance_actor(),
            "https://caremesh.hospital-a.example/actor"
        );
        assert_eq!(u.authority(), "caremesh.hospital-a.example");
        assert_eq!(
            u.acct("dr.wang"),
            "acct:dr.wang@caremesh.hospital-a.example"
        );
        let local = Urls::new(Url::parse("http://127.0.0.1:9000/").unwrap());
        assert_eq!(local.authority(), "127.0.0.1:9000");
        assert_eq!(local.person("dr.li"), "http://127.0.0.1:9000/users/dr.li");
        assert_eq!(
            key_owner("http://127.0.0.1:9000/actor#main-key")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9000/actor"
        );
        assert_eq!(
            authority_of_str("https://b.example:443/x"),
            Some("b.example".into())
        );
        assert_eq!(authority_of_str("ftp://b.example/"), None);
    }

    #[test]
    fn origins_keep_the_scheme() {
        assert_eq!(
            origin_of_str("https://B.example:443/x"),
            Some("https://b.example".into())
        );
        assert_eq!(
            origin_of_str("http://127.0.0.1:9000/actor#main-key"),
            Some("http://127.0.0.1:9000".into())
        );
        assert_ne!(
            origin_of_str("https://b.example/actor"),
            origin_of_str("http://b.example/actor")
        );
        assert_ne!(
            origin_of_str("https://b.example/actor"),
            origin_of_str("https://b.example:8443/actor")
        );
        assert_eq!(origin_of_str("ftp://b.example/"), None);
        assert!(same_node(
            "https://b.example/actor",
            "https://B.example:443/objects/1"
        ));
        assert!(!same_node(
            "https://b.example/actor",
            "http://b.example/objects/1"
        ));
        assert!(!same_node(
            "https://b.example/actor",
            "https://b.example:8443/x"
        ));
        assert!(!same_node("not a url", "not a url"));
    }
}
