//! Disease groups: who holds which role in a group, what each role may do, and the rules that
//! group fields and posts obey.
//!
//! Text is stored as its author typed it, after [`clean_text`] removed what can only do harm
//! (control characters, bidirectional overrides). It is never HTML: clients show it as text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::account::ValidationError;

/// A member's role in one group. Independent of the account's role on the node, except that only
/// doctors can be the group's doctors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupRole {
    /// Created the group: appoints doctors and moderators, changes the group's settings.
    Owner,
    /// A doctor of the group: announces, pins, accepts answers, answers the queue, moderates.
    Doctor,
    /// Helps run the group: admits members, removes posts, bans, keeps the library.
    Moderator,
    /// Reads, asks, replies, marks replies helpful, reports.
    Member,
}

impl GroupRole {
    pub const ALL: [GroupRole; 4] = [
        GroupRole::Owner,
        GroupRole::Doctor,
        GroupRole::Moderator,
        GroupRole::Member,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GroupRole::Owner => "owner",
            GroupRole::Doctor => "doctor",
            GroupRole::Moderator => "moderator",
            GroupRole::Member => "member",
        }
    }

    /// Admits and removes members, removes posts, handles reports, reads the moderation log.
    pub fn can_moderate(self) -> bool {
        !matches!(self, GroupRole::Member)
    }

    /// Posts announcements (also scheduled ones), pins posts, accepts answers.
    pub fn can_teach(self) -> bool {
        matches!(self, GroupRole::Owner | GroupRole::Doctor)
    }

    /// Saves posts and files into the library's folders.
    pub fn can_curate(self) -> bool {
        self.can_moderate()
    }

    /// Appoints and dismisses doctors and moderators and changes the group's settings.
    pub fn can_govern(self) -> bool {
        self == GroupRole::Owner
    }

    /// Owner above doctors above moderators above members.
    pub fn rank(self) -> u8 {
        match self {
            GroupRole::Owner => 3,
            GroupRole::Doctor => 2,
            GroupRole::Moderator => 1,
            GroupRole::Member => 0,
        }
    }

    /// A moderator may remove or ban only those ranked below: moderators cannot remove doctors,
    /// nobody can remove the owner.
    pub fn outranks(self, other: GroupRole) -> bool {
        self.rank() > other.rank()
    }
}

impl fmt::Display for GroupRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GroupRole {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        GroupRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new("role", "must be one of owner, doctor, moderator, member")
            })
    }
}

/// Where a membership stands. Only `Active` members see the group's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Asked to join; a moderator has not decided yet.
    Pending,
    Active,
    /// Left on their own; may come back by invite or request.
    Left,
    /// Removed by a moderator; may come back by a new invite or request.
    Removed,
    /// Banned by a moderator; cannot come back until unbanned.
    Banned,
    /// Their join request was rejected; they may ask again.
    Rejected,
}

impl MemberState {
    pub const ALL: [MemberState; 6] = [
        MemberState::Pending,
        MemberState::Active,
        MemberState::Left,
        MemberState::Removed,
        MemberState::Banned,
        MemberState::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Pending => "pending",
            MemberState::Active => "active",
            MemberState::Left => "left",
            MemberState::Removed => "removed",
            MemberState::Banned => "banned",
            MemberState::Rejected => "rejected",
        }
    }
}

impl FromStr for MemberState {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MemberState::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ValidationError::new("state", "unknown membership state"))
    }
}

/// The kinds of post in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostKind {
    /// From a doctor of the group; may be pinned and scheduled.
    Announcement,
    /// From any member; doctors answer it, members mark replies helpful.
    Question,
    /// In the thread of an announcement or a question.
    Reply,
}

impl PostKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PostKind::Announcement => "announcement",
            PostKind::Question => "question",
            PostKind::Reply => "reply",
        }
    }
}

impl FromStr for PostKind {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [PostKind::Announcement, PostKind::Question, PostKind::Reply]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ValidationError::new("kind", "must be announcement or question"))
    }
}

/// The group's language, for its members' interface and its doctors' writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Language {
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "en")]
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::ZhCn => "zh-CN",
            Language::En => "en",
        }
    }
}

impl FromStr for Language {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zh-CN" => Ok(Language::ZhCn),
            "en" => Ok(Language::En),
            _ => Err(ValidationError::new("language", "must be zh-CN or en")),
        }
    }
}

/// Who may see the list of a group's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberListVisibility {
    /// Every member.
    Members,
    /// Only the group's moderators, doctors and owner (patients stay unseen by each other).
    Moderators,
}

impl MemberListVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberListVisibility::Members => "members",
            MemberListVisibility::Moderators => "moderators",
        }
    }
}

impl FromStr for MemberListVisibility {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "members" => Ok(MemberListVisibility::Members),
            "moderators" => Ok(MemberListVisibility::Moderators),
            _ => Err(ValidationError::new(
                "member_list",
                "must be members or moderators",
            )),
        }
    }
}

/// Limits, in characters (Unicode scalar values), of the text fields of groups and posts.
pub mod limits {
    pub const GROUP_NAME: usize = 100;
    pub const CONDITION: usize = 100;
    pub const CONDITION_CODE: usize = 16;
    pub const CITY: usize = 64;
    pub const DESCRIPTION: usize = 2_000;
    pub const RULES: usize = 4_000;
    pub const POST_TITLE: usize = 200;
    pub const POST_BODY: usize = 10_000;
    pub const REPORT_REASON: usize = 500;
    pub const JOIN_MESSAGE: usize = 500;
    pub const FOLDER_NAME: usize = 100;
    pub const ITEM_TITLE: usize = 200;
    pub const INVITE_LABEL: usize = 100;
    pub const SEARCH_QUERY: usize = 100;
    pub const FILE_NAME: usize = 200;
    pub const BAN_REASON: usize = 500;
}

/// Characters that reorder text when displayed (Trojan Source, CVE-2021-42574): they let a post
/// show something other than what it says.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Cleans a text a person typed: line breaks become `\n`, control characters other than `\n` and
/// `\t` and bidirectional overrides are dropped, surrounding white space is trimmed. Then checks
/// its length: empty text is refused unless `allow_empty`, longer than `max` characters always.
/// Everything else is kept as typed, `<`, `>` and `&` included: the API returns text, never HTML.
pub fn clean_text(
    field: &'static str,
    text: &str,
    max: usize,
    allow_empty: bool,
) -> Result<String, ValidationError> {
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let cleaned: String = normalised
        .chars()
        .filter(|&c| (c == '\n' || c == '\t' || !c.is_control()) && !is_bidi_control(c))
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() && !allow_empty {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters long"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Like [`clean_text`] for one-line fields (names, titles): line breaks and tabs are refused.
pub fn clean_line(field: &'static str, text: &str, max: usize) -> Result<String, ValidationError> {
    if text.contains(['\n', '\r', '\t']) {
        return Err(ValidationError::new(field, "must be a single line"));
    }
    clean_text(field, text, max, false)
}

/// An optional classification code such as an ICD-10 chapter or code (`C50`, `I63.9`, `IX`):
/// upper-case letters, digits, `.` and `-`.
pub fn validate_condition_code(code: &str) -> Result<(), ValidationError> {
    let ok = !code.is_empty()
        && code.len() <= limits::CONDITION_CODE
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "condition_code",
            "must be 1 to 16 characters: upper-case letters, digits, '.' and '-' (e.g. C50, I63.9)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_kept_as_typed_but_cleaned() {
        assert_eq!(
            clean_text(
                "body",
                "  <script>alert(1)</script>\r\n**粗体** & more ",
                100,
                false
            ),
            Ok("<script>alert(1)</script>\n**粗体** & more".into())
        );
        assert_eq!(
            clean_text("body", "a\u{0}b\u{7}c\u{202E}d\te", 100, false),
            Ok("abcd\te".into())
        );
        assert!(clean_text("body", " \u{0} \n", 100, false).is_err());
        assert_eq!(clean_text("body", "", 100, true), Ok(String::new()));
        assert!(clean_text("body", &"字".repeat(101), 100, false).is_err());
        assert!(clean_text("body", &"字".repeat(100), 100, false).is_ok());
    }

    #[test]
    fn lines_refuse_breaks() {
        assert!(clean_line("name", "乳腺癌 病友群", 100).is_ok());
        assert!(clean_line("name", "a\nb", 100).is_err());
    }

    #[test]
    fn condition_codes() {
        for ok in ["C50", "I63.9", "IX", "C00-D48"] {
            assert!(validate_condition_code(ok).is_ok(), "{ok}");
        }
        for bad in ["", "c50", "C50 ", "乳腺", &"C".repeat(17)] {
            assert!(validate_condition_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_and_powers() {
        assert!(GroupRole::Owner.can_govern());
        assert!(!GroupRole::Doctor.can_govern());
        assert!(GroupRole::Doctor.can_teach() && GroupRole::Doctor.can_moderate());
        assert!(GroupRole::Moderator.can_moderate() && !GroupRole::Moderator.can_teach());
        assert!(!GroupRole::Member.can_moderate() && !GroupRole::Member.can_curate());
        assert!(GroupRole::Doctor.outranks(GroupRole::Moderator));
        assert!(!GroupRole::Moderator.outranks(GroupRole::Moderator));
        assert!(!GroupRole::Doctor.outranks(GroupRole::Owner));
        assert_eq!("moderator".parse::<GroupRole>(), Ok(GroupRole::Moderator));
        assert!("admin".parse::<GroupRole>().is_err());
        assert_eq!("zh-CN".parse::<Language>(), Ok(Language::ZhCn));
        assert!("zh".parse::<Language>().is_err());
    }
}
