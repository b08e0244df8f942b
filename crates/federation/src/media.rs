//! Files of posts across nodes. A post's `Note` lists its files (`attachment`), each with its
//! SHA-256 in the author's signed object. The group's host fetches them from the author's node;
//! members' nodes fetch them from the host. Every node serves a group's file (`GET
//! {base}media/{sha256}?group={group}`, signed) only to the nodes the group's content goes to:
//! for a group hosted there, nodes with an active member; for a mirrored group, its host.

use async_trait::async_trait;
use caremesh_store::{Group, RemoteAttachment};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::Federation;
use crate::groups::random_id;
use crate::urls::authority_of_str;

/// Most files one post carries.
const MAX_FILES: usize = 10;

/// Where this node keeps the files of its groups (the web crate's media directory).
#[async_trait]
pub trait MediaFiles: Send + Sync {
    /// Checks that `bytes` are a kind of file a group may hold and keeps them under their
    /// SHA-256; answers their content type, or why they are refused.
    async fn keep(&self, sha256: &str, bytes: Vec<u8>) -> Result<String, String>;
    /// The largest file accepted, in bytes.
    fn max_file_bytes(&self) -> usize;
    /// How many bytes of files one group may hold.
    fn group_quota_bytes(&self) -> i64;
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Federation {
    /// Where this node serves a file of a group.
    pub fn media_url(&self, group_url: &str, sha256: &str) -> String {
        format!(
            "{}media/{sha256}?group={}",
            self.urls.base().as_str(),
            enc(group_url)
        )
    }

    /// The `attachment` list of a `Note`.
    pub(crate) fn note_attachments(
        &self,
        group_url: &str,
        files: &[caremesh_store::Attachment],
    ) -> Value {
        json!(
            files
                .iter()
                .map(|a| json!({
                    "type": if a.content_type.starts_with("image/") { "Image" } else { "Document" },
                    "mediaType": a.content_type,
                    "name": a.file_name,
                    "url": self.media_url(group_url, &a.sha256),
                    "caremesh:sha256": a.sha256,
                    "caremesh:size": a.size_bytes,
                }))
                .collect::<Vec<_>>()
        )
    }

    /// Whether the node `authority` may fetch the files of `group` from this node.
    pub async fn may_fetch_media(&self, group: &Group, authority: &str) -> bool {
        match &group.remote_actor_id {
            Some(host) => authority_of_str(host).as_deref() == Some(authority),
            None => self
                .member_nodes(group, None)
                .await
                .is_ok_and(|nodes| nodes.iter().any(|p| p.authority == authority)),
        }
    }

    /// The group's file quota, for posts from other nodes.
    pub(crate) fn group_quota(&self) -> i64 {
        self.media.get().map_or(0, |m| m.group_quota_bytes())
    }

    /// Fetches and keeps the files a post written elsewhere lists, each checked against the
    /// SHA-256 its author signed, before the post is stored with them. A file that cannot be had
    /// now is logged and left out; the post stands.
    pub(crate) async fn fetch_note_files(
        &self,
        group: &Group,
        note: &Value,
        author: &str,
    ) -> Vec<RemoteAttachment> {
        let mut out = Vec::new();
        let Some(files) = note["attachment"].as_array() else {
            return out;
        };
        for a in files.iter().take(MAX_FILES) {
            let Some(sha) = a["caremesh:sha256"].as_str().filter(|s| is_sha256(s)) else {
                continue;
            };
            if out.iter().any(|f: &RemoteAttachment| f.sha256 == sha) {
                continue;
            }
            let source = match &group.remote_actor_id {
                // Hosted here: from the author's node, where the author's signed object says.
                None => match a["url"].as_str() {
                    Some(u) if authority_of_str(u) == authority_of_str(author) => u.to_owned(),
                    _ => continue,
                },
                // Mirrored: from the group's host.
                Some(group_url) => match self.host_file_url(group_url, sha).await {
                    Some(u) => u,
                    None => continue,
                },
            };
            if let Some(f) = self.fetch_file(&source, sha, a["name"].as_str()).await {
                out.push(f);
            }
        }
        out
    }

    /// Where the host of a mirrored group serves its file `sha256`.
    pub(crate) async fn host_file_url(&self, group_url: &str, sha256: &str) -> Option<String> {
        let host = self.partner_of(group_url).await.ok()?;
        Some(format!(
            "{}media/{sha256}?group={}",
            host.base_url,
            enc(group_url)
        ))
    }

    /// Fetches one file, checks it against its SHA-256 and its kind, and keeps it.
    pub(crate) async fn fetch_file(
        &self,
        source: &str,
        sha256: &str,
        name: Option<&str>,
    ) -> Option<RemoteAttachment> {
        let media = self.media.get()?;
        if !is_sha256(sha256) {
            return None;
        }
        let bytes = match self.client.get_bytes(source, media.max_file_bytes()).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%source, error = %e, "cannot fetch a group's file");
                return None;
            }
        };
        if hex::encode(sha2::Sha256::digest(&bytes)) != sha256 {
            tracing::warn!(%source, "a group's file does not match its signed SHA-256");
            return None;
        }
        let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        let content_type = match media.keep(sha256, bytes).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(%source, error = %e, "a group's file is refused");
                return None;
            }
        };
        let name: String = name
            .unwrap_or("file")
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("file")
            .chars()
            .filter(|c| !c.is_control())
            .take(caremesh_domain::group::limits::FILE_NAME)
            .collect();
        Some(RemoteAttachment {
            public_id: random_id().ok()?,
            content_type,
            file_name: if name.is_empty() { "file".into() } else { name },
            size_bytes: size,
            sha256: sha256.to_owned(),
        })
    }
}
