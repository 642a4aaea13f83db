//! MIME types: aliases, and a signature table that checks declared media
//! types (images, audio, video, PDF) against the bytes.

/// How many leading bytes the content checks look at.
pub const SNIFF_BYTES: usize = 4096;

/// The base type (parameters dropped, lowercase) with common aliases mapped
/// to one spelling, so that `audio/mp3` and `audio/mpeg` compare equal.
pub fn canonical(mime: &str) -> String {
    let base = mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let alias = match base.as_str() {
        "image/jpg" | "image/pjpeg" => "image/jpeg",
        "image/heic-sequence" => "image/heic",
        "image/heif-sequence" => "image/heif",
        "image/x-ms-bmp" => "image/bmp",
        "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "audio/wav",
        "audio/mpeg" | "audio/x-mp3" | "audio/mpeg3" | "audio/x-mpeg" => "audio/mp3",
        "audio/x-aac" | "audio/aacp" => "audio/aac",
        "audio/x-aiff" | "audio/aif" => "audio/aiff",
        "audio/x-flac" => "audio/flac",
        "audio/opus" | "audio/vorbis" | "application/ogg" => "audio/ogg",
        "audio/x-m4a" | "audio/m4a" => "audio/mp4",
        "video/mov" => "video/quicktime",
        "video/mpg" => "video/mpeg",
        "video/x-msvideo" | "video/msvideo" => "video/avi",
        "video/flv" => "video/x-flv",
        "video/x-ms-wmv" | "video/x-ms-asf" => "video/wmv",
        "video/3gp" | "video/3gpp2" => "video/3gpp",
        "video/x-m4v" => "video/mp4",
        "video/x-matroska" => "video/webm",
        "application/x-pdf" => "application/pdf",
        other => other,
    };
    alias.to_string()
}

/// Whether two MIME types name the same format.
pub fn same(a: &str, b: &str) -> bool {
    canonical(a) == canonical(b)
}

/// Whether this type's content is checked (images, audio, video, PDF).
pub fn is_checked_family(mime: &str) -> bool {
    let c = canonical(mime);
    c.starts_with("image/")
        || c.starts_with("audio/")
        || c.starts_with("video/")
        || c == "application/pdf"
}

type Check = fn(&[u8]) -> bool;

/// Known formats, in detection order (more specific signatures first).
const SIGNATURES: &[(&str, Check)] = &[
    ("image/png", |h| h.starts_with(b"\x89PNG\r\n\x1a\n")),
    ("image/jpeg", |h| h.starts_with(&[0xFF, 0xD8, 0xFF])),
    ("image/gif", |h| {
        h.starts_with(b"GIF87a") || h.starts_with(b"GIF89a")
    }),
    ("image/webp", |h| riff(h, b"WEBP")),
    ("image/heic", |h| ftyp_brand(h, HEIF_BRANDS)),
    ("image/heif", |h| ftyp_brand(h, HEIF_BRANDS)),
    ("image/avif", |h| ftyp_brand(h, &[b"avif", b"avis"])),
    ("image/bmp", |h| h.starts_with(b"BM")),
    ("image/tiff", |h| {
        h.starts_with(b"II*\0") || h.starts_with(b"MM\0*")
    }),
    ("application/pdf", |h| find(h, b"%PDF-", 1024)),
    ("audio/wav", |h| riff(h, b"WAVE")),
    ("audio/aiff", |h| {
        h.starts_with(b"FORM") && (at(h, 8, b"AIFF") || at(h, 8, b"AIFC"))
    }),
    ("audio/flac", |h| h.starts_with(b"fLaC") || id3(h)),
    ("audio/ogg", |h| h.starts_with(b"OggS")),
    ("audio/aac", |h| adts(h) || h.starts_with(b"ADIF") || id3(h)),
    ("audio/mp3", |h| id3(h) || mpeg_audio_frame(h)),
    ("audio/mp4", ftyp),
    ("audio/webm", ebml),
    ("video/mp4", ftyp),
    ("video/quicktime", |h| {
        ftyp(h)
            || [b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"]
                .iter()
                .any(|a| at(h, 4, *a))
    }),
    ("video/3gpp", ftyp),
    ("video/webm", ebml),
    ("video/avi", |h| riff(h, b"AVI ")),
    ("video/x-flv", |h| h.starts_with(b"FLV")),
    ("video/wmv", |h| {
        h.starts_with(&[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11])
    }),
    ("video/mpeg", |h| {
        h.starts_with(&[0, 0, 1, 0xBA]) || h.starts_with(&[0, 0, 1, 0xB3])
    }),
];

const HEIF_BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",
];

fn at(h: &[u8], offset: usize, what: &[u8]) -> bool {
    h.get(offset..offset + what.len()) == Some(what)
}

fn find(h: &[u8], what: &[u8], within: usize) -> bool {
    h[..h.len().min(within)]
        .windows(what.len())
        .any(|w| w == what)
}

fn riff(h: &[u8], kind: &[u8; 4]) -> bool {
    h.starts_with(b"RIFF") && at(h, 8, kind)
}

fn id3(h: &[u8]) -> bool {
    h.starts_with(b"ID3")
}

fn ebml(h: &[u8]) -> bool {
    h.starts_with(&[0x1A, 0x45, 0xDF, 0xA3])
}

/// An ISO base media file (MP4, MOV, 3GP, M4A, HEIF...): a `ftyp` box first.
fn ftyp(h: &[u8]) -> bool {
    at(h, 4, b"ftyp")
}

/// A `ftyp` box whose major or compatible brands include one of `brands`.
fn ftyp_brand(h: &[u8], brands: &[&[u8; 4]]) -> bool {
    if !ftyp(h) {
        return false;
    }
    let size = h
        .get(0..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .unwrap_or(0);
    let boxed = &h[..h.len().min(size.max(16))];
    boxed
        .get(8..)
        .unwrap_or_default()
        .chunks(4)
        .any(|c| brands.iter().any(|b| c == b.as_slice()))
}

/// An AAC ADTS frame header: sync word 0xFFF, layer bits 00.
fn adts(h: &[u8]) -> bool {
    h.len() >= 2 && h[0] == 0xFF && (h[1] & 0xF6) == 0xF0
}

/// An MPEG audio frame header (MP3): sync bits, a valid layer and bitrate.
fn mpeg_audio_frame(h: &[u8]) -> bool {
    h.len() >= 3
        && h[0] == 0xFF
        && (h[1] & 0xE0) == 0xE0
        && (h[1] & 0x06) != 0
        && (h[1] & 0x18) != 0x08
        && (h[2] & 0xF0) != 0xF0
}

/// Checks `head` (the first bytes of the content) against the declared type.
/// `Err` carries what the bytes look like instead. Types outside the checked
/// families, and checked-family subtypes without a known signature, pass.
pub fn check_content(declared: &str, head: &[u8]) -> Result<(), String> {
    let c = canonical(declared);
    let Some((_, check)) = SIGNATURES.iter().find(|(m, _)| *m == c) else {
        return Ok(());
    };
    if check(head) {
        Ok(())
    } else {
        Err(detect(head).map_or_else(|| "no known media format".to_string(), str::to_string))
    }
}

/// The first known format whose signature matches.
pub fn detect(head: &[u8]) -> Option<&'static str> {
    SIGNATURES
        .iter()
        .find(|(_, check)| check(head))
        .map(|(m, _)| *m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn aliases_compare_equal() {
        assert!(same("audio/mp3", "audio/mpeg"));
        assert!(same("audio/wav", "audio/x-wav"));
        assert!(same("IMAGE/JPG", "image/jpeg; q=1"));
        assert!(!same("image/png", "image/jpeg"));
        assert_eq!(canonical("Text/Plain; charset=utf-8"), "text/plain");
    }

    #[test]
    fn declared_media_types_are_checked_against_the_bytes() {
        assert!(check_content("image/png", PNG).is_ok());
        assert_eq!(
            check_content("image/jpeg", PNG),
            Err("image/png".to_string())
        );
        assert!(check_content("image/png", b"hello world").is_err());
        assert!(check_content("image/png", b"").is_err());
        assert!(check_content("application/pdf", b"%PDF-1.7\n").is_ok());
        assert!(check_content("application/pdf", b"not a pdf").is_err());
        assert!(check_content("audio/wav", b"RIFF\0\0\0\0WAVEfmt ").is_ok());
        assert!(check_content("audio/x-wav", b"RIFF\0\0\0\0WAVEfmt ").is_ok());
        assert!(check_content("audio/mpeg", b"ID3\x04\0").is_ok());
        assert!(check_content("audio/mp3", &[0xFF, 0xFB, 0x90, 0x00]).is_ok());
        assert!(check_content("audio/aac", &[0xFF, 0xF1, 0x50, 0x80]).is_ok());
        assert!(check_content("audio/mp3", &[0xFF, 0xF1, 0x50, 0x80]).is_err());
        assert!(check_content("video/mp4", b"\0\0\0\x18ftypmp42\0\0\0\0").is_ok());
        assert!(check_content("video/mp4", b"RIFF\0\0\0\0AVI LIST").is_err());
        assert!(check_content("image/heic", b"\0\0\0\x18ftypheic\0\0\0\0mif1").is_ok());
        assert!(check_content("image/heic", b"\0\0\0\x18ftypmp42\0\0\0\0isom").is_err());
        assert!(check_content("video/webm", &[0x1A, 0x45, 0xDF, 0xA3, 1]).is_ok());
    }

    #[test]
    fn unchecked_types_pass() {
        assert!(check_content("text/plain", PNG).is_ok());
        assert!(check_content("application/octet-stream", b"").is_ok());
        assert!(check_content("image/x-unknown-format", b"x").is_ok());
        assert!(!is_checked_family("text/plain"));
        assert!(is_checked_family("application/pdf"));
        assert!(is_checked_family("video/x-flv"));
    }

    #[test]
    fn detection_names_the_format() {
        assert_eq!(detect(PNG), Some("image/png"));
        assert_eq!(detect(b"%PDF-1.4"), Some("application/pdf"));
        assert_eq!(detect(b"plain text"), None);
    }
}
