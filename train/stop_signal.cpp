#include "train/stop_signal.h"

#include <csignal>

namespace foundry {

namespace {

// Written by the handler, read by the loop: sig_atomic_t is what a handler may write.
volatile std::sig_atomic_t g_stop_requested = 0;

extern "C" void on_stop_signal(int signal) {
  g_stop_requested = 1;
  // A second Ctrl-C (or SIGTERM) kills the program as usual, in case the checkpoint itself hangs.
  std::signal(signal, SIG_DFL);
}

}  // namespace

StopSignalGuard::StopSignalGuard()
    : previous_int_(std::signal(SIGINT, on_stop_signal)), previous_term_(std::signal(SIGTERM, on_stop_signal)) {
  g_stop_requested = 0;
}

StopSignalGuard::~StopSignalGuard() {
  std::signal(SIGINT, previous_int_);
  std::signal(SIGTERM, previous_term_);
}

bool stop_requested() { return g_stop_requested != 0; }

void request_stop() { g_stop_requested = 1; }

}  // namespace foundry
