//! Rows read as JSON text (see `posts_as_json` in `groups.rs`): typed, so that parsing a page of
//! posts allocates no map per post.

use serde::Deserialize;

/// SQLite writes booleans as 0 and 1, PostgreSQL as false and true.
#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Int(i64),
}

impl Flag {
    pub fn get(self) -> bool {
        match self {
            Flag::Bool(b) => b,
            Flag::Int(n) => n != 0,
        }
    }
}

/// The columns of `POST_SELECT`.
#[derive(Deserialize, Debug)]
pub struct PostJson {
    pub id: i64,
    pub public_id: String,
    pub group_id: i64,
    pub kind: String,
    pub thread_id: Option<i64>,
    pub thread_public_id: Option<String>,
    pub author_user_id: Option<i64>,
    pub author_actor_id: Option<String>,
    pub author_name: String,
    pub author_member_id: Option<i64>,
    pub author_role: Option<String>,
    pub origin_id: Option<String>,
    pub title: Option<String>,
    pub body: String,
    pub pinned: Flag,
    pub publish_at: i64,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<String>,
    pub helpful_count: i64,
    pub reply_count: i64,
    pub attachment_count: i64,
    pub accepted_reply_public_id: Option<String>,
    pub answered_by_doctor: Flag,
    pub marked_helpful: Flag,
}

/// Parses a JSON array of posts.
pub fn parse_posts(text: &str) -> Result<Vec<PostJson>, serde_json::Error> {
    serde_json::from_str(text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn both_spellings_of_booleans_parse() {
        let row = |flag: &str| {
            format!(
                r#"[{{"id":1,"public_id":"p","group_id":2,"kind":"question","thread_id":null,
                "thread_public_id":null,"author_user_id":3,"author_actor_id":null,"author_name":"王",
                "author_member_id":4,"author_role":"member","origin_id":null,"title":null,
                "body":"<b>x</b>","pinned":{flag},"publish_at":5,"created_at":5,"edited_at":null,
                "deleted_at":null,"deleted_by":null,"helpful_count":0,"reply_count":0,
                "attachment_count":0,"accepted_reply_public_id":null,"answered_by_doctor":{flag},
                "marked_helpful":{flag}}}]"#
            )
        };
        assert!(parse_posts(&row("1")).unwrap()[0].pinned.get());
        assert!(parse_posts(&row("true")).unwrap()[0].pinned.get());
        assert!(!parse_posts(&row("false")).unwrap()[0].marked_helpful.get());
        assert_eq!(parse_posts(&row("0")).unwrap()[0].body, "<b>x</b>");
    }
}
