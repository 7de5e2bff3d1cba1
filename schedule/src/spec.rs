//! Cron expressions with an IANA time zone, and when they are next due.
//!
//! Parsing and matching are croner's; this module adds the five-field rule, the `@midnight`
//! nickname, friendlier errors, and one correction to daylight-saving handling.
//!
//! # Daylight saving
//!
//! A pattern whose hour field names fixed hours (`30 2 * * *`, `0 2,14 * * *`, `@daily`) is a
//! *wall-clock* schedule: a person means "at half past two on the clock", so
//! - when the clock springs forward over the time (02:30 does not exist), it runs once, at the
//!   first instant after the gap (03:00);
//! - when the clock falls back and shows the time twice, it runs once, at the first showing.
//!
//! A pattern with `*` or `/` in the hour field (`0 * * * *`, `*/15 * * * *`, `0 */2 * * *`)
//! is an *interval*: it follows the real clock, runs in both copies of a repeated hour, and
//! has nothing to run in an hour that does not exist, so an hourly job never runs twice at
//! one instant and never skips a real hour.
//!
//! croner 4 does exactly this for single-time patterns (one minute, one hour), but treats a
//! list of hours such as `30 2,14 * * *` as an interval: measured with chrono-tz in
//! Europe/Berlin it skips 02:30 on 2026-03-29 and runs 02:30 twice on 2026-10-25. So
//! wall-clock schedules are computed here, on croner's naive wall clock (its UTC search,
//! which has no daylight saving), and mapped to instants by the rules above. A test checks
//! that this agrees with croner wherever croner already does the right thing.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};

use crate::error::{Result, ScheduleError};

/// Five fields only: seconds and years are refused before croner sees the pattern, and
/// croner is told so too. Day-of-month and day-of-week combine with OR, as in Vixie cron.
static PARSER: LazyLock<CronParser> = LazyLock::new(|| {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
});

/// How many wall-clock times a search may step over before giving up. Only times inside a
/// repeated (fall-back) hour are ever stepped over: at most 60 per hour with minute fields.
const MAX_SKIPPED_SLOTS: usize = 10_000;

/// No time zone jumps forward by more than a day (Samoa skipped exactly one in 2011).
const MAX_GAP_SECONDS: i64 = 2 * 86_400;

/// A parsed five-field cron expression in an IANA time zone.
#[derive(Debug, Clone)]
pub struct Cron {
    expr: String,
    tz: Tz,
    pattern: croner::Cron,
    /// The hour field names fixed hours: see the module docs on daylight saving.
    wall_clock: bool,
}

impl Cron {
    /// Parses `expr` (five fields or an `@nickname`) in the IANA time zone `tz`.
    pub fn parse(expr: &str, tz: &str) -> Result<Cron> {
        let expr = expr.trim();
        if expr.is_empty() {
            return Err(ScheduleError::EmptyCron);
        }
        let expanded = if expr.starts_with('@') {
            nickname(expr)?
        } else {
            expr
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(ScheduleError::FieldCount {
                expr: expr.to_string(),
                fields: fields.len(),
            });
        }
        let pattern = PARSER
            .parse(&fields.join(" "))
            .map_err(|e| ScheduleError::InvalidCron {
                expr: expr.to_string(),
                reason: reason(&e),
            })?;
        let cron = Cron {
            expr: expr.to_string(),
            tz: parse_tz(tz)?,
            pattern,
            wall_clock: !fields[1].contains(['*', '/']),
        };
        // croner accepts "0 0 30 2 *" and only fails when asked for a time; ask now so a
        // schedule that can never run is refused when it is added, not silently idle.
        if cron
            .pattern
            .find_next_occurrence(&DateTime::<Utc>::UNIX_EPOCH, false)
            .is_err()
        {
            return Err(ScheduleError::NeverDue(expr.to_string()));
        }
        Ok(cron)
    }

    /// The first due time strictly after `t`, or `None` if the pattern never matches again.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.wall_clock {
            self.next_wall_clock(t)
        } else {
            self.pattern
                .find_next_occurrence(&t.with_timezone(&self.tz), false)
                .ok()
                .map(|at| at.with_timezone(&Utc))
        }
    }

    /// A short English description, such as "At 02:30 (Europe/Berlin)".
    pub fn describe(&self) -> String {
        let text = self.pattern.describe();
        format!("{} ({})", text.trim_end_matches('.'), self.tz.name())
    }

    /// The expression as given (trimmed; nicknames are kept as written).
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The time zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Walks the naive wall clock from `t`'s local time and maps each matching time to an
    /// instant; the mapping only goes backwards inside a repeated hour, hence the loop.
    fn next_wall_clock(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut after = t.with_timezone(&self.tz).naive_local();
        for _ in 0..MAX_SKIPPED_SLOTS {
            // Searching in UTC is searching the naive wall clock: UTC has no daylight saving.
            let slot = self
                .pattern
                .find_next_occurrence(&Utc.from_utc_datetime(&after), false)
                .ok()?
                .naive_utc();
            let at = self.wall_clock_instant(slot)?;
            if at > t {
                return Some(at);
            }
            after = slot;
        }
        None
    }

    /// The instant a wall-clock schedule runs for local time `slot`: the first showing of a
    /// repeated time, or the first instant after the gap for a time that does not exist.
    fn wall_clock_instant(&self, slot: NaiveDateTime) -> Option<DateTime<Utc>> {
        let at = match self.tz.from_local_datetime(&slot) {
            LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => at,
            LocalResult::None => self.first_after_gap(slot)?,
        };
        Some(at.with_timezone(&Utc))
    }

    /// Bisects for the first local second after the gap that `slot` falls in.
    fn first_after_gap(&self, slot: NaiveDateTime) -> Option<DateTime<Tz>> {
        let exists = |secs: i64| {
            !matches!(
                self.tz
                    .from_local_datetime(&(slot + TimeDelta::seconds(secs))),
                LocalResult::None
            )
        };
        let (mut missing, mut present) = (0, MAX_GAP_SECONDS);
        if !exists(present) {
            return None;
        }
        while present - missing > 1 {
            let mid = missing + (present - missing) / 2;
            if exists(mid) {
                present = mid;
            } else {
                missing = mid;
            }
        }
        self.tz
            .from_local_datetime(&(slot + TimeDelta::seconds(present)))
            .earliest()
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expr, self.tz.name())
    }
}

/// The five-field form of a standard nickname. croner knows all but `@midnight`, but
/// expanding them here keeps the five-field check in one place.
fn nickname(expr: &str) -> Result<&'static str> {
    Ok(match expr.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return Err(ScheduleError::UnknownNickname(expr.to_string())),
    })
}

/// croner's message, lowercased and without its type name, to fit inside ours.
fn reason(e: &CronError) -> String {
    let text = match e {
        CronError::InvalidPattern(m) | CronError::ComponentError(m) => m.clone(),
        CronError::IllegalCharacters(m) => {
            m.trim_start_matches("CronPattern contains ").to_string()
        }
        other => other.to_string(),
    };
    let text = text.trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "not understood".to_string(),
    }
}

/// Parses an IANA zone name, suggesting the closest known name when it is not one.
pub(crate) fn parse_tz(name: &str) -> Result<Tz> {
    Tz::from_str(name.trim()).map_err(|_| ScheduleError::UnknownTimeZone {
        tz: name.to_string(),
        suggestion: closest_zone(name.trim()),
    })
}

/// The known zone name nearest to `name` by edit distance, ignoring case, if it is close
/// enough to be a typo; otherwise two common examples.
fn closest_zone(name: &str) -> String {
    let wanted = name.to_ascii_lowercase();
    let best = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| {
            (
                edit_distance(&wanted, &tz.name().to_ascii_lowercase()),
                tz.name(),
            )
        })
        .min();
    match best {
        Some((distance, known)) if !wanted.is_empty() && distance <= (wanted.len() / 4).max(2) => {
            known.to_string()
        }
        _ => "Europe/Berlin or America/New_York".to_string(),
    }
}

/// Levenshtein distance, one row at a time.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// Every due time in `[from, to)`, found by chaining `next_after`.
    fn due_times(cron: &Cron, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut t = from - TimeDelta::seconds(1);
        while let Some(next) = cron.next_after(t) {
            if next >= to {
                break;
            }
            assert!(next > t, "{cron}: next_after({t}) = {next} is not after it");
            out.push(next);
            t = next;
        }
        out
    }

    /// The due times that fall on local calendar date `day` in the cron's zone.
    fn on_local_day(cron: &Cron, y: i32, m: u32, d: u32) -> Vec<DateTime<Utc>> {
        let day = chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        due_times(
            cron,
            utc(y, m, d, 0, 0) - TimeDelta::days(1),
            utc(y, m, d, 0, 0) + TimeDelta::days(2),
        )
        .into_iter()
        .filter(|t| t.with_timezone(&cron.tz()).date_naive() == day)
        .collect()
    }

    #[test]
    fn parses_ranges_lists_steps_and_names() {
        let cron = Cron::parse("0,30 9-17/2 * jan-mar MON-FRI", "UTC").unwrap();
        // Monday 2026-01-05 08:00 UTC: next is 09:00, then 09:30, then 11:00.
        let t = utc(2026, 1, 5, 8, 0);
        let a = cron.next_after(t).unwrap();
        let b = cron.next_after(a).unwrap();
        let c = cron.next_after(b).unwrap();
        assert_eq!(
            [a, b, c],
            [
                utc(2026, 1, 5, 9, 0),
                utc(2026, 1, 5, 9, 30),
                utc(2026, 1, 5, 11, 0)
            ]
        );
        // Friday 17:30 is the last of the week; then Monday 09:00.
        let fri = cron.next_after(utc(2026, 1, 9, 17, 1)).unwrap();
        assert_eq!(fri, utc(2026, 1, 9, 17, 30));
        assert_eq!(cron.next_after(fri), Some(utc(2026, 1, 12, 9, 0)));
        // April is outside JAN-MAR.
        assert_eq!(
            cron.next_after(utc(2026, 3, 31, 18, 0)),
            Some(utc(2027, 1, 1, 9, 0))
        );
    }

    #[test]
    fn sunday_is_0_or_7() {
        let sun0 = Cron::parse("0 12 * * 0", "UTC").unwrap();
        let sun7 = Cron::parse("0 12 * * 7", "UTC").unwrap();
        let t = utc(2026, 1, 1, 0, 0);
        assert_eq!(sun0.next_after(t), Some(utc(2026, 1, 4, 12, 0)));
        assert_eq!(sun7.next_after(t), sun0.next_after(t));
    }

    #[test]
    fn nicknames_expand_to_their_five_fields() {
        let t = utc(2026, 5, 13, 10, 17); // a Wednesday
        let cases = [
            ("@yearly", utc(2027, 1, 1, 0, 0)),
            ("@annually", utc(2027, 1, 1, 0, 0)),
            ("@monthly", utc(2026, 6, 1, 0, 0)),
            ("@weekly", utc(2026, 5, 17, 0, 0)),
            ("@daily", utc(2026, 5, 14, 0, 0)),
            ("@midnight", utc(2026, 5, 14, 0, 0)),
            ("@HOURLY", utc(2026, 5, 13, 11, 0)),
        ];
        for (expr, want) in cases {
            let cron = Cron::parse(expr, "UTC").unwrap();
            assert_eq!(cron.next_after(t), Some(want), "{expr}");
            assert_eq!(cron.expr(), expr);
        }
    }

    #[test]
    fn next_after_is_strictly_after() {
        let cron = Cron::parse("*/5 * * * *", "UTC").unwrap();
        let t = utc(2026, 1, 1, 10, 5);
        assert_eq!(cron.next_after(t), Some(utc(2026, 1, 1, 10, 10)));
        let just_before = t - TimeDelta::milliseconds(1);
        assert_eq!(cron.next_after(just_before), Some(t));
        // The same holds for a wall-clock pattern.
        let daily = Cron::parse("5 10 * * *", "Europe/Berlin").unwrap();
        let at = daily.next_after(t).unwrap();
        assert_eq!(daily.next_after(at), Some(at + TimeDelta::days(1)));
        assert_eq!(daily.next_after(at - TimeDelta::milliseconds(1)), Some(at));
    }

    #[test]
    fn refuses_seconds_and_years_and_short_patterns() {
        for (expr, n) in [("0 0 9 * * *", 6), ("0 0 9 * * * 2026", 7), ("0 9 * *", 4)] {
            match Cron::parse(expr, "UTC") {
                Err(ScheduleError::FieldCount { fields, .. }) => assert_eq!(fields, n, "{expr}"),
                other => panic!("{expr}: {other:?}"),
            }
        }
        let msg = Cron::parse("0 0 9 * * *", "UTC").unwrap_err().to_string();
        assert!(
            msg.contains("has 6 field(s)") && msg.contains("without seconds"),
            "{msg}"
        );
    }

    #[test]
    fn explains_bad_patterns() {
        assert!(matches!(
            Cron::parse("  ", "UTC"),
            Err(ScheduleError::EmptyCron)
        ));
        let err = Cron::parse("@reboot", "UTC").unwrap_err();
        assert!(matches!(&err, ScheduleError::UnknownNickname(n) if n == "@reboot"));
        assert!(err.to_string().contains("@midnight"), "{err}");
        let err = Cron::parse("61 * * * *", "UTC").unwrap_err();
        assert!(matches!(err, ScheduleError::InvalidCron { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("invalid cron expression \"61 * * * *\": number out of bounds"),
            "{err}"
        );
        let err = Cron::parse("0 9 * * MONX", "UTC").unwrap_err();
        assert!(matches!(err, ScheduleError::InvalidCron { .. }), "{err:?}");
        let err = Cron::parse("0 0 30 2 *", "UTC").unwrap_err();
        assert!(matches!(err, ScheduleError::NeverDue(_)), "{err:?}");
    }

    #[test]
    fn explains_bad_time_zones() {
        let err = Cron::parse("@daily", "Europe/Berln").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown time zone \"Europe/Berln\"; use an IANA name such as Europe/Berlin"
        );
        let err = Cron::parse("@daily", "america/new_york").unwrap_err();
        assert!(
            err.to_string().ends_with("such as America/New_York"),
            "{err}"
        );
        let err = Cron::parse("@daily", "Mars/Olympus").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("such as Europe/Berlin or America/New_York"),
            "{err}"
        );
        assert_eq!(
            Cron::parse("@daily", " Asia/Tokyo ").unwrap().tz(),
            chrono_tz::Asia::Tokyo
        );
    }

    #[test]
    fn describes_itself() {
        let cron = Cron::parse("30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(cron.describe(), "At 02:30 (Europe/Berlin)");
        assert_eq!(cron.to_string(), "30 2 * * * (Europe/Berlin)");
    }

    // ---- daylight saving -----------------------------------------------------------------

    #[test]
    fn berlin_spring_forward_runs_a_missing_time_once_at_three() {
        // 2026-03-29 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist.
        let cron = Cron::parse("30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(on_local_day(&cron, 2026, 3, 29), [utc(2026, 3, 29, 1, 0)]);
        assert_eq!(on_local_day(&cron, 2026, 3, 28), [utc(2026, 3, 28, 1, 30)]);
        assert_eq!(on_local_day(&cron, 2026, 3, 30), [utc(2026, 3, 30, 0, 30)]);
    }

    #[test]
    fn berlin_fall_back_runs_a_repeated_time_once_at_its_first_showing() {
        // 2026-10-25 03:00 CEST goes back to 02:00 CET; 02:30 happens at 00:30 and 01:30 UTC.
        let cron = Cron::parse("30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            on_local_day(&cron, 2026, 10, 25),
            [utc(2026, 10, 25, 0, 30)]
        );
        // Asked from inside the second showing, it does not go back for it either.
        assert_eq!(
            cron.next_after(utc(2026, 10, 25, 1, 15)),
            Some(utc(2026, 10, 26, 1, 30))
        );
    }

    #[test]
    fn new_york_transitions_behave_the_same() {
        // 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT -> 01:00 EST.
        let spring = Cron::parse("30 2 * * *", "America/New_York").unwrap();
        assert_eq!(on_local_day(&spring, 2026, 3, 8), [utc(2026, 3, 8, 7, 0)]);
        let fall = Cron::parse("30 1 * * *", "America/New_York").unwrap();
        assert_eq!(on_local_day(&fall, 2026, 11, 1), [utc(2026, 11, 1, 5, 30)]);
    }

    #[test]
    fn a_list_of_hours_is_still_wall_clock() {
        // croner alone skips 02:30 in spring and runs it twice in autumn for this pattern.
        let cron = Cron::parse("30 2,14 * * *", "Europe/Berlin").unwrap();
        assert_eq!(
            on_local_day(&cron, 2026, 3, 29),
            [utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 12, 30)]
        );
        assert_eq!(
            on_local_day(&cron, 2026, 10, 25),
            [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 13, 30)]
        );
        // Two missing times on one day still make one run.
        let both = Cron::parse("0,30 2 * * *", "Europe/Berlin").unwrap();
        assert_eq!(on_local_day(&both, 2026, 3, 29), [utc(2026, 3, 29, 1, 0)]);
    }

    #[test]
    fn hourly_never_doubles_an_instant_nor_skips_a_real_hour() {
        for (tz, spring, fall) in [
            (
                "Europe/Berlin",
                utc(2026, 3, 28, 12, 0),
                utc(2026, 10, 24, 12, 0),
            ),
            (
                "America/New_York",
                utc(2026, 3, 7, 12, 0),
                utc(2026, 10, 31, 12, 0),
            ),
        ] {
            let cron = Cron::parse("0 * * * *", tz).unwrap();
            for from in [spring, fall] {
                let times = due_times(&cron, from, from + TimeDelta::days(2));
                assert_eq!(times.len(), 48, "{tz} from {from}");
                for pair in times.windows(2) {
                    assert_eq!(
                        pair[1] - pair[0],
                        TimeDelta::hours(1),
                        "{tz}: {} -> {}",
                        pair[0],
                        pair[1]
                    );
                }
            }
        }
    }

    #[test]
    fn intervals_follow_the_real_clock() {
        let cron = Cron::parse("*/15 * * * *", "Europe/Berlin").unwrap();
        for from in [utc(2026, 3, 28, 22, 0), utc(2026, 10, 24, 22, 0)] {
            let times = due_times(&cron, from, from + TimeDelta::hours(6));
            assert_eq!(times.len(), 24);
            assert!(times
                .windows(2)
                .all(|p| p[1] - p[0] == TimeDelta::minutes(15)));
        }
    }

    #[test]
    fn wall_clock_walk_agrees_with_croner_on_single_time_patterns() {
        // Where croner already gets daylight saving right (one minute and one hour), the
        // walk above must give exactly its answers, across a year of transitions.
        let zones = [
            "Europe/Berlin",
            "America/New_York",
            "Australia/Sydney",
            "Europe/London",
            "America/Santiago",
        ];
        let exprs = [
            "30 2 * * *",
            "0 3 * * *",
            "15 1 * * SUN",
            "0 0 1 * *",
            "45 23 * * *",
        ];
        for tz in zones {
            for expr in exprs {
                let cron = Cron::parse(expr, tz).unwrap();
                assert!(cron.wall_clock);
                let mut t = utc(2025, 12, 31, 0, 0);
                for _ in 0..400 {
                    let ours = cron.next_after(t).unwrap();
                    let theirs = cron
                        .pattern
                        .find_next_occurrence(&t.with_timezone(&cron.tz), false)
                        .unwrap()
                        .with_timezone(&Utc);
                    assert_eq!(ours, theirs, "{expr} in {tz} after {t}");
                    t = ours;
                }
            }
        }
    }
}
