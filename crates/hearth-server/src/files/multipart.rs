//! A small reader for one-shot multipart uploads (`multipart/related` as
//! Google documents it, and `multipart/form-data` as `curl -F` sends it):
//! a JSON metadata part, then the media part.

use std::ops::Range;

/// One part: its Content-Type and where its body lies in the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub content_type: Option<String>,
    pub body: Range<usize>,
}

/// The boundary of a `multipart/*` Content-Type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';');
    let kind = pieces.next()?.trim().to_ascii_lowercase();
    if !kind.starts_with("multipart/") {
        return None;
    }
    pieces.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Splits `body` into its parts. Lines may end in CRLF or LF.
pub fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut at = find(body, delim, 0)
        .ok_or_else(|| format!("the multipart body has no boundary line --{boundary}"))?;
    let mut parts = Vec::new();
    loop {
        let after = at + delim.len();
        if body.get(after..after + 2) == Some(b"--") {
            return Ok(parts);
        }
        let line_end =
            find(body, b"\n", after).ok_or("a multipart boundary line is not terminated")?;
        let start = line_end + 1;
        let next = find(body, &[b"\n", delim].concat(), start)
            .ok_or("the multipart body ends without a closing boundary")?;
        let mut end = next;
        if end > start && body[end - 1] == b'\r' {
            end -= 1;
        }
        parts.push(part(&body[start..end], start)?);
        if parts.len() > 2 {
            return Err(
                "a multipart upload has at most two parts: the metadata, then the media".into(),
            );
        }
        at = next + 1;
    }
}

/// One part's headers and body (offsets relative to the whole body).
fn part(raw: &[u8], offset: usize) -> Result<Part, String> {
    let (head_len, sep) = match (find(raw, b"\r\n\r\n", 0), find(raw, b"\n\n", 0)) {
        (Some(a), Some(b)) if b < a => (b, 2),
        (Some(a), _) => (a, 4),
        (None, Some(b)) => (b, 2),
        // A part that starts with its blank line has no headers.
        (None, None) if raw.starts_with(b"\r\n") => (0, 2),
        (None, None) if raw.starts_with(b"\n") => (0, 1),
        (None, None) => return Err("a multipart part has no blank line after its headers".into()),
    };
    let head = String::from_utf8_lossy(&raw[..head_len]);
    let content_type = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-type")
            .then(|| v.trim().to_string())
    });
    let start = offset + head_len + sep;
    Ok(Part {
        content_type,
        body: start..offset + raw.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn related_with_metadata_and_media() {
        let body = b"--xyz\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{\"file\":{}}\r\n--xyz\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\nx--xyz\r\n--xyz--\r\n";
        let ct = "multipart/related; boundary=\"xyz\"";
        let b = boundary(ct).expect("boundary");
        let parts = parse(body, &b).expect("parse");
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0].content_type.as_deref(),
            Some("application/json; charset=UTF-8")
        );
        assert_eq!(&body[parts[0].body.clone()], b"{\"file\":{}}");
        assert_eq!(parts[1].content_type.as_deref(), Some("image/png"));
        assert_eq!(
            &body[parts[1].body.clone()],
            b"\x89PNG\r\nx--xyz",
            "a boundary not at a line start is data"
        );
    }

    #[test]
    fn lf_only_and_form_data() {
        let body = b"--b\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\nContent-Type: text/plain\n\nhello\n--b--\n";
        let parts = parse(body, "b").expect("parse");
        assert_eq!(parts.len(), 1);
        assert_eq!(&body[parts[0].body.clone()], b"hello");
        assert_eq!(
            boundary("multipart/form-data; boundary=b").as_deref(),
            Some("b")
        );
        assert_eq!(boundary("application/json"), None);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        assert!(parse(b"no boundary here", "b").is_err());
        assert!(parse(b"--b\r\nContent-Type: text/plain\r\n\r\nunterminated", "b").is_err());
        let three = b"--b\n\na\n--b\n\nb\n--b\n\nc\n--b--";
        assert!(parse(three, "b").is_err());
    }
}
