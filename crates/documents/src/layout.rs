//! A small page writer on top of `pdf-writer`: paragraphs wrapped to the page width, bullets,
//! the red dot, a box to date and sign, new pages as the text runs down, and a page footer.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::winansi::{encode, is_no_break_space, width};

/// A4 in points.
const PAGE_WIDTH: f32 = 595.28;
const PAGE_HEIGHT: f32 = 841.89;
const MARGIN: f32 = 56.0;
/// The lowest baseline of the body; the footer sits below it.
const BOTTOM: f32 = 64.0;
const FOOTER_BASELINE: f32 = 32.0;
const LEADING: f32 = 1.35;
/// Where bullet and red-dot text starts, right of the mark.
const INDENT: f32 = 18.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Title,
    Heading,
    Bold,
    Normal,
    Small,
}

impl Style {
    fn size(self) -> f32 {
        match self {
            Style::Title => 18.0,
            Style::Heading => 13.0,
            Style::Bold | Style::Normal => 10.5,
            Style::Small => 9.0,
        }
    }

    fn bold(self) -> bool {
        matches!(self, Style::Title | Style::Heading | Style::Bold)
    }

    fn line_height(self) -> f32 {
        self.size() * LEADING
    }
}

/// Splits text into WinAnsi-encoded lines no wider than `max` points. Lines break at spaces
/// (not at no-break ones) and at newlines; a word wider than a line (a long URL) is cut.
pub fn wrap(text: &str, size: f32, bold: bool, max: f32) -> Vec<Vec<u8>> {
    let fits = |bytes: &[u8]| width(bytes, size, bold) <= max;
    let mut lines = Vec::new();
    for hard_line in text.split('\n') {
        let mut line: Vec<u8> = Vec::new();
        for word in hard_line.split(|c: char| c.is_whitespace() && !is_no_break_space(c)).filter(|w| !w.is_empty()) {
            let word = encode(word);
            if word.is_empty() {
                continue;
            }
            if !line.is_empty() {
                let joined = [line.as_slice(), b" ", word.as_slice()].concat();
                if fits(&joined) {
                    line = joined;
                    continue;
                }
                lines.push(std::mem::take(&mut line));
            }
            // The word starts a line; cut it while it is too wide.
            for byte in word {
                line.push(byte);
                if line.len() > 1 && !fits(&line) {
                    line.pop();
                    lines.push(std::mem::replace(&mut line, vec![byte]));
                }
            }
        }
        lines.push(line);
    }
    lines
}

pub struct Writer {
    pages: Vec<Content>,
    y: f32,
    title: String,
    footer: String,
}

impl Writer {
    /// A writer for a document titled `title` (its metadata), with `footer` at the foot of
    /// every page, followed by the page number.
    pub fn new(title: &str, footer: &str) -> Self {
        Self {
            pages: vec![Content::new()],
            y: PAGE_HEIGHT - MARGIN,
            title: title.to_owned(),
            footer: footer.to_owned(),
        }
    }

    fn content(&mut self) -> &mut Content {
        self.pages.last_mut().unwrap_or_else(|| unreachable!("there is always a page"))
    }

    fn new_page(&mut self) {
        self.pages.push(Content::new());
        self.y = PAGE_HEIGHT - MARGIN;
    }

    /// Starts a new page unless `height` still fits above the bottom margin.
    fn keep(&mut self, height: f32) {
        if self.y - height < BOTTOM && self.y < PAGE_HEIGHT - MARGIN {
            self.new_page();
        }
    }

    /// Moves down by `height`, first starting a new page when it would cross the bottom margin.
    fn take(&mut self, height: f32) {
        self.keep(height);
        self.y -= height;
    }

    /// Vertical space, dropped at the top of a page.
    pub fn space(&mut self, height: f32) {
        if self.y < PAGE_HEIGHT - MARGIN {
            self.y = (self.y - height).max(BOTTOM);
        }
    }

    fn text_at(&mut self, x: f32, y: f32, line: &[u8], style: Style) {
        let font = if style.bold() { BOLD } else { REGULAR };
        let content = self.content();
        content.begin_text();
        content.set_font(font, style.size());
        content.next_line(x, y);
        content.show(Str(line));
        content.end_text();
    }

    /// Writes wrapped text starting at `x`, calling `mark` with the first baseline.
    fn lines_at(&mut self, x: f32, text: &str, style: Style, mark: impl FnOnce(&mut Self, f32)) {
        let lines = wrap(text, style.size(), style.bold(), PAGE_WIDTH - MARGIN - x);
        let mut mark = Some(mark);
        for line in lines {
            self.take(style.line_height());
            let y = self.y;
            if let Some(mark) = mark.take() {
                mark(self, y);
            }
            self.text_at(x, y, &line, style);
        }
        self.space(2.0);
    }

    pub fn paragraph(&mut self, text: &str, style: Style) {
        self.lines_at(MARGIN, text, style, |_, _| {});
    }

    /// A section heading, kept on the same page as the first lines that follow it.
    pub fn heading(&mut self, text: &str) {
        self.space(8.0);
        self.keep(Style::Heading.line_height() + 3.0 * Style::Normal.line_height());
        self.paragraph(text, Style::Heading);
        self.space(2.0);
    }

    pub fn bullet(&mut self, text: &str) {
        self.lines_at(MARGIN + INDENT, text, Style::Normal, |w, y| {
            w.text_at(MARGIN + 5.0, y, &encode("•"), Style::Normal);
        });
    }

    /// A line preceded by a filled red circle: the piece that blocks the closure.
    pub fn red_dot(&mut self, text: &str) {
        let style = Style::Bold;
        self.lines_at(MARGIN + INDENT, text, style, |w, y| {
            let (cx, cy, r) = (MARGIN + 7.0, y + style.size() * 0.35, 4.5);
            // A circle as four Bézier arcs (k = 0.5523 r).
            let k = 0.5523 * r;
            let content = w.content();
            content.save_state();
            content.set_fill_rgb(0.85, 0.0, 0.0);
            content.move_to(cx + r, cy);
            content.cubic_to(cx + r, cy + k, cx + k, cy + r, cx, cy + r);
            content.cubic_to(cx - k, cy + r, cx - r, cy + k, cx - r, cy);
            content.cubic_to(cx - r, cy - k, cx - k, cy - r, cx, cy - r);
            content.cubic_to(cx + k, cy - r, cx + r, cy - k, cx + r, cy);
            content.close_path();
            content.fill_nonzero();
            content.restore_state();
        });
    }

    /// A bordered box holding a few lines, with room below them to date and sign.
    pub fn signature_box(&mut self, lines: &[&str]) {
        let line_height = 20.0;
        let height = 16.0 + lines.len() as f32 * line_height + 70.0;
        self.take(height);
        let bottom = self.y;
        let content = self.content();
        content.set_line_width(0.8);
        content.rect(MARGIN, bottom, PAGE_WIDTH - 2.0 * MARGIN, height);
        content.stroke();
        let mut y = bottom + height - 16.0 - Style::Normal.size();
        for line in lines {
            self.text_at(MARGIN + 12.0, y, &encode(line), Style::Normal);
            y -= line_height;
        }
    }

    pub fn finish(self) -> Vec<u8> {
        let mut pdf = Pdf::new();
        let catalog_id = Ref::new(1);
        let tree_id = Ref::new(2);
        let regular_id = Ref::new(3);
        let bold_id = Ref::new(4);
        let info_id = Ref::new(5);
        let count = self.pages.len();
        let page_ids: Vec<Ref> = (0..count).map(|i| Ref::new(6 + 2 * i as i32)).collect();
        pdf.catalog(catalog_id).pages(tree_id).lang(TextStr("fr-FR"));
        pdf.document_info(info_id).title(TextStr(&self.title));
        pdf.pages(tree_id).kids(page_ids.iter().copied()).count(count as i32);
        pdf.type1_font(regular_id).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.type1_font(bold_id).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
        for (number, (mut content, page_id)) in self.pages.into_iter().zip(&page_ids).enumerate() {
            let footer = encode(&format!("{} – page {} sur {count}", self.footer, number + 1));
            let size = Style::Small.size();
            let max = PAGE_WIDTH - 2.0 * MARGIN;
            let footer = wrap_first(&footer, size, max);
            content.save_state();
            content.set_fill_gray(0.35);
            content.begin_text();
            content.set_font(REGULAR, size);
            content.next_line(PAGE_WIDTH - MARGIN - width(footer, size, false), FOOTER_BASELINE);
            content.show(Str(footer));
            content.end_text();
            content.restore_state();

            let content_id = Ref::new(page_id.get() + 1);
            let mut page = pdf.page(*page_id);
            page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT));
            page.parent(tree_id);
            page.contents(content_id);
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(REGULAR, regular_id);
            fonts.pair(BOLD, bold_id);
            fonts.finish();
            resources.finish();
            page.finish();
            pdf.stream(content_id, &content.finish());
        }
        pdf.finish()
    }
}

/// The longest prefix of a one-line text that fits in `max` points (the footer stays on one line).
fn wrap_first(bytes: &[u8], size: f32, max: f32) -> &[u8] {
    let mut end = bytes.len();
    while end > 0 && width(&bytes[..end], size, false) > max {
        end -= 1;
    }
    &bytes[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_wraps_at_spaces_and_newlines() {
        let lines = wrap("un deux trois quatre\ncinq", 10.0, false, 50.0);
        assert_eq!(lines, vec![b"un deux".to_vec(), b"trois".to_vec(), b"quatre".to_vec(), b"cinq".to_vec()]);
        // A narrow no-break space keeps « : » with its word.
        let lines = wrap("aaaaaaaa\u{202f}: b", 10.0, false, 55.0);
        assert_eq!(lines[0], b"aaaaaaaa :".to_vec());
    }

    #[test]
    fn a_word_wider_than_the_line_is_cut() {
        let url = "https://www.example.fr/".to_owned() + &"plan".repeat(40);
        let lines = wrap(&url, 10.0, false, 100.0);
        assert!(lines.len() > 5);
        assert!(lines.iter().all(|l| width(l, 10.0, false) <= 100.0));
        assert_eq!(lines.concat(), url.as_bytes());
    }

    #[test]
    fn the_red_dot_is_a_filled_red_path() {
        let mut w = Writer::new("t", "f");
        w.red_dot("Dossier");
        let pdf = w.finish();
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("0.85 0 0 rg"), "{text}");
        assert!(text.contains(" c\n") && text.contains("\nf\n"), "{text}");
    }
}
