//! Properties the `cron` fuzz target checks (issue 14), shared with the corpus replay test below
//! so every input the fuzzer kept is re-checked by `cargo test` on stable. See `fuzz/README.md`.
//!
//! Input layout: byte 0 picks the instant to search from; the rest is the expression, then
//! (after the first newline) the time zone, `UTC` when absent.

use chrono::{DateTime, TimeDelta};

use crate::Cron;

/// Instants to search from: ordinary ones and both of Europe/Berlin's 2026 clock changes.
const FROM: [i64; 6] = [
    0,
    1_774_735_200, // 2026-03-28T22:00:00Z, the night Berlin springs forward
    1_792_886_400, // 2026-10-24T22:00:00Z, the night Berlin falls back
    1_798_761_599, // 2026-12-31T23:59:59Z
    951_782_400,   // 2000-02-29T00:00:00Z
    4_102_444_800, // 2100-01-01T00:00:00Z
];

/// A parsed expression is due strictly after the instant asked about, its next time is the
/// same from any instant before it, a time's successor is later still, and the expression as
/// kept parses again to the same schedule. Any input gives an error or a schedule, never a panic.
pub fn cron(data: &[u8]) {
    let from = FROM[data.first().copied().unwrap_or(0) as usize % FROM.len()];
    let text = String::from_utf8_lossy(data.get(1..).unwrap_or_default());
    let (expr, tz) = text.split_once('\n').unwrap_or((&text, "UTC"));
    let cron = match Cron::parse(expr, tz) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = (cron.describe(), cron.to_string());
    let again = Cron::parse(cron.expr(), tz).expect("the kept expression parses again");
    let t = DateTime::from_timestamp(from, 0).expect("in range");
    let Some(next) = cron.next_after(t) else {
        return;
    };
    assert!(next > t, "{expr:?} in {tz}: next after {t} is {next}");
    assert_eq!(again.next_after(t), Some(next), "re-parsed {expr:?}");
    for later in [next - TimeDelta::seconds(1), t + (next - t) / 2] {
        let later = DateTime::from_timestamp(later.timestamp(), 0).expect("in range");
        if later >= t {
            assert_eq!(
                cron.next_after(later),
                Some(next),
                "{expr:?} in {tz}: from {t} the next is {next}, but not from {later}"
            );
        }
    }
    if let Some(after) = cron.next_after(next) {
        assert!(after > next, "{expr:?} in {tz}: after {next} comes {after}");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cron_corpus_replays() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/cron");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("the corpus folder exists") {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let r = std::panic::catch_unwind(|| super::cron(&data));
            assert!(r.is_ok(), "corpus file {} fails", path.display());
            n += 1;
        }
        assert!(n > 0, "{} is empty", dir.display());
    }
}
