//! Property tests: any text given to `Schedule::parse` is a schedule or an error, never a
//! panic; and on whatever parses, `next_after`, `previous_before`, `upcoming` and
//! `never_fires` answer (without a panic) from any instant chrono can represent.

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use watchpost_cron::{Schedule, Tz};

const ZONES: [Tz; 5] = [
    Tz::UTC,
    Tz::Asia__Shanghai,
    Tz::America__New_York,
    Tz::Australia__Lord_Howe,
    Tz::Pacific__Chatham,
];

/// One field item: numbers in and out of range, names, specials, ranges, steps.
fn item() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        Just("?".to_string()),
        Just("L".to_string()),
        Just("LW".to_string()),
        prop::sample::select(vec![
            "MON", "sun", "JAN", "dec", "FRI-MON", "MON#2", "5L", "15W"
        ])
        .prop_map(str::to_string),
        (0u32..3000).prop_map(|n| n.to_string()),
        (0u32..80, 0u32..80).prop_map(|(a, b)| format!("{a}-{b}")),
        (0u32..80, 0u32..80).prop_map(|(a, b)| format!("{a}/{b}")),
        (0u32..2100, 0u32..2100, 0u32..70).prop_map(|(a, b, c)| format!("{a}-{b}/{c}")),
        "[0-9A-Z*/,#?LW-]{1,6}",
    ]
}

fn field() -> impl Strategy<Value = String> {
    prop::collection::vec(item(), 1..3).prop_map(|items| items.join(","))
}

/// A field that is usually valid for the range `lo..=hi`, sometimes just outside it.
fn valid_field(lo: u32, hi: u32, specials: &'static [&'static str]) -> BoxedStrategy<String> {
    let n = move || lo.saturating_sub(1)..=hi + 1;
    prop_oneof![
        4 => Just("*".to_string()),
        3 => n().prop_map(|a| a.to_string()),
        2 => (n(), n()).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        2 => (n(), 1..=(hi - lo + 1)).prop_map(|(a, s)| format!("{a}/{s}")),
        1 => (n(), n(), 1..5u32).prop_map(|(a, b, s)| format!("{a},{b}/{s}")),
        1 => prop::sample::select(specials).prop_map(str::to_string),
    ]
    .boxed()
}

fn seven_fields() -> impl Strategy<Value = String> {
    (
        valid_field(0, 59, &["*/7"]),
        valid_field(0, 59, &["*/15"]),
        valid_field(0, 23, &["*/6"]),
        valid_field(1, 31, &["?", "L", "LW", "15W", "1W", "31W"]),
        valid_field(1, 12, &["JAN", "feb-apr", "DEC", "2,4,6"]),
        valid_field(
            0,
            7,
            &["?", "MON", "sun", "FRI-MON", "MON#2", "5#5", "5L", "0L"],
        ),
        valid_field(1970, 2099, &["2020", "2030-2031", "2099"]),
    )
        .prop_map(|(a, b, c, d, e, f, g)| format!("{a} {b} {c} {d} {e} {f} {g}"))
}

fn cron_like() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::collection::vec(field(), 0..9).prop_map(|f| f.join(" ")),
        4 => seven_fields(),
        // Five and six fields: the same, shortened.
        1 => seven_fields().prop_map(|s| s.split(' ').skip(1).take(5).collect::<Vec<_>>().join(" ")),
        1 => seven_fields().prop_map(|s| s.split(' ').take(6).collect::<Vec<_>>().join(" ")),
        1 => (
            prop::sample::select(vec!["@every ", "@EVERY ", "@daily", "@hourly ", "@yearly x", "@", "@every"]),
            "[0-9]{0,25}(\\.[0-9]{0,3})?(us|ms|s|m|h|d|x)?",
        )
            .prop_map(|(a, b)| format!("{a}{b}")),
    ]
}

/// Any instant chrono can hold, weighted towards the years cron cares about.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let min = DateTime::<Utc>::MIN_UTC.timestamp();
    let max = DateTime::<Utc>::MAX_UTC.timestamp();
    prop_oneof![
        3 => 0i64..4_200_000_000,
        1 => min..=max,
        1 => prop::sample::select(vec![min, max, 0, -1, 9_223_372_036, 4_102_444_800]),
    ]
    .prop_map(|secs| Utc.timestamp_opt(secs, 0).single().unwrap())
}

fn exercise(s: &Schedule, at: DateTime<Utc>, zone: Tz) -> Result<(), TestCaseError> {
    let local = at.with_timezone(&zone);
    if let Some(next) = s.next_after(&local) {
        prop_assert!(next > local, "{} next {next} after {local}", s.source());
    }
    if let Some(previous) = s.previous_before(&local) {
        prop_assert!(
            previous < local,
            "{} previous {previous} before {local}",
            s.source()
        );
    }
    let upcoming = s.upcoming(&local, 3);
    prop_assert!(upcoming.windows(2).all(|w| w[0] < w[1]));
    let _ = s.never_fires();
    let _ = s.describe();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_text_parses_or_errs(text in any::<String>()) {
        if let Ok(s) = Schedule::parse(&text) {
            exercise(&s, Utc.timestamp_opt(1_790_000_000, 0).unwrap(), Tz::UTC)?;
        }
    }

    #[test]
    fn cron_like_text_never_panics(
        text in cron_like(),
        at in instant(),
        zone in prop::sample::select(ZONES.to_vec()),
    ) {
        match Schedule::parse(&text) {
            Ok(s) => exercise(&s, at, zone)?,
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
