//! A GGUF header reader in safe Rust: checks a file before llama.cpp sees
//! it (a clear error naming the file instead of an abort) and reads the
//! metadata hearth needs.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// A metadata value hearth reads (arrays are skipped, only their length kept).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    Int(i128),
    Float(f64),
    Bool(bool),
    Str(String),
    Array { len: u64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    pub version: u32,
    pub tensor_count: u64,
    pub metadata: HashMap<String, MetaValue>,
}

impl GgufHeader {
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.metadata.get(key) {
            Some(MetaValue::Str(s)) => Some(s),
            _ => None,
        }
    }
    pub fn int(&self, key: &str) -> Option<i128> {
        match self.metadata.get(key) {
            Some(MetaValue::Int(i)) => Some(*i),
            _ => None,
        }
    }
    pub fn float(&self, key: &str) -> Option<f64> {
        match self.metadata.get(key) {
            Some(MetaValue::Float(f)) => Some(*f),
            Some(MetaValue::Int(i)) => Some(*i as f64),
            _ => None,
        }
    }
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.metadata.get(key) {
            Some(MetaValue::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    pub fn architecture(&self) -> Option<&str> {
        self.str("general.architecture")
    }
    /// The weights' type as llama.cpp names it (`general.file_type`, a
    /// `llama_ftype`): `Q4_K_M`, `F16` …
    pub fn file_type_name(&self) -> Option<&'static str> {
        Some(match self.int("general.file_type")? {
            0 => "F32",
            1 => "F16",
            2 => "Q4_0",
            3 => "Q4_1",
            7 => "Q8_0",
            8 => "Q5_0",
            9 => "Q5_1",
            10 => "Q2_K",
            11 => "Q3_K_S",
            12 => "Q3_K_M",
            13 => "Q3_K_L",
            14 => "Q4_K_S",
            15 => "Q4_K_M",
            16 => "Q5_K_S",
            17 => "Q5_K_M",
            18 => "Q6_K",
            32 => "BF16",
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
}

const MAX_STRING: u64 = 64 << 20;
const MAX_COUNT: u64 = 1 << 32;

struct Cursor<R> {
    r: R,
}

impl<R: Read + Seek> Cursor<R> {
    fn bytes<const N: usize>(&mut self) -> std::io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b)?;
        Ok(b)
    }
    fn u32(&mut self) -> std::io::Result<u32> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> std::io::Result<u64> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }
    fn string(&mut self) -> Result<String, String> {
        let len = self.u64().map_err(eof)?;
        if len > MAX_STRING {
            return Err(format!("a string of {len} bytes is implausible"));
        }
        let mut buf = vec![0u8; len as usize];
        self.r.read_exact(&mut buf).map_err(eof)?;
        String::from_utf8(buf).map_err(|_| "a metadata string is not UTF-8".to_string())
    }
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        let n = i64::try_from(n).map_err(|_| std::io::Error::other("offset overflow"))?;
        self.r.seek(SeekFrom::Current(n)).map(|_| ())
    }

    /// Reads one value of the given GGUF type.
    fn value(&mut self, ty: u32) -> Result<MetaValue, String> {
        let io = eof;
        Ok(match ty {
            0 => MetaValue::Int(i128::from(self.bytes::<1>().map_err(io)?[0])),
            1 => MetaValue::Int(i128::from(self.bytes::<1>().map_err(io)?[0] as i8)),
            2 => MetaValue::Int(i128::from(u16::from_le_bytes(self.bytes().map_err(io)?))),
            3 => MetaValue::Int(i128::from(i16::from_le_bytes(self.bytes().map_err(io)?))),
            4 => MetaValue::Int(i128::from(self.u32().map_err(io)?)),
            5 => MetaValue::Int(i128::from(i32::from_le_bytes(self.bytes().map_err(io)?))),
            6 => MetaValue::Float(f64::from(f32::from_le_bytes(self.bytes().map_err(io)?))),
            7 => MetaValue::Bool(self.bytes::<1>().map_err(io)?[0] != 0),
            8 => MetaValue::Str(self.string()?),
            9 => {
                let elem = self.u32().map_err(io)?;
                let len = self.u64().map_err(io)?;
                if len > MAX_COUNT {
                    return Err(format!("an array of {len} items is implausible"));
                }
                match fixed_size(elem) {
                    Some(size) => self.skip(size * len).map_err(io)?,
                    None => {
                        for _ in 0..len {
                            self.value(elem)?;
                        }
                    }
                }
                MetaValue::Array { len }
            }
            10 => MetaValue::Int(i128::from(self.u64().map_err(io)?)),
            11 => MetaValue::Int(i128::from(i64::from_le_bytes(self.bytes().map_err(io)?))),
            12 => MetaValue::Float(f64::from_le_bytes(self.bytes().map_err(io)?)),
            other => return Err(format!("unknown metadata type {other}")),
        })
    }
}

/// Bytes of a tensor of `elems` elements of ggml type `ty` (None: a type
/// this table does not know; llama.cpp checks those itself).
fn tensor_bytes(ty: u32, elems: u64) -> Option<u64> {
    let (block, size) = match ty {
        0 => (1, 4),       // F32
        1 | 30 => (1, 2),  // F16, BF16
        2 => (32, 18),     // Q4_0
        3 => (32, 20),     // Q4_1
        6 => (32, 22),     // Q5_0
        7 => (32, 24),     // Q5_1
        8 => (32, 34),     // Q8_0
        9 => (32, 36),     // Q8_1
        10 => (256, 84),   // Q2_K
        11 => (256, 110),  // Q3_K
        12 => (256, 144),  // Q4_K
        13 => (256, 176),  // Q5_K
        14 => (256, 210),  // Q6_K
        15 => (256, 292),  // Q8_K
        24 => (1, 1),      // I8
        25 => (1, 2),      // I16
        26 => (1, 4),      // I32
        27 | 28 => (1, 8), // I64, F64
        _ => return None,
    };
    Some(elems.div_ceil(block) * size)
}

const EOF: &str = "truncated";

/// An early end of file reads as truncation; other I/O errors as themselves.
fn eof(e: std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        EOF.to_string()
    } else {
        e.to_string()
    }
}

fn fixed_size(ty: u32) -> Option<u64> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// Reads and checks a GGUF file's header, metadata and tensor table.
pub fn read_header(path: &Path) -> Result<GgufHeader, GgufError> {
    let invalid = |message: String| GgufError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|err| GgufError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    let size = file
        .metadata()
        .map_err(|err| GgufError::Io {
            path: path.to_path_buf(),
            err,
        })?
        .len();
    let mut c = Cursor {
        r: BufReader::new(file),
    };
    let magic = c
        .bytes::<4>()
        .map_err(|_| invalid("the file is too short to be a GGUF model".into()))?;
    if &magic != b"GGUF" {
        return Err(invalid("not a GGUF file (bad magic); hearth loads GGUF models (convert others with llama.cpp's convert_hf_to_gguf.py)".into()));
    }
    let truncated = |what: &str| invalid(format!("truncated GGUF file: it ends inside the {what}"));
    let version = c.u32().map_err(|_| truncated("header"))?;
    if !(2..=3).contains(&version) {
        return Err(invalid(format!(
            "unsupported GGUF version {version} (2 and 3 are supported)"
        )));
    }
    let tensor_count = c.u64().map_err(|_| truncated("header"))?;
    let kv_count = c.u64().map_err(|_| truncated("header"))?;
    if tensor_count > MAX_COUNT || kv_count > MAX_COUNT {
        return Err(invalid(format!("implausible header ({tensor_count} tensors, {kv_count} metadata keys): the file is corrupt")));
    }
    let mut metadata = HashMap::new();
    for _ in 0..kv_count {
        let meta_err = |e: String, at: &str| {
            if e == EOF {
                truncated("metadata")
            } else {
                invalid(format!("corrupt metadata{at}: {e}"))
            }
        };
        let key = c.string().map_err(|e| meta_err(e, ""))?;
        let ty = c.u32().map_err(|_| truncated("metadata"))?;
        let value = c
            .value(ty)
            .map_err(|e| meta_err(e, &format!(" at {key}")))?;
        metadata.insert(key, value);
    }
    let mut max_end = 0u64;
    for _ in 0..tensor_count {
        let _name = c.string().map_err(|_| truncated("tensor table"))?;
        let dims = c.u32().map_err(|_| truncated("tensor table"))?;
        if dims > 8 {
            return Err(invalid(format!(
                "a tensor with {dims} dimensions: the file is corrupt"
            )));
        }
        let mut elems = 1u64;
        for _ in 0..dims {
            elems = elems.saturating_mul(c.u64().map_err(|_| truncated("tensor table"))?);
        }
        let ty = c.u32().map_err(|_| truncated("tensor table"))?;
        let offset = c.u64().map_err(|_| truncated("tensor table"))?;
        let bytes = tensor_bytes(ty, elems).unwrap_or(1);
        max_end = max_end.max(offset.saturating_add(bytes));
    }
    let table_end = c.r.stream_position().map_err(|err| GgufError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    let align = match metadata.get("general.alignment") {
        Some(MetaValue::Int(a)) if *a > 0 => *a as u64,
        _ => 32,
    };
    let data_start = table_end.div_ceil(align) * align;
    if tensor_count > 0 && data_start.saturating_add(max_end) > size {
        return Err(invalid(format!(
            "truncated GGUF file: tensor data should end at byte {} but the file has {size} bytes",
            data_start.saturating_add(max_end)
        )));
    }
    Ok(GgufHeader {
        version,
        tensor_count,
        metadata,
    })
}
