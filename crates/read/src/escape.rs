//! Names read from files are someone else's text: control characters in them could drive the
//! terminal that prints them (escape-sequence injection). Readers show them escaped.

/// `text` with every control character (C0, DEL, C1) and bidirectional-override character
/// written as a visible `\x..` / `\u{..}` escape. Other text, including non-ASCII letters and
/// backslashes, is unchanged, so escaping twice changes nothing more than escaping once.
///
/// ```
/// use ringlat_read::escape_control;
/// assert_eq!(escape_control("market"), "market");
/// assert_eq!(escape_control("a\x1b[2Jb"), "a\\x1b[2Jb");
/// assert_eq!(escape_control("a\u{202e}"), "a\\u{202e}");
/// assert_eq!(escape_control(&escape_control("\x07")), "\\x07");
/// ```
pub fn escape_control(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}
