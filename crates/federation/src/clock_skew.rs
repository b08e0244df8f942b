//! How far each partner's clock is from this node's, measured from the `Date` of its signed
//! requests: those that verified, and those refused only for their date. A partner whose clock is
//! off by more than [`WARN_SKEW_SECS`] is logged (at most every ten minutes while it stays off)
//! and shown to the admin; the measure is kept in memory, one entry per partner.

use std::collections::HashMap;
use std::sync::Mutex;

use caremesh_domain::Timestamp;

/// A partner's clock further off than this (either way) is worth telling the admin about: its
/// posts would look scheduled, and past `federation.signature_max_skew_secs` its requests are
/// refused.
pub const WARN_SKEW_SECS: i64 = 30;

/// How often the warning for one partner is logged again while its clock stays off.
const WARN_EVERY_MS: i64 = 10 * 60 * 1000;

/// One partner's clock as last measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartnerSkew {
    /// The partner's authority, as listed.
    pub partner: String,
    /// The partner's clock minus this node's, in seconds (positive: the partner is ahead).
    pub skew_secs: i64,
    /// When it was measured, on this node's clock.
    pub observed_at: Timestamp,
}

impl PartnerSkew {
    /// Whether the partner's clock is off by more than [`WARN_SKEW_SECS`].
    pub fn is_off(&self) -> bool {
        self.skew_secs.abs() > WARN_SKEW_SECS
    }
}

#[derive(Default)]
pub struct ClockSkews {
    /// By partner: the last measure and when a warning was last logged.
    map: Mutex<HashMap<String, (PartnerSkew, Option<Timestamp>)>>,
}

impl ClockSkews {
    /// Records the `Date` header of a request from `partner` (already known to be one), received
    /// at `now`. A header that is not an HTTP date says nothing.
    pub fn observe(&self, partner: &str, date: Option<&str>, now: Timestamp) {
        let Some(sent) = date.and_then(parse_http_date) else {
            return;
        };
        // The `Date` has whole seconds: round to them.
        let skew_secs = (sent.as_millis() - now.as_millis()) as f64 / 1000.0;
        let skew = PartnerSkew {
            partner: partner.to_owned(),
            skew_secs: skew_secs.round() as i64,
            observed_at: now,
        };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let warned = map.get(partner).and_then(|(_, w)| *w);
        let warned = if skew.is_off() {
            if warned.is_none_or(|w| now.as_millis() - w.as_millis() >= WARN_EVERY_MS) {
                tracing::warn!(
                    partner,
                    skew_secs = skew.skew_secs,
                    "a partner's clock is off: its requests are refused past \
                     federation.signature_max_skew_secs and its posts' times are taken as \
                     received; ask its administrator to fix the clock (NTP)"
                );
                Some(now)
            } else {
                warned
            }
        } else {
            if warned.is_some() {
                tracing::info!(
                    partner,
                    skew_secs = skew.skew_secs,
                    "a partner's clock is right again"
                );
            }
            None
        };
        map.insert(partner.to_owned(), (skew, warned));
    }

    /// Every partner's last measure, by partner.
    pub fn all(&self) -> Vec<PartnerSkew> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<PartnerSkew> = map.values().map(|(s, _)| s.clone()).collect();
        out.sort_by(|a, b| a.partner.cmp(&b.partner));
        out
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as the `Date` header carries it.
fn parse_http_date(s: &str) -> Option<Timestamp> {
    let t = chrono::DateTime::parse_from_rfc2822(s.trim()).ok()?;
    Some(Timestamp::from_millis(t.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_millis(1_795_420_800_000); // 2026-11-23T08:00:00Z

    #[test]
    fn skew_is_the_partners_date_minus_ours() {
        let skews = ClockSkews::default();
        skews.observe("b.example", Some("Mon, 23 Nov 2026 08:10:00 GMT"), NOW);
        skews.observe("c.example", Some("Mon, 23 Nov 2026 07:59:50 GMT"), NOW);
        skews.observe("d.example", Some("yesterday"), NOW);
        skews.observe("e.example", None, NOW);
        let all = skews.all();
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(
            (all[0].partner.as_str(), all[0].skew_secs),
            ("b.example", 600)
        );
        assert!(all[0].is_off());
        assert_eq!(
            (all[1].partner.as_str(), all[1].skew_secs),
            ("c.example", -10)
        );
        assert!(!all[1].is_off());
        // The last measure wins: the clock was fixed.
        skews.observe("b.example", Some("Mon, 23 Nov 2026 08:00:01 GMT"), NOW);
        assert_eq!(skews.all()[0].skew_secs, 1);
    }
}
