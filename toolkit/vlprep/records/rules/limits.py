"""D: duplicates across records; F: the file as a whole; L: token length and image count limits; W: the run itself."""

from __future__ import annotations

from vlprep.records.rules.rule import ERROR, WARNING, Rule

RULES = (
    Rule("D001", "duplicate-record", WARNING,
         "The record is identical to an earlier one (the first line is named).",
         why="A record that repeats an earlier one (the same JSON value, whatever its key order or spacing, in any "
             "of the run's files) is trained on twice: it weighs double, and a copy shared by a training and an "
             "evaluation file inflates the evaluation.",
         example='line 3: {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": '
                 '"Hello"}]}\n'
                 'line 9: {"messages": [{"content": "Hi", "role": "user"}, {"role": "assistant", "content": "Hello"}]}',
         fix="Remove the later copies (keep duplicates on purpose with `--ignore D001`)."),
    Rule("D002", "near-duplicate-image", WARNING,
         "An image is a near-duplicate of an earlier record's picture (re-encoded, resized, converted, lightly "
         "cropped): both positions and the fingerprint distance are named.",
         why="Scraped and merged data repeats pictures under other bytes. A repeated picture weighs more than the "
             "others in training, and one that is also in the evaluation data makes the validation loss a measure of "
             "memory. vlprep compares 64-bit perceptual hashes of the decoded pixels; `--near-distance` sets how "
             "many bits may differ (`vlprep cache --val-ratio` keeps such pictures on one side of the split).",
         example='line 3: {"images": ["cat.jpg"], ...}\nline 9: {"images": ["cat_small.png"], ...}  (cat.jpg resized '
                 'and saved as PNG)',
         fix="Keep one copy of the picture, or keep the repeats on purpose (`--ignore D002`); a lower "
             "`--near-distance` reports only closer copies."),
    Rule("D003", "duplicate-image-file", WARNING,
         "An image file has the same bytes as an image referenced earlier under another path.",
         why="Two paths to the same bytes are one picture counted twice: the records weigh it double, and a copy "
             "under another folder name can put one picture in both training and evaluation.",
         example='line 3: {"images": ["a/cat.jpg"], ...}\nline 9: {"images": ["b/cat_copy.jpg"], ...}  (same bytes)',
         fix="Reference one path for the picture and delete the copy (or `--ignore D003`)."),
    Rule("D004", "near-duplicate-record", WARNING,
         "The record's text repeats an earlier record's and its pictures are near-duplicates of that record's.",
         why="A record whose words are the same and whose pictures are re-saved copies is the same example trained "
             "twice, which D001 (byte-identical records) does not see.",
         example='line 3: {"messages": [...Describe the image...], "images": ["cat.jpg"]}\n'
                 'line 9: the same messages, "images": ["cat_q70.jpg"]  (cat.jpg re-encoded)',
         fix="Remove the later copy (or `--ignore D004`)."),
    Rule("F001", "mixed-formats", WARNING,
         "The file mixes input formats: ms-swift keeps one format per file and silently drops the others' records.",
         why="ms-swift's loader picks one preprocessor per file from the union of its columns (messages, ShareGPT, "
             "query/response, alpaca): records of another format than the one it picks are dropped without a word. "
             "vlprep reads each record on its own, so it names the minority format and where it first appears.",
         example='line 1: {"messages": [{"role": "user", ...}, ...]}\n'
                 'line 5: {"query": "Hi", "response": "Hello"}  (dropped by ms-swift)',
         fix="Convert every record of the file to one format, or split the file by format."),
    Rule("F002", "file-unreadable", ERROR,
         "The input file cannot be opened.",
         why="An input that cannot be opened leaves every record in it unchecked. vlprep refuses such an input "
             "before it reads anything, as a usage error, so there is no record to report this code on.",
         example="vlprep lint missing.jsonl  ->  error: missing.jsonl: no such file or folder  (exit 2)",
         fix="Pass a path that exists and is readable (`ls -l`, `chmod a+r`).",
         retired="Never reported: an input that is missing or cannot be read is refused before any record is read, "
                 "as a usage error (exit 2, 'no such file or folder' / 'not readable (permission denied)'), and a "
                 "read that fails partway through the file is J011. The code stays reserved, not reused."),
    Rule("F003", "alias-collision", WARNING,
         "The file names one ms-swift column two ways (e.g. `image` and `images`): its loader renames neither and "
         "drops the alias's values.",
         why="ms-swift renames a column alias (`image` to `images`, `conversations` to `messages`, ...) only when "
             "no other key of the file maps to the same column; when a file uses both spellings it renames neither, "
             "and the alias's values are dropped from every record that used it.",
         example='line 1: {"messages": [...], "images": ["a.jpg"]}\n'
                 'line 2: {"messages": [...], "image": "b.jpg"}  (b.jpg is dropped by ms-swift)',
         fix="Use one spelling per file (rename `image` to `images` everywhere)."),
    Rule("L001", "too-long", ERROR,
         "The record's token length (image tokens included) is over --max-length: training drops it.",
         why="ms-swift drops (by default) every encoded record longer than --max_length; images count as their "
             "vision tokens, which often dominate. Such a record costs a load and an encode and is never trained "
             "on; many of them silently shrink the dataset. The message says which --image-max-tokens would make "
             "it fit.",
         example='{"messages": [{"role": "user", "content": "<image>Describe."}, ...], "images": ["poster.png"]}  '
                 "(9,000 tokens with --max-length 8192)",
         fix="Lower --image-max-tokens (the message gives a value that fits), raise --max-length, or split the "
             "conversation."),
    Rule("L002", "too-many-images", ERROR,
         "The record has more images than --max-images.",
         why="A record with that many images is almost always a generator bug (images multiplied) and would need "
             "an enormous sequence; its images are not checked.",
         example='{"messages": [...], "images": ["f0001.jpg", "f0002.jpg", "... 300 paths ..."]}',
         fix="Fix the record (or encode a frame sequence as a video); raise --max-images if it is genuine."),
    Rule("W001", "worker-crashed", ERROR,
         "The worker checking this record died, twice, with the record run alone (segfault, out of memory); the "
         "record is rejected.",
         why="A record whose check kills the process (a decoder crash on a hostile image or video, memory "
             "exhausted) would crash a training data loader too. vlprep re-runs the lost records one by one and "
             "blames the record only when it kills a worker on its own, twice.",
         example=('{"messages": [...], "images": ["crafted.webp"]}  (decoding crashes the process)'),
         fix="Inspect the record's media outside vlprep (e.g. `python -c \"from PIL import Image; "
             "Image.open(path).load()\"`); replace or remove it."),
)
