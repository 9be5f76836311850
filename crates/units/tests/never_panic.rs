//! Property tests: the duration and size parsers answer every text with a value or an error,
//! never a panic, and never accept more than their documented maximum.

use proptest::prelude::*;
use watchpost_units::{MAX_DURATION, MAX_SIZE, parse_duration, parse_size};

/// Text shaped like a duration or size: a sign, digits with dots, maybe an exponent, a unit.
fn number_like() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["", "-", "+", " "]),
        "[0-9]{0,30}",
        prop::sample::select(vec!["", ".", ".5", "..", "e400", "e-9"]),
        "[0-9]{0,5}",
        prop::sample::select(vec![
            "", "us", "µs", "ms", "s", "m", "h", "d", "B", "KB", "MiB", "GiB", "TiB", "TB", "x",
            " d", "NaN", "inf",
        ]),
    )
        .prop_map(|(sign, a, mid, b, unit)| format!("{sign}{a}{mid}{b}{unit}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn durations_never_panic(text in any::<String>()) {
        if let Ok(d) = parse_duration(&text) {
            prop_assert!(d <= MAX_DURATION);
        }
    }

    #[test]
    fn duration_like_text_never_panics(text in number_like()) {
        match parse_duration(&text) {
            Ok(d) => prop_assert!(d <= MAX_DURATION, "{text:?} gave {d:?}"),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn sizes_never_panic(text in any::<String>()) {
        if let Ok(n) = parse_size(&text) {
            prop_assert!(n <= MAX_SIZE);
        }
    }

    #[test]
    fn size_like_text_never_panics(text in number_like()) {
        match parse_size(&text) {
            Ok(n) => prop_assert!(n <= MAX_SIZE, "{text:?} gave {n}"),
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn whole_days_up_to_the_maximum_parse_exactly(days in 0u64..=3650) {
        let d = parse_duration(&format!("{days}d")).unwrap();
        prop_assert_eq!(d.as_secs(), days * 86_400);
    }
}
