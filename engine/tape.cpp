#include "engine/tape.h"

#include <sstream>
#include <stdexcept>

namespace foundry {

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
    throw std::out_of_range("tape has no node " + std::to_string(id) + " (it holds " + std::to_string(count_) +
                            ")");
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
  if (any_grad) {
    n.own_grad.resize(shape);
    n.grad = &n.own_grad;
  }
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

Tensor& Tape::out(Var v) {
  TapeNode& n = recorded(v, "Tape::out");
  if (n.value != &n.own_value) throw std::logic_error("Tape::out: node " + std::to_string(v.id) + " is a leaf");
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
  return *n.grad;
}

// ANCHOR: tape_backward
void Tape::backward(Var out, const Tensor& dout) {
  check_same_shape(value(out), dout, "Tape::backward seed gradient");
  // The gradients of recorded ops start at zero; the gradients of params are the caller's and
  // keep accumulating (+=), so that a weight used twice, or over several micro-batches, sums.
  for (int i = 0; i < count_; i++) {
    if (nodes_[i].grad == &nodes_[i].own_grad) nodes_[i].own_grad.fill(0);
  }
  if (!needs_grad(out)) return;  // nothing on the tape depends on a param
  Tensor& g = grad(out);
  for (size_t i = 0; i < g.size(); i++) g[i] += dout[i];
  // One reverse loop: when node i runs, every node that used it (all recorded later) already
  // added its share to node i's gradient.
  for (int i = out.id; i >= 0; i--) {
    TapeNode& n = nodes_[i];
    if (n.grad && n.backward) n.backward();
  }
}
// ANCHOR_END: tape_backward

void Tape::backward(Var loss) {
  if (value(loss).size() != 1) {
    throw std::invalid_argument("Tape::backward(loss) needs a scalar loss, got shape " +
                                shape_str(value(loss).shape) + "; pass a seed gradient for other outputs");
  }
  backward(loss, Tensor(value(loss).shape, 1));
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
