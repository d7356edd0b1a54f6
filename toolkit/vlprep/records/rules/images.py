"""I: each image a record references: where it is, whether it decodes, and what Qwen3-VL's resize makes of it."""

from __future__ import annotations

from vlprep.records.rules.rule import ERROR, WARNING, Rule

_RECORD = ('{"messages": [{"role": "user", "content": "<image>What is this?"}, {"role": "assistant", "content": '
           '"A cat."}], "images": ["%s"]}')

RULES = (
    Rule("I001", "image-missing", ERROR,
         "The image file does not exist.",
         why="ms-swift opens each image when it encodes the record: a missing file raises there, mid-training (or "
             "the record is skipped), hours after the run started. Relative paths are resolved against --image-root, "
             "or else the data file's folder.",
         example=_RECORD % "photos/cat.jpg" + "  (photos/cat.jpg is not next to the data file)",
         fix="Fix the path, copy the image there, or pass --image-root with the folder relative paths start from."),
    Rule("I002", "image-outside-root", ERROR,
         "The image path resolves (symlinks followed) outside --image-root.",
         why="With --image-root, every image (and video) must live under it; a path with `..` or a symlink pointing "
             "elsewhere would make training read files the dataset does not own (or, from untrusted data, any file "
             "on the machine).",
         example=_RECORD % "../../etc/secret.png" + "  (checked with --image-root /data/images)",
         fix="Keep the media under --image-root, or point --image-root at the folder that really holds them."),
    Rule("I003", "not-an-image", ERROR,
         "The file is not an image in a format Pillow can read.",
         why="ms-swift loads images with Pillow: an empty file, an HTML error page saved as .jpg, or a format Pillow "
             "has no plugin for makes the encode fail.",
         example=_RECORD % "cat.jpg" + "  (cat.jpg holds '<html>404 Not Found</html>')",
         fix="Download the image again, or convert it to JPEG/PNG/WebP."),
    Rule("I004", "image-corrupt", ERROR,
         "Decoding the image failed (truncated or corrupt data).",
         why="The header reads but the pixel data does not decode: a file cut short by an interrupted download or "
             "copy, a damaged stream, a zero size, frames that cannot be read. ms-swift decodes every image when it "
             "encodes the record, so training fails (or skips it) there. Without --fast every image is fully "
             "decoded; with --fast only a missing end marker (JPEG EOI, PNG IEND, GIF trailer, WebP size) is found.",
         example=_RECORD % "photos/cut.jpg" + "  (cut.jpg cut at half its bytes: 'image file is truncated')",
         fix="Replace the file with an intact copy (`python -c \"from PIL import Image; "
             "Image.open('cut.jpg').load()\"` shows the error), or drop the record."),
    Rule("I005", "decompression-bomb", ERROR,
         "The declared pixel count is over --max-image-pixels; the image was not decoded.",
         why="A small file can declare a huge canvas (a decompression bomb) whose decode takes gigabytes of memory; "
             "Pillow refuses such images by default, and vlprep does not decode it at all.",
         example=_RECORD % "bomb.png" + "  (68 bytes declaring 100000x100000 pixels)",
         fix="Remove the image; if it is a genuine large image, downscale it, or raise --max-image-pixels (the "
             "message gives the value)."),
    Rule("I006", "extreme-aspect-ratio", ERROR,
         "Aspect ratio over --max-ratio: training's smart_resize raises on it.",
         why="Qwen's `smart_resize` refuses images whose long side is more than 200 times the short one (\"absolute "
             "aspect ratio must be smaller than 200\"): ms-swift cannot encode the record.",
         example=_RECORD % "banner.png" + "  (banner.png is 10000x20)",
         fix="Crop or pad the image to a ratio under 200 (split a long strip into tiles)."),
    Rule("I007", "tiny-image", WARNING,
         "An image side is smaller than 32 px (one Qwen3-VL token): it will be upscaled.",
         why="Qwen3-VL's resize scales every image to at least its minimum pixel count, in 32-pixel patches: a tiny "
             "icon is blown up to several tokens of blur. Often a thumbnail stored instead of the image.",
         example=_RECORD % "icon.png" + "  (icon.png is 16x16)",
         fix="Use the full-size image if there is one; otherwise the warning can stand."),
    Rule("I008", "exif-rotation", WARNING,
         "EXIF orientation is not 1: training sees the unrotated pixels.",
         why="Phone photos store pixels sideways with an EXIF tag saying how to turn them; viewers obey the tag, "
             "ms-swift's loader does not. The model sees the photo rotated while the text describes it upright.",
         example=_RECORD % "phone.jpg" + "  (EXIF orientation 6: shown upright, stored rotated 90°)",
         fix="Bake the rotation into the pixels: `PIL.ImageOps.exif_transpose(image).save(...)` (or "
             "`mogrify -auto-orient`)."),
    Rule("I009", "unusual-mode", WARNING,
         "Unusual pixel mode (CMYK, 16-bit, palette with transparency, ...): converted to RGB.",
         why="ms-swift converts every image to RGB: CMYK colours shift, 16-bit depth is cut to 8 bits and "
             "transparent areas become black (or arbitrary palette colours). The model may see something other than "
             "the picture as viewed.",
         example=_RECORD % "print.jpg" + "  (a CMYK JPEG from a print workflow)",
         fix="Convert to RGB yourself with the colour handling you want (e.g. flatten transparency onto white)."),
    Rule("I010", "animated-image", WARNING,
         "Animated image: only the first frame is used.",
         why="An animated GIF, PNG or WebP is an image to ms-swift: only its first frame is encoded, while the text "
             "may describe the motion.",
         example=_RECORD % "dance.gif" + "  (24 frames)",
         fix="If the motion matters, convert the animation to a video and use <video>; otherwise ignore."),
    Rule("I011", "remote-image", ERROR,
         "The image is a remote URL: vlprep runs offline and does not fetch it.",
         why="vlprep checks and counts images it can read locally; ms-swift would download the URL at training time, "
             "where a dead link or a changed image fails or alters the run.",
         example=_RECORD % "https://example.com/cat.jpg",
         fix="Download the images and reference the local files."),
    Rule("I012", "bad-data-uri", ERROR,
         "A data: URI that is not base64 image data.",
         why="An inline image must be `data:image/<type>;base64,<payload>`: another media type, a non-base64 "
             "encoding or a payload that is not valid base64 cannot be decoded into an image.",
         example=_RECORD % "data:image/png,iVBORw0KGgo..." + "  (the ;base64 marker is missing)",
         fix="Write the URI as data:image/png;base64,... with standard base64, or store the image as a file."),
    Rule("I013", "unreadable-image", ERROR,
         "The image file exists but cannot be read (permissions, a directory, ...).",
         why="The path exists but cannot be opened (no read permission, a directory, a NUL character in the path): "
             "the training process would fail on it the same way.",
         example=_RECORD % "photos/" + "  (a directory, not a file)",
         fix="Fix the path or the file's permissions (`chmod a+r`)."),
    Rule("I014", "image-decode-timeout", ERROR,
         "Decoding the image took longer than --image-timeout seconds.",
         why="An image that takes this long to decode is pathological (a hostile or extremely large file) and would "
             "stall a training data loader the same way; the check is stopped and the record rejected.",
         example=_RECORD % "huge.png" + "  (decoding runs past --image-timeout)",
         fix="Look at the file; raise --image-timeout if the image is genuine and the machine merely slow."),
    Rule("I015", "image-resized-to-nothing", ERROR,
         "Under the pixel limits the image resizes to a side of 0 pixels: ms-swift cannot encode it.",
         why="Qwen's `smart_resize`, run with this run's pixel limits (--image-max-tokens, --image-min-tokens), "
             "raises on this image's shape or gives it a side of 0 pixels: ms-swift's encode fails the same way.",
         example=_RECORD % "sliver.png" + "  (a very thin image under a small --image-max-tokens)",
         fix="Raise --image-max-tokens, or pad the image to a less extreme shape."),
)
