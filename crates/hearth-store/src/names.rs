//! File ids, upload ids and the other client-given strings. None of them is
//! ever used as a path as given: ids are checked against a strict alphabet,
//! display names and file names are metadata only.

use crate::StoreError;

/// Longest client-chosen file id (the part after `files/`).
pub const MAX_ID_LEN: usize = 40;
/// Length of generated file ids.
pub const GENERATED_ID_LEN: usize = 12;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 512;
/// Longest MIME type, in bytes.
pub const MAX_MIME_LEN: usize = 255;
/// Upload ids: 32 random bytes in lowercase hex (256 bits).
const UPLOAD_ID_BYTES: usize = 32;

/// The id inside `files/<id>` (or a bare `<id>`): 1–40 characters of
/// lowercase letters, digits and dashes, not starting or ending with a dash.
pub fn parse_file_id(name: &str) -> Result<String, StoreError> {
    let id = name.strip_prefix("files/").unwrap_or(name);
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(id.to_string())
    } else {
        let shown: String = name.chars().take(64).collect();
        Err(StoreError::InvalidArgument(format!(
            "Invalid file name \"{shown}\": a file name is files/<id> where the id is 1 to {MAX_ID_LEN} characters of lowercase letters, digits and dashes (not starting or ending with a dash)"
        )))
    }
}

/// A fresh file id: 12 lowercase letters and digits.
pub fn generate_file_id() -> Result<String, StoreError> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    // Bytes at or above 252 (= 7 * 36) are dropped so every symbol is equally likely.
    let mut out = String::with_capacity(GENERATED_ID_LEN);
    while out.len() < GENERATED_ID_LEN {
        let mut buf = [0u8; 32];
        random(&mut buf)?;
        for b in buf.into_iter().filter(|b| *b < 252) {
            if out.len() == GENERATED_ID_LEN {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b % 36)]));
        }
    }
    Ok(out)
}

/// A fresh upload id, the credential of an upload session.
pub fn generate_upload_id() -> Result<String, StoreError> {
    let mut buf = [0u8; UPLOAD_ID_BYTES];
    random(&mut buf)?;
    Ok(crate::hex(&buf))
}

/// Whether `s` has the shape of an upload id (checked before any lookup).
pub fn is_upload_id(s: &str) -> bool {
    s.len() == UPLOAD_ID_BYTES * 2
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn random(buf: &mut [u8]) -> Result<(), StoreError> {
    getrandom::fill(buf).map_err(|e| StoreError::Io {
        op: "drawing random bytes for an id",
        source: std::io::Error::other(e.to_string()),
    })
}

/// A display name: at most 512 characters, no control characters.
pub fn check_display_name(name: &str) -> Result<(), StoreError> {
    let chars = name.chars().count();
    if chars > MAX_DISPLAY_NAME_CHARS {
        return Err(StoreError::InvalidArgument(format!(
            "displayName is {chars} characters long; the limit is {MAX_DISPLAY_NAME_CHARS}"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::InvalidArgument(
            "displayName must not contain control characters".into(),
        ));
    }
    Ok(())
}

/// A MIME type: `type/subtype` of RFC 6838 token characters, optionally
/// followed by parameters; at most 255 bytes.
pub fn check_mime_type(mime: &str) -> Result<(), StoreError> {
    let bad = || {
        let shown: String = mime.chars().take(64).collect();
        StoreError::InvalidArgument(format!(
            "Invalid MIME type \"{shown}\": expected type/subtype, such as text/plain or image/png"
        ))
    };
    if mime.len() > MAX_MIME_LEN || mime.chars().any(char::is_control) {
        return Err(bad());
    }
    let base = mime.split(';').next().unwrap_or_default().trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match base.split_once('/') {
        Some((t, s)) if token(t) && token(s) => Ok(()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_follow_the_alphabet() {
        for good in ["abc", "files/abc", "a-b-c", "0", "x".repeat(40).as_str()] {
            assert!(parse_file_id(good).is_ok(), "{good}");
        }
        let long = "x".repeat(41);
        for bad in [
            "",
            "files/",
            "../x",
            "a/b",
            "files/../etc",
            "ABC",
            "a_b",
            "-a",
            "a-",
            ".",
            "..",
            "a b",
            "é",
            "a\0b",
            "files/a/b",
            long.as_str(),
            "%2e%2e",
        ] {
            assert!(
                matches!(parse_file_id(bad), Err(StoreError::InvalidArgument(_))),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn generated_ids_have_the_documented_shape() {
        let a = generate_file_id().expect("id");
        let b = generate_file_id().expect("id");
        assert_eq!(a.len(), GENERATED_ID_LEN);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_ne!(a, b);
        assert_eq!(parse_file_id(&a).expect("valid"), a);
        let u = generate_upload_id().expect("upload id");
        assert!(is_upload_id(&u));
        assert!(!is_upload_id(&u[1..]));
        assert!(!is_upload_id(&u.to_uppercase()));
        assert!(!is_upload_id("../../etc/passwd"));
    }

    #[test]
    fn display_names_and_mime_types_are_checked() {
        assert!(check_display_name(&"é".repeat(512)).is_ok());
        assert!(check_display_name(&"é".repeat(513)).is_err());
        assert!(check_display_name("a\nb").is_err());
        assert!(
            check_display_name("../../etc/passwd").is_ok(),
            "metadata only"
        );
        for good in [
            "text/plain",
            "image/png",
            "text/plain; charset=utf-8",
            "application/vnd.ms-excel",
        ] {
            assert!(check_mime_type(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "png",
            "image/",
            "/png",
            "image/png/x",
            "te xt/plain",
            &"a/".repeat(200),
        ] {
            assert!(check_mime_type(bad).is_err(), "{bad}");
        }
    }
}
