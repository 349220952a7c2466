// Ctrl-C (SIGINT) and SIGTERM (kill, timeout, job schedulers) as a request to stop: a training
// loop finishes the step it is in, saves a checkpoint and returns, instead of dying with everything
// since its last checkpoint. `foundry train` (train/trainer.h) and `foundry sft` (train/sft.h)
// install the handler for the length of a run and look at stop_requested() after every step.
#pragma once

namespace foundry {

// While it lives, SIGINT and SIGTERM set the stop request instead of ending the program; making
// one clears any earlier request, and its end puts back the handlers it found. A second signal
// ends the program as usual (the handler reinstalls the default), in case the save itself hangs.
class StopSignalGuard {
 public:
  StopSignalGuard();
  ~StopSignalGuard();
  StopSignalGuard(const StopSignalGuard&) = delete;
  StopSignalGuard& operator=(const StopSignalGuard&) = delete;

 private:
  void (*previous_int_)(int);
  void (*previous_term_)(int);
};

// True once a signal (or request_stop) asked to stop since the newest guard was made.
bool stop_requested();

// Asks the running loop to stop as a signal does. Safe to call from a signal handler.
void request_stop();

}  // namespace foundry
