//! Files of posts across nodes. A post's `Note` lists its files (`attachment`), each with its
//! SHA-256 in the author's signed object. The group's host fetches them from the author's node;
//! members' nodes fetch them from the host. Every node serves a group's file (`GET
//! {base}media/{sha256}?group={group}`, signed) only to the nodes the group's content goes to:
//! for a group hosted there, nodes with an active member; for a mirrored group, its host.

use serde_json::{Value, json};

use crate::Federation;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
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
    pub fn note_attachments(&self, group_url: &str, files: &[caremesh_store::Attachment]) -> Value {
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
}
