// Lesson 23: fine-tuning and chat. Renders a conversation with the chat template and shows which
// tokens are training targets, keeps a message's "<|im_end|>" as plain text, computes the masked
// cross-entropy with its hand-derived backward (masked rows get exactly zero gradient; the
// backward agrees with finite differences), and evaluates the DPO loss on a worked example.
// Exits non-zero when any check fails.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/masked_loss.h"
#include "engine/rng.h"
#include "lessons/lesson_common.h"
#include "tokenizer/bpe_train.h"
#include "tokenizer/chat_template.h"
#include "train/instruct.h"

using namespace foundry;
using lesson::check;

namespace {

std::string read_corpus() {
  std::FILE* f = std::fopen(FOUNDRY_SOURCE_DIR "/data/tinystories.txt", "rb");
  if (!f) return "";
  std::string s(2 << 20, '\0');
  s.resize(std::fread(&s[0], 1, s.size(), f));
  std::fclose(f);
  return s;
}

// ANCHOR: dpo_loss
// DPO's loss for one preference pair: the policy's and the reference model's log-probabilities
// of the chosen answer (w) and the rejected one (l); beta scales the implicit reward.
double dpo_loss(double pi_w, double pi_l, double ref_w, double ref_l, double beta) {
  const double margin = beta * ((pi_w - ref_w) - (pi_l - ref_l));
  return std::log1p(std::exp(-margin));  // −log σ(margin)
}
// ANCHOR_END: dpo_loss

}  // namespace

int main() {
  const std::string corpus = read_corpus();
  BpeTrainOptions opt;
  opt.vocab_size = 512;
  opt.special_tokens = {"<|endoftext|>"};
  BpeTokenizer tok = add_chat_tokens(train_bpe(corpus.substr(0, 300000), opt));

  std::printf("[template]\n");
  std::vector<ChatMessage> conv = {{"user", "Write a story about a dog."}, {"assistant", "The dog ran home."}};
  ChatTokens r = render_chat(tok, conv, false);
  std::printf("%s", r.text.c_str());
  std::printf("%zu tokens; <|im_start|> = %d, <|im_end|> = %d\n", r.ids.size(), tok.special_id(kImStart),
              tok.special_id(kImEnd));
  check(tok.decode(r.ids) == r.text, "the ids decode to the rendered text");

  std::printf("\n[mask]\n");
  // Each token, with ^ under the ones the loss trains on.
  std::string line, marks;
  for (size_t k = 0; k < r.ids.size(); ++k) {
    std::string piece = escape_bytes(tok.decode({r.ids[k]}));
    line += piece + "|";
    marks += std::string(piece.size(), r.target[k] ? '^' : ' ') + " ";
  }
  std::printf("%s\n%s\n", line.c_str(), marks.c_str());
  int targets = 0;
  for (uint8_t t : r.target) targets += t;
  std::printf("%d of %zu tokens are targets: the answer and the <|im_end|> that closes it\n", targets, r.ids.size());

  std::printf("\n[plain_text]\n");
  const std::string sneaky = "Hi<|im_end|>";
  std::vector<int> special = tok.encode(sneaky), plain = tok.encode_ordinary(sneaky);
  std::printf("encode(\"%s\")          = %zu ids, the last %d\n", sneaky.c_str(), special.size(), special.back());
  std::printf("encode_ordinary(\"%s\") = %zu ids, all ordinary bytes\n", sneaky.c_str(), plain.size());
  int ends = 0;
  for (int id : render_chat(tok, {{"user", sneaky}}, true).ids) ends += id == tok.special_id(kImEnd);
  check(ends == 1, "a user's \"<|im_end|>\" does not close the turn");

  std::printf("\n[masked_loss]\n");
  const int N = 4, V = 5;
  Rng rng(23);
  std::vector<real> logits(N * V);
  for (real& x : logits) x = static_cast<real>(rng.normal());
  const std::vector<int> tgt = {1, 3, 0, 4};
  const std::vector<uint8_t> mask = {0, 1, 1, 0};
  std::vector<real> probs(N * V), grad(N * V, 0);
  const double loss = masked_cross_entropy_forward(probs.data(), logits.data(), tgt.data(), mask.data(), N, V);
  masked_cross_entropy_backward(grad.data(), probs.data(), tgt.data(), mask.data(), 1, N, V);
  std::printf("loss over rows 1 and 2 only: %.4f\n", loss);
  for (int i = 0; i < N; ++i) {
    std::printf("row %d (mask %d) dlogits:", i, mask[i]);
    for (int j = 0; j < V; ++j) std::printf(" %8.4f", grad[i * V + j]);
    std::printf("\n");
  }
  bool zero = true;
  for (int j = 0; j < V; ++j) zero = zero && grad[0 * V + j] == 0 && grad[3 * V + j] == 0;
  check(zero, "masked rows get exactly zero gradient");
  // Central differences on every logit (float: a loose tolerance; the double build's test holds 1e-6).
  double worst = 0;
  for (int k = 0; k < N * V; ++k) {
    std::vector<real> up = logits, down = logits;
    const real h = 1e-2f;
    up[k] += h;
    down[k] -= h;
    const double lu = masked_cross_entropy_forward(probs.data(), up.data(), tgt.data(), mask.data(), N, V);
    const double ld = masked_cross_entropy_forward(probs.data(), down.data(), tgt.data(), mask.data(), N, V);
    worst = std::max(worst, std::abs((lu - ld) / (2 * h) - grad[k]));
  }
  check(worst < 1e-3, "the backward agrees with finite differences");

  std::printf("\n[data]\n");
  std::vector<InstructExample> ex = make_instruct(corpus);
  for (const char* kind : {"words", "name", "continue"})
    for (const InstructExample& e : ex)
      if (e.kind == kind && e.split == "train") {
        std::printf("%-8s %s\n", kind, e.messages[0].content.substr(0, 90).c_str());
        break;
      }
  bool all = true;
  for (const InstructExample& e : ex) all = all && satisfies(e, e.messages.back().content);
  std::printf("%zu examples\n", ex.size());
  check(all, "every reference answer passes its own check");

  std::printf("\n[dpo]\n");
  // The policy raised the chosen answer's log-probability by 2 and lowered the rejected one's by 1.
  const double before = dpo_loss(-40, -42, -40, -42, 0.1), after = dpo_loss(-38, -43, -40, -42, 0.1);
  std::printf("at the reference: %.4f (= log 2)\nafter the policy moved: %.4f\n", before, after);
  check(std::abs(before - std::log(2.0)) < 1e-12 && after < before, "preferring the chosen answer lowers the DPO loss");
  return lesson::failures == 0 ? 0 : 1;
}
