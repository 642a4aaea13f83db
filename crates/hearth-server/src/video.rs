//! Video parts: read before conversion by the `ffmpeg` and `ffprobe`
//! programs (FFmpeg, from the system: `scripts/deps.sh` installs it), as
//! subprocesses under a time limit and an address-space limit, never on
//! the async threads' stacks or the engine thread. A video becomes what
//! Gemini makes of it: frames sampled at `videoMetadata.fps` (1 by default)
//! between `startOffset` and `endOffset`, each after its `MM:SS`
//! timestamp, then the audio track for a model that reads audio.
//!
//! Why a subprocess and not the libav* bindings: FFmpeg reads every
//! container and codec Gemini names (MP4, MPEG, MOV, AVI, FLV, MPG, WebM,
//! WMV, 3GPP) and is the reference for what a frame at a time is; as a
//! process of its own, a hostile file that crashes a demuxer or exhausts
//! memory ends that process only, its limits are the kernel's, and hearth
//! builds without FFmpeg's headers. The cost: a process per video and a
//! temporary file (MP4's index may sit at its end, so the input must seek).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use hearth_engine::{ModelInfo, VideoPart};
use hearth_wire::{Content, Part};
use tokio::io::AsyncReadExt;

use crate::convert::{payloads, FileParts};
use crate::ApiError;

/// The longest video hearth reads (as its container declares it, or as
/// decoding finds it).
pub const MAX_VIDEO_SECONDS: f64 = 3600.0;
/// The most frames one video gives.
pub const MAX_FRAMES: usize = 1024;
/// The most pixels a frame may declare.
pub const MAX_PIXELS: u64 = 8192 * 8192;
/// The side frames are scaled to fit when the projector does not say.
const DEFAULT_FRAME_PX: u32 = 768;
/// What one ffmpeg or ffprobe run may take.
const TIME_LIMIT: Duration = Duration::from_secs(120);
/// Their address space.
const MEMORY_LIMIT: u64 = 3 << 30;

/// ffmpeg and ffprobe runs at once, over all requests: one per core (a
/// flood of videos queues here rather than forking a process each).
fn runs() -> &'static tokio::sync::Semaphore {
    static RUNS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    RUNS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    })
}

/// Whether a declared MIME type is a video.
pub fn is_video(mime: &str) -> bool {
    mime.trim().to_ascii_lowercase().starts_with("video/")
}

/// Reads every video among the parts of `contents` (inline, or a stored
/// file already in `files`) into `files`, by the part's path, for a model
/// that reads images; for other models the conversion answers the 400.
pub async fn read_videos(
    contents: &[Content],
    info: &ModelInfo,
    files: &mut FileParts,
) -> Result<(), ApiError> {
    if !info.capabilities.reads("image/png") {
        return Ok(());
    }
    for p in payloads(contents, files, is_video) {
        let plan = Plan::of(&p.at, p.part, info)?;
        let parts = read(&p.bytes, &plan)
            .await
            .map_err(|e| e.into_api(&p.field))?;
        files.insert_video(p.at, Arc::new(parts));
    }
    Ok(())
}

/// What to take of a video.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub start: f64,
    pub end: Option<f64>,
    pub fps: f64,
    /// Frames are scaled to fit in a square of this side.
    pub side: u32,
    /// The audio track too.
    pub audio: bool,
}

impl Plan {
    fn of(at: &str, part: &Part, info: &ModelInfo) -> Result<Plan, ApiError> {
        let meta = part.video_metadata.clone().unwrap_or_default();
        let field = |name: &str| format!("{at}.video_metadata.{name}");
        let offset = |v: &Option<String>, name: &str| -> Result<Option<f64>, ApiError> {
            v.as_deref()
                .map(|s| {
                    parse_duration(s).ok_or_else(|| {
                        ApiError::field(
                            &field(name),
                            format!("{s:?} is not a duration such as \"1.5s\""),
                        )
                    })
                })
                .transpose()
        };
        let start = offset(&meta.start_offset, "start_offset")?.unwrap_or(0.0);
        let end = offset(&meta.end_offset, "end_offset")?;
        if end.is_some_and(|e| e <= start) {
            return Err(ApiError::field(
                &field("end_offset"),
                "endOffset must come after startOffset",
            ));
        }
        let fps = meta.fps.unwrap_or(1.0);
        if fps.is_nan() || fps <= 0.0 || fps > 24.0 {
            return Err(ApiError::field(
                &field("fps"),
                format!("fps must be in (0, 24], got {fps}"),
            ));
        }
        Ok(Plan {
            start,
            end,
            fps,
            side: info.capabilities.image_size.unwrap_or(DEFAULT_FRAME_PX),
            audio: info.capabilities.reads("audio/wav"),
        })
    }
}

/// A protobuf Duration as JSON writes it: seconds with an `s` ("1.5s").
fn parse_duration(s: &str) -> Option<f64> {
    let v: f64 = s.trim().strip_suffix('s')?.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// `MM:SS` (minutes past 59 as they are: "75:03").
pub fn timestamp(seconds: f64) -> String {
    let s = seconds.max(0.0).floor() as u64;
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// Why a video could not be read.
#[derive(Debug)]
pub enum VideoError {
    /// The file's fault: a 400 naming the part.
    Input(String),
    /// No ffmpeg on this server.
    NoDecoder,
    Internal(String),
}

impl VideoError {
    /// The message without the temporary file's path (ffmpeg names its
    /// input in its errors): a client never sees the server's paths.
    fn without(self, path: &str) -> VideoError {
        match self {
            VideoError::Input(m) => VideoError::Input(m.replace(path, "the video")),
            other => other,
        }
    }

    fn into_api(self, field: &str) -> ApiError {
        match self {
            VideoError::Input(m) => ApiError::field(field, m),
            VideoError::NoDecoder => ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "this server has no video decoder: ffmpeg and ffprobe must be on its PATH (scripts/deps.sh installs them)",
            ),
            VideoError::Internal(m) => {
                tracing::error!(%field, "reading a video failed: {m}");
                ApiError::internal("An internal error has occurred while reading a video.")
            }
        }
    }
}

/// The frames (with their timestamps) and audio track of a video.
pub async fn read(bytes: &[u8], plan: &Plan) -> Result<Vec<VideoPart>, VideoError> {
    let file = TempFile::write(bytes).await?;
    let path = file.0.to_string_lossy().into_owned();
    read_file(&file, plan).await.map_err(|e| e.without(&path))
}

async fn read_file(file: &TempFile, plan: &Plan) -> Result<Vec<VideoPart>, VideoError> {
    let probe = probe(&file.0).await?;
    if probe.width == 0 || probe.height == 0 {
        return Err(VideoError::Input("the file holds no video stream".into()));
    }
    if u64::from(probe.width) * u64::from(probe.height) > MAX_PIXELS {
        return Err(VideoError::Input(format!(
            "its frames are {}x{} pixels, more than the {MAX_PIXELS} hearth reads",
            probe.width, probe.height
        )));
    }
    if probe.duration.is_nan() || probe.duration <= 0.0 {
        return Err(VideoError::Input("the video declares no duration".into()));
    }
    if probe.duration > MAX_VIDEO_SECONDS {
        return Err(VideoError::Input(format!(
            "the video is {:.0} s long; hearth reads videos of at most {MAX_VIDEO_SECONDS:.0} s",
            probe.duration
        )));
    }
    if plan.start >= probe.duration {
        return Err(VideoError::Input(format!(
            "startOffset {}s is past the end of the video ({:.3} s)",
            plan.start, probe.duration
        )));
    }
    let end = plan.end.unwrap_or(probe.duration).min(probe.duration);
    let length = end - plan.start;
    let frames = ((length * plan.fps).ceil() as usize).max(1);
    if frames > MAX_FRAMES {
        return Err(VideoError::Input(format!(
            "{length:.1} s at {} frames a second is {frames} frames; hearth reads at most {MAX_FRAMES} (lower videoMetadata.fps or clip it with startOffset / endOffset)",
            plan.fps
        )));
    }
    let side = plan.side.max(16);
    let path = file.0.to_string_lossy().into_owned();
    let (ss, t) = (format!("{:.6}", plan.start), format!("{length:.6}"));
    let filter = format!(
        "fps={},scale=w={side}:h={side}:force_original_aspect_ratio=decrease",
        plan.fps
    );
    let frames_arg = frames.to_string();
    // Seeking to 0 is left out: in some containers (an FLV whose video
    // starts after its audio) an input seek to 0 drops every frame.
    let mut head: Vec<&str> = vec!["-nostdin", "-v", "error"];
    if plan.start > 0.0 {
        head.extend(["-ss", ss.as_str()]);
    }
    head.extend(["-t", t.as_str(), "-i", path.as_str()]);
    let frame_args: Vec<&str> = head
        .iter()
        .copied()
        .chain([
            "-map",
            "0:v:0",
            "-vf",
            filter.as_str(),
            "-frames:v",
            frames_arg.as_str(),
            "-f",
            "image2pipe",
            "-c:v",
            "png",
            "pipe:1",
        ])
        .collect();
    let png = run(
        "ffmpeg",
        &frame_args,
        frames * (side as usize * side as usize * 4 + 4096) + (1 << 20),
    )
    .await?;
    let pngs = split_pngs(&png).ok_or_else(|| {
        VideoError::Internal("ffmpeg wrote something other than PNG frames".into())
    })?;
    if pngs.is_empty() {
        return Err(VideoError::Input("no frame of the video decodes".into()));
    }
    let mut parts = Vec::with_capacity(pngs.len() * 2 + 1);
    for (k, frame) in pngs.into_iter().enumerate() {
        parts.push(VideoPart::Timestamp(format!(
            "{} ",
            timestamp(plan.start + k as f64 / plan.fps)
        )));
        parts.push(VideoPart::Frame(Arc::new(frame)));
    }
    if plan.audio && probe.audio {
        let audio_args: Vec<&str> = head
            .iter()
            .copied()
            .chain([
                "-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "wav", "pipe:1",
            ])
            .collect();
        let wav = run(
            "ffmpeg",
            &audio_args,
            (length * 16000.0 * 2.0) as usize + (1 << 20),
        )
        .await?;
        if wav.len() > 44 + 2 * 400 {
            parts.push(VideoPart::Audio(Arc::new(wav)));
        }
    }
    Ok(parts)
}

/// What ffprobe says of a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    pub duration: f64,
    pub width: u32,
    pub height: u32,
    pub audio: bool,
}

async fn probe(path: &std::path::Path) -> Result<Probe, VideoError> {
    let path = path.to_string_lossy().into_owned();
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            &path,
        ],
        1 << 20,
    )
    .await?;
    let v: serde_json::Value = serde_json::from_slice(&out)
        .map_err(|e| VideoError::Internal(format!("ffprobe's JSON: {e}")))?;
    let num = |v: &serde_json::Value| -> Option<f64> {
        v.as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| v.as_f64())
    };
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams.iter().find(|s| s["codec_type"] == "video");
    let dim = |k: &str| {
        video
            .and_then(|s| s[k].as_u64())
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    };
    let duration = num(&v["format"]["duration"])
        .or_else(|| video.and_then(|s| num(&s["duration"])))
        .unwrap_or(0.0);
    Ok(Probe {
        duration,
        width: dim("width"),
        height: dim("height"),
        audio: streams.iter().any(|s| s["codec_type"] == "audio"),
    })
}

/// Runs `program args` under the time and memory limits; its stdout, at
/// most `max` bytes. A failure of the program is the input's fault.
async fn run(program: &str, args: &[&str], max: usize) -> Result<Vec<u8>, VideoError> {
    let _permit = runs()
        .acquire()
        .await
        .map_err(|_| VideoError::Internal("the video decoders are closed".into()))?;
    let mut cmd = if std::path::Path::new("/usr/bin/prlimit").exists() {
        let mut c = tokio::process::Command::new("/usr/bin/prlimit");
        c.arg(format!("--as={MEMORY_LIMIT}"))
            .arg(format!("--cpu={}", 4 * TIME_LIMIT.as_secs()))
            .arg("--")
            .arg(program);
        c
    } else {
        tokio::process::Command::new(program)
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => VideoError::NoDecoder,
        _ => VideoError::Internal(format!("cannot start {program}: {e}")),
    })?;
    let mut stdout = child.stdout.take().ok_or(VideoError::NoDecoder)?;
    let mut stderr = child.stderr.take().ok_or(VideoError::NoDecoder)?;
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            (&mut stdout)
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .await
        };
        let read_err = async { (&mut stderr).take(64 * 1024).read_to_end(&mut err).await };
        let (a, b) = tokio::join!(read_out, read_err);
        a.and(b).map_err(|e| VideoError::Internal(e.to_string()))?;
        if out.len() > max {
            return Err(VideoError::Input(format!(
                "{program} produced more than the {max} bytes hearth takes from one video"
            )));
        }
        let status = child
            .wait()
            .await
            .map_err(|e| VideoError::Internal(e.to_string()))?;
        Ok((status, out, err))
    };
    let (status, out, err) = tokio::time::timeout(TIME_LIMIT, work).await.map_err(|_| {
        VideoError::Input(format!(
            "reading the video took more than {} s",
            TIME_LIMIT.as_secs()
        ))
    })??;
    if !status.success() {
        if program == "ffprobe" && err.is_empty() && out.is_empty() {
            return Err(VideoError::NoDecoder);
        }
        let why = String::from_utf8_lossy(&err);
        let why = why
            .lines()
            .last()
            .unwrap_or("it could not be decoded")
            .trim();
        let shown: String = why.chars().take(200).collect();
        return Err(VideoError::Input(format!(
            "not a video hearth can read ({shown})"
        )));
    }
    Ok(out)
}

/// Consecutive PNG files, as ffmpeg's image2pipe writes them.
fn split_pngs(mut bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if !bytes.starts_with(SIGNATURE) {
            return None;
        }
        let mut at = SIGNATURE.len();
        loop {
            let len = u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize;
            let kind = bytes.get(at + 4..at + 8)?;
            at = at.checked_add(12 + len)?;
            if at > bytes.len() {
                return None;
            }
            if kind == b"IEND" {
                break;
            }
        }
        out.push(bytes[..at].to_vec());
        bytes = &bytes[at..];
    }
    Some(out)
}

/// The video's bytes in a file of hearth's own naming (MP4 and MOV put
/// their index where they like, so ffmpeg must be able to seek), removed
/// when dropped.
struct TempFile(PathBuf);

impl TempFile {
    async fn write(bytes: &[u8]) -> Result<TempFile, VideoError> {
        let name = format!("hearth-video-{}", crate::generate::response_id());
        let path = std::env::temp_dir().join(name);
        tokio::fs::write(&path, bytes)
            .await
            .map_err(|e| VideoError::Internal(format!("cannot write a temporary file: {e}")))?;
        Ok(TempFile(path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_fps_and_timestamps() {
        assert_eq!(parse_duration("1.5s"), Some(1.5));
        assert_eq!(parse_duration("90s"), Some(90.0));
        assert_eq!(parse_duration("3"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(timestamp(0.0), "00:00");
        assert_eq!(timestamp(61.9), "01:01");
        assert_eq!(timestamp(4503.0), "75:03");
    }

    #[test]
    fn png_streams_split_at_iend() {
        let png = |n: u8| {
            let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
            v.extend_from_slice(&1u32.to_be_bytes());
            v.extend_from_slice(b"IDAT");
            v.push(n);
            v.extend_from_slice(&[0; 4]);
            v.extend_from_slice(&0u32.to_be_bytes());
            v.extend_from_slice(b"IEND");
            v.extend_from_slice(&[0; 4]);
            v
        };
        let both = [png(1), png(2)].concat();
        assert_eq!(split_pngs(&both), Some(vec![png(1), png(2)]));
        assert_eq!(split_pngs(&both[..both.len() - 3]), None);
        assert_eq!(split_pngs(b"junk"), None);
    }
}
