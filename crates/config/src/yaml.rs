//! serde-saphyr's errors in watchpost's words. The library's own texts are written for the
//! programmer calling it ("set DuplicateKeyPolicy in Options", "budget breached: Nodes { .. }",
//! "expected u32", "struct RawMonitor"); a person editing `watchpost.yaml` gets what went wrong
//! in terms of the file instead. The position is reported separately (FILE:LINE:COL).

use serde_saphyr::Error;
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::options::AliasLimits;
use std::borrow::Cow;

/// The message for a YAML error, without position or snippet.
pub(crate) fn message(err: &Error) -> String {
    let limits = serde_saphyr::Budget::default();
    let aliases = AliasLimits::default();
    let too_large =
        |limit: String| format!("the file is too large or too deeply nested (limit: {limit})");
    match err {
        Error::WithSnippet { error, .. } => message(error),
        Error::AliasError { error, .. } => message(error),
        Error::DuplicateMappingKey { key: Some(k), .. } => format!("duplicate key {k:?}"),
        Error::DuplicateMappingKey { key: None, .. } => "duplicate key".into(),
        Error::Budget { breach, .. } => match breach {
            BudgetBreach::Nodes { .. } => too_large(format!("{} nodes", limits.max_nodes)),
            BudgetBreach::Events { .. } => too_large(format!("{} YAML events", limits.max_events)),
            BudgetBreach::Depth { .. } => too_large(format!("{} levels", limits.max_depth)),
            BudgetBreach::ScalarBytes { .. } => {
                too_large(format!("{} bytes of values", limits.max_total_scalar_bytes))
            }
            BudgetBreach::InputBytes { .. } => too_large(format!(
                "{} bytes",
                limits.max_reader_input_bytes.unwrap_or(usize::MAX)
            )),
            BudgetBreach::Documents { .. } => {
                "only one YAML document is allowed in the config (remove the `---` lines)".into()
            }
            BudgetBreach::Aliases { .. }
            | BudgetBreach::Anchors { .. }
            | BudgetBreach::AliasAnchorRatio { .. }
            | BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. } => {
                "too many anchors (&name) or aliases (*name): the file expands to too much".into()
            }
            BudgetBreach::MergeKeys { .. } => {
                too_large(format!("{} merge keys (<<)", limits.max_merge_keys))
            }
            BudgetBreach::SequenceUnbalanced => {
                "a list or mapping ends that was never started".into()
            }
            _ => too_large("the YAML reader's budget".into()),
        },
        Error::AliasReplayCounterOverflow { .. }
        | Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. } => format!(
            "aliases (*name) expand to too much (limit: {} YAML events)",
            aliases.max_total_replayed_events
        ),
        Error::AliasReplayStackDepthExceeded { .. } => format!(
            "aliases (*name) nest too deeply (limit: {} levels)",
            aliases.max_replay_stack_depth
        ),
        Error::RecursiveReferencesRequireWeakTypes { .. } => {
            "an alias (*name) refers to the mapping or list that contains it".into()
        }
        Error::UnknownAnchor { .. } => {
            "an alias (*name) refers to an unknown anchor (&name)".into()
        }
        Error::MultipleDocuments { .. } => {
            "only one YAML document is allowed in the config (remove the `---` lines)".into()
        }
        Error::Eof { .. } => "the file ends in the middle of a value".into(),
        Error::InvalidUtf8Input => "the file is not valid UTF-8 text".into(),
        Error::IOError { cause } => format!("cannot read the config: {cause}"),
        Error::NullIntoString { .. } | Error::InvalidCharNull { .. } => {
            "a value is missing here (it is empty or null)".into()
        }
        Error::InvalidBooleanStrict { .. } => "expected true or false".into(),
        Error::InvalidCharNotSingleScalar { .. } => "expected a single character".into(),
        Error::InvalidScalar { ty, .. } => format!("expected {}", expected(ty)),
        Error::NonFiniteFloat { value, .. } => format!("{value} is not a finite number"),
        Error::BinaryNotUtf8 { .. } => "a !!binary value is not UTF-8 text".into(),
        Error::InvalidBinaryBase64 { .. } => "a !!binary value is not valid base64".into(),
        Error::BytesNotSupportedMissingBinaryTag { .. }
        | Error::TaggedScalarCannotDeserializeIntoString { .. }
        | Error::CannotBorrowTransformedString { .. } => "this value can't be used here".into(),
        Error::UnsupportedTag { tag, .. } | Error::TaggedStructFieldName { tag, .. } => {
            format!("the YAML tag {tag:?} is not supported here")
        }
        Error::MergeValueNotMapOrSeqOfMaps { .. } => {
            "a merge (<<) takes a mapping or a list of mappings".into()
        }
        Error::MergeKeyNotAllowed { .. } => "merge keys (<<) are not allowed here".into(),
        Error::IndentationError { .. } | Error::FoldedBlockScalarMustIndentContent { .. } => {
            "wrong indentation".into()
        }
        Error::QuotingRequired { value, .. } => format!("quote {value:?} to use it as text"),
        Error::SerdeInvalidType {
            unexpected,
            expected: want,
            ..
        }
        | Error::SerdeInvalidValue {
            unexpected,
            expected: want,
            ..
        } => format!("expected {}, found {}", expected(want), found(unexpected)),
        Error::SerdeInvalidLength {
            len,
            expected: want,
            ..
        } => {
            format!("expected {}, found {len} item(s)", expected(want))
        }
        Error::SerdeUnknownVariant {
            variant,
            expected: known,
            ..
        } => format!("unknown value {variant:?} (one of: {})", known.join(", ")),
        Error::SerdeUnknownField {
            field,
            expected: known,
            ..
        } => format!("unknown field `{field}` (known: {})", known.join(", ")),
        Error::SerdeMissingField { field, .. } => format!("missing field `{field}`"),
        Error::Unexpected { expected: want, .. } => format!("expected {}", expected(want)),
        Error::UnexpectedSequenceEnd { .. }
        | Error::UnexpectedMappingEnd { .. }
        | Error::UnexpectedContainerEndWhileSkippingNode { .. }
        | Error::UnexpectedContainerEndWhileReadingKeyNode { .. }
        | Error::ContainerEndMismatch { .. }
        | Error::ExpectedMappingEndAfterEnumVariantValue { .. } => {
            "a list or mapping ends where a value was expected".into()
        }
        Error::UnexpectedValueForUnit { .. }
        | Error::ExpectedEmptyMappingForUnitStruct { .. }
        | Error::UnexpectedValueForUnitEnumVariant { .. } => "no value is expected here".into(),
        Error::ExpectedStringKeyForExternallyTaggedEnum { .. }
        | Error::ExternallyTaggedEnumExpectedScalarOrMapping { .. }
        | Error::TaggedEnumMismatch { .. }
        | Error::SerdeVariantId { .. } => "this value is not one of the names allowed here".into(),
        Error::InternalSeedReusedForMapKey { .. }
        | Error::ValueRequestedBeforeKey { .. }
        | Error::InternalDepthUnderflow { .. }
        | Error::InternalRecursionStackEmpty { .. }
        | Error::InvalidOptions { .. } => "the YAML could not be read here".into(),
        Error::CyclicInclude { .. }
        | Error::UnsupportedIncludeForm { .. }
        | Error::ResolverError { .. } => "!include is not supported in the config".into(),
        Error::UnresolvedProperty { .. }
        | Error::InvalidPropertyName { .. }
        | Error::PropertyRequiredButUnset { .. }
        | Error::PropertyRequiredButEmpty { .. }
        | Error::HookError { .. } => "the YAML could not be read here".into(),
        // Free text from serde or the YAML parser (`did not find expected ','`): already about
        // the file. Anything else, in its user-facing wording.
        Error::Message { msg, .. } | Error::ExternalMessage { msg, .. } => first_line(msg),
        other => first_line(&other.render_with_formatter(&serde_saphyr::UserMessageFormatter)),
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("invalid YAML").trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    // "line 2 column 1: unknown field ..." → "unknown field ..."
    match line.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => {
            rest.to_string()
        }
        _ => line.to_string(),
    }
}

/// What serde says a field expects (`u32`, `struct RawMonitor`, `a sequence`) in the file's
/// terms.
fn expected(what: &str) -> Cow<'_, str> {
    let what = what.trim();
    // The parser's event names: "sequence start", "mapping start", "string scalar".
    let what = what
        .strip_suffix(" start")
        .or_else(|| what.strip_suffix(" scalar"))
        .unwrap_or(what);
    if let Some(list) = what.strip_prefix("one of ") {
        return Cow::Owned(format!("one of {list}"));
    }
    Cow::Borrowed(match what {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "bool" | "boolean" | "a boolean" => "true or false",
        "char" => "a single character",
        "a string" | "string" | "str" => "text",
        "a sequence" | "sequence" => "a list",
        "a map" | "map" | "a mapping" | "mapping" => "a mapping (key: value)",
        "any valid JSON value" => "a value",
        w if w.starts_with("struct ") || w.starts_with("a mapping of") => "a mapping (key: value)",
        w if w.starts_with("enum ") || w.contains("variant") => "one of the names allowed here",
        w => return Cow::Owned(w.to_string()),
    })
}

/// What serde says it found (`string "x"`, `integer `5``, `map`) in the file's terms.
fn found(what: &str) -> Cow<'_, str> {
    let what = what.trim();
    Cow::Borrowed(match what {
        "map" => "a mapping",
        "sequence" => "a list",
        "unit value" | "unit" | "null" => "nothing (null)",
        "newtype struct" | "tuple" | "tuple struct" | "struct variant" | "tuple variant"
        | "newtype variant" | "unit variant" | "enum" => "a different kind of value",
        w => {
            if let Some(rest) = w.strip_prefix("integer ") {
                return Cow::Owned(format!("the number {}", rest.trim_matches('`')));
            }
            if let Some(rest) = w.strip_prefix("floating point ") {
                return Cow::Owned(format!("the number {}", rest.trim_matches('`')));
            }
            if let Some(rest) = w.strip_prefix("boolean ") {
                return Cow::Owned(rest.trim_matches('`').to_string());
            }
            if let Some(rest) = w.strip_prefix("string ") {
                return Cow::Owned(format!("the text {rest}"));
            }
            return Cow::Owned(w.to_string());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_saphyr::Location;

    /// Texts that show a library's internals rather than the file's content.
    const INTERNALS: [&str; 12] = [
        "Options",
        "Policy",
        "budget",
        "{ ",
        "u32",
        "struct ",
        "enum ",
        "internal",
        "Cow<",
        "String",
        "deserialize",
        "serde",
    ];

    fn clean(text: &str) {
        for word in INTERNALS {
            assert!(!text.contains(word), "{word:?} in {text:?}");
        }
        assert!(!text.is_empty());
        assert_eq!(text.lines().count(), 1, "{text:?}");
    }

    #[test]
    fn variants_without_text_from_the_file_read_clean() {
        let at = Location::UNKNOWN;
        let cases = [
            Error::DuplicateMappingKey {
                key: None,
                location: at,
            },
            Error::Budget {
                breach: BudgetBreach::Nodes { nodes: 250_001 },
                location: at,
            },
            Error::Budget {
                breach: BudgetBreach::Depth { depth: 65 },
                location: at,
            },
            Error::Budget {
                breach: BudgetBreach::Events { events: 1 },
                location: at,
            },
            Error::Budget {
                breach: BudgetBreach::Aliases { aliases: 1 },
                location: at,
            },
            Error::Budget {
                breach: BudgetBreach::SequenceUnbalanced,
                location: at,
            },
            Error::Budget {
                breach: BudgetBreach::ScalarBytes {
                    total_scalar_bytes: 1,
                },
                location: at,
            },
            Error::Budget {
                breach: BudgetBreach::Documents { documents: 2 },
                location: at,
            },
            Error::AliasReplayCounterOverflow { location: at },
            Error::AliasReplayStackDepthExceeded {
                depth: 65,
                max_depth: 64,
                location: at,
            },
            Error::InternalSeedReusedForMapKey { location: at },
            Error::InternalDepthUnderflow { location: at },
            Error::ValueRequestedBeforeKey { location: at },
            Error::BinaryNotUtf8 { location: at },
            Error::NullIntoString { location: at },
            Error::CannotBorrowTransformedString {
                reason: serde_saphyr::TransformReason::EscapeSequence,
                location: at,
            },
            Error::UnexpectedContainerEndWhileReadingKeyNode { location: at },
            Error::ExpectedStringKeyForExternallyTaggedEnum { location: at },
            Error::InvalidScalar {
                ty: "u32",
                location: at,
            },
            Error::SerdeInvalidType {
                unexpected: "map".into(),
                expected: "struct RawMonitor".into(),
                location: at,
            },
            Error::SerdeInvalidValue {
                unexpected: "integer `-1`".into(),
                expected: "u32".into(),
                location: at,
            },
            Error::SerdeInvalidType {
                unexpected: "sequence".into(),
                expected: "enum MonitorKind".into(),
                location: at,
            },
        ];
        for e in &cases {
            clean(&message(e));
        }
        assert_eq!(
            message(&cases[1]),
            "the file is too large or too deeply nested (limit: 250000 nodes)"
        );
        assert_eq!(
            message(&cases[20]),
            "expected a whole number (0 or more), found the number -1"
        );
    }
}
