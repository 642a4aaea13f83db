//! A PDF's pages: text from the glyphs its content draws (with their
//! Unicode mappings), and images rendered by hayro.
//!
//! Text comes out in content order, one line per baseline: a glyph whose
//! baseline leaves the previous one's by more than half the font size
//! starts a line, a gap along the baseline of more than 0.2 em is a space.
//! That is how the text is read (pdftotext's order on single- and
//! multi-column pages whose columns are drawn one after the other, the
//! usual case), not a layout analysis.

use hayro::hayro_interpret::font::Glyph;
use hayro::hayro_interpret::hayro_cmap::BfString;
use hayro::hayro_interpret::hayro_syntax::page::Page as PdfPage;
use hayro::hayro_interpret::hayro_syntax::{LoadPdfError, Pdf};
use hayro::hayro_interpret::util::TransformExt;
use hayro::hayro_interpret::{
    interpret_page, BlendMode, ClipPath, Context, Device, DrawMode, DrawProps, Image,
    ImageDrawProps, InterpreterCache, InterpreterSettings, SoftMask,
};
use hayro::kurbo::{Affine, BezPath, Point, Rect, Vec2};
use hayro::vello_cpu::color::palette::css::WHITE;
use hayro::{render, PixmapSettings, RenderCache, RenderSettings};

use crate::{Document, DocumentError, Page, ReadOptions};

/// Reads `bytes` as a PDF: every page's text, and its image when
/// `opts.render_px` asks for one.
pub fn read(bytes: Vec<u8>, opts: &ReadOptions) -> Result<Document, DocumentError> {
    let pdf = open(bytes)?;
    let pages = pdf.pages();
    if pages.is_empty() {
        return Err(DocumentError::NoPages);
    }
    if pages.len() > opts.max_pages {
        return Err(DocumentError::TooManyPages(pages.len()));
    }
    let settings = InterpreterSettings::default();
    let cache = RenderCache::new();
    let mut out = Vec::with_capacity(pages.len());
    for page in pages.iter() {
        let text = page_text(page, &settings);
        let image = match opts.render_px {
            Some(px) => Some(render_fit(page, &cache, &settings, px)?),
            None => None,
        };
        out.push(Page { text, image });
    }
    Ok(Document { pages: out })
}

fn open(bytes: Vec<u8>) -> Result<Pdf, DocumentError> {
    if !bytes.starts_with(b"%PDF-") && !bytes.windows(5).take(1024).any(|w| w == b"%PDF-") {
        return Err(DocumentError::Invalid("no %PDF- header".into()));
    }
    Pdf::new(bytes).map_err(|e| match e {
        LoadPdfError::Decryption(_) => DocumentError::Encrypted,
        LoadPdfError::Invalid => DocumentError::Invalid("its structure is not valid PDF".into()),
    })
}

/// The page rendered so that its longer side is `px` pixels, as PNG.
fn render_fit<'a>(
    page: &'a PdfPage<'a>,
    cache: &RenderCache<'a>,
    settings: &InterpreterSettings,
    px: u32,
) -> Result<Vec<u8>, DocumentError> {
    let (w, h) = page.render_dimensions();
    if !(w.is_finite() && h.is_finite() && w >= 1.0 && h >= 1.0) {
        return Err(DocumentError::Invalid(format!(
            "a page measures {w}x{h} points"
        )));
    }
    let scale = px.clamp(16, 4096) as f32 / w.max(h);
    render_scaled(page, cache, settings, scale)
}

/// The page rendered at `scale` pixels per point, as PNG (1.0: 72 dpi).
pub fn render_scaled<'a>(
    page: &'a PdfPage<'a>,
    cache: &RenderCache<'a>,
    settings: &InterpreterSettings,
    scale: f32,
) -> Result<Vec<u8>, DocumentError> {
    let (w, h) = page.render_dimensions();
    // vello_cpu's canvas is u16 on each side; hayro casts.
    if (w * scale) < 1.0 || (h * scale) < 1.0 || (w * scale) > 8192.0 || (h * scale) > 8192.0 {
        return Err(DocumentError::Invalid(format!(
            "a page of {w}x{h} points cannot be rendered at {scale} pixels a point"
        )));
    }
    let pixmap = render(
        page,
        cache,
        settings,
        &RenderSettings::default(),
        &PixmapSettings {
            x_scale: scale,
            y_scale: scale,
            bg_color: WHITE,
        },
    );
    pixmap
        .into_png()
        .map_err(|e| DocumentError::Internal(format!("encoding a page as PNG: {e}")))
}

/// Renders page `index` (from 0) of `bytes` at `scale`: for tests against
/// other renderers.
pub fn render_page(bytes: Vec<u8>, index: usize, scale: f32) -> Result<Vec<u8>, DocumentError> {
    let pdf = open(bytes)?;
    let page = pdf
        .pages()
        .get(index)
        .ok_or_else(|| DocumentError::Invalid(format!("no page {index}")))?;
    render_scaled(
        page,
        &RenderCache::new(),
        &InterpreterSettings::default(),
        scale,
    )
}

/// One glyph drawn, in device space (y down, as rendered).
struct Drawn {
    origin: Point,
    /// Where the next glyph would start.
    end: Point,
    /// Unit vector along the baseline.
    dir: Vec2,
    /// The font size (em), in device units.
    size: f64,
    text: String,
}

/// A device that keeps the glyphs and draws nothing.
#[derive(Default)]
struct TextDevice {
    glyphs: Vec<Drawn>,
}

impl<'a> Device<'a> for TextDevice {
    fn draw_path(&mut self, _: &BezPath, _: DrawProps<'a>, _: &DrawMode) {}
    fn push_clip_path(&mut self, _: &ClipPath) {}
    fn push_transparency_group(&mut self, _: f32, _: Option<SoftMask<'a>>, _: BlendMode) {}
    fn draw_image(&mut self, _: Image<'a, '_>, _: ImageDrawProps<'a>) {}
    fn pop_clip(&mut self) {}
    fn pop_transparency_group(&mut self) {}

    fn draw_glyph_run(
        &mut self,
        run: &hayro::hayro_interpret::font::GlyphRun<'_, 'a>,
        props: DrawProps<'a>,
        _: &DrawMode,
    ) {
        for g in run.glyphs() {
            let Some(text) = g.as_unicode().map(|u| match u {
                BfString::Char(c) => c.to_string(),
                BfString::String(s) => s,
            }) else {
                continue;
            };
            // Glyph space is 1000 units an em.
            let t: Affine = props.transform * g.transform();
            let origin = t * Point::ZERO;
            let along = t * Point::new(1000.0, 0.0) - origin;
            let up = t * Point::new(0.0, 1000.0) - origin;
            let size = up.hypot();
            if !(size.is_finite() && along.hypot() > 0.0) {
                continue;
            }
            let advance = match &**g {
                Glyph::Outline(o) => o.advance_width(),
                Glyph::Type3(t) => t.advance_width(),
            }
            .filter(|a| a.is_finite() && *a >= 0.0)
            .unwrap_or(500.0);
            self.glyphs.push(Drawn {
                origin,
                end: t * Point::new(f64::from(advance), 0.0),
                dir: along / along.hypot(),
                size,
                text,
            });
        }
    }
}

/// The page's text, lines joined with `\n`.
fn page_text(page: &PdfPage<'_>, settings: &InterpreterSettings) -> String {
    let cache = InterpreterCache::new();
    let (w, h) = page.render_dimensions();
    let mut context = Context::new(
        page.initial_transform(true).to_kurbo(),
        Rect::new(0.0, 0.0, f64::from(w), f64::from(h)),
        &cache,
        page.xref(),
        settings.clone(),
    );
    let mut device = TextDevice::default();
    interpret_page(page, &mut context, &mut device);
    lay_out(&device.glyphs)
}

fn lay_out(glyphs: &[Drawn]) -> String {
    let mut out = String::new();
    let mut prev: Option<&Drawn> = None;
    for g in glyphs {
        if let Some(p) = prev {
            let size = p.size.max(g.size).max(1e-6);
            let gap = g.origin - p.end;
            let along = gap.dot(p.dir);
            let across = gap.cross(p.dir).abs();
            let turned = g.dir.dot(p.dir) < 0.9;
            if across > 0.5 * size || along < -size || turned {
                trim_end_spaces(&mut out);
                out.push('\n');
            } else if along > 0.2 * size
                && !out.ends_with(char::is_whitespace)
                && !g.text.starts_with(char::is_whitespace)
            {
                out.push(' ');
            }
        }
        out.push_str(&g.text);
        prev = Some(g);
    }
    trim_end_spaces(&mut out);
    out.trim_matches('\n').to_string()
}

fn trim_end_spaces(s: &mut String) {
    let keep = s.trim_end_matches([' ', '\t']).len();
    s.truncate(keep);
}
