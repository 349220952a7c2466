// Choosing the thread count of token-by-token generation while it runs.
//
// A decoding step is a few dozen short parallel loops (one matrix-vector product each), and at
// the end of every loop the threads wait for each other. On an idle machine a second thread
// still pays (the products are large enough); when another program holds one of two cores, the
// helper thread has to win its core back from the scheduler at every loop, and two threads
// decode slower than one. Which is faster can change at any moment, so the generation loop
// measures it: every so often it runs a few tokens at the other thread count and keeps the
// faster. This is safe only because decoding computes the same bits at any thread count: every
// row of a matrix-vector product is one dot product whatever block it falls in, and attention's
// heads are independent (tests/infer check both). Training is different: its products sum in
// an order that depends on the thread count, so training never changes its count by itself.
#pragma once

namespace foundry {

class ThreadChooser {
 public:
  // `threads`: the count the caller asked for. With 1 (or when disabled by
  // FOUNDRY_ADAPT_THREADS=0) it always answers `threads`.
  explicit ThreadChooser(int threads);

  // The thread count for the next token.
  int next() const;
  // The time of the token just run at next()'s count.
  void record(double seconds);

  int current() const { return best_; }  // the count that won the last comparison
  int switches() const { return switches_; }

  // A window of kProbe tokens at the current count, then kProbe at the other, compared by
  // their median time (one token takes tens of microseconds for a small model, and a single
  // interruption would swing a sum); the window comes at the end of every period, which starts
  // at kShortPeriod tokens and grows fourfold (up to kLongPeriod) each time the other count clearly
  // loses, so a settled machine pays little. The first period is the two windows alone: a
  // short generation (a chat answer) decides after its first 2·kProbe tokens.
  static constexpr int kProbe = 8;
  static constexpr int kShortPeriod = 64;
  static constexpr int kLongPeriod = 1024;

 private:
  int requested_, best_;
  bool enabled_;
  int period_ = 2 * kProbe;
  int position_ = 0;  // tokens into the current period
  double best_times_[kProbe] = {}, other_times_[kProbe] = {};
  int switches_ = 0;
};

}  // namespace foundry
