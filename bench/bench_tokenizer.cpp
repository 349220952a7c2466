// Tokenizer benchmark: BPE training time, naive (recount after every merge) against incremental
// (update only the words that changed), on a 130 KB and a 2 MiB corpus; encoding throughput.
//
//   build/bench/bench_tokenizer [--no-naive-large]
//
// Single thread (the tokenizer uses no threads). Corpora: data/ in the checkout, else
// ../shared/data beside it. Prints figures only; BENCHMARKS.md records them.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "engine/parallel.h"
#include "tokenizer/bpe_train.h"

using namespace foundry;

namespace {

std::string corpus(const std::string& name) {
  const std::filesystem::path source(FOUNDRY_SOURCE_DIR);
  for (const std::filesystem::path& p : {source / "data" / name, source / ".." / "shared" / "data" / name}) {
    std::ifstream in(p, std::ios::binary);
    if (!in) continue;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::fprintf(stderr, "bench_tokenizer: %s not found under data/ or ../shared/data/\n", name.c_str());
  std::exit(1);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Best of `repeats` runs of f(), in seconds.
template <class F>
double best_of(int repeats, F f) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

void train_row(const char* name, const std::string& text, int vocab_size, bool run_naive) {
  BpeTrainOptions o;
  o.vocab_size = vocab_size;
  o.special_tokens = {"<|endoftext|>"};
  PretokenCounts counts;
  const double t_count = best_of(3, [&] {
    counts = PretokenCounts();
    count_pretokens(text, o.special_tokens, counts);
  });
  size_t merges_made = 0;
  const double t_incr = best_of(3, [&] { merges_made = train_bpe(counts, o).merges().size(); });
  std::printf("%-26s %9zu B  vocab %5d  %6zu words  count %.3f s  incremental %.3f s  (total %.3f s)", name,
              text.size(), vocab_size, counts.counts.size(), t_count, t_incr, t_count + t_incr);
  if (run_naive) {
    const int n = vocab_size - 257;
    bool same = false;
    const double t_naive = best_of(1, [&] { same = train_bpe_naive(counts, n) == merge_bytes(train_bpe(counts, o)); });
    // subtle: the naive timing above includes one incremental run for the comparison; remove it.
    std::printf("  naive %.3f s  (%.0fx slower)  same merges: %s", t_naive - t_incr, (t_naive - t_incr) / t_incr,
                same ? "yes" : "NO");
  }
  std::printf("  [%zu merges]\n", merges_made);
}

}  // namespace

int main(int argc, char** argv) {
  foundry::choose_wait_policy(argv);  // short spins, then sleep (engine/parallel.h); may re-execute
  const bool naive_large = !(argc > 1 && !std::strcmp(argv[1], "--no-naive-large"));
  const std::string stories = corpus("tinystories.txt");
  const std::string shakespeare = corpus("tinyshakespeare.txt");
  const std::string small = stories.substr(0, 130 * 1000);

  std::printf("[training] single thread, best of 3 (naive: 1 run), special token <|endoftext|>\n");
  train_row("tinystories first 130 KB", small, 500, true);
  train_row("tinystories 2 MiB", stories, 8192, naive_large);

  std::printf("[encoding] single thread, best of 3, pre-token cache on (one encode call per text)\n");
  BpeTrainOptions o;
  o.vocab_size = 8192;
  o.special_tokens = {"<|endoftext|>"};
  const BpeTokenizer ours = train_bpe(std::string_view(stories), o);
  const BpeTokenizer gpt2 =
      BpeTokenizer::load_gpt2(std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/tokenizer/gpt2/vocab.json",
                              std::string(FOUNDRY_SOURCE_DIR) + "/tests/fixtures/tokenizer/gpt2/merges.txt");
  struct Row {
    const char* name;
    const BpeTokenizer* tok;
    const std::string* text;
    const char* text_name;
  };
  for (const Row& r :
       {Row{"ours (8192)", &ours, &stories, "tinystories"}, Row{"ours (8192)", &ours, &shakespeare, "tinyshakespeare"},
        Row{"gpt2 (50257)", &gpt2, &stories, "tinystories"},
        Row{"gpt2 (50257)", &gpt2, &shakespeare, "tinyshakespeare"}}) {
    size_t n = 0;
    const double t = best_of(3, [&] { n = r.tok->encode(*r.text).size(); });
    size_t n_stream = 0;
    const double ts = best_of(3, [&] {
      std::istringstream in(*r.text);
      n_stream = 0;
      r.tok->encode_stream(in, [&](const std::vector<int>& ids) { n_stream += ids.size(); });
    });
    std::printf("%-13s %-16s %8zu tokens  %.2f bytes/token  encode %6.1f MB/s  stream %6.1f MB/s%s\n", r.name,
                r.text_name, n, static_cast<double>(r.text->size()) / n, r.text->size() / t / 1e6,
                r.text->size() / ts / 1e6, n == n_stream ? "" : "  STREAM MISMATCH");
  }
  // Decoding is a concatenation of byte strings: the round trip costs little more than encoding.
  const double t_decode = best_of(3, [&] { (void)ours.decode(ours.encode(stories)); });
  std::printf("ours round trip (encode+decode) tinystories: %.1f MB/s\n", stories.size() / t_decode / 1e6);
  return 0;
}
