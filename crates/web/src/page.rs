//! Cursor pagination, shared by every list. A cursor is opaque to clients (URL-safe base64 of a
//! versioned position), so the position's form can change without breaking them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

impl PageQuery {
    /// The position after which to continue, and how many items to return.
    pub fn decode(&self) -> ApiResult<(Option<i64>, u32)> {
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_limit",
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                    )
                })?,
        };
        let position = self.cursor.as_deref().map(decode_cursor).transpose()?;
        Ok((position, limit))
    }
}

impl PageQuery {
    /// Like [`PageQuery::decode`] for positions of `n` numbers (e.g. pinned, time, id).
    pub fn decode_parts(&self, n: usize) -> ApiResult<(Option<Vec<i64>>, u32)> {
        let (_, limit) = PageQuery {
            cursor: None,
            limit: self.limit.clone(),
        }
        .decode()?;
        let position = self
            .cursor
            .as_deref()
            .map(|c| decode_cursor_parts(c, n))
            .transpose()?;
        Ok((position, limit))
    }
}

/// A cursor of several numbers: `v2:a,b,c`.
pub fn encode_cursor_parts(position: &[i64]) -> String {
    let parts: Vec<String> = position.iter().map(i64::to_string).collect();
    URL_SAFE_NO_PAD.encode(format!("v2:{}", parts.join(",")))
}

fn decode_cursor_parts(cursor: &str, n: usize) -> ApiResult<Vec<i64>> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_cursor",
            "the cursor is not one this node handed out; start again without it",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let parts = text
        .strip_prefix("v2:")
        .ok_or_else(invalid)?
        .split(',')
        .map(|p| p.parse::<i64>().map_err(|_| invalid()))
        .collect::<ApiResult<Vec<i64>>>()?;
    if parts.len() == n {
        Ok(parts)
    } else {
        Err(invalid())
    }
}

pub fn encode_cursor(position: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{position}"))
}

fn decode_cursor(cursor: &str) -> ApiResult<i64> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_cursor",
            "the cursor is not one this node handed out; start again without it",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix("v1:")
        .and_then(|n| n.parse::<i64>().ok())
        .ok_or_else(invalid)
}

/// One page of a list, and the cursor for the next page when there is one.
#[derive(Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched items (each with its position): the extra item only
    /// tells whether there is a next page.
    pub fn from_overfetch(mut items: Vec<(i64, T)>, limit: u32) -> Self {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if more {
            items.last().map(|(pos, _)| encode_cursor(*pos))
        } else {
            None
        };
        Self {
            items: items.into_iter().map(|(_, t)| t).collect(),
            next_cursor,
        }
    }
}

impl<T> Page<T> {
    /// Like [`Page::from_overfetch`] for positions of several numbers.
    pub fn from_overfetch_parts(mut items: Vec<(Vec<i64>, T)>, limit: u32) -> Self {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if more {
            items.last().map(|(pos, _)| encode_cursor_parts(pos))
        } else {
            None
        };
        Self {
            items: items.into_iter().map(|(_, t)| t).collect(),
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursor_round_trip_and_rejects_garbage() {
        let q = PageQuery {
            cursor: Some(encode_cursor(42)),
            limit: Some("10".into()),
        };
        assert_eq!(q.decode().unwrap(), (Some(42), 10));
        for bad in ["!!", "djE6YWJj", ""] {
            let q = PageQuery {
                cursor: Some(bad.into()),
                limit: None,
            };
            assert_eq!(q.decode().unwrap_err().code, "invalid_cursor", "{bad}");
        }
        for bad in ["0", "201", "x", "-1"] {
            let q = PageQuery {
                cursor: None,
                limit: Some(bad.into()),
            };
            assert_eq!(q.decode().unwrap_err().code, "invalid_limit");
        }
    }

    #[test]
    fn multi_part_cursors_round_trip_and_check_their_length() {
        let q = PageQuery {
            cursor: Some(encode_cursor_parts(&[1, -5, 42])),
            limit: None,
        };
        assert_eq!(q.decode_parts(3).unwrap(), (Some(vec![1, -5, 42]), 50));
        assert_eq!(q.decode_parts(2).unwrap_err().code, "invalid_cursor");
        let v1 = PageQuery {
            cursor: Some(encode_cursor(7)),
            limit: None,
        };
        assert_eq!(v1.decode_parts(1).unwrap_err().code, "invalid_cursor");
        let bad = PageQuery {
            cursor: Some(URL_SAFE_NO_PAD.encode("v2:1,x")),
            limit: None,
        };
        assert_eq!(bad.decode_parts(2).unwrap_err().code, "invalid_cursor");
    }

    #[test]
    fn overfetch_sets_next_cursor_only_when_more() {
        let p = Page::from_overfetch(vec![(1, 'a'), (2, 'b'), (3, 'c')], 2);
        assert_eq!(p.items, vec!['a', 'b']);
        assert_eq!(p.next_cursor, Some(encode_cursor(2)));
        let p = Page::from_overfetch(vec![(1, 'a')], 2);
        assert_eq!(p.next_cursor, None);
    }
}
