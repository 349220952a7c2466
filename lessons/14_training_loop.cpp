// Lesson 14: the training loop. Trains tiny models on synthetic token streams and prints the
// loss curves the lesson reads: a healthy run, a run that overfits and is stopped early, and a
// run stopped halfway and resumed from its checkpoint with bit-identical weights. Exits
// non-zero if any check fails.
//
//   build/lessons/lesson_14
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include "engine/parallel.h"
#include "lessons/lesson_common.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/token_file.h"
#include "train/trainer.h"

using namespace foundry;
namespace fs = std::filesystem;

namespace {

using lesson::check;
using lesson::failures;

// One folder per process, so two runs at once (the lesson checker and a learner) never collide.
const fs::path kWork = fs::temp_directory_path() / ("foundry_lesson_14_" + std::to_string(getpid()));

// A language over 32 tokens: usually "next = this + 1", with a random jump 10% of the time.
// With `structure` off, every token is drawn on its own, low ids more often (id = 32·u²): there
// is nothing to learn but those frequencies and, beyond them, the training tokens themselves.
std::vector<int> token_stream(size_t n, uint64_t seed, bool structure) {
  Rng rng(seed);
  std::vector<int> ids(n);
  int cur = 0;
  for (size_t i = 0; i < n; ++i) {
    ids[i] = cur;
    if (!structure) {
      const double u = rng.uniform();
      cur = static_cast<int>(32 * u * u);
    } else {
      cur = rng.uniform() < 0.1 ? static_cast<int>(rng.below(32)) : (cur + 1) % 32;
    }
  }
  return ids;
}

std::string make_data(const std::string& name, size_t n_train, bool structure) {
  const fs::path dir = kWork / name;
  fs::create_directories(dir);
  save_tokens((dir / "train.bin").string(), token_stream(n_train, 1, structure), 32);
  save_tokens((dir / "val.bin").string(), token_stream(2000, 2, structure), 32);
  return dir.string();
}

TrainConfig small_model() {
  TrainConfig c;
  c.model.dim = 32;
  c.model.n_layers = 2;
  c.model.n_heads = 2;
  c.model.n_kv_heads = 2;
  c.model.vocab_size = 32;
  c.model.hidden_dim = 64;
  c.model.max_seq_len = 16;
  c.training.batch_size = 8;
  c.training.seq_len = 16;
  c.training.lr = 1e-2;
  c.training.min_lr = 1e-3;
  c.training.warmup_steps = 5;
  c.training.eval_batches = 8;
  c.training.checkpoint_interval = 1000;
  c.training.log_interval = 1000;
  return c;
}

TrainResult run(const TrainConfig& c, const std::string& data, const std::string& out, long stop_at = 0,
                const std::string& resume = "") {
  TrainOptions o;
  o.data_dir = data;
  o.out_dir = (kWork / out).string();
  o.quiet = true;
  o.stop_at = stop_at;
  o.resume = resume;
  if (resume.empty()) fs::remove_all(o.out_dir);
  return train(c, o);
}

// The evaluations of a run next to the mean training loss of the steps since the previous one.
void print_curve(const std::string& out) {
  const MetricsSeries m = read_metrics((kWork / out / "metrics.jsonl").string());
  std::printf(" step  train loss  val loss\n");
  size_t i = 0;
  for (const EvalPoint& e : m.eval) {
    double sum = 0;
    int count = 0;
    for (; i < m.train.size() && m.train[i].step <= e.step; ++i, ++count) sum += m.train[i].loss;
    if (count == 0) std::printf("%5ld  %10s  %8.4f\n", e.step, "-", e.val_loss);
    else std::printf("%5ld  %10.4f  %8.4f\n", e.step, sum / count, e.val_loss);
  }
}

}  // namespace

int main() {
  set_num_threads(1);  // bit-for-bit reproducible numbers

  std::printf("[healthy]\n");
  const std::string counting = make_data("counting", 20000, true);
  TrainConfig c = small_model();
  c.training.max_steps = 100;
  c.training.eval_interval = 10;
  TrainResult healthy = run(c, counting, "healthy");
  print_curve("healthy");
  std::printf("stopped: %s at step %ld\n", healthy.stop_reason.c_str(), healthy.step);
  check(healthy.best_val_loss < std::log(32.0) - 1.5, "the model learned the +1 rule");

  std::printf("[overfit]\n");
  // 1000 independent training tokens: once their frequencies are learned, the only way to lower
  // the training loss further is to memorize the training stream itself.
  const std::string noise = make_data("noise", 1000, false);
  c.training.max_steps = 600;
  c.training.eval_interval = 25;
  c.training.patience = 3;
  TrainResult overfit = run(c, noise, "overfit");
  print_curve("overfit");
  std::printf("stopped: %s at step %ld, best val loss %.4f\n", overfit.stop_reason.c_str(), overfit.step,
              overfit.best_val_loss);
  check(overfit.stop_reason == "early_stopping", "early stopping ended the run");
  check(overfit.last_val_loss > overfit.best_val_loss, "validation loss rose after its best");

  std::printf("[resume]\n");
  c = small_model();
  c.training.max_steps = 30;
  c.training.eval_interval = 10;
  TrainResult straight = run(c, counting, "straight");
  run(c, counting, "split", 15);  // stops after step 15 with a checkpoint
  TrainResult resumed = run(c, counting, "split", 0, (kWork / "split").string());
  Checkpoint a = load_checkpoint(straight.last_checkpoint);
  Checkpoint b = load_checkpoint(resumed.last_checkpoint);
  double max_diff = 0;
  std::vector<NamedTensor> pa = a.model.parameters(), pb = b.model.parameters();
  for (size_t k = 0; k < pa.size(); ++k) max_diff = std::max(max_diff, max_abs_diff(*pa[k].value, *pb[k].value));
  std::printf("straight: %ld steps, final train loss %.6f\n", straight.step, straight.last_loss);
  std::printf("15 + 15:  %ld steps, final train loss %.6f\n", resumed.step, resumed.last_loss);
  std::printf("largest weight difference: %g\n", max_diff);
  check(max_diff == 0 && straight.last_loss == resumed.last_loss, "resumed run is bit-identical");
  fs::remove_all(kWork);
  return failures == 0 ? 0 : 1;
}
