"""M: media tags against the record's images, videos and audio; T: text that ms-swift's template would tokenize as
something else (template injection)."""

from __future__ import annotations

from vlprep.records.rules.rule import ERROR, INFO, WARNING, Rule

RULES = (
    Rule("M001", "more-tags-than-images", ERROR,
         "More <image> tags than images: ms-swift leaves the extra tags as literal text.",
         why="ms-swift replaces each <image> tag, in order, with the next image's vision tokens; tags beyond the "
             "last image stay in the text as the literal characters `<image>`, so the model trains on a tag where a "
             "picture was meant (and on a question about an image it never saw).",
         example='{"messages": [{"role": "user", "content": "<image><image>Compare them."}, '
                 '{"role": "assistant", "content": "..."}], "images": ["a.jpg"]}',
         fix="Add the missing image or remove the extra tag: one <image> tag per entry of `images`."),
    Rule("M002", "fewer-tags-than-images", WARNING,
         "Fewer <image> tags than images: ms-swift prepends the missing tags to messages[0] (maybe the system turn).",
         why="An image without a tag has no place in the text, so ms-swift puts the missing tags at the start of the "
             "first turn. That is the usual intent for a single-turn record with no tags at all, but in a "
             "multi-turn record an image meant for a later turn moves to the beginning.",
         example='{"messages": [{"role": "user", "content": "<image>And this one?"}, '
                 '{"role": "assistant", "content": "..."}], "images": ["a.jpg", "b.jpg"]}',
         fix="Write one <image> tag where each image belongs."),
    Rule("M003", "image-tag-in-assistant", ERROR,
         "An <image> tag in an assistant turn: the model would be trained to emit it.",
         why="The loss is computed on assistant turns: an <image> there becomes vision tokens in the labels (or the "
             "literal text), teaching the model to produce image placeholders in its answers.",
         example='{"messages": [{"role": "user", "content": "Draw a cat."}, '
                 '{"role": "assistant", "content": "<image>"}], "images": ["cat.jpg"]}',
         fix="Move the image to a user turn; an assistant cannot answer with an image in Qwen3-VL."),
    Rule("M004", "tag-without-images", ERROR,
         "A literal <image> in a record with no images: ms-swift trains on the text "
         "<image> (3 tokens) where a picture was meant, as for M001.",
         why="With no images to put in its place, the tag stays literal text: the model learns to answer a question "
             "about a picture it was never shown. Usually the `images` key was lost or misspelt.",
         example='{"messages": [{"role": "user", "content": "<image>What is this?"}, '
                 '{"role": "assistant", "content": "A cat."}]}',
         fix="Add the image to `images` (check for a misspelt key, S009), or remove the tag."),
    Rule("M005", "video-unsupported", ERROR,
         "A video in typed content parts that is not one video file (e.g. a list of frames: vlprep counts video "
         "files) or an object without `url` (ms-swift's template fails on it).",
         why="A `video` / `video_url` part must name one video file: vlprep counts the frames ms-swift samples from "
             "the file's header, so a video given as a list of frame images cannot be counted; an object without "
             "`url` makes ms-swift's template fail on the part.",
         example='{"messages": [{"role": "user", "content": [{"type": "video", "video": ["f1.jpg", "f2.jpg"]}, '
                 '{"type": "text", "text": "What happens?"}]}, {"role": "assistant", "content": "A man runs."}]}',
         fix="Encode the frames as one video file and reference its path (or `{\"url\": path}`)."),
    Rule("M006", "audio-unsupported", ERROR,
         "The record has <audio> tags or audios: Qwen3-VL takes no audio.",
         why="Qwen3-VL has no audio encoder: ms-swift cannot encode audio for it, and an <audio> tag would stay "
             "literal text.",
         example='{"messages": [{"role": "user", "content": "<audio>Transcribe this."}, {"role": "assistant", '
                 '"content": "Hello."}], "audios": ["clip.wav"]}',
         fix="Remove audio records from a Qwen3-VL dataset (or transcribe the audio into text)."),
    Rule("T001", "control-token-in-content", ERROR,
         "A chat-control token (e.g. <|im_end|>) written literally in content: it tokenizes as the control token.",
         why="The tokenizer turns the text `<|im_end|>` (and every other special token of Qwen3-VL's vocabulary) "
             "into the control token itself, not into characters: a turn would end, or a vision block open, in the "
             "middle of the content, and the model learns the broken structure.",
         example='{"messages": [{"role": "user", "content": "Repeat: <|im_end|>"}, {"role": "assistant", "content": '
                 '"No."}]}',
         fix="Remove the token, or escape it (e.g. `< |im_end| >`) if the text really is about it."),
    Rule("T002", "leading-newline", INFO,
         "Content starts with a newline: the template tokenizes it one token differently from a plain render.",
         why="ms-swift's template tokenizes the role header (which ends in a newline) and the content apart, so a "
             "leading newline in the content is a token of its own, where rendering the chat template as one string "
             "gives a single double-newline token: training sees a slightly different sequence than inference.",
         example='{"messages": [{"role": "user", "content": "\\nWhat is this?"}, {"role": "assistant", "content": '
                 '"A test."}]}',
         fix="Strip leading newlines from content (`content.lstrip(\"\\n\")`)."),
)
