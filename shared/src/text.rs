//! Text that people read and that others typed: display names and short notices. Refuses what makes such
//! text lie about itself — control characters, format characters (bidi overrides such as U+202E that
//! reverse what follows, zero-width spaces, the BOM), line separators, private-use and unassigned code
//! points — and text that is blank once trimmed.
//!
//! Zero-width non-joiner and joiner (U+200C, U+200D) are format characters too, but Persian, the Indic
//! scripts and emoji sequences need them, so they are allowed between visible characters; a text made of
//! nothing else is blank.

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

/// Why a text was refused. Names the rule, never the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextProblem {
    #[error("must not be blank")]
    Blank,
    #[error("must be at most {0} characters")]
    TooLong(usize),
    #[error("must not contain control, format or invisible characters")]
    Invisible,
}

const ZWNJ: char = '\u{200C}';
const ZWJ: char = '\u{200D}';

fn refused(c: char, newlines: bool) -> bool {
    if c == ZWNJ || c == ZWJ || (newlines && c == '\n') {
        return false;
    }
    matches!(c.general_category_group(), GeneralCategoryGroup::Other)
        || matches!(
            c.general_category(),
            GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
        )
}

/// Something a reader would see: a letter, a digit, a symbol or punctuation.
fn visible(c: char) -> bool {
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Symbol
            | GeneralCategoryGroup::Punctuation
    )
}

fn check(raw: &str, max_chars: usize, newlines: bool) -> Result<String, TextProblem> {
    let text = raw.trim();
    if text.chars().any(|c| refused(c, newlines)) {
        return Err(TextProblem::Invisible);
    }
    if !text.chars().any(visible) {
        return Err(TextProblem::Blank);
    }
    if text.chars().count() > max_chars {
        return Err(TextProblem::TooLong(max_chars));
    }
    Ok(text.to_owned())
}

/// A one-line name (a person's or a page's), trimmed: 1 to `max_chars` characters.
pub fn display_name(raw: &str, max_chars: usize) -> Result<String, TextProblem> {
    check(raw, max_chars, false)
}

/// A text of several lines (a policy summary, a breach notice), trimmed; `\n` is its only line break.
pub fn display_text(raw: &str, max_chars: usize) -> Result<String, TextProblem> {
    check(raw, max_chars, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_in_any_script_pass_trimmed() {
        for (raw, want) in [
            ("  Ana López ", "Ana López"),
            ("Zoë O'Brien-Smith", "Zoë O'Brien-Smith"),
            ("محمد", "محمد"),
            ("می\u{200C}خواهم", "می\u{200C}خواهم"),
            ("李小龙", "李小龙"),
            ("Bäckerei 24/7 🥐", "Bäckerei 24/7 🥐"),
            ("👩\u{200D}🍳 Chef", "👩\u{200D}🍳 Chef"),
        ] {
            assert_eq!(display_name(raw, 100).as_deref(), Ok(want), "{raw:?}");
        }
    }

    #[test]
    fn direction_overrides_zero_width_and_control_characters_are_refused() {
        for raw in [
            "Ana\u{202E}gpj.exe",
            "\u{2066}Ana\u{2069}",
            "A\u{200B}na",
            "\u{FEFF}Ana",
            "Ana\u{0007}",
            "Ana\nLópez",
            "A\u{2028}na",
            "Ana\u{E000}",
            "Ana\u{0378}",
            "\u{00AD}Ana",
        ] {
            assert_eq!(
                display_name(raw, 100),
                Err(TextProblem::Invisible),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn blank_names_are_refused() {
        for raw in [
            "",
            "   ",
            "\u{200C}\u{200D}",
            "\u{3000}",
            "\u{0301}\u{0301}",
        ] {
            assert_eq!(display_name(raw, 100), Err(TextProblem::Blank), "{raw:?}");
        }
        assert_eq!(
            display_name("\u{200B}\u{200B}", 100),
            Err(TextProblem::Invisible)
        );
    }

    #[test]
    fn length_counts_characters() {
        assert!(display_name(&"é".repeat(100), 100).is_ok());
        assert_eq!(
            display_name(&"é".repeat(101), 100),
            Err(TextProblem::TooLong(100))
        );
    }

    #[test]
    fn texts_keep_their_line_breaks_but_nothing_else_invisible() {
        assert_eq!(
            display_text("We moved.\nNothing else changed.\n", 100).as_deref(),
            Ok("We moved.\nNothing else changed.")
        );
        assert_eq!(
            display_text("Click\u{202E}here", 100),
            Err(TextProblem::Invisible)
        );
        assert_eq!(display_text("a\r\nb", 100), Err(TextProblem::Invisible));
    }
}
