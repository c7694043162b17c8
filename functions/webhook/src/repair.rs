//! Repair of a verified body that does not parse as JSON because of a few unreadable values: invalid
//! UTF-8 bytes, lone UTF-16 surrogate escapes (`\ud800` without its pair, `\udc00` alone) and other
//! invalid escapes. One such value in one message's text must not cost the other events of a correctly
//! signed batch, so each unreadable unit becomes U+FFFD (the replacement character) and the body is
//! parsed again.
//!
//! Invariants:
//! - it runs after the signature was verified over the raw bytes as received, and only on a body that
//!   did not parse as it is: the signature is never checked over a repaired body, and a well-formed body
//!   is never rewritten;
//! - a repair only ever inserts U+FFFD (as the escape `\ufffd`, or the character in place of invalid
//!   UTF-8 bytes) and removes the unreadable unit, so a repaired value can never turn into a quote, a
//!   backslash, another escape or a keyword;
//! - escapes are read left to right as JSON reads them: an escaped backslash (`\\ud800`) is literal text
//!   and stays, a surrogate pair (`\ud83d\ude00`) stays, escapes of `"` `\` `/` `b` `f` `n` `r` `t` stay;
//! - the same bytes always repair to the same text (a retried batch de-duplicates as the first delivery);
//! - a body that is still not JSON after the repair is left to the caller (one malformed item).

use std::borrow::Cow;

/// The repaired text of a body and how many unreadable units it replaced.
#[derive(Debug, PartialEq, Eq)]
pub struct Repaired<'a> {
    pub text: Cow<'a, str>,
    /// Invalid UTF-8 sequences, lone surrogate escapes and invalid escapes replaced by U+FFFD.
    pub repairs: usize,
}

/// Repairs `body`: invalid UTF-8 first (a backslash is ASCII, so it never hides inside an invalid
/// sequence), then the escapes.
pub fn repair(body: &[u8]) -> Repaired<'_> {
    let (text, utf8_repairs) = match std::str::from_utf8(body) {
        Ok(text) => (Cow::Borrowed(text), 0),
        Err(_) => {
            let mut text = String::with_capacity(body.len() + 8);
            let mut repairs = 0;
            for chunk in body.utf8_chunks() {
                text.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    text.push(char::REPLACEMENT_CHARACTER);
                    repairs += 1;
                }
            }
            (Cow::Owned(text), repairs)
        }
    };
    let (escaped, escape_repairs) = match repair_escapes(&text) {
        Some((repaired, n)) => (Cow::Owned(repaired), n),
        None => (text, 0),
    };
    Repaired {
        text: escaped,
        repairs: utf8_repairs + escape_repairs,
    }
}

/// The escape that stands for U+FFFD.
const REPLACEMENT_ESCAPE: &str = "\\ufffd";

/// The code unit of a `\uXXXX` escape starting at `at` (the backslash), if there is a complete one.
fn unit_at(bytes: &[u8], at: usize) -> Option<u16> {
    let escape = bytes.get(at..at + 6)?;
    if escape[0] != b'\\' || escape[1] != b'u' {
        return None;
    }
    let hex = std::str::from_utf8(&escape[2..]).ok()?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(hex, 16).ok()
}

fn is_high(unit: u16) -> bool {
    (0xD800..=0xDBFF).contains(&unit)
}

fn is_low(unit: u16) -> bool {
    (0xDC00..=0xDFFF).contains(&unit)
}

/// The text with every unreadable escape replaced, and how many; `None` if every escape reads.
///
/// Only ASCII is inserted or removed, so the result is as valid UTF-8 as `text`. A backslash outside a
/// string is not JSON whatever follows it; treating it as an escape changes nothing about that.
fn repair_escapes(text: &str) -> Option<(String, usize)> {
    let bytes = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut repairs = 0;
    // `copied` is where the bytes not yet copied to `out` start.
    let mut copied = 0;
    let mut at = 0;
    while let Some(offset) = bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\\'))
    {
        let slash = at + offset;
        // Either the escape is kept (its length), or `Err(n)`: its first `n` bytes are replaced.
        let escape: Result<usize, usize> = match bytes.get(slash + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(2),
            Some(b'u') => match unit_at(bytes, slash) {
                Some(u) if is_high(u) => match unit_at(bytes, slash + 6) {
                    Some(next) if is_low(next) => Ok(12),
                    // The pair's second half is missing: only this escape is replaced; what follows
                    // (`\u0041`, another high surrogate with its pair) is read on its own.
                    _ => Err(6),
                },
                Some(u) if is_low(u) => Err(6),
                Some(_) => Ok(6),
                // `\u` without four hex digits: the backslash goes, the rest stays as text.
                None => Err(1),
            },
            // An escape JSON does not have (`\x`, `\é`), or a backslash at the very end.
            _ => Err(1),
        };
        match escape {
            Ok(len) => at = slash + len,
            Err(len) => {
                let o = out.get_or_insert_with(|| Vec::with_capacity(bytes.len() + 8));
                o.extend_from_slice(&bytes[copied..slash]);
                o.extend_from_slice(REPLACEMENT_ESCAPE.as_bytes());
                repairs += 1;
                at = slash + len;
                copied = at;
            }
        }
    }
    let mut out = out?;
    out.extend_from_slice(&bytes[copied..]);
    // Cuts are made only next to ASCII bytes, so this never loses anything; lossy rather than a panic.
    let out = String::from_utf8(out)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Some((out, repairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(input: &str) -> (String, usize) {
        let r = repair(input.as_bytes());
        (r.text.into_owned(), r.repairs)
    }

    /// The string value of `{"t": <input>}` after repair.
    fn value_of(input: &str) -> String {
        let body = format!(r#"{{"t":"{input}"}}"#);
        assert!(
            serde_json::from_str::<serde_json::Value>(&body).is_err(),
            "the case must be one serde_json refuses: {input}"
        );
        let r = repair(body.as_bytes());
        let v: serde_json::Value = serde_json::from_str(&r.text).expect("repaired body parses");
        v["t"].as_str().expect("a string").to_owned()
    }

    #[test]
    fn lone_surrogates_become_the_replacement_character() {
        assert_eq!(value_of(r"a\ud800b"), "a\u{fffd}b");
        assert_eq!(value_of(r"a\udc00b"), "a\u{fffd}b");
        assert_eq!(value_of(r"\uDBFF"), "\u{fffd}");
        assert_eq!(value_of(r"\uDFFF\uD800"), "\u{fffd}\u{fffd}");
        // A high surrogate followed by something that is not its pair: only it is replaced.
        assert_eq!(value_of(r"\uD800\u0041"), "\u{fffd}A");
        assert_eq!(value_of(r"\ud800\n"), "\u{fffd}\n");
        assert_eq!(value_of(r"\ud800\\"), "\u{fffd}\\");
        assert_eq!(value_of(r"\ud800\ud83d\ude00"), "\u{fffd}\u{1f600}");
        // Reversed halves are two lone surrogates.
        assert_eq!(value_of(r"\udc00\ud800"), "\u{fffd}\u{fffd}");
        // At the very end of the value.
        assert_eq!(value_of(r"x\ud800"), "x\u{fffd}");
    }

    #[test]
    fn a_lone_surrogate_at_the_end_of_the_input_is_replaced() {
        assert_eq!(fixed(r"\ud800"), (REPLACEMENT_ESCAPE.to_owned(), 1));
        assert_eq!(fixed(r"ab\udc00"), (format!("ab{REPLACEMENT_ESCAPE}"), 1));
        // A cut-off escape or a backslash as the last byte.
        assert_eq!(fixed(r"ab\ud8"), (format!("ab{REPLACEMENT_ESCAPE}ud8"), 1));
        assert_eq!(fixed("ab\\"), (format!("ab{REPLACEMENT_ESCAPE}"), 1));
    }

    #[test]
    fn escaped_backslashes_valid_pairs_and_valid_escapes_stay_untouched() {
        for ok in [
            r#"{"t":"\\ud800"}"#,
            r#"{"t":"\\\\ud800"}"#,
            r#"{"t":"\ud83d\ude00 \uD83D\uDE00"}"#,
            r#"{"t":"\" \\ \/ \b \f \n \r \t \u00e4 \u0000 \uffff \ufffd"}"#,
            r#"{"t":"\\"}"#,
            "{\"t\":\"raw ä and 😀\"}",
            "",
            "no escapes at all",
        ] {
            let r = repair(ok.as_bytes());
            assert_eq!(r.repairs, 0, "{ok}");
            assert!(matches!(r.text, Cow::Borrowed(_)), "not copied: {ok}");
            assert_eq!(r.text, ok);
        }
        // An escaped backslash before a lone surrogate escape: the backslash pair stays, the escape goes.
        assert_eq!(value_of(r"\\\ud800"), "\\\u{fffd}");
        assert_eq!(value_of(r"\\\\\udc00"), "\\\\\u{fffd}");
    }

    #[test]
    fn invalid_escapes_lose_only_their_backslash() {
        assert_eq!(value_of(r"a\xb"), "a\u{fffd}xb");
        assert_eq!(value_of(r"\u12G4"), "\u{fffd}u12G4");
        assert_eq!(value_of(r"\é"), "\u{fffd}é");
        assert_eq!(value_of(r"\u"), "\u{fffd}u");
    }

    #[test]
    fn invalid_utf8_bytes_become_the_replacement_character() {
        let mut body = br#"{"t":"a"#.to_vec();
        body.extend_from_slice(&[0xff, 0xfe, b'b', 0xc3, b'c', 0xe2, 0x82]);
        body.extend_from_slice(br#"","u":"\ud800"}"#);
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_err());
        let r = repair(&body);
        // 0xff, 0xfe, a lone 0xc3 and a cut-off three-byte sequence: four invalid runs, and one escape.
        assert_eq!(r.repairs, 5);
        let v: serde_json::Value = serde_json::from_str(&r.text).expect("parses");
        assert_eq!(v["t"], "a\u{fffd}\u{fffd}b\u{fffd}c\u{fffd}");
        assert_eq!(v["u"], "\u{fffd}");
    }

    #[test]
    fn a_repaired_body_needs_no_second_repair() {
        for bad in [
            r"\ud800\udc00\udc00\ud800",
            r"\\\ud800\x",
            r"\u12\uD800\u0041",
        ] {
            let once = repair(bad.as_bytes()).text.into_owned();
            let twice = repair(once.as_bytes());
            assert_eq!(twice.repairs, 0, "{bad}");
            assert_eq!(twice.text, once);
        }
    }

    /// A small deterministic generator (xorshift64*): enough to fuzz without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }

    /// Bytes biased towards what matters here: backslashes, `u`, hex digits, `d8`/`dc`, quotes, invalid
    /// UTF-8 lead and continuation bytes.
    fn noise(rng: &mut Rng) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"\\",
            b"u",
            b"d8",
            b"dc",
            b"DB",
            b"0",
            b"f",
            b"\"",
            b"\\u",
            b"\\ud800",
            b"\\udc00",
            b"\\\\",
            b"a",
            b"{",
            b"}",
            b":",
            b",",
            &[0xff],
            &[0xc3],
            &[0xa4],
            &[0xe2, 0x82],
            &[0xf0, 0x9f, 0x98, 0x80],
        ];
        let len = rng.below(40);
        let mut out = Vec::new();
        for _ in 0..len {
            if rng.below(4) == 0 {
                out.push(u8::try_from(rng.next() & 0xff).unwrap_or(0));
            } else {
                out.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
        }
        out
    }

    #[test]
    fn random_bytes_never_panic_and_repair_to_text_that_needs_no_more_repair() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let bytes = noise(&mut rng);
            let once = repair(&bytes);
            let again = repair(once.text.as_bytes());
            assert_eq!(again.repairs, 0, "{bytes:?}");
            // As a string value (without quotes or control bytes, which would end or break it; the `x`
            // keeps a trailing backslash from escaping the closing quote), a repaired body is JSON.
            let mut body = br#"{"object":"page","t":""#.to_vec();
            body.extend(bytes.iter().filter(|&&b| b != b'"' && b >= 0x20));
            body.extend_from_slice(br#"x"}"#);
            let r = repair(&body);
            let parsed = serde_json::from_str::<serde_json::Value>(&r.text);
            assert!(parsed.is_ok(), "{body:?} -> {:?}", r.text);
            let _ = crate::envelope::parse(&bytes);
            let _ = crate::envelope::parse(&body);
        }
    }

    /// What Meta sends: JSON with every non-ASCII character escaped (surrogate pairs for emoji).
    fn ascii_escaped(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '/' => out.push_str("\\/"),
                c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
                c => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn well_formed_random_json_is_never_changed() {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03);
        let alphabet: Vec<char> = "ab\\\"/ \n\té😀\u{0}\u{ffff}\u{fffd}\u{10ffff}u"
            .chars()
            .collect();
        for _ in 0..5_000 {
            let s: String = (0..rng.below(24))
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            for body in [
                serde_json::to_string(&serde_json::json!({ "t": s })).expect("json"),
                format!(r#"{{"t":{}}}"#, ascii_escaped(&s)),
            ] {
                let v: serde_json::Value = serde_json::from_str(&body).expect("valid");
                assert_eq!(v["t"], s);
                let r = repair(body.as_bytes());
                assert_eq!((r.repairs, r.text.as_ref()), (0, body.as_str()));
            }
        }
    }
}
