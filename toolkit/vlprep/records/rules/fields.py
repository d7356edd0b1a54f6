"""S (fields): the record's keys and values other than turn order: content types, media fields, keys ms-swift drops or
vlprep cannot carry, per-turn loss, tools and tool calls, grounding objects."""

from __future__ import annotations

from vlprep.records.rules.rule import ERROR, WARNING, Rule

RULES = (
    Rule("S003", "bad-content-type", ERROR,
         "A turn's content is neither a string nor a list of typed parts.",
         why="ms-swift's template needs text (or, in OpenAI form, a list of text/image/video parts). Content that is "
             "null makes its loader drop the record; a number, an object, a list of parts in a system turn, an "
             "unknown part type, a non-string `system`, alpaca `instruction`/`input` or query/response fields that "
             "are not strings, all fail to encode.",
         example='{"messages": [{"role": "user", "content": null}, {"role": "assistant", "content": "Hello"}]}',
         fix="Make content a string (or a list of {\"type\": \"text\" | \"image\" | \"video\", ...} parts outside "
             "the system turn); serialize structured values with `json.dumps` first."),
    Rule("S009", "unknown-key", WARNING,
         "A key ms-swift does not read; it is silently dropped at load time.",
         why="ms-swift's loader keeps only the columns it knows (messages, images, videos, tools, objects, ...; per "
             "turn role, content, loss, loss_scale): any other key, at the top level or in a turn, is thrown away "
             "without a word. A misspelt key (`image` vs `images` is mapped, `imgs` is not) loses data silently. "
             "`id` is not reported.",
         example='{"messages": [{"role": "user", "content": "What is this?"}, {"role": "assistant", "content": '
                 '"A cat."}], '
                 '"imgs": ["cat.jpg"]}  (the image is never seen: `imgs` is dropped)',
         fix="Rename the key to the column ms-swift reads, or ignore the warning for metadata you keep on purpose "
             "(`--ignore S009`)."),
    Rule("S010", "unknown-format", ERROR,
         "The record matches none of the supported formats (messages, ShareGPT, OpenAI, query/response, alpaca).",
         why="Without `messages`, `conversations`, `query`/`response` (or an alias ms-swift maps) or "
             "`instruction`/`input`, ms-swift's loader finds no conversation in the record and cannot train on it.",
         example='{"human": "What is this?", "bot": "A cat.", "image": "cat.jpg"}  (role names are no column names)',
         fix="Convert the record to the messages format: "
             '`{"messages": [{"role": "user", ...}, {"role": "assistant", ...}], "images": [...]}`.'),
    Rule("S012", "bad-images-field", ERROR,
         "`images` is not a string or a list of strings / {bytes, path} objects.",
         why="ms-swift loads each image from a path, URL or data URI (or a {path} object); anything else — a "
             "number, a nested list, an empty string, an image part without a path or an object without `url`, or "
             "images given both as typed content parts and in a top-level `images` list (the template refuses to "
             "mix them) — fails when the record is encoded. The same holds for `videos`.",
         example='{"messages": [{"role": "user", "content": [{"type": "image", "image": "cat.jpg"}, '
                 '{"type": "text", "text": "What is it?"}]}, {"role": "assistant", "content": "A cat."}], '
                 '"images": ["dog.jpg"]}',
         fix="Give images one way: a top-level list of paths with one <image> tag each, or typed parts only."),
    Rule("S014", "not-carried", ERROR,
         "A key ms-swift's template reads (loss_scale, chat_template_kwargs, tools with nulls or mixed value "
         "types, objects without images) that vlprep cannot count exactly yet: caching the record without it would "
         "train on something else, so it is rejected.",
         why="These keys change what ms-swift's template encodes, and vlprep cannot yet reproduce the change "
             "exactly: `loss_scale`, `chat_template_kwargs`, a `tools` list whose values mix types or hold nulls "
             "(ms-swift's Arrow loader turns ints into floats and strips some nulls), `objects` in a record with no "
             "images. A cached record without them would not be the record ms-swift trains on.",
         example='{"tools": [{"name": "f", "parameters": {"default": null}}], "messages": [{"role": "user", "content": '
                 '"Hi"}, {"role": "assistant", "content": "Hello"}]}',
         fix="Drop the key if you do not need it; give `tools` as one JSON string (kept verbatim); or train this "
             "data with ms-swift directly, without the vlprep cache."),
    Rule("S015", "other-task-key", WARNING,
         "A key ms-swift reads only for other tasks (RLHF, reward, embedding): SFT ignores it and it is not cached.",
         why="`rejected_response`, `rejected_messages`, `margin`, `positive_*`, `negative_*` and similar keys belong "
             "to DPO/reward/embedding datasets; supervised fine-tuning ignores them, so they are not cached. Usually "
             "the dataset was meant for another task.",
         example='{"messages": [{"role": "user", "content": "What is this?"}, {"role": "assistant", "content": '
                 '"A cat."}], '
                 '"rejected_response": "A dog."}',
         fix="Train with the task the data was built for, or drop the key to silence the warning."),
    Rule("S017", "bad-loss", ERROR,
         "A turn's `loss` is not true/false.",
         why="A turn's `loss` switches training on that turn on or off; ms-swift expects a boolean. A number or a "
             "string ('false' is truthy) would be read differently from what was meant.",
         example='{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello", '
                 '"loss": "false"}]}',
         fix="Write `\"loss\": true` or `\"loss\": false` (or omit it: null counts as absent)."),
    Rule("S018", "bad-tool-call", ERROR,
         "A tool_call turn (or OpenAI tool_calls entry) that is not a JSON object with a name and arguments, names a "
         "function absent from `tools`, or a tool that is not a JSON object: ms-swift cannot encode it as meant.",
         why="ms-swift's agent template parses each tool call (a JSON object, or a Python literal, with `name` and "
             "`arguments`) to render it in Qwen's <tool_call> format, and renders each entry of `tools` into the "
             "system prompt. A call it cannot parse, a call to a function the record's `tools` do not declare, or a "
             "tool that is not an object trains the model on malformed or inconsistent agent turns.",
         example='{"tools": [{"name": "get_weather", "parameters": {"type": "object"}}], "messages": [{"role": "user", '
                 '"content": "Weather?"}, {"role": "tool_call", "content": "{\\"name\\": \\"weather\\", '
                 '\\"arguments\\": {}}"}, {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": '
                 '"It is sunny."}]}',
         fix="Make each call `{\"name\": ..., \"arguments\": {...}}` naming a function declared in `tools`."),
    Rule("S020", "bad-objects", ERROR,
         "Grounding `objects` ms-swift cannot use: no `bbox` list, a box that is not 4 numbers (or a 2-number point), "
         "`ref` not strings, `image_id` out of range, or an unknown `bbox_type`.",
         why="ms-swift's grounding support fills <ref-object> and <bbox> tags from `objects`; its loader drops a "
             "record whose `objects` has no `bbox` list, and a malformed box, ref or image index renders wrong "
             "coordinates or fails. `bbox_type` other than 'real' (pixels) or 'norm1' (0..1) is read as pixels.",
         example='{"messages": [{"role": "user", "content": "<image>Find <ref-object>"}, {"role": "assistant", '
                 '"content": "<bbox>"}], "images": ["cat.jpg"], "objects": {"ref": ["cat"], "bbox": [[10, 20, 30]]}}',
         fix="Give `objects` as {\"ref\": [str], \"bbox\": [[x1, y1, x2, y2]], \"bbox_type\": \"real\" | \"norm1\", "
             "\"image_id\": [index into images]}."),
    Rule("S021", "grounding-tag-count", ERROR,
         "The number of <ref-object> / <bbox> tags differs from the number of objects' refs / boxes.",
         why="ms-swift replaces each <ref-object> tag with the next ref and each <bbox> tag with the next box: extra "
             "tags stay literal text the model learns to emit, extra objects are never shown.",
         example='{"messages": [{"role": "user", "content": "<image>Find <ref-object>"}, {"role": "assistant", '
                 '"content": "<bbox> and <bbox>"}], "images": ["cat.jpg"], '
                 '"objects": {"ref": ["cat"], "bbox": [[10, 20, 30, 40]]}}',
         fix="Write exactly one tag per ref and per box."),
    Rule("S022", "bbox-outside-image", ERROR,
         "A box lies outside its image (pixels) or outside 0..1 (norm1).",
         why="A box past the image's edge (measured on the image as read, for 'real' pixel boxes; outside 0..1 for "
             "'norm1') trains the model on coordinates that point at nothing: usually boxes in another image's scale "
             "or in the wrong bbox_type.",
         example='{"images": ["cat.jpg"], "objects": {"ref": ["cat"], "bbox": [[10, 20, 900, 40]]}, ...}  '
                 "(cat.jpg is 640x480)",
         fix="Rescale the boxes to the image they belong to, or set `bbox_type` to match their unit."),
)
