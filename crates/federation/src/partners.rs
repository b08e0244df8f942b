//! The allow-list of partner hospitals. A node talks to its partners and to nobody else: requests
//! signed by any other node are refused before anything is fetched or stored, and no URL outside
//! the list is ever fetched or posted to. Loopback and private addresses are therefore reachable
//! only when the admin listed them (hospital intranets, tests).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use caremesh_domain::Clock;
use caremesh_store::{Partner, Store};
use tokio::sync::RwLock;
use url::Url;

use crate::error::FederationError;
use crate::urls::{authority_of, origin_of, origin_of_str};

/// How long the list is cached before it is read again (the admin CLI changes it from another
/// process).
const REFRESH: Duration = Duration::from_secs(2);

/// Parses a partner as the admin writes it: a base URL (`https://caremesh.hospital-b.example`,
/// `http://127.0.0.1:9000`) or a bare domain (`caremesh.hospital-b.example`, meaning HTTPS).
/// Returns its authority and normalised base URL.
pub fn parse_partner(input: &str) -> Result<(String, String), FederationError> {
    let input = input.trim();
    let with_scheme = if input.contains("://") {
        input.to_owned()
    } else {
        format!("https://{input}")
    };
    let bad = |why: &str| FederationError::InvalidPartner(format!("{input:?}: {why}"));
    let mut url = Url::parse(&with_scheme).map_err(|_| bad("not a domain or http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must be http:// or https://"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("must not have a query, fragment or user name"));
    }
    let authority = authority_of(&url).ok_or_else(|| bad("has no host"))?;
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok((authority, url.to_string()))
}

/// Whether `url` is on the partner node whose base URL is `base_url`: the same scheme, host and
/// port. The path does not matter (ids live anywhere on the node).
pub fn is_on_partner(base_url: &str, url: &Url) -> bool {
    match (origin_of_str(base_url), origin_of(url)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

type PartnerMap = Arc<BTreeMap<String, Partner>>;

pub struct Partners {
    store: Arc<dyn Store>,
    cache: RwLock<Option<(Instant, PartnerMap)>>,
}

impl Partners {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            cache: RwLock::new(None),
        }
    }

    /// Makes the stored list agree with the configuration file: partners listed there are added
    /// (source `config`), partners that came from the file and are no longer in it are removed.
    /// Partners added with the CLI are kept.
    pub async fn sync_config(
        store: &dyn Store,
        configured: &[String],
        clock: &dyn Clock,
    ) -> Result<(), FederationError> {
        let mut wanted = BTreeMap::new();
        for p in configured {
            let (authority, base_url) = parse_partner(p)?;
            wanted.insert(authority, base_url);
        }
        for existing in store.list_partners().await? {
            if existing.source == "config" && !wanted.contains_key(&existing.authority) {
                store.remove_partner(&existing.authority).await?;
            }
        }
        for (authority, base_url) in wanted {
            store
                .add_partner(Partner {
                    authority,
                    base_url,
                    added_at: clock.now(),
                    source: "config".into(),
                })
                .await?;
        }
        Ok(())
    }

    async fn snapshot(&self) -> Result<PartnerMap, FederationError> {
        if let Some((at, map)) = self.cache.read().await.as_ref()
            && at.elapsed() < REFRESH
        {
            return Ok(map.clone());
        }
        let map: BTreeMap<String, Partner> = self
            .store
            .list_partners()
            .await?
            .into_iter()
            .map(|p| (p.authority.clone(), p))
            .collect();
        let map = Arc::new(map);
        *self.cache.write().await = Some((Instant::now(), map.clone()));
        Ok(map)
    }

    /// Forgets the cached list (after a change made in this process).
    pub async fn invalidate(&self) {
        *self.cache.write().await = None;
    }

    pub async fn get(&self, authority: &str) -> Result<Option<Partner>, FederationError> {
        Ok(self.snapshot().await?.get(authority).cloned())
    }

    pub async fn is_partner(&self, authority: &str) -> Result<bool, FederationError> {
        Ok(self.snapshot().await?.contains_key(authority))
    }

    pub async fn all(&self) -> Result<Vec<Partner>, FederationError> {
        Ok(self.snapshot().await?.values().cloned().collect())
    }

    /// The partner whose node `url` is on: same scheme, host and port as the partner's base URL.
    /// A partner listed as `https://x` is not `http://x`, nor `https://x:8443`.
    pub async fn for_url(&self, url: &Url) -> Result<Option<Partner>, FederationError> {
        let Some(authority) = authority_of(url) else {
            return Ok(None);
        };
        Ok(self
            .get(&authority)
            .await?
            .filter(|p| is_on_partner(&p.base_url, url)))
    }

    /// Like [`Partners::for_url`], for a URL given as text; refuses it when it is not on a partner.
    pub async fn partner_at(&self, url: &str) -> Result<Partner, FederationError> {
        let parsed = Url::parse(url)
            .map_err(|_| FederationError::Malformed(format!("{url:?} is not a URL")))?;
        self.partner_of_url(&parsed).await
    }

    async fn partner_of_url(&self, url: &Url) -> Result<Partner, FederationError> {
        let origin = origin_of(url)
            .ok_or_else(|| FederationError::Malformed(format!("{url} is not an http(s) URL")))?;
        self.for_url(url)
            .await?
            .ok_or(FederationError::NotPartner(origin))
    }

    /// Refuses any URL that is not on a partner node (scheme, host and port). Called before
    /// every fetch and delivery.
    pub async fn check_url(&self, url: &str) -> Result<Url, FederationError> {
        let parsed = Url::parse(url)
            .map_err(|_| FederationError::Malformed(format!("{url:?} is not a URL")))?;
        self.partner_of_url(&parsed).await?;
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn on(partner: &str, url: &str) -> bool {
        let (_, base_url) = parse_partner(partner).unwrap();
        is_on_partner(&base_url, &Url::parse(url).unwrap())
    }

    #[test]
    fn partners_match_on_scheme_host_and_port() {
        // The same scheme, host and port: accepted, whatever the path.
        assert!(on("https://b.example", "https://b.example/actor"));
        assert!(on(
            "b.example",
            "https://B.example:443/users/dr.li#main-key"
        ));
        assert!(on("http://127.0.0.1:9000", "http://127.0.0.1:9000/inbox"));
        // Never downgraded: a partner listed as HTTPS is not reached, or believed, over HTTP.
        assert!(!on("https://b.example", "http://b.example/actor"));
        assert!(!on("b.example", "http://b.example:443/actor"));
        assert!(!on("https://127.0.0.1:9000", "http://127.0.0.1:9000/actor"));
        // Nor upgraded: an HTTP partner's address over HTTPS is another node.
        assert!(!on("http://127.0.0.1:9000", "https://127.0.0.1:9000/actor"));
        // The same host on another port is another node.
        assert!(!on("https://b.example", "https://b.example:8443/actor"));
        assert!(!on("http://127.0.0.1:9000", "http://127.0.0.1:9001/actor"));
        // Other hosts and other schemes.
        assert!(!on("https://b.example", "https://c.example/actor"));
        assert!(!on("https://b.example", "ftp://b.example/actor"));
    }

    #[test]
    fn partners_parse_from_domains_and_urls() {
        assert_eq!(
            parse_partner("caremesh.hospital-b.example").unwrap(),
            (
                "caremesh.hospital-b.example".into(),
                "https://caremesh.hospital-b.example/".into()
            )
        );
        assert_eq!(
            parse_partner("http://127.0.0.1:9000").unwrap(),
            ("127.0.0.1:9000".into(), "http://127.0.0.1:9000/".into())
        );
        assert_eq!(
            parse_partner("https://B.example:443/caremesh").unwrap(),
            ("b.example".into(), "https://b.example/caremesh/".into())
        );
        for bad in [
            "ftp://x.example",
            "https://x.example/?a=1",
            "",
            "http://",
            "https://u@x.example",
        ] {
            assert!(parse_partner(bad).is_err(), "{bad}");
        }
    }
}
