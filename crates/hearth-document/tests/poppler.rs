//! hearth's PDF reader against poppler's, on the pages that
//! testdata/documents/make_pdfs.py made and read with pdftotext and pdftoppm.

use std::path::PathBuf;

use hearth_document::{pdf, DocumentError, ReadOptions};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/documents")
}

fn sample() -> Vec<u8> {
    std::fs::read(dir().join("sample.pdf")).expect("sample.pdf")
}

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

#[test]
fn text_is_pdftotext_s_word_for_word() {
    let doc = pdf::read(sample(), &ReadOptions::default()).expect("reads");
    assert_eq!(doc.pages.len(), 5);
    for (i, page) in doc.pages.iter().enumerate() {
        let reference = std::fs::read_to_string(dir().join(format!("refs/sample.p{}.txt", i + 1)))
            .expect("reference text");
        assert_eq!(
            words(&page.text),
            words(&reference),
            "page {}: ours {:?}",
            i + 1,
            page.text
        );
        assert!(page.image.is_none(), "text only was asked for");
    }
    // Lines stay lines: the first page's title is its own.
    assert!(doc.pages[0]
        .text
        .starts_with("Quarterly report of the hearth project\n"));
    // The image-only page has no text.
    assert_eq!(doc.pages[3].text, "");
}

/// Mean absolute difference per channel (0-255), and the share of pixels
/// where some channel differs by more than 64.
fn difference(a: &image::RgbImage, b: &image::RgbImage) -> (f64, f64) {
    let mut sum = 0u64;
    let mut far = 0u64;
    for (p, q) in a.pixels().zip(b.pixels()) {
        let d: Vec<u64> = (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).collect();
        sum += d.iter().sum::<u64>();
        far += u64::from(d.iter().any(|&x| x > 64));
    }
    let n = u64::from(a.width()) * u64::from(a.height());
    (sum as f64 / (3 * n) as f64, far as f64 / n as f64)
}

#[test]
fn pages_render_as_pdftoppm_draws_them() {
    let bytes = sample();
    for n in 1..=5 {
        let ours = pdf::render_page(bytes.clone(), n - 1, 1.0).expect("renders");
        let ours = image::load_from_memory(&ours).expect("png").to_rgb8();
        let theirs = image::open(dir().join(format!("refs/sample.p{n}.png")))
            .expect("reference png")
            .to_rgb8();
        // pdftoppm rounds a fractional page size up, hayro down (A5 is
        // 419.5 x 595.3 points): at most a pixel apart, compared where both draw.
        let (w, h) = (
            ours.width().min(theirs.width()),
            ours.height().min(theirs.height()),
        );
        assert!(
            ours.width().abs_diff(theirs.width()) <= 1
                && ours.height().abs_diff(theirs.height()) <= 1,
            "page {n}: {:?} against {:?}",
            ours.dimensions(),
            theirs.dimensions()
        );
        let ours = image::imageops::crop_imm(&ours, 0, 0, w, h).to_image();
        let theirs = image::imageops::crop_imm(&theirs, 0, 0, w, h).to_image();
        let (mean, far) = difference(&ours, &theirs);
        eprintln!(
            "page {n}: mean |diff| {mean:.3}, pixels off by > 64: {:.4}%",
            far * 100.0
        );
        // Anti-aliasing differs between the two rasterizers at glyph edges;
        // a missing glyph, image or rotation moves both figures by far more.
        assert!(mean < 2.5, "page {n}: mean difference {mean}");
        assert!(far < 0.02, "page {n}: {far} of the pixels differ");
    }
    // The measure tells pages apart: page 1 is not page 2, nor blank.
    let one = pdf::render_page(bytes.clone(), 0, 1.0).expect("renders");
    let one = image::load_from_memory(&one).expect("png").to_rgb8();
    let two = image::open(dir().join("refs/sample.p2.png"))
        .expect("png")
        .to_rgb8();
    let blank = image::RgbImage::from_pixel(one.width(), one.height(), image::Rgb([255; 3]));
    for other in [two, blank] {
        let (mean, far) = difference(&one, &other);
        assert!(mean > 2.5 || far > 0.02, "{mean} {far}");
    }
}

#[test]
fn pages_render_to_the_asked_size() {
    let opts = ReadOptions {
        render_px: Some(256),
        ..ReadOptions::default()
    };
    let doc = pdf::read(sample(), &opts).expect("reads");
    let sizes: Vec<(u32, u32)> = doc
        .pages
        .iter()
        .map(|p| {
            let img = image::load_from_memory(p.image.as_deref().expect("image")).expect("png");
            (img.width(), img.height())
        })
        .collect();
    // Letter, letter, a landscape letter page turned upright by /Rotate 90
    // (as pdftoppm shows it), letter, A5.
    assert_eq!(
        sizes,
        [(197, 256), (197, 256), (197, 256), (197, 256), (180, 256)]
    );
}

#[test]
fn unreadable_documents_say_why() {
    let read = |name: &str| {
        pdf::read(
            std::fs::read(dir().join(name)).expect("fixture"),
            &ReadOptions::default(),
        )
    };
    assert_eq!(read("encrypted.pdf"), Err(DocumentError::Encrypted));
    assert_eq!(read("nopages.pdf"), Err(DocumentError::NoPages));
    assert!(matches!(
        pdf::read(
            b"%PDF-1.7\nnot a pdf at all".to_vec(),
            &ReadOptions::default()
        ),
        Err(DocumentError::Invalid(_))
    ));
    assert!(matches!(
        pdf::read(b"GIF89a".to_vec(), &ReadOptions::default()),
        Err(DocumentError::Invalid(_))
    ));
    let few = ReadOptions {
        max_pages: 4,
        ..ReadOptions::default()
    };
    assert_eq!(
        pdf::read(sample(), &few),
        Err(DocumentError::TooManyPages(5))
    );
}
