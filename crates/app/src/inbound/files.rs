//! Files of posts and libraries from other nodes: fetched (from the author's node by a group's
//! host, from the host by members' nodes), checked against the SHA-256 their author signed and
//! against the kinds a group may hold, and kept.

use caremesh_federation::urls::same_node;
use caremesh_store::{Attachment, Group, RemoteAttachment};
use serde_json::Value;
use sha2::Digest as _;

use crate::App;

/// Most files one post carries.
const MAX_FILES: usize = 10;

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The group's file quota, for posts from other nodes.
pub(super) fn group_quota(app: &App) -> i64 {
    app.settings.group_quota_bytes
}

/// Fetches and keeps the files a post written elsewhere lists, each checked against the SHA-256
/// its author signed, before the post is stored with them. A file that cannot be had now is
/// logged and left out; the post stands.
pub(super) async fn fetch_note_files(
    app: &App,
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
                Some(u) if same_node(u, author) => u.to_owned(),
                _ => continue,
            },
            // Mirrored: from the group's host.
            Some(group_url) => match host_file_url(app, group_url, sha).await {
                Some(u) => u,
                None => continue,
            },
        };
        if let Some(f) = fetch_file(app, &source, sha, a["name"].as_str()).await {
            out.push(f);
        }
    }
    out
}

/// A file of a mirrored group's library: the one this node has, or fetched from the host.
pub(super) async fn library_file(
    app: &App,
    group: &Group,
    sha256: &str,
    name: Option<&str>,
) -> Option<Attachment> {
    if let Ok(Some(a)) = app.store.attachment_by_sha(group.id, sha256).await {
        return Some(a);
    }
    let group_url = group.remote_actor_id.as_deref()?;
    let source = host_file_url(app, group_url, sha256).await?;
    let file = fetch_file(app, &source, sha256, name).await?;
    match app
        .store
        .add_mirror_file(group.id, file, group_quota(app), app.now())
        .await
    {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!(error = %e, "cannot keep a library file");
            None
        }
    }
}

/// Where the host of a mirrored group serves its file `sha256`.
async fn host_file_url(app: &App, group_url: &str, sha256: &str) -> Option<String> {
    let host = app.federation.partner_of(group_url).await.ok()?;
    Some(format!(
        "{}media/{sha256}?group={}",
        host.base_url,
        url::form_urlencoded::byte_serialize(group_url.as_bytes()).collect::<String>()
    ))
}

/// Fetches one file, checks it against its SHA-256 and its kind, and keeps it.
async fn fetch_file(
    app: &App,
    source: &str,
    sha256: &str,
    name: Option<&str>,
) -> Option<RemoteAttachment> {
    let fed = &app.federation;
    let media = &app.media;
    if !is_sha256(sha256) {
        return None;
    }
    let bytes = match fed.client.get_bytes(source, media.max_file_bytes()).await {
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
        public_id: crate::new_public_id().ok()?,
        content_type,
        file_name: if name.is_empty() { "file".into() } else { name },
        size_bytes: size,
        sha256: sha256.to_owned(),
    })
}
