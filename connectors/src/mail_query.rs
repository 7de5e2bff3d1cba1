//! Gmail-style search queries (`from:ada subject:"status report" is:unread after:2026/11/01 budget`)
//! parsed for the local cache.

use chrono::{NaiveDate, TimeZone as _};

/// A parsed query: every part must match.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MailQuery {
    /// Substrings of the sender.
    pub from: Vec<String>,
    /// Substrings of To or Cc.
    pub to: Vec<String>,
    /// Substrings of the subject.
    pub subject: Vec<String>,
    /// Label ids that must be present (upper-cased system labels, user label ids as given).
    pub labels: Vec<String>,
    /// Label ids that must be absent (`-is:unread`, `-label:x`).
    pub not_labels: Vec<String>,
    /// Received on or after (ms since the epoch).
    pub after_ms: Option<i64>,
    /// Received before (ms since the epoch).
    pub before_ms: Option<i64>,
    /// Must have an attachment.
    pub has_attachment: bool,
    /// Free words and "quoted phrases", matched against subject, people and body.
    pub words: Vec<String>,
}

/// Splits on spaces, keeping "quoted phrases" (and `key:"quoted value"`) together.
fn tokens(q: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in q.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn day_ms(s: &str) -> Result<i64, String> {
    let d = NaiveDate::parse_from_str(s, "%Y/%m/%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y-%m-%d"))
        .map_err(|_| format!("{s:?} is not a date: write YYYY/MM/DD"))?;
    // Gmail reads dates in the person's time zone.
    let local = chrono::Local
        .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
        .earliest()
        .ok_or_else(|| format!("{s:?} does not exist in the local time zone"))?;
    Ok(local.timestamp_millis())
}

fn label_for(is: &str) -> Option<&'static str> {
    Some(match is {
        "unread" => "UNREAD",
        "starred" => "STARRED",
        "important" => "IMPORTANT",
        "inbox" => "INBOX",
        "sent" => "SENT",
        "draft" | "drafts" => "DRAFT",
        _ => return None,
    })
}

impl MailQuery {
    /// Parses `q`; `now_ms` anchors `newer_than:`/`older_than:`.
    pub fn parse(q: &str, now_ms: i64) -> Result<MailQuery, String> {
        let mut m = MailQuery::default();
        for tok in tokens(q) {
            let (neg, t) = match tok.strip_prefix('-') {
                Some(rest) if rest.contains(':') => (true, rest.to_string()),
                _ => (false, tok.clone()),
            };
            let Some((key, val)) = t
                .split_once(':')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            else {
                m.words.push(tok);
                continue;
            };
            let val_l = val.to_lowercase();
            match key.to_ascii_lowercase().as_str() {
                "from" => m.from.push(val_l),
                "to" | "cc" => m.to.push(val_l),
                "subject" => m.subject.push(val_l),
                "is" | "in" => {
                    let l = label_for(&val_l).ok_or_else(|| {
                        format!("unknown {key}:{val}: use unread, starred, important, inbox, sent or draft")
                    })?;
                    if neg {
                        m.not_labels.push(l.into())
                    } else {
                        m.labels.push(l.into())
                    }
                }
                "label" => {
                    let l = label_for(&val_l)
                        .map(str::to_string)
                        .unwrap_or_else(|| val.to_string());
                    if neg {
                        m.not_labels.push(l)
                    } else {
                        m.labels.push(l)
                    }
                }
                "after" => m.after_ms = Some(day_ms(val)?),
                "before" => m.before_ms = Some(day_ms(val)?),
                "newer_than" | "older_than" => {
                    let ms = age_ms(val)?;
                    if key == "newer_than" {
                        m.after_ms = Some(now_ms - ms)
                    } else {
                        m.before_ms = Some(now_ms - ms)
                    }
                }
                "has" if val_l == "attachment" => m.has_attachment = true,
                _ => m.words.push(tok),
            }
        }
        Ok(m)
    }
}

fn age_ms(v: &str) -> Result<i64, String> {
    let bad = || format!("{v:?} is not an age: write e.g. 3d, 2m or 1y");
    let unit = v.chars().last().ok_or_else(bad)?;
    let n: i64 = v[..v.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let day: i64 = 86_400_000;
    let per = match unit {
        'd' => day,
        'm' => 30 * day,
        'y' => 365 * day,
        _ => return Err(bad()),
    };
    n.checked_mul(per).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_operators_phrases_and_negation() {
        let q = MailQuery::parse(r#"from:Ada subject:"status report" is:unread -label:Label_1 budget "next week" has:attachment newer_than:2d"#, 10 * 86_400_000).unwrap();
        assert_eq!(q.from, vec!["ada"]);
        assert_eq!(q.subject, vec!["status report"]);
        assert_eq!(q.labels, vec!["UNREAD"]);
        assert_eq!(q.not_labels, vec!["Label_1"]);
        assert_eq!(q.words, vec!["budget", "next week"]);
        assert!(q.has_attachment);
        assert_eq!(q.after_ms, Some(8 * 86_400_000));
    }

    #[test]
    fn bad_values_are_explained() {
        assert!(MailQuery::parse("after:yesterday", 0)
            .unwrap_err()
            .contains("YYYY/MM/DD"));
        assert!(MailQuery::parse("is:purple", 0)
            .unwrap_err()
            .contains("unread"));
        assert!(MailQuery::parse("newer_than:3w", 0)
            .unwrap_err()
            .contains("3d"));
    }
}
