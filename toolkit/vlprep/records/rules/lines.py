"""J: the JSONL line or JSON array element itself, and the file's JSON, compression and columnar framing."""

from __future__ import annotations

from vlprep.records.rules.rule import ERROR, WARNING, Rule

RULES = (
    Rule("J001", "invalid-json", ERROR,
         "The line is not valid JSON (the parser's message and column are given).",
         why="ms-swift loads a JSONL file with `datasets`' JSON reader, which stops on the first line it cannot parse: "
             "one bad line fails the whole file, not just that record. vlprep reports every such line (in a JSON "
             "array also a comma after the last element, two commas in a row, or a missing comma between elements) "
             "and reads on.",
         example='{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]\n'
                 "(the closing `}` is missing: J001 at the column where the parser gave up)",
         fix="Repair or delete the line; the column points at where parsing failed. If the file was written by "
             "string concatenation, write it with a JSON serializer (`json.dumps` per record) instead."),
    Rule("J002", "not-an-object", ERROR,
         "The line is JSON but not an object.",
         why="A record is a JSON object with a conversation; a line holding an array, a string or a number is no "
             "record, and ms-swift's loader cannot map it to any column.",
         example='[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]',
         fix='Wrap the value in an object with the key ms-swift reads, e.g. `{"messages": [...]}`.'),
    Rule("J003", "undecodable-bytes", ERROR,
         "The line is not valid UTF-8.",
         why="JSON text is UTF-8: bytes that do not decode (a Latin-1 or UTF-16 file, a cut multi-byte character) or "
             "a string holding a lone surrogate escape such as `\\ud800` are not valid Unicode, so ms-swift's loader "
             "fails on them or the tokenizer sees replacement characters.",
         example='{"messages": [{"role": "user", "content": "caf\\xe9"}, ...]}  (the byte 0xE9 written raw, Latin-1)',
         fix="Re-encode the file as UTF-8 (`iconv -f latin1 -t utf-8`), or fix the code that wrote the lone "
             "surrogate (it split an emoji's UTF-16 pair)."),
    Rule("J004", "byte-order-mark", WARNING,
         "The file starts with a UTF-8 byte-order mark; most JSONL readers choke on it.",
         why="The three bytes EF BB BF before the first `{` are not JSON: Python's `json.loads`, pandas and many "
             "other readers fail on the first line. vlprep (and `datasets`) skip it, so the line is still checked.",
         example="\\xef\\xbb\\xbf{\"messages\": [...]}  (first line of a file saved by a Windows editor)",
         fix="Save the file as UTF-8 without BOM, e.g. `sed -i '1s/^\\xEF\\xBB\\xBF//' data.jsonl`."),
    Rule("J005", "blank-line", WARNING,
         "Blank line: ms-swift skips it, other loaders fail on it.",
         why="An empty (or whitespace-only) line holds no record. ms-swift's loader skips it, but a line-by-line "
             "`json.loads` reader raises on it, and it usually means the file was concatenated or edited by hand.",
         example='{"messages": [...]}\n\n{"messages": [...]}  (the second line is empty)',
         fix="Delete blank lines: `grep -v '^[[:space:]]*$' data.jsonl > clean.jsonl`."),
    Rule("J006", "line-too-long", ERROR,
         "The line (or JSON array element) exceeds --max-line-bytes and was not parsed.",
         why="A record that big is almost always inline image bytes (base64) or a runaway generation; parsing it "
             "would hold it whole in memory in every worker. The line is skipped unread, so nothing else is known "
             "about it.",
         example='{"messages": [...], "images": ["data:image/png;base64,iVBORw0KGgo... (300 MB) ..."]}',
         fix="Store images as files and reference their paths; if the record is genuine, raise --max-line-bytes."),
    Rule("J007", "too-deeply-nested", ERROR,
         "The JSON nests deeper than the limit.",
         why="A record nests a few levels (record, messages, turn, content part). Nesting deeper than 64 levels, or "
             "deeper than Python's parser can recurse, is a generator bug or a hostile input, and recursive code "
             "(ms-swift's included) would crash on it.",
         example='{"messages": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ ... ]]]]}',
         fix="Find what wrote the record and fix it; a training record has no reason to nest this deep."),
    Rule("J008", "truncated-array", ERROR,
         "The JSON array is cut short: the file ends inside an element or before the closing ']' (where it stopped and "
         "the records before it are named).",
         why="A JSON array file is one JSON value: if it is cut short (an interrupted download or write), ms-swift's "
             "loader refuses the whole file, not only the last record. vlprep reads the records before the cut and "
             "says where the file stops.",
         example='[\n  {"messages": [...]},\n  {"messages": [{"role": "user", "content": "Wh\n(end of file)',
         fix="Get the complete file again; or drop the cut element and close the array (`]`) to keep the records "
             "before it."),
    Rule("J009", "wrapped-records", ERROR,
         'The file is one JSON object holding the records in an array (`{"data": [...]}`); vlprep and ms-swift read a '
         "top-level array or JSONL: the fix (a jq command) is given. The file is not read further.",
         why="ms-swift would read the whole file as one record with a single unknown `data` column and train on "
             "nothing from it. The wrapper is recognised when its key is none a record has and the array's first "
             "element holds a conversation.",
         example='{"data": [{"messages": [...]}, {"messages": [...]}]}',
         fix="Extract the array: `jq .data data.json > records.json`, or to JSONL: "
             "`jq -c '.data[]' data.json > records.jsonl` (the message gives the command with your key and path)."),
    Rule("J010", "data-after-array", ERROR,
         "Text after the JSON array's closing ']' (e.g. two files concatenated): JSON loaders refuse the whole file.",
         why="A JSON file holds one value; anything after the array's `]` makes the whole file invalid for "
             "ms-swift's loader and every JSON parser, so not even the array's records would be trained on.",
         example='[{"messages": [...]}]\n[{"messages": [...]}]  (two arrays: `cat a.json b.json > all.json`)',
         fix="Merge arrays properly (`jq -s add a.json b.json > all.json`) or delete the trailing text."),
    Rule("J011", "unreadable-stream", ERROR,
         "The gzip/zstd stream is corrupt or cut short (or the input cannot be read) past this point; the records "
         "before it were read.",
         why="A compressed file that fails to decompress midway (an interrupted copy), a Parquet or Arrow file (or one "
             "row group) that cannot be read, or Parquet piped on stdin: ms-swift's loader fails on the same "
             "input, and the records past the failure are not checked at all.",
         example="data.jsonl.gz cut short by an interrupted copy: `gzip -t data.jsonl.gz` says 'unexpected end of "
                 "file'",
         fix="Copy or download the file again (compare its checksum); pass Parquet by its path, not on stdin."),
)
