"""V: each video a record references, read as ms-swift's pinned reader (decord, through qwen-vl-utils) would read it."""

from __future__ import annotations

from vlprep.records.rules.rule import ERROR, WARNING, Rule

_RECORD = ('{"messages": [{"role": "user", "content": "<video>What happens?"}, {"role": "assistant", "content": '
           '"A man runs."}], "videos": ["%s"]}')

RULES = (
    Rule("V001", "video-missing", ERROR,
         "The video file does not exist.",
         why="ms-swift opens each video when it encodes the record: a missing file fails there, mid-training. "
             "Relative paths are resolved like image paths (--image-root, or else the data file's folder).",
         example=_RECORD % "clips/run.mp4" + "  (clips/run.mp4 is not there)",
         fix="Fix the path or copy the video there (or pass --image-root with the folder paths start from)."),
    Rule("V002", "video-unreadable", ERROR,
         "The file is not a container ffmpeg can open, or (full mode) its frames do not all decode: corrupt or "
         "truncated.",
         why="The training reader decodes the sampled frames when it encodes the record; a file ffmpeg cannot open, "
             "or whose frame data is corrupt or cut short (found by decoding every frame, without --fast), fails "
             "there or yields fewer frames than the header promises.",
         example=_RECORD % "clips/cut.mp4" + "  (cut.mp4 cut at half its bytes by an interrupted copy)",
         fix="Replace the file with an intact copy (`ffmpeg -v error -i cut.mp4 -f null -` lists the errors), or "
             "re-encode it."),
    Rule("V003", "no-video-stream", ERROR,
         "The container has no video stream (audio only).",
         why="An .mp4 or .mkv holding only audio has no frames to sample: ms-swift cannot encode it as a video, and "
             "Qwen3-VL takes no audio.",
         example=_RECORD % "podcast.mp4" + "  (one AAC stream, no video)",
         fix="Use the real video file, or remove the record."),
    Rule("V004", "bad-video-timing", ERROR,
         "Zero or absurd frame rate or duration, or a zero frame size, in the header.",
         why="ms-swift samples frames by time (FPS frames per second of video): a frame rate of 0 or over 1000 fps, "
             "a duration of 0 or over 24 hours, or a 0-pixel frame size makes the sampling (and the timestamps "
             "Qwen3-VL reads in the prompt) meaningless or impossible.",
         example=_RECORD % "broken.mp4" + "  (header: 300 frames at 90000 fps, a timebase written as the rate)",
         fix="Re-mux or re-encode the video with a correct frame rate: `ffmpeg -i in.mp4 -r 30 out.mp4`."),
    Rule("V005", "video-rotation", ERROR,
         "Rotation metadata (MP4/MOV display matrix): the pinned reader (decord 0.6.0) rotates the frames and fails "
         "on 90°/270°, so ms-swift cannot encode the video.",
         why="Phone videos are often stored sideways with a rotation in the track header. decord 0.6.0 applies it "
             "itself and fails on 90° and 270° rotations, so the record cannot be encoded (and vlprep's count, "
             "made from the header's frame size, would not match the rotated frames).",
         example=_RECORD % "phone.mov" + "  (display matrix: rotate 90°)",
         fix="Bake the rotation into the frames by re-encoding: `ffmpeg -i phone.mov upright.mp4` (ffmpeg applies "
             "the rotation to the pixels and writes none)."),
    Rule("V006", "variable-frame-rate", WARNING,
         "The average frame rate differs from the nominal one: the frame times Qwen3-VL reads in the prompt are "
         "approximate.",
         why="Qwen3-VL's prompt gives each sampled frame its time in seconds, computed from the average frame rate; "
             "in a variable-frame-rate video (screen or phone recordings) the frames are not evenly spaced, so those "
             "times are off.",
         example=_RECORD % "screen.mp4" + "  (average 17.3 fps, nominal 60 fps)",
         fix="Re-encode at a constant frame rate if timing matters: `ffmpeg -i in.mp4 -vsync cfr -r 30 out.mp4`."),
    Rule("V007", "more-tags-than-videos", ERROR,
         "More <video> tags than videos: the extra tags stay literal text.",
         why="Each <video> tag is replaced by the next video's frames; tags beyond the last video stay in the text as "
             "the characters `<video>`, so the model is trained on a question about a video it never saw.",
         example='{"messages": [{"role": "user", "content": "<video><video>Compare."}, {"role": "assistant", '
                 '"content": "The same."}], "videos": ["a.mp4"]}',
         fix="Add the missing video or remove the extra tag: one <video> tag per entry of `videos`."),
    Rule("V008", "fewer-tags-than-videos", ERROR,
         "Fewer <video> tags than videos: a video without its tag is not placed where the record means it.",
         why="A video without its tag has no place in the text: ms-swift prepends the missing tags to the first "
             "turn, not where the record's text refers to the video.",
         example='{"messages": [{"role": "user", "content": "What happens?"}, {"role": "assistant", "content": '
                 '"A man runs."}], "videos": ["run.mp4"]}',
         fix="Write one <video> tag where each video belongs."),
    Rule("V009", "video-too-short", ERROR,
         "Fewer frames than FRAME_FACTOR (2): ms-swift cannot sample the video.",
         why="Qwen3-VL encodes frames in pairs (FRAME_FACTOR 2): a video with a single frame cannot be sampled and "
             "ms-swift's encode fails on it.",
         example=_RECORD % "still.mp4" + "  (1 frame)",
         fix="Use the frame as an image (<image>), or provide a longer clip."),
    Rule("V010", "few-video-frames", WARNING,
         "Fewer frames than FPS_MIN_FRAMES: fewer frames are sampled than the minimum asks.",
         why="qwen-vl-utils samples at least FPS_MIN_FRAMES frames (4 by default); a shorter clip gives fewer, so "
             "the video is represented by less than the settings intend.",
         example=_RECORD % "blink.mp4" + "  (3 frames)",
         fix="Usually harmless; use a longer clip, or treat a very short one as images."),
    Rule("V011", "no-frame-count", ERROR,
         "The header gives no frame count: the training reader estimates it, so the token count cannot be known "
         "exactly.",
         why="vlprep counts a video's tokens from its header's frame count (which frames ms-swift samples, and how "
             "many); containers that do not store it (some WebM/MKV, raw streams) leave the reader to estimate, so "
             "the count cannot be exact and the record is not cached.",
         example=_RECORD % "clip.webm" + "  (a WebM stream without a frame count)",
         fix="Re-mux to MP4, which stores the frame count: `ffmpeg -i clip.webm -c:v libx264 clip.mp4`."),
    Rule("V012", "remote-video", ERROR,
         "The video is a URL or inline data: vlprep reads local video files only.",
         why="vlprep checks and counts videos it can read locally; a URL would be fetched at training time (or fail "
             "there), and inline data is not supported for videos.",
         example=_RECORD % "https://example.com/run.mp4",
         fix="Download the videos and reference the local files."),
    Rule("V013", "unencodable-video", ERROR,
         "ms-swift cannot encode the video under the video settings (its resize or frame sampling raises).",
         why="With the run's video settings (FPS, frame limits, pixel limits) the frame sampling asks for a count "
             "outside [2, frames], or Qwen's `smart_resize` raises on the frame size: ms-swift's encode fails the "
             "same way.",
         example=_RECORD % "strip.mp4" + "  (frames 4000x10: aspect ratio over 200)",
         fix="Re-encode the video to a usual frame size, or change the video settings."),
    Rule("V014", "video-check-timeout", ERROR,
         "Reading the video's header, or (full mode) decoding its frames, took longer than --video-timeout seconds.",
         why="A video that takes this long to probe or decode is pathological (hostile, damaged or enormous) and "
             "would stall a training data loader the same way; the check is stopped and the record rejected.",
         example=_RECORD % "huge.mkv" + "  (decoding runs past --video-timeout)",
         fix="Look at the file; with long genuine videos raise --video-timeout, or check with --fast (header only)."),
)
