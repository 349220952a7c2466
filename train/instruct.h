// Instruction data made from the bundled TinyStories sample, so that following an instruction is
// something a program can check.
//
// Recipe (make_instruct; deterministic: the same text and seed give the same bytes):
//   1. Cut the text into documents at the separator "<|endoftext|>", as `foundry prepare` does;
//      the last round(val_fraction · documents) documents are prepare's validation split. Those
//      stories are the held-out test split here too, so a model pretrained by the quickstart and
//      fine-tuned on the train split has never seen them in any form. An unfinished last document
//      (no separator after it) is dropped.
//   2. Each story's answer is its first sentences up to kAnswerChars characters (so an answer
//      and its instruction fit the quickstart's 256-token context, mostly within the 128 positions it was trained at).
//   3. Per story, one example of each kind whose check can be built from the answer:
//        words     "Write a story that uses the words W1, W2 and W3."  W1..W3: three distinct
//                  lower-case words of 4+ letters from the answer, not common function words,
//                  drawn with a seeded Rng. Check: every word appears as a whole word.
//        name      "Write a story about a girl named N." (or boy), when the answer says
//                  "girl/boy named N". Check: N appears as a whole word.
//        continue  "Continue this story: <the first sentence>" and the answer's next sentences.
//                  Check: the answer is not empty, does not just repeat the given text, and
//                  shares a name or content word with it (it stays on the story).
//        two_turn  a name turn about this story, then "Now write another story that uses the
//                  words ..." answered by the next story of the same split (checked as words).
//   The licence: TinyStories is CDLA-Sharing-1.0 (data/tinystories.SOURCE.md); the instruction
//   set is derived from it and shares that licence.
//
// File format (JSONL, one example per line):
//   {"id":"train-12-words","kind":"words","split":"train",
//    "messages":[{"role":"user","content":"..."},{"role":"assistant","content":"..."}],
//    "check":{"words":["ball","happy","park"]}}
// "check" holds "words" (kinds words, two_turn), "name" (name) or "prompt" (continue). The last
// message is the assistant's reference answer; evaluation drops it and asks the model instead.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"

namespace foundry {

struct InstructExample {
  std::string id;
  std::string kind;   // "words", "name", "continue", "two_turn"
  std::string split;  // "train" or "test"
  std::vector<ChatMessage> messages;
  std::vector<std::string> words;  // words, two_turn: each must appear in the answer
  std::string name;                // name: must appear in the answer
  std::string prompt;              // continue: the text to continue
};

struct InstructOptions {
  double val_fraction = 0.1;  // as `foundry prepare`'s default: the held-out stories
  uint64_t seed = 1337;
  std::string separator = "<|endoftext|>";
  // More practice for the words kind, on the train split only (the test split stays as it is):
  //   words_per_story  words examples per story, each with its own three words (ids "...-words",
  //                    "...-words2", ...; the extra draws use their own generator, so the default
  //                    of 1 gives the same bytes as before)
  //   words_in_order   list a training instruction's words in the order the answer uses them
  int words_per_story = 1;
  bool words_in_order = false;
  //   words_opening    n > 0: a words example's answer is the story's opening, its first n
  //                    sentences (extended sentence by sentence until it holds three content
  //                    words, within kAnswerChars), the words are drawn from that opening and
  //                    listed in the order it uses them, in both splits and in two_turn's second
  //                    turn. The words are then a larger share of a shorter answer, and an answer
  //                    that follows the instruction uses them early. Words that more than one
  //                    story opening in twenty uses ("girl", "named", "loved", "play", ...) are
  //                    not asked for: a generic opening would satisfy them without reading the
  //                    instruction. 0: the whole answer, any order, as before.
  int words_opening = 0;
  //   words_windows    n > 0: on the train split only, every run of n consecutive sentences of a
  //                    story (the window starting at each sentence, within kAnswerChars) becomes a
  //                    words answer too (ids "...-window<k>", k = its first sentence from 1), its
  //                    three words drawn from the window (never the common opening words above)
  //                    and listed in the order it uses them; a window whose text is already an
  //                    answer of this recipe is skipped. About ten times as many distinct, short
  //                    answers as stories: a model that has seen each once cannot have memorised
  //                    them, and copying the requested words is what lowers its loss. The test
  //                    split is untouched, so the evaluation asks what it asked before. 0: none.
  int words_windows = 0;
};

inline constexpr size_t kAnswerChars = 360;

std::vector<InstructExample> make_instruct(const std::string& text, const InstructOptions& options = {});

// The held-out (test-split) stories of the text, each followed by its separator, concatenated:
// the text whose loss shows what fine-tuning cost the base skill.
std::string held_out_stories(const std::string& text, const InstructOptions& options = {});

// The JSONL text of the examples (one line each) and its reader. The reader checks every field
// and throws std::runtime_error naming the origin, the line and what was wrong; it refuses lines
// over kMaxInstructLine bytes and files of more than kMaxInstructExamples examples.
inline constexpr size_t kMaxInstructLine = 1 << 20;
inline constexpr size_t kMaxInstructExamples = 1 << 20;
std::string instruct_to_jsonl(const std::vector<InstructExample>& examples);
std::vector<InstructExample> read_instruct_jsonl(const std::string& text, const std::string& origin);
std::vector<InstructExample> load_instruct(const std::string& path);

// The kinds, in report order.
const std::vector<std::string>& instruct_kinds();

// Does `answer` (the model's last turn) satisfy the example's instruction?
bool satisfies(const InstructExample& example, const std::string& answer);

// The words of `text` as whole words, lower-cased (letters only): what the checks compare.
std::vector<std::string> words_of(const std::string& text);

}  // namespace foundry
