//! The cron dialect's behaviour, pinned by exact fire times.

use chrono::{DateTime, SecondsFormat};
use watchpost_cron::{Schedule, Tz, parse_tz};

fn tz(name: &str) -> Tz {
    parse_tz(name).unwrap()
}

fn at(zone: &str, rfc3339: &str) -> DateTime<Tz> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&tz(zone))
}

fn next(expr: &str, zone: &str, after: &str, n: usize) -> Vec<String> {
    let schedule = Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    schedule
        .upcoming(&at(zone, after), n)
        .iter()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, false))
        .collect()
}

fn err(expr: &str) -> String {
    Schedule::parse(expr)
        .map(|_| panic!("{expr} should not parse"))
        .unwrap_err()
        .to_string()
}

const SH: &str = "Asia/Shanghai";

#[test]
fn seed_examples_in_shanghai() {
    let start = "2026-11-24T00:00:00+08:00"; // a Tuesday
    assert_eq!(
        next("*/5 * * * * * *", SH, start, 3),
        [
            "2026-11-24T00:00:05+08:00",
            "2026-11-24T00:00:10+08:00",
            "2026-11-24T00:00:15+08:00"
        ]
    );
    assert_eq!(
        next("0 0 2 1 * * *", SH, start, 3),
        [
            "2026-12-01T02:00:00+08:00",
            "2027-01-01T02:00:00+08:00",
            "2027-02-01T02:00:00+08:00"
        ]
    );
    assert_eq!(
        next("0 15 10 * * MON-FRI *", SH, start, 5),
        [
            "2026-11-24T10:15:00+08:00",
            "2026-11-25T10:15:00+08:00",
            "2026-11-26T10:15:00+08:00",
            "2026-11-27T10:15:00+08:00",
            "2026-11-30T10:15:00+08:00"
        ]
    );
    assert_eq!(
        next("0 0 10,14,16 * * * *", SH, start, 4),
        [
            "2026-11-24T10:00:00+08:00",
            "2026-11-24T14:00:00+08:00",
            "2026-11-24T16:00:00+08:00",
            "2026-11-25T10:00:00+08:00"
        ]
    );
    assert_eq!(
        next("0 */30 9-17 * * * *", SH, "2026-11-24T17:10:00+08:00", 3),
        [
            "2026-11-24T17:30:00+08:00",
            "2026-11-25T09:00:00+08:00",
            "2026-11-25T09:30:00+08:00"
        ]
    );
    assert_eq!(
        next("0 0 12 * * WED *", SH, start, 3),
        [
            "2026-11-25T12:00:00+08:00",
            "2026-12-02T12:00:00+08:00",
            "2026-12-09T12:00:00+08:00"
        ]
    );
}

#[test]
fn seed_examples_in_utc() {
    let start = "2026-11-24T00:00:00+00:00";
    assert_eq!(
        next("*/5 * * * * * *", "UTC", start, 2),
        ["2026-11-24T00:00:05+00:00", "2026-11-24T00:00:10+00:00"]
    );
    assert_eq!(
        next("0 0 2 1 * * *", "UTC", start, 1),
        ["2026-12-01T02:00:00+00:00"]
    );
    assert_eq!(
        next(
            "0 15 10 * * MON-FRI *",
            "UTC",
            "2026-11-27T11:00:00+00:00",
            2
        ),
        ["2026-11-30T10:15:00+00:00", "2026-12-01T10:15:00+00:00"]
    );
    assert_eq!(
        next("0 0 10,14,16 * * * *", "UTC", "2026-11-24T15:00:00Z", 2),
        ["2026-11-24T16:00:00+00:00", "2026-11-25T10:00:00+00:00"]
    );
    assert_eq!(
        next("0 */30 9-17 * * * *", "UTC", start, 2),
        ["2026-11-24T09:00:00+00:00", "2026-11-24T09:30:00+00:00"]
    );
    assert_eq!(
        next("0 0 12 * * WED *", "UTC", start, 1),
        ["2026-11-25T12:00:00+00:00"]
    );
    // The same instant seen from two zones: Shanghai's noon is UTC's 04:00.
    assert_eq!(
        next("0 0 12 * * * *", SH, "2026-11-24T00:00:00Z", 1),
        ["2026-11-24T12:00:00+08:00"]
    );
}

#[test]
fn day_and_week_both_restricted_are_ored() {
    // The 1st of the month OR any Monday.
    assert_eq!(
        next("0 0 12 1 * MON *", SH, "2026-11-24T00:00:00+08:00", 4),
        [
            "2026-11-30T12:00:00+08:00",
            "2026-12-01T12:00:00+08:00",
            "2026-12-07T12:00:00+08:00",
            "2026-12-14T12:00:00+08:00"
        ]
    );
    // `?` and `*` leave the other field in charge.
    assert_eq!(
        next("0 0 12 1 * ? *", SH, "2026-11-24T00:00:00+08:00", 1),
        ["2026-12-01T12:00:00+08:00"]
    );
    assert_eq!(
        next("0 0 12 ? * MON *", SH, "2026-11-24T00:00:00+08:00", 1),
        ["2026-11-30T12:00:00+08:00"]
    );
    // April has no 31st, but with a restricted week the OR still fires on Mondays.
    assert!(Schedule::parse("0 0 0 31 4 * *").unwrap().never_fires());
    assert!(!Schedule::parse("0 0 0 31 4 MON *").unwrap().never_fires());
}

#[test]
fn last_weekday_nth_and_nearest_weekday() {
    let start = "2026-11-24T00:00:00+08:00";
    assert_eq!(
        next("0 0 0 L * ? *", SH, start, 4),
        [
            "2026-11-30T00:00:00+08:00",
            "2026-12-31T00:00:00+08:00",
            "2027-01-31T00:00:00+08:00",
            "2027-02-28T00:00:00+08:00"
        ]
    );
    assert_eq!(
        next("0 0 0 L 2 ? *", SH, "2028-01-01T00:00:00+08:00", 1),
        [
            "2028-02-29T00:00:00+08:00" // leap year
        ]
    );
    // 2026-05-31 is a Sunday: the last weekday of May is Friday the 29th.
    assert_eq!(
        next("0 0 12 LW 5 ? *", SH, "2026-05-01T00:00:00+08:00", 1),
        ["2026-05-29T12:00:00+08:00"]
    );
    // 2026-11-15 is a Sunday → Monday the 16th; 2026-12-15 is a Tuesday → itself;
    // 2027-05-15 is a Saturday → Friday the 14th.
    assert_eq!(
        next("0 0 9 15W * ? *", SH, "2026-11-01T00:00:00+08:00", 2),
        ["2026-11-16T09:00:00+08:00", "2026-12-15T09:00:00+08:00"]
    );
    assert_eq!(
        next("0 0 9 15W 5 ? *", SH, "2027-01-01T00:00:00+08:00", 1),
        ["2027-05-14T09:00:00+08:00"]
    );
    // The first Monday of each month.
    assert_eq!(
        next("0 0 12 ? * MON#1 *", SH, start, 3),
        [
            "2026-12-07T12:00:00+08:00",
            "2027-01-04T12:00:00+08:00",
            "2027-02-01T12:00:00+08:00"
        ]
    );
    // The last Friday of each month.
    assert_eq!(
        next("0 0 12 ? * 5L *", SH, start, 3),
        [
            "2026-11-27T12:00:00+08:00",
            "2026-12-25T12:00:00+08:00",
            "2027-01-29T12:00:00+08:00"
        ]
    );
}

#[test]
fn leap_years_and_the_year_field() {
    assert_eq!(
        next("0 0 0 29 2 * *", "UTC", "2026-01-01T00:00:00Z", 2),
        ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]
    );
    assert_eq!(
        next("0 0 0 1 1 * 2030", "UTC", "2026-01-01T00:00:00Z", 3),
        ["2030-01-01T00:00:00+00:00"]
    );
    assert_eq!(
        next("0 0 0 1 1 * 2098-2099", "UTC", "2026-01-01T00:00:00Z", 3),
        ["2098-01-01T00:00:00+00:00", "2099-01-01T00:00:00+00:00"]
    );
    // A year that has passed: nothing after now, but it did fire once, so not "never".
    let past = Schedule::parse("0 0 0 1 1 * 2020").unwrap();
    assert!(
        past.next_after(&at("UTC", "2026-01-01T00:00:00Z"))
            .is_none()
    );
    assert!(!past.never_fires());
    // ...and when it last fired can be told, in the zone asked.
    assert_eq!(
        past.previous_before(&at("Asia/Shanghai", "2026-01-01T00:00:00Z"))
            .unwrap()
            .to_rfc3339(),
        "2020-01-01T00:00:00+08:00"
    );
    assert!(
        Schedule::parse("0 0 0 30 2 * *")
            .unwrap()
            .previous_before(&at("UTC", "2026-01-01T00:00:00Z"))
            .is_none()
    );
    assert!(err("0 0 0 1 1 * 2100").contains("year: 2100 is out of range 1970-2099"));
    assert!(err("0 0 0 1 1 * 1969").contains("year: 1969 is out of range 1970-2099"));
}

#[test]
fn five_and_six_field_forms_names_and_sundays() {
    let start = "2026-11-24T00:00:00+08:00";
    assert_eq!(
        next("15 10 * * MON-FRI", SH, start, 2),
        next("0 15 10 * * MON-FRI *", SH, start, 2)
    );
    assert_eq!(
        next("30 15 10 * * MON-FRI", SH, start, 1),
        ["2026-11-24T10:15:30+08:00"]
    );
    // Names in any case.
    assert_eq!(
        next("0 0 12 * jan,Feb mon *", SH, start, 2),
        ["2027-01-04T12:00:00+08:00", "2027-01-11T12:00:00+08:00"]
    );
    // Sunday is 0, 7 and SUN.
    let sunday = ["2026-11-29T12:00:00+08:00"];
    for week in ["0", "7", "SUN", "sun"] {
        assert_eq!(
            next(&format!("0 0 12 * * {week} *"), SH, start, 1),
            sunday,
            "{week}"
        );
    }
    assert_eq!(
        next("0 0 12 * * 5-7 *", SH, start, 3),
        [
            "2026-11-27T12:00:00+08:00",
            "2026-11-28T12:00:00+08:00",
            "2026-11-29T12:00:00+08:00"
        ]
    );
}

#[test]
fn step_from_a_value_and_shortcuts() {
    assert_eq!(
        next("5/15 * * * * * *", "UTC", "2026-11-24T00:00:00Z", 5),
        [
            "2026-11-24T00:00:05+00:00",
            "2026-11-24T00:00:20+00:00",
            "2026-11-24T00:00:35+00:00",
            "2026-11-24T00:00:50+00:00",
            "2026-11-24T00:01:05+00:00"
        ]
    );
    assert_eq!(
        next("0 10-40/15 * * * * *", "UTC", "2026-11-24T00:00:00Z", 4),
        [
            "2026-11-24T00:10:00+00:00",
            "2026-11-24T00:25:00+00:00",
            "2026-11-24T00:40:00+00:00",
            "2026-11-24T01:10:00+00:00"
        ]
    );
    assert_eq!(
        next("@every 30s", "UTC", "2026-11-24T00:00:10Z", 3),
        [
            "2026-11-24T00:00:30+00:00",
            "2026-11-24T00:01:00+00:00",
            "2026-11-24T00:01:30+00:00"
        ]
    );
    assert_eq!(
        next("@hourly", SH, "2026-11-24T00:10:00+08:00", 1),
        ["2026-11-24T01:00:00+08:00"]
    );
    assert_eq!(
        next("@daily", SH, "2026-11-24T00:10:00+08:00", 1),
        ["2026-11-25T00:00:00+08:00"]
    );
    assert_eq!(
        next("@weekly", SH, "2026-11-24T00:10:00+08:00", 1),
        ["2026-11-29T00:00:00+08:00"]
    );
    assert_eq!(
        next("@monthly", SH, "2026-11-24T00:10:00+08:00", 1),
        ["2026-12-01T00:00:00+08:00"]
    );
    assert_eq!(
        next("@yearly", SH, "2026-11-24T00:10:00+08:00", 1),
        ["2027-01-01T00:00:00+08:00"]
    );
    assert_eq!(
        Schedule::parse("@every 1m30s")
            .map(|_| ())
            .unwrap_err()
            .field,
        None
    );
}

#[test]
fn dst_gap_and_overlap_in_new_york() {
    let ny = "America/New_York";
    // Spring forward 2026-03-08: 02:00 EST becomes 03:00 EDT. 02:30 doesn't exist that day:
    // the job runs once at the first valid instant after it, then at 02:30 again.
    assert_eq!(
        next("0 30 2 * * * *", ny, "2026-03-07T12:00:00-05:00", 2),
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
    );
    // Fall back 2026-11-01: 01:00-02:00 happens twice; a fixed-time job runs once.
    assert_eq!(
        next("0 30 1 * * * *", ny, "2026-10-31T12:00:00-04:00", 2),
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
    );
    // Stepping jobs follow real elapsed time: both 01:00 and 01:30 of the repeated hour...
    assert_eq!(
        next("0 */30 * * * * *", ny, "2026-11-01T00:10:00-04:00", 6),
        [
            "2026-11-01T00:30:00-04:00",
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T02:00:00-05:00"
        ]
    );
    // ...and nothing in the missing hour.
    assert_eq!(
        next("0 */30 * * * * *", ny, "2026-03-08T01:10:00-05:00", 3),
        [
            "2026-03-08T01:30:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T03:30:00-04:00"
        ]
    );
}

#[test]
fn dst_gap_and_overlap_in_berlin() {
    let berlin = "Europe/Berlin";
    // 2026-03-29: 02:00 CET → 03:00 CEST.
    assert_eq!(
        next("0 30 2 * * * *", berlin, "2026-03-28T12:00:00+01:00", 2),
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    );
    // 2026-10-25: 03:00 CEST → 02:00 CET; 02:30 happens twice, the job runs once.
    assert_eq!(
        next("0 30 2 * * * *", berlin, "2026-10-24T12:00:00+02:00", 2),
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    );
    // Every 20 minutes across the repeated hour: real elapsed time, 20 minutes apart.
    let times = Schedule::parse("0 */20 * * * * *")
        .unwrap()
        .upcoming(&at(berlin, "2026-10-25T01:50:00+02:00"), 8);
    for pair in times.windows(2) {
        assert_eq!((pair[1] - pair[0]).num_minutes(), 20);
    }
}

#[test]
fn never_firing_expressions_are_reported_quickly() {
    for expr in ["0 0 0 30 2 * *", "0 0 0 31 11 ? *", "0 0 0 31 2,4,6 * *"] {
        let started = std::time::Instant::now();
        let s = Schedule::parse(expr).unwrap();
        assert!(s.never_fires(), "{expr}");
        assert!(s.next_after(&at("UTC", "2026-01-01T00:00:00Z")).is_none());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{expr} took too long"
        );
    }
    assert!(!Schedule::parse("0 0 0 31 * * *").unwrap().never_fires());
}

#[test]
fn malformed_expressions_name_field_value_and_range() {
    assert_eq!(
        err("0 0 12 * * 8 *"),
        "week: 8 is out of range 0-7 in \"0 0 12 * * 8 *\""
    );
    let cases = [
        ("60 * * * * * *", "second: 60 is out of range 0-59"),
        ("0 60 * * * * *", "minute: 60 is out of range 0-59"),
        ("0 0 24 * * * *", "hour: 24 is out of range 0-23"),
        ("0 0 0 32 * * *", "day: 32 is out of range 1-31"),
        ("0 0 0 0 * * *", "day: 0 is out of range 1-31"),
        ("0 0 0 * 13 * *", "month: 13 is out of range 1-12"),
        (
            "0 0 0 * FOO * *",
            "month: \"FOO\" is not a number or a name (JAN-DEC)",
        ),
        (
            "0 0 0 * * FUNDAY *",
            "week: \"FUNDAY\" is not a number or a name (SUN-SAT)",
        ),
        ("0 0 0 1 1 * 2100", "year: 2100 is out of range 1970-2099"),
        ("*/0 * * * * * *", "second: step 0"),
        (
            "*/61 * * * * * *",
            "second: step 61 in */61 is larger than the range 0-59",
        ),
        ("0 0 5-2 * * * *", "hour: range 5-2 in 5-2 runs backwards"),
        ("0 ? * * * * *", "minute: ? is only allowed in day and week"),
        ("0 0 L * * * *", "hour: L: L is only allowed in day"),
        ("0 0 0 1#2 * * *", "day: "),
        ("0 0 0 ? * MON#6 *", "week: 6 is out of range 1-5 after #"),
        ("0 0 0 ? * L *", "week: L in week needs a day"),
        ("0 0 0 1,,2 * * *", "day: empty item"),
        ("a * * * * * *", "second: \"a\" is not a number"),
        (
            "* * * *",
            "expected 7 fields (sec min hour day month week year), 6 or 5, got 4",
        ),
        ("* * * * * * * *", "got 8"),
        ("", "empty expression"),
        ("@sometimes", "unknown shortcut @sometimes"),
        ("@every soon", "@every: "),
        ("@every 500ms", "at least 1s"),
        ("@daily 5", "@daily takes no argument"),
    ];
    for (expr, needle) in cases {
        let e = err(expr);
        assert!(e.contains(needle), "{expr:?}: got {e:?}, want {needle:?}");
        assert!(e.ends_with(&format!("in {expr:?}")), "{e}");
    }
}

#[test]
fn descriptions() {
    let d = |e: &str| Schedule::parse(e).unwrap().describe();
    assert_eq!(d("*/5 * * * * * *"), "every 5 seconds");
    assert_eq!(d("* * * * * * *"), "every second");
    assert_eq!(
        d("0 15 10 * * MON-FRI *"),
        "at 10:15:00 on Monday through Friday"
    );
    assert_eq!(d("0 0 2 1 * * *"), "at 02:00:00 on day 1 of the month");
    assert_eq!(
        d("0 0 10,14,16 * * * *"),
        "at 10:00:00, 14:00:00 and 16:00:00 every day"
    );
    assert_eq!(
        d("0 */30 9-17 * * * *"),
        "every 30 minutes from 09:00 to 17:59"
    );
    assert_eq!(d("0 0 12 * * WED *"), "at 12:00:00 on Wednesday");
    assert_eq!(
        d("0 0 12 1 * MON *"),
        "at 12:00:00 on day 1 of the month or on Monday"
    );
    assert_eq!(d("@every 30s"), "every 30 seconds");
    assert_eq!(d("@every 5m"), "every 5 minutes");
    assert_eq!(d("@daily"), "at 00:00:00 every day");
    assert_eq!(
        d("0 0 12 ? * 5L *"),
        "at 12:00, on the last Friday of the month"
    );
}

#[test]
fn every_previous_and_the_longest_period() {
    let every = Schedule::parse("@every 30s").unwrap();
    assert_eq!(
        every
            .previous_before(&at("UTC", "2026-11-24T00:00:10Z"))
            .unwrap()
            .to_rfc3339(),
        "2026-11-24T00:00:00+00:00"
    );
    assert_eq!(
        every
            .previous_before(&at("UTC", "2026-11-24T00:00:30Z"))
            .unwrap()
            .to_rfc3339(),
        "2026-11-24T00:00:00+00:00",
        "strictly before"
    );
    // The longest period accepted: its fire times are still computed without overflow.
    let decade = Schedule::parse("@every 3650d").unwrap();
    let next = decade
        .next_after(&at("UTC", "2026-11-24T00:00:00Z"))
        .unwrap();
    assert_eq!(
        next.to_rfc3339(),
        "2029-12-17T00:00:00+00:00",
        "6 × 3650 days after the epoch"
    );
    assert_eq!(
        decade.upcoming(&at("UTC", "2026-11-24T00:00:00Z"), 3).len(),
        3
    );
    // Near the end of what an instant in nanoseconds can hold: no next time, no panic.
    assert!(
        decade
            .next_after(&at("UTC", "2262-01-01T00:00:00Z"))
            .is_none()
    );
    assert!(
        Schedule::parse("@every 99999999999999999999999d")
            .unwrap_err()
            .to_string()
            .contains("longer than the maximum, 3650d (10 years)")
    );
}

#[test]
fn instants_at_the_ends_of_time_do_not_panic() {
    use chrono::Utc;
    let daily = Schedule::parse("0 0 0 * * * *").unwrap();
    let first = DateTime::<Utc>::MIN_UTC.with_timezone(&tz("Asia/Shanghai"));
    assert_eq!(
        daily.next_after(&first).unwrap().to_rfc3339(),
        "1970-01-01T00:00:00+08:00"
    );
    assert!(daily.previous_before(&first).is_none());
    let last = DateTime::<Utc>::MAX_UTC.with_timezone(&tz("America/New_York"));
    assert!(daily.next_after(&last).is_none());
    assert_eq!(
        daily.previous_before(&last).unwrap().to_rfc3339(),
        "2099-12-31T00:00:00-05:00"
    );
    assert!(daily.upcoming(&last, 3).is_empty());
    // Asking for more times than exist gets the ones there are, without reserving room for
    // the count asked.
    let once = Schedule::parse("0 0 0 1 1 * 2099").unwrap();
    assert_eq!(once.upcoming(&first, usize::MAX).len(), 1);
}
