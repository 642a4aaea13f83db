//! Video parts through the real `hearth serve` (ffmpeg and ffprobe from the
//! system, as `scripts/deps.sh` installs them): a video of N seconds at fps
//! F gives N x F frames, as ffmpeg's own frame extraction counts them, and
//! the same prompt tokens as those frames sent as images after their
//! timestamps; a model that reads audio also hears the track; hostile
//! files are 400s that leave the server serving.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{json, Value};
use support::{details, post, spawn_serve, Spawned};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn video(name: &str) -> Vec<u8> {
    std::fs::read(root().join("testdata/video").join(name)).expect("fixture")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A server stopped when the test ends, passed or not.
struct Server(Spawned);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

/// The tiny Gemma 3 vision model (4 positions an image, 64 x 64) and the
/// tiny Gemma 4 audio model (its projector reads images and audio).
fn start() -> Server {
    let m = root().join("testdata/models");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
    cmd.arg("serve")
        .arg("--model")
        .arg(format!(
            "{},{}",
            m.join("gemma3v-f32.gguf").display(),
            m.join("gemma4a-f32.gguf").display()
        ))
        .arg("--mmproj")
        .arg(format!(
            "{},{}",
            m.join("gemma3v-mmproj-f32.gguf").display(),
            m.join("gemma4a-mmproj-f32.gguf").display()
        ))
        .args(["--parallel", "1", "--ctx", "2048", "--threads", "2"])
        .env_remove("HEARTH_CONFIG")
        .env_remove("HEARTH_MMPROJ")
        .env_remove("HEARTH_MODEL")
        .env_remove("HEARTH_API_KEYS");
    Server(spawn_serve(cmd))
}

/// ffmpeg's own frame extraction: the PNG frames of `file` between
/// `start` and `start + length` at `fps`, scaled into `side` x `side`.
fn ffmpeg_frames(file: &Path, start: f64, length: f64, fps: f64, side: u32) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().expect("tempdir");
    let pattern = dir.path().join("f%04d.png");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-ss", &start.to_string(), "-t"])
        .arg(length.to_string())
        .arg("-i")
        .arg(file)
        .arg("-vf")
        .arg(format!(
            "fps={fps},scale=w={side}:h={side}:force_original_aspect_ratio=decrease"
        ))
        .arg(&pattern)
        .status()
        .expect("ffmpeg runs (bash scripts/deps.sh installs it)");
    assert!(status.success());
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("frames")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| std::fs::read(p).expect("frame"))
        .collect()
}

fn video_part(mime: &str, bytes: &[u8], meta: Value) -> Value {
    let mut part = json!({"inlineData": {"mimeType": mime, "data": b64(bytes)}});
    if !meta.is_null() {
        part["videoMetadata"] = meta;
    }
    part
}

#[tokio::test(flavor = "multi_thread")]
async fn videos_are_read_as_timestamped_frames_and_their_audio() {
    let server = start();
    let http = reqwest::Client::new();
    let method = |model: &str, m: &str| format!("{}/v1beta/models/{model}:{m}", server.0.url);
    let mp4 = video("test-3s.mp4");
    let path = root().join("testdata/video/test-3s.mp4");
    let count = |parts: Vec<Value>| json!({"contents": [{"role": "user", "parts": parts}]});

    // N seconds at fps F: N x F frames, each 4 positions on this projector,
    // as many as ffmpeg itself extracts; offsets clip the video.
    for (meta, start, length, fps) in [
        (Value::Null, 0.0, 3.0, 1.0),
        (json!({"fps": 2}), 0.0, 3.0, 2.0),
        (
            json!({"startOffset": "1s", "endOffset": "2.5s", "fps": 2}),
            1.0,
            1.5,
            2.0,
        ),
    ] {
        let frames = ffmpeg_frames(&path, start, length, fps, 64);
        assert_eq!(frames.len() as f64, (length * fps).ceil(), "{meta}");
        let body = count(vec![
            json!({"text": "What happens? "}),
            video_part("video/mp4", &mp4, meta.clone()),
        ]);
        let (status, counted) = post(&http, method("gemma3v-f32", "countTokens"), &body).await;
        assert_eq!(status, 200, "{counted}");
        assert_eq!(
            details(&counted, "VIDEO"),
            4 * frames.len() as u64,
            "{meta}: {counted}"
        );
        // The same frames sent as images, each after its timestamp.
        let mut parts = vec![json!({"text": "What happens? "})];
        for (k, png) in frames.iter().enumerate() {
            let t = (start + k as f64 / fps).floor() as u64;
            parts.push(json!({"text": format!("{:02}:{:02} ", t / 60, t % 60)}));
            parts.push(json!({"inlineData": {"mimeType": "image/png", "data": b64(png)}}));
        }
        let (status, as_images) =
            post(&http, method("gemma3v-f32", "countTokens"), &count(parts)).await;
        assert_eq!(status, 200, "{as_images}");
        assert_eq!(counted["totalTokens"], as_images["totalTokens"], "{meta}");
        assert_eq!(details(&counted, "VIDEO"), details(&as_images, "IMAGE"));
        // And generateContent reports what countTokens counted.
        let mut gen = body.clone();
        gen["generationConfig"] = json!({"maxOutputTokens": 2, "temperature": 0});
        let (status, answer) = post(&http, method("gemma3v-f32", "generateContent"), &gen).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["usageMetadata"]["promptTokenCount"], counted["totalTokens"],
            "{meta}"
        );
    }

    // WebM too; a model that reads audio hears the track (25 tokens a
    // second on Gemma 4), and a video without one gives no AUDIO.
    for (mime, file) in [("video/mp4", "test-3s.mp4"), ("video/webm", "test-3s.webm")] {
        let body = count(vec![
            video_part(mime, &video(file), Value::Null),
            json!({"text": "What is heard?"}),
        ]);
        let (status, counted) = post(&http, method("gemma4a-f32", "countTokens"), &body).await;
        assert_eq!(status, 200, "{file}: {counted}");
        assert!(details(&counted, "VIDEO") > 0, "{file}: {counted}");
        let audio = details(&counted, "AUDIO");
        assert!(
            (73..=77).contains(&audio),
            "{file}: {audio} audio tokens for 3 s"
        );
    }
    // Gemini's other containers, 1 s each: a frame and a second of audio.
    for (mime, file) in [
        ("video/mov", "test-1s.mov"),
        ("video/avi", "test-1s.avi"),
        ("video/x-flv", "test-1s.flv"),
        ("video/mpeg", "test-1s.mpg"),
        ("video/mpg", "test-1s.mpg"),
        ("video/wmv", "test-1s.wmv"),
        ("video/3gpp", "test-1s.3gp"),
    ] {
        let body = count(vec![video_part(mime, &video(file), Value::Null)]);
        let (status, counted) = post(&http, method("gemma4a-f32", "countTokens"), &body).await;
        assert_eq!(status, 200, "{file}: {counted}");
        assert!(details(&counted, "VIDEO") > 0, "{file}: {counted}");
        let audio = details(&counted, "AUDIO");
        assert!(
            (22..=28).contains(&audio),
            "{file}: {audio} audio tokens for 1 s"
        );
    }
    let silent = count(vec![video_part(
        "video/mp4",
        &video("test-2s-silent.mp4"),
        Value::Null,
    )]);
    let (status, counted) = post(&http, method("gemma4a-f32", "countTokens"), &silent).await;
    assert_eq!(status, 200, "{counted}");
    assert_eq!(details(&counted, "AUDIO"), 0);
    assert!(details(&counted, "VIDEO") > 0);

    // Hostile and bad input: 400s naming the part, and the server goes on.
    let truncated = &mp4[..mp4.len() / 3];
    for (mime, bytes, meta, why) in [
        (
            "video/x-flv",
            video("hostile-10h.flv"),
            Value::Null,
            "at most 3600 s",
        ),
        (
            "video/mp4",
            video("hostile-huge.y4m"),
            Value::Null,
            "pixels",
        ),
        ("video/mp4", truncated.to_vec(), Value::Null, "video"),
        ("video/mp4", mp4.clone(), json!({"fps": 30}), "fps"),
        (
            "video/mp4",
            mp4.clone(),
            json!({"startOffset": "9s"}),
            "past the end",
        ),
        (
            "video/mp4",
            mp4.clone(),
            json!({"startOffset": "soon"}),
            "duration",
        ),
    ] {
        let body = count(vec![video_part(mime, &bytes, meta.clone())]);
        let (status, v) = post(&http, method("gemma3v-f32", "generateContent"), &body).await;
        assert_eq!(status, 400, "{meta} {why}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("contents[0].parts[0]"), "{message}");
        assert!(message.contains(why), "{why}: {message}");
        assert!(
            !message.contains("hearth-video-"),
            "a server path: {message}"
        );
    }
    let (status, _) = post(&http, method("gemma3v-f32", "countTokens"), &silent).await;
    assert_eq!(status, 200, "the server still serves");
}

/// `mediaResolution` where the projector has a token budget (Gemma 4's,
/// 70 to 1120 an image): an image LOW 280, MEDIUM 560, HIGH 1120 tokens or
/// its part's `numTokens`, a video frame LOW 70, HIGH 280, as Gemini 3
/// spends them; countTokens and generateContent agree; a projector with a
/// fixed count refuses it by name.
#[tokio::test(flavor = "multi_thread")]
async fn media_resolution_sets_the_tokens_of_images_and_frames() {
    let server = start();
    let http = reqwest::Client::new();
    let method = |model: &str, m: &str| format!("{}/v1beta/models/{model}:{m}", server.0.url);
    let png = std::fs::read(root().join("testdata/images/gemma3v-test.png")).expect("png");
    let image = |resolution: Value| {
        let mut part = json!({"inlineData": {"mimeType": "image/png", "data": b64(&png)}});
        if !resolution.is_null() {
            part["mediaResolution"] = resolution;
        }
        part
    };
    let count = |parts: Vec<Value>, config: Value| {
        json!({"generateContentRequest": {"model": "models/gemma4a-f32",
            "contents": [{"role": "user", "parts": parts}], "generationConfig": config}})
    };
    let within = |got: u64, want: u64| got.abs_diff(want) * 10 <= want;
    // The part's own level or numTokens, and the request's level.
    for (part, config, want) in [
        (json!({"level": "MEDIA_RESOLUTION_LOW"}), json!({}), 280),
        (json!({"level": "MEDIA_RESOLUTION_MEDIUM"}), json!({}), 560),
        (json!({"level": "MEDIA_RESOLUTION_HIGH"}), json!({}), 1120),
        (json!({"numTokens": 140}), json!({}), 140),
        (
            Value::Null,
            json!({"mediaResolution": "MEDIA_RESOLUTION_LOW"}),
            280,
        ),
        (
            json!({"numTokens": 140}),
            json!({"mediaResolution": "MEDIA_RESOLUTION_HIGH"}),
            140,
        ),
    ] {
        let body = count(
            vec![image(part.clone()), json!({"text": "What is it?"})],
            config,
        );
        let (status, v) = post(&http, method("gemma4a-f32", "countTokens"), &body).await;
        assert_eq!(status, 200, "{v}");
        let got = details(&v, "IMAGE");
        assert!(
            within(got, want),
            "{part} {body}: {got} image tokens, {want} asked"
        );
    }
    // Unset: the projector's own count for this 64 x 64 image (its minimum).
    let (_, v) = post(
        &http,
        method("gemma4a-f32", "countTokens"),
        &count(vec![image(Value::Null)], json!({})),
    )
    .await;
    let own = details(&v, "IMAGE");
    assert!((70..=100).contains(&own), "{v}");
    // Video frames: LOW 70 each (3 frames), HIGH 280.
    for (level, per_frame) in [("MEDIA_RESOLUTION_LOW", 70), ("MEDIA_RESOLUTION_HIGH", 280)] {
        let body = count(
            vec![video_part(
                "video/mp4",
                &video("test-2s-silent.mp4"),
                Value::Null,
            )],
            json!({"mediaResolution": level}),
        );
        let (status, v) = post(&http, method("gemma4a-f32", "countTokens"), &body).await;
        assert_eq!(status, 200, "{v}");
        let got = details(&v, "VIDEO");
        assert!(within(got, 2 * per_frame), "{level}: {got} for 2 frames");
    }
    // generateContent reports the count of the same request.
    let parts = vec![
        image(json!({"level": "MEDIA_RESOLUTION_LOW"})),
        json!({"text": "What is it?"}),
    ];
    let body = count(parts.clone(), json!({}));
    let (_, counted) = post(&http, method("gemma4a-f32", "countTokens"), &body).await;
    let gen = json!({"contents": [{"role": "user", "parts": parts}],
        "generationConfig": {"maxOutputTokens": 2, "temperature": 0}});
    let (status, answer) = post(&http, method("gemma4a-f32", "generateContent"), &gen).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["usageMetadata"]["promptTokenCount"],
        counted["totalTokens"]
    );
    // A projector with a fixed count (Gemma 3's 4 positions) refuses it.
    for (part, config) in [
        (json!({"level": "MEDIA_RESOLUTION_LOW"}), json!({})),
        (
            Value::Null,
            json!({"mediaResolution": "MEDIA_RESOLUTION_HIGH"}),
        ),
    ] {
        let gen = json!({"contents": [{"role": "user", "parts": [image(part), {"text": "?"}]}],
            "generationConfig": config});
        let (status, v) = post(&http, method("gemma3v-f32", "generateContent"), &gen).await;
        assert_eq!(status, 400, "{v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("media_resolution"), "{message}");
    }
}
