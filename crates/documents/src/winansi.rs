//! Unicode to WinAnsiEncoding (Windows-1252), the encoding of the PDF standard fonts, and the
//! glyph widths of Helvetica for line breaking.

/// The WinAnsi byte of a character; characters the encoding lacks become a close substitute.
pub fn encode_char(c: char) -> u8 {
    let code = c as u32;
    match c {
        '\u{20}'..='\u{7e}' => code as u8,
        '\u{a0}'..='\u{ff}' => code as u8,
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
        // Thin and narrow no-break spaces: a no-break space.
        '\u{2009}' | '\u{202f}' => 0xa0,
        '\u{2010}' | '\u{2011}' => b'-',
        _ => b'?',
    }
}

pub fn encode(text: &str) -> Vec<u8> {
    text.chars().filter(|c| !c.is_control()).map(encode_char).collect()
}

/// Helvetica's advance widths (in thousandths of the font size) for ASCII 32–126.
const ASCII_WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // space – /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0 – 9
    278, 278, 584, 584, 584, 556, 1015, // : – @
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944,
    667, 667, 611, // A – Z
    278, 278, 278, 469, 556, 333, // [ – `
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722,
    500, 500, 500, // a – z
    334, 260, 334, 584, // { – ~
];

/// The width of an encoded byte in Helvetica; accented letters take their base letter's.
fn byte_width(b: u8) -> u16 {
    match b {
        0x20..=0x7e => ASCII_WIDTHS[usize::from(b - 0x20)],
        0xc0..=0xc5 => 667,               // À–Å
        0xc7 => 722,                      // Ç
        0xc8..=0xcb => 667,               // È–Ë
        0xcc..=0xcf | 0xec..=0xef => 278, // Ì–Ï, ì–ï
        0xd2..=0xd6 | 0xd9..=0xdc => 778, // Ò–Ö, Ù–Ü
        0xe7 => 500,                      // ç
        0x92 | 0x91 => 222,               // ’ ‘
        0x97 => 1000,                     // —
        0x8c | 0x9c => 1000,              // Œ œ
        _ => 556,
    }
}

/// The width of encoded text at a font size, in points; bold is about 6 % wider.
pub fn width(bytes: &[u8], size: f32, bold: bool) -> f32 {
    let units: u32 = bytes.iter().map(|b| u32::from(byte_width(*b))).sum();
    let factor = if bold { 1.06 } else { 1.0 };
    units as f32 * size / 1000.0 * factor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_letters_and_quotes_are_in_winansi() {
        assert_eq!(
            encode("é è à ç ù ê ô î « » ’ – É"),
            vec![
                0xe9, 0x20, 0xe8, 0x20, 0xe0, 0x20, 0xe7, 0x20, 0xf9, 0x20, 0xea, 0x20, 0xf4, 0x20, 0xee, 0x20, 0xab,
                0x20, 0xbb, 0x20, 0x92, 0x20, 0x96, 0x20, 0xc9
            ]
        );
        assert_eq!(encode("a\u{202f}b"), vec![b'a', 0xa0, b'b']);
        assert_eq!(encode("日"), vec![b'?']);
    }

    #[test]
    fn widths_follow_helvetica() {
        assert!((width(b"AAAA", 10.0, false) - 26.68).abs() < 0.01);
        assert!(width(b"iiii", 10.0, false) < width(b"mmmm", 10.0, false));
    }
}
