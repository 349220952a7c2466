#include "engine/tape.h"

#include <sstream>
#include <stdexcept>

#include "engine/parallel.h"

namespace foundry {

namespace {

// An op node's gradient lives in the node (own_grad); a param's is the caller's tensor, and a
// node that needs no gradient has none.
bool tape_owns_grad(const TapeNode& n) { return n.grad == &n.own_grad; }

}  // namespace

TapeNode& Tape::next_node(const std::string& op) {
  if (count_ == static_cast<int>(nodes_.size())) nodes_.emplace_back();
  TapeNode& n = nodes_[count_++];
  n.op = op;
  n.inputs.clear();
  n.backward = nullptr;
  n.value = nullptr;
  n.grad = nullptr;
  return n;
}

const TapeNode& Tape::node(int id) const {
  if (id < 0 || id >= count_) {
    throw std::out_of_range("tape has no node " + std::to_string(id) + " (it holds " + std::to_string(count_) + ")");
  }
  return nodes_[id];
}

// ANCHOR: tape_leaves
Var Tape::param(const Tensor& value, Tensor& grad, const std::string& name) {
  check_same_shape(value, grad, "Tape::param '" + name + "' value and gradient");
  TapeNode& n = next_node(name);
  n.value = &value;
  n.grad = &grad;
  return Var{count_ - 1};
}

Var Tape::input(const Tensor& value, const std::string& name) {
  TapeNode& n = next_node(name);
  n.value = &value;
  return Var{count_ - 1};
}
// ANCHOR_END: tape_leaves

// ANCHOR: tape_record
Var Tape::record(const std::string& op, std::vector<int> inputs, const Shape& shape) {
  bool any_grad = false;
  for (int id : inputs) any_grad = any_grad || node(id).grad != nullptr;
  TapeNode& n = next_node(op);
  n.inputs = std::move(inputs);
  n.own_value.resize(shape);
  n.value = &n.own_value;
  if (any_grad) n.grad = &n.own_grad;  // its buffer: see the gradient-buffer policy below
  return Var{count_ - 1};
}
// ANCHOR_END: tape_record

// subtle: nodes_ may hold more nodes than count_ (buffers kept from before clear()); a Var from
// an earlier step must not silently reach one of those stale nodes.
TapeNode& Tape::recorded(Var v, const char* who) {
  if (v.id < 0 || v.id >= count_) {
    throw std::out_of_range(std::string(who) + ": tape has no node " + std::to_string(v.id) + " (it holds " +
                            std::to_string(count_) + ")");
  }
  return nodes_[v.id];
}

Tensor& Tape::mutable_value(Var v) {
  TapeNode& n = recorded(v, "Tape::mutable_value");
  if (n.value != &n.own_value) {
    throw std::logic_error("Tape::mutable_value: node " + std::to_string(v.id) +
                           " is a leaf (its value is the caller's)");
  }
  return n.own_value;
}

Tensor& Tape::saved(Var v, int k, const Shape& shape) {
  TapeNode& n = recorded(v, "Tape::saved");
  if (static_cast<int>(n.saved.size()) <= k) n.saved.resize(k + 1);
  n.saved[k].resize(shape);
  return n.saved[k];
}

void Tape::set_backward(Var v, std::function<void()> fn) { recorded(v, "Tape::set_backward").backward = std::move(fn); }

const Tensor& Tape::value(Var v) const { return *node(v.id).value; }

bool Tape::needs_grad(Var v) const { return node(v.id).grad != nullptr; }

Tensor& Tape::grad(Var v) {
  const TapeNode& n = node(v.id);
  if (!n.grad) throw std::logic_error("Tape::grad: node " + std::to_string(v.id) + " (" + n.op + ") has no gradient");
  if (tape_owns_grad(n) && n.own_grad.size() != n.own_value.size()) {
    throw std::logic_error("Tape::grad: the gradient of node " + std::to_string(v.id) + " (" + n.op +
                           ") is not held now (an op's gradient exists from backward() on; with "
                           "set_reuse_grads, only during backward)");
  }
  return *n.grad;
}

// ANCHOR: tape_backward
void Tape::backward(Var out, const Tensor& dout) {
  check_same_shape(value(out), dout, "Tape::backward seed gradient");
  start_grads();                 // every op gradient starts at zero (or goes back to the pool)
  if (!needs_grad(out)) return;  // nothing on the tape depends on a param
  reached_.assign(count_, 0);
  reach(out.id);
  Tensor& g = grad(out);
  for (size_t i = 0; i < g.size(); i++) g[i] += dout[i];
  // One reverse loop: when node i runs, every node that used it (all recorded later) already
  // added its share to node i's gradient.
  for (int i = out.id; i >= 0; i--) {
    TapeNode& n = nodes_[i];
    if (!reached_[i] || !n.backward) continue;  // a leaf, or nothing downstream of `out` used it
    for (int id : n.inputs) reach(id);          // their gradients are about to receive a share
    n.backward();
    close_grad(n);  // n's gradient has been passed on
    if (backward_hook_) backward_hook_(i);
  }
  finish_grads();
}

// A gradient flows into node id: from now on it receives shares, so it needs a buffer.
void Tape::reach(int id) {
  if (reached_[id] || !nodes_[id].grad) return;
  reached_[id] = 1;
  if (tape_owns_grad(nodes_[id])) open_grad(nodes_[id]);
}
// ANCHOR_END: tape_backward

// ANCHOR: grad_buffer_policy
// The gradient-buffer policy: the only place where the two modes differ. Params' gradients are
// the caller's and never pass through here.
//   own buffers (default): every op node keeps a gradient buffer of its own, which backward
//     zeroes first and leaves filled, so any gradient can be read afterwards.
//   pooled (set_reuse_grads): a node's gradient takes a buffer from the pool when a gradient
//     first reaches it and gives it back as soon as the node's own backward has passed it on.
void Tape::start_grads() {
  for (int i = 0; i < count_; i++) {
    TapeNode& n = nodes_[i];
    if (!tape_owns_grad(n)) continue;
    if (!reuse_grads_) {
      n.own_grad.resize(n.own_value.shape);  // allocated once, then kept across clear()
      n.own_grad.fill(0);
    } else if (n.own_grad.size() > 0) {
      return_grad_buffer(n);  // left by a backward that threw
    }
  }
}

void Tape::open_grad(TapeNode& n) {
  if (reuse_grads_) take_grad_buffer(n);  // own buffers: already zeroed by start_grads
}

void Tape::close_grad(TapeNode& n) {
  if (reuse_grads_ && tape_owns_grad(n)) return_grad_buffer(n);
}

void Tape::finish_grads() {
  if (!reuse_grads_) return;
  for (int i = 0; i < count_; i++) {  // reached, but never ran a backward (an op without one)
    if (tape_owns_grad(nodes_[i]) && nodes_[i].own_grad.size() > 0) return_grad_buffer(nodes_[i]);
  }
}
// ANCHOR_END: grad_buffer_policy

// ANCHOR: take_grad_buffer
// A node's gradient is needed from the first backward that writes into it (that of its
// last consumer, since backward runs in reverse) until its own backward has read it.
void Tape::take_grad_buffer(TapeNode& n) {
  const size_t size = n.own_value.size();
  // best fit: the smallest free buffer that holds `size` numbers, else the largest one (which
  // then grows). The same step records the same nodes, so from the second step on the choices
  // repeat and nothing is allocated.
  int best = -1;
  for (int k = 0; k < static_cast<int>(grad_pool_.size()); k++) {
    const size_t cap = grad_pool_[k].capacity();
    if (best < 0) {
      best = k;
      continue;
    }
    const size_t best_cap = grad_pool_[best].capacity();
    const bool fits = cap >= size, best_fits = best_cap >= size;
    if ((fits && (!best_fits || cap < best_cap)) || (!fits && !best_fits && cap > best_cap)) best = k;
  }
  if (best >= 0) {
    n.own_grad.data.swap(grad_pool_[best]);
    grad_pool_[best].swap(grad_pool_.back());
    grad_pool_.pop_back();
  }
  n.own_grad.resize(n.own_value.shape);  // within the capacity: no allocation
  real* g = n.own_grad.ptr();
  const long count = static_cast<long>(size);
#pragma omp parallel for if (worth_threads(Work::zeroing, count))
  for (long i = 0; i < count; i++) g[i] = 0;
}
// ANCHOR_END: take_grad_buffer

size_t Tape::grad_pool_numbers() const {
  size_t n = 0;
  for (const std::vector<real>& buffer : grad_pool_) n += buffer.capacity();
  return n;
}

void Tape::return_grad_buffer(TapeNode& n) {
  grad_pool_.emplace_back();
  grad_pool_.back().swap(n.own_grad.data);
  n.own_grad.shape = {0};
}

void Tape::backward(Var loss) {
  if (value(loss).size() != 1) {
    throw std::invalid_argument("Tape::backward(loss) needs a scalar loss, got shape " + shape_str(value(loss).shape) +
                                "; pass a seed gradient for other outputs");
  }
  backward(loss, Tensor(value(loss).shape, 1));
}

Tape& Tape::scratch() {
  if (!scratch_) scratch_ = std::make_unique<Tape>();
  return *scratch_;
}

// ANCHOR: tape_clear
void Tape::clear() { count_ = 0; }
// ANCHOR_END: tape_clear

std::string Tape::str() const {
  std::ostringstream out;
  for (int i = 0; i < count_; i++) {
    const TapeNode& n = nodes_[i];
    out << "#" << i << " " << n.op << " " << shape_str(n.value->shape);
    if (!n.inputs.empty()) {
      out << " <-";
      for (int id : n.inputs) out << " #" << id;
    }
    if (!n.grad) out << "  (no grad)";
    out << "\n";
  }
  return out.str();
}

}  // namespace foundry
