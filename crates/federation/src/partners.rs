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
use crate::urls::authority_of;

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

    /// Refuses any URL that is not on a partner node. Called before every fetch and delivery.
    pub async fn check_url(&self, url: &str) -> Result<Url, FederationError> {
        let parsed = Url::parse(url)
            .map_err(|_| FederationError::Malformed(format!("{url:?} is not a URL")))?;
        let authority = authority_of(&parsed)
            .ok_or_else(|| FederationError::Malformed(format!("{url:?} is not an http(s) URL")))?;
        if !self.is_partner(&authority).await? {
            return Err(FederationError::NotPartner(authority));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
