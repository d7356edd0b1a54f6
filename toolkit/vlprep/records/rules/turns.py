"""S (conversation): the turns themselves: their presence, roles and order, as ms-swift's template pairs them."""

from __future__ import annotations

from vlprep.records.rules.rule import ERROR, WARNING, Rule

RULES = (
    Rule("S001", "no-messages", ERROR,
         "No conversation: `messages`/`conversations` is missing, not a list, or empty.",
         why="The record has a conversation key but nothing in it (or, in query/response form, neither a query nor a "
             "response): ms-swift's loader drops such a record, so it silently shrinks the dataset.",
         example='{"messages": [], "images": ["cat.jpg"]}',
         fix="Fill in the turns, or remove the record."),
    Rule("S002", "unknown-role", ERROR,
         "A turn has a role ms-swift does not know (system/user/assistant/tool/tool_call/tool_response, or the "
         "ShareGPT names it maps): its loader drops the record. The closest valid name is suggested.",
         why="ms-swift maps a fixed set of role names (user/human, assistant/gpt/bot, system, tool/tool_response/"
             "function_response/observation, tool_call/function_call); a record with any other role is dropped by "
             "its loader. A typo ('asistant') or another tool's convention ('model', 'ai') is the usual cause.",
         example='{"messages": [{"role": "user", "content": "Hi"}, {"role": "model", "content": "Hello"}]}',
         fix="Rename the role to one ms-swift knows (the message suggests the closest)."),
    Rule("S004", "empty-content", WARNING,
         "A system, user or tool turn's content is empty (an empty assistant reply is S023).",
         why="An empty (or whitespace-only) system, user or tool turn is encoded as an empty message: harmless for "
             "training but usually a sign that a field was lost while the data was converted.",
         example='{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "Hello!"}]}',
         fix="Restore the missing text, or drop the empty turn (an empty system turn can simply be removed)."),
    Rule("S005", "system-not-first", ERROR,
         "A system message appears after the first turn.",
         why="ms-swift takes the system prompt from the first turn only; its template then pairs the remaining turns "
             "as (user or tool, assistant) and refuses a system turn in that place, so the record cannot be encoded.",
         example='{"messages": [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Be brief."}, '
                 '{"role": "assistant", "content": "Hello"}]}',
         fix="Move the system turn to the start of the conversation, or fold its text into the next user turn."),
    Rule("S006", "consecutive-same-role", WARNING,
         "Two consecutive turns have the same role (tool turns excepted).",
         why="ms-swift's template merges two user turns in a row into one, their texts glued with no separator, and "
             "two assistant turns into one reply; the model trains on a conversation the record does not show "
             "(parallel tool calls and a run of tool results are the exceptions).",
         example='{"messages": [{"role": "user", "content": "Hi."}, {"role": "user", "content": "Are you there?"}, '
                 '{"role": "assistant", "content": "Yes."}]}  (trained as "Hi.Are you there?")',
         fix="Merge the two turns yourself (with the separator you want) or add the missing turn between them."),
    Rule("S007", "no-assistant-turn", ERROR,
         "No assistant turn: there is nothing to learn from this record.",
         why="Supervised fine-tuning computes the loss on assistant turns only: a record without one has every label "
             "masked, costs a forward pass and teaches nothing.",
         example='{"messages": [{"role": "user", "content": "<image>What is this?"}], "images": ["cat.jpg"]}',
         fix="Add the assistant's answer, or remove the record."),
    Rule("S008", "last-turn-not-assistant", WARNING,
         "The last turn is not the assistant's: the trailing turn is not trained on.",
         why="ms-swift pairs turns as (query, response): a trailing user or tool turn has no response, so it only "
             "adds context tokens at the end that nothing is learned from (often a conversation cut short).",
         example='{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, '
                 '{"role": "user", "content": "Thanks"}]}',
         fix="Drop the trailing turn, or add the assistant's reply to it."),
    Rule("S011", "bad-turn", ERROR,
         "A turn is not an object with a role and content.",
         why="ms-swift reads each turn's `role` (or ShareGPT `from`) and `content` (or `value`); a turn that is a "
             "string, or an object missing either key (or a query/response `history` that is not a list of "
             "[query, response] pairs), cannot be mapped and the record fails to load.",
         example='{"messages": [{"role": "user", "text": "Hi"}, {"role": "assistant", "content": "Hello"}]}',
         fix="Give every turn `role` and `content` (ShareGPT: `from` and `value`); `history` is "
             '`[["query", "response"], ...]`.'),
    Rule("S013", "misplaced-tool-turn", ERROR,
         "A tool turn with no user/assistant turn before it, or a user turn right after tool results: ms-swift's "
         "template cannot encode the conversation.",
         why="ms-swift folds tool results into the turn before them: after an assistant tool call they become the "
             "next query, which only an assistant turn may answer; a tool turn first in the conversation (or after "
             "the system prompt) has nothing to attach to. Either way the template's (query, response) pairing "
             "fails on the record.",
         example='{"messages": [{"role": "user", "content": "Weather?"}, {"role": "tool_call", "content": '
                 '"{\\"name\\": \\"weather\\", \\"arguments\\": {}}"}, {"role": "tool", "content": "sunny"}, '
                 '{"role": "user", "content": "And tomorrow?"}]}',
         fix="Put the assistant's answer to the tool results before the next user turn; start the conversation with "
             "a user turn."),
    Rule("S016", "conflicting-turn-keys", WARNING,
         "A turn has both `content` and `value` (or `role` and `from`): ms-swift uses `value` (`from`) and drops "
         "the other.",
         why="A turn mixing the messages and ShareGPT spellings is ambiguous; ms-swift's loader silently prefers the "
             "ShareGPT key, so the text under `content` (or the role under `role`) is never trained on.",
         example='{"messages": [{"role": "user", "content": "Describe it.", "value": "Hi"}, {"role": "assistant", '
                 '"content": "Hello"}]}',
         fix="Keep one spelling per turn: `role`/`content` or `from`/`value`."),
    Rule("S019", "tool-result-without-call", WARNING,
         "A tool result with no tool call before it in the conversation.",
         why="A tool result right after a user turn, with no tool_call turn (or `<tool_call>` text) before it, "
             "teaches the model that tool output appears unasked; usually the call turn was lost in conversion.",
         example='{"messages": [{"role": "user", "content": "Weather?"}, {"role": "tool", "content": "sunny"}, '
                 '{"role": "assistant", "content": "It is sunny."}]}',
         fix="Restore the assistant's tool_call turn before the result."),
    Rule("S023", "empty-assistant-reply", ERROR,
         "An assistant turn is empty (or only whitespace): the model would be trained to answer with nothing.",
         why="The assistant turn is what the loss is computed on: an empty reply trains the model to end its answer "
             "immediately (only the end-of-turn token is learned), which is never what the data meant.",
         example='{"messages": [{"role": "user", "content": "Say something."}, {"role": "assistant", "content": ""}]}',
         fix="Fill in the reply or remove the record (for a turn that should not be trained on, set "
             '`"loss": false` on a real reply instead).'),
)
