//! Unicode to WinAnsiEncoding (Windows-1252), the encoding of the PDF standard fonts, and the
//! glyph widths of Helvetica and Helvetica-Bold for line breaking.

/// The base letters of Latin Extended-A (U+0100–U+017F), for characters WinAnsi lacks:
/// « Ł » prints as « L », « ș » as « s ». `?` marks the few without a sensible base letter.
const LATIN_EXTENDED_A: &str = "AaAaAaCcCcCcCcDdDdEeEeEeEeEeGgGgGgGgHhHhIiIiIiIiIi??JjKkkLlLlLlLlLlNnNnNnnNnOoOoOoŒœRrRrRrSsSsSsSsTtTtTtUuUuUuUuUuUuWwYyYZzZzZzs";

/// Appends the WinAnsi bytes of a character to `out`: usually one byte, a close substitute for
/// characters the encoding lacks, nothing for invisible ones.
fn push_char(c: char, out: &mut Vec<u8>) {
    let byte = match c {
        // Invisible: zero-width spaces and joiners, soft hyphen, byte order mark, controls.
        '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2060}' | '\u{feff}' => return,
        '\t' => b' ',
        c if c.is_control() => return,
        '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{ff}' => c as u8,
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8a,
        '‹' => 0x8b,
        'Œ' => 0x8c,
        'Ž' => 0x8e,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9a,
        '›' => 0x9b,
        'œ' => 0x9c,
        'ž' => 0x9e,
        'Ÿ' => 0x9f,
        // Narrow, thin and other typographic spaces (the line breaker keeps the no-break ones
        // unbroken before encoding).
        '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' => b' ',
        // Hyphens, figure dash, minus.
        '\u{2010}'..='\u{2012}' | '\u{2212}' => b'-',
        '\u{2015}' => 0x97,
        '\u{2032}' | '\u{02bc}' => 0x92,
        '\u{2033}' => b'"',
        '\u{2023}' | '\u{2043}' | '\u{25cf}' => 0x95,
        'Ș' => b'S',
        'ș' => b's',
        'Ț' => b'T',
        'ț' => b't',
        'Ĳ' | 'ĳ' | 'ﬀ' | 'ﬁ' | 'ﬂ' | 'ﬃ' | 'ﬄ' => {
            let letters = match c {
                'Ĳ' => "IJ",
                'ĳ' => "ij",
                'ﬀ' => "ff",
                'ﬁ' => "fi",
                'ﬂ' => "fl",
                'ﬃ' => "ffi",
                _ => "ffl",
            };
            out.extend_from_slice(letters.as_bytes());
            return;
        }
        '\u{0100}'..='\u{017f}' => {
            let base = LATIN_EXTENDED_A.chars().nth(c as usize - 0x100).unwrap_or('?');
            push_char(base, out);
            return;
        }
        _ => b'?',
    };
    out.push(byte);
}

/// The WinAnsi bytes of a text (see [`push_char`] for the substitutes).
pub fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        push_char(c, &mut out);
    }
    out
}

/// Whether a character is a space the line breaker may not break at.
pub fn is_no_break_space(c: char) -> bool {
    matches!(c, '\u{a0}' | '\u{2007}' | '\u{202f}')
}

// Advance widths, in thousandths of the font size, of WinAnsi codes 0x20–0xFF, from Adobe's
// Helvetica and Helvetica-Bold AFM metrics (0 for the codes WinAnsi leaves undefined).
#[rustfmt::skip]
const HELVETICA: [u16; 224] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 0,
    556, 0, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    0, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 0, 500, 667,
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 578, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
];
#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 224] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 0,
    556, 0, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 0, 611, 0,
    0, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 0, 500, 667,
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278,
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
];

/// The width of WinAnsi-encoded text at a font size, in points.
pub fn width(bytes: &[u8], size: f32, bold: bool) -> f32 {
    let table = if bold { &HELVETICA_BOLD } else { &HELVETICA };
    let units: u32 = bytes.iter().map(|&b| u32::from(b.checked_sub(0x20).map_or(0, |i| table[usize::from(i)]))).sum();
    units as f32 * size / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_letters_and_quotes_are_in_winansi() {
        assert_eq!(
            encode("é è à ç ù ê ô î « » ’ – — … œ É"),
            vec![
                0xe9, 0x20, 0xe8, 0x20, 0xe0, 0x20, 0xe7, 0x20, 0xf9, 0x20, 0xea, 0x20, 0xf4, 0x20, 0xee, 0x20, 0xab,
                0x20, 0xbb, 0x20, 0x92, 0x20, 0x96, 0x20, 0x97, 0x20, 0x85, 0x20, 0x9c, 0x20, 0xc9
            ]
        );
    }

    #[test]
    fn missing_characters_get_a_substitute() {
        assert_eq!(encode("a\u{202f}:\u{2009}b"), b"a : b");
        assert_eq!(encode("Łukasz Ștefănescu"), b"Lukasz Stefanescu");
        assert_eq!(encode("ﬁn\u{ad}\u{200b}\n"), b"fin");
        assert_eq!(encode("日"), b"?");
    }

    #[test]
    fn widths_follow_the_afm_metrics() {
        assert!((width(b"AAAA", 10.0, false) - 26.68).abs() < 0.01);
        assert!((width(&encode("«é»"), 10.0, false) - 16.68).abs() < 0.01);
        assert!((width(b"t", 1000.0, true) - 333.0).abs() < 0.01);
        assert!(width(b"iiii", 10.0, false) < width(b"mmmm", 10.0, false));
    }
}
