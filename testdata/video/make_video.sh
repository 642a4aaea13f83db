#!/usr/bin/env bash
# The test videos, made by ffmpeg itself from its own test sources
# (deterministic: one thread, fixed sources, no metadata dates):
#   test-3s.mp4   3 s, 64x64 testsrc at 10 fps (H.264) + a 440 Hz tone (AAC, 16 kHz mono)
#   test-3s.webm  the same pictures in VP8 + the tone in Vorbis
#   test-2s-silent.mp4  2 s, 96x48 testsrc2 at 5 fps (H.264), no audio track
# Usage: bash testdata/video/make_video.sh   (needs ffmpeg: bash scripts/deps.sh)
set -euo pipefail
cd "$(dirname "$0")"
common=(-hide_banner -loglevel error -y -threads 1)
out=(-map_metadata -1 -fflags +bitexact)
ffmpeg "${common[@]}" -f lavfi -i "testsrc=size=64x64:rate=10:duration=3" \
  -f lavfi -i "sine=frequency=440:sample_rate=16000:duration=3" \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p -x264-params threads=1 -c:a aac -b:a 32k -ac 1 \
  -flags:v +bitexact -flags:a +bitexact -shortest "${out[@]}" test-3s.mp4
ffmpeg "${common[@]}" -f lavfi -i "testsrc=size=64x64:rate=10:duration=3" \
  -f lavfi -i "sine=frequency=440:sample_rate=16000:duration=3" \
  -c:v libvpx -b:v 200k -c:a libvorbis -ac 1 -flags:v +bitexact -flags:a +bitexact -shortest "${out[@]}" test-3s.webm
ffmpeg "${common[@]}" -f lavfi -i "testsrc2=size=96x48:rate=5:duration=2" \
  -c:v libx264 -preset veryfast -pix_fmt yuv420p -x264-params threads=1 -flags:v +bitexact "${out[@]}" test-2s-silent.mp4
ls -l test-3s.mp4 test-3s.webm test-2s-silent.mp4
# Hostile files: a 1 s FLV whose metadata declares 10 hours, and a Y4M
# header declaring 12000x12000 frames (no frame follows).
ffmpeg "${common[@]}" -f lavfi -i "testsrc=size=64x64:rate=5:duration=1" -c:v flv1 "${out[@]}" hostile-10h.flv
python3 - <<'PY'
import struct
b = bytearray(open("hostile-10h.flv", "rb").read())
i = b.find(b"duration")
assert i > 0 and b[i + 8] == 0, "onMetaData duration (an AMF number) not found"
b[i + 9:i + 17] = struct.pack(">d", 36000.0)
open("hostile-10h.flv", "wb").write(b)
PY
printf 'YUV4MPEG2 W12000 H12000 F25:1 Ip A1:1 C420jpeg\n' > hostile-huge.y4m
ls -l hostile-10h.flv hostile-huge.y4m
# Gemini's other video containers, 1 s each (testsrc 64x64 at 10 fps, a tone
# where the container takes one), and the audio test clip as ADTS AAC.
src=(-f lavfi -i "testsrc=size=64x64:rate=10:duration=1" -f lavfi -i "sine=frequency=440:sample_rate=16000:duration=1")
ffmpeg "${common[@]}" "${src[@]}" -c:v mpeg4 -c:a aac -ac 1 -shortest "${out[@]}" test-1s.mov
ffmpeg "${common[@]}" "${src[@]}" -c:v mpeg4 -c:a mp3 -ac 1 -shortest "${out[@]}" test-1s.avi
ffmpeg "${common[@]}" "${src[@]}" -c:v flv1 -c:a mp3 -ar 22050 -ac 1 -shortest "${out[@]}" test-1s.flv
ffmpeg "${common[@]}" "${src[@]}" -c:v mpeg2video -c:a mp2 -ac 1 -shortest -f mpeg "${out[@]}" test-1s.mpg
ffmpeg "${common[@]}" "${src[@]}" -c:v wmv2 -c:a wmav2 -ac 1 -shortest "${out[@]}" test-1s.wmv
ffmpeg "${common[@]}" -f lavfi -i "testsrc=size=176x144:rate=10:duration=1" -f lavfi -i "sine=frequency=440:sample_rate=8000:duration=1" \
  -c:v h263 -c:a aac -ar 8000 -ac 1 -shortest "${out[@]}" test-1s.3gp
ffmpeg "${common[@]}" -i ../audio/gemma4a-test.wav -c:a aac -b:a 64k "${out[@]}" ../audio/gemma4a-test.aac
ls -l test-1s.* ../audio/gemma4a-test.aac
