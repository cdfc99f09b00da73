//! A small page writer on top of `pdf-writer`: paragraphs wrapped to the page width, bullets,
//! the red dot, a box to date and sign, and new pages as the text runs down.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

use crate::winansi::{encode, width};

const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
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
}

pub struct Writer {
    pages: Vec<Content>,
    y: f32,
}

impl Writer {
    pub fn new() -> Self {
        Self { pages: vec![Content::new()], y: PAGE_HEIGHT - MARGIN }
    }

    fn content(&mut self) -> &mut Content {
        self.pages.last_mut().unwrap_or_else(|| unreachable!("there is always a page"))
    }

    /// Moves down by `height`, starting a new page when it would cross the bottom margin.
    fn take(&mut self, height: f32) {
        if self.y - height < MARGIN {
            self.pages.push(Content::new());
            self.y = PAGE_HEIGHT - MARGIN;
        }
        self.y -= height;
    }

    pub fn space(&mut self, height: f32) {
        self.y -= height;
    }

    /// Splits encoded text into lines no wider than `max` points.
    fn wrap(text: &str, size: f32, bold: bool, max: f32) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut line: Vec<u8> = Vec::new();
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            let word = encode(word);
            let candidate: Vec<u8> =
                if line.is_empty() { word.clone() } else { [line.as_slice(), b" ", word.as_slice()].concat() };
            if width(&candidate, size, bold) <= max || line.is_empty() {
                line = candidate;
            } else {
                lines.push(std::mem::take(&mut line));
                line = word;
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }

    fn text_at(&mut self, x: f32, line: &[u8], style: Style) {
        let (size, font) = (style.size(), if style.bold() { BOLD } else { REGULAR });
        let y = self.y;
        let content = self.content();
        content.begin_text();
        content.set_font(font, size);
        content.set_fill_gray(0.0);
        content.next_line(x, y);
        content.show(Str(line));
        content.end_text();
    }

    fn lines_at(&mut self, x: f32, text: &str, style: Style) {
        let size = style.size();
        for line in Self::wrap(text, size, style.bold(), PAGE_WIDTH - MARGIN - x) {
            self.take(size * 1.35);
            self.text_at(x, &line, style);
        }
    }

    pub fn paragraph(&mut self, text: &str, style: Style) {
        self.lines_at(MARGIN, text, style);
        self.space(2.0);
    }

    pub fn bullet(&mut self, text: &str) {
        let size = Style::Normal.size();
        let lines = Self::wrap(text, size, false, PAGE_WIDTH - 2.0 * MARGIN - 16.0);
        for (i, line) in lines.iter().enumerate() {
            self.take(size * 1.35);
            if i == 0 {
                self.text_at(MARGIN + 4.0, &encode("•"), Style::Normal);
            }
            self.text_at(MARGIN + 16.0, line, Style::Normal);
        }
        self.space(2.0);
    }

    /// A line preceded by a filled red circle: the piece that blocks the closure.
    pub fn red_dot_paragraph(&mut self, text: &str) {
        let size = Style::Bold.size();
        let lines = Self::wrap(text, size, true, PAGE_WIDTH - 2.0 * MARGIN - 16.0);
        for (i, line) in lines.iter().enumerate() {
            self.take(size * 1.35);
            if i == 0 {
                let (cx, cy, r) = (MARGIN + 7.0, self.y + size * 0.35, 4.5);
                // A circle as four Bézier arcs (k = 0.5523 r).
                let k = 0.5523 * r;
                let content = self.content();
                content.set_fill_rgb(0.82, 0.0, 0.11);
                content.move_to(cx + r, cy);
                content.cubic_to(cx + r, cy + k, cx + k, cy + r, cx, cy + r);
                content.cubic_to(cx - k, cy + r, cx - r, cy + k, cx - r, cy);
                content.cubic_to(cx - r, cy - k, cx - k, cy - r, cx, cy - r);
                content.cubic_to(cx + k, cy - r, cx + r, cy - k, cx + r, cy);
                content.close_path();
                content.fill_nonzero();
            }
            self.text_at(MARGIN + 16.0, line, Style::Bold);
        }
        self.space(2.0);
    }

    /// A bordered box holding a few lines, with room to date and sign below them.
    pub fn signature_box(&mut self, lines: &[&str]) {
        let height = 24.0 + lines.len() as f32 * 18.0 + 60.0;
        self.take(height);
        let bottom = self.y;
        let content = self.content();
        content.set_line_width(1.0);
        content.set_stroke_rgb(0.0, 0.0, 0.0);
        content.rect(MARGIN, bottom, PAGE_WIDTH - 2.0 * MARGIN, height);
        content.stroke();
        let mut y = bottom + height - 22.0;
        for line in lines {
            let saved = self.y;
            self.y = y;
            self.text_at(MARGIN + 12.0, &encode(line), Style::Normal);
            self.y = saved;
            y -= 18.0;
        }
    }

    pub fn finish(self) -> Vec<u8> {
        let mut pdf = Pdf::new();
        let catalog_id = Ref::new(1);
        let tree_id = Ref::new(2);
        let regular_id = Ref::new(3);
        let bold_id = Ref::new(4);
        let count = self.pages.len();
        let page_ids: Vec<Ref> = (0..count).map(|i| Ref::new(5 + 2 * i as i32)).collect();
        pdf.catalog(catalog_id).pages(tree_id);
        pdf.pages(tree_id).kids(page_ids.iter().copied()).count(count as i32);
        pdf.type1_font(regular_id).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.type1_font(bold_id).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
        for (content, page_id) in self.pages.into_iter().zip(&page_ids) {
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
