// The autograd tape: a list of operations recorded in the order they ran (a Wengert list).
//
// Forward: every taped op appends one node holding its output value, the ids of its inputs and a
// backward function. Backward: one loop over the nodes in reverse order; each node's backward
// function reads the node's gradient dL/d(output) and ADDS its contribution to the gradients of
// its inputs. Reverse recording order is already a valid topological order, so no graph walk is
// needed.
//
// Leaves do not copy anything. `param(value, grad)` records a pointer to a model weight and to
// the tensor its gradient accumulates into; `input(value)` records a pointer to data that needs
// no gradient. The caller keeps those tensors alive until backward() returns.
//
// Buffers survive clear(): the next step records the same ops with the same shapes, so node i
// reuses node i's output, gradient and saved tensors without touching the allocator. Reuse
// matters because the first write to every fresh page of memory is a page fault to the kernel.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace foundry {

// A handle to a value recorded on a tape: just the node's index.
struct Var {
  int id = -1;
};

// ANCHOR: tape_node
struct TapeNode {
  std::string op;                  // "matmul", "param", ... (for printing)
  std::vector<int> inputs;         // ids of the nodes this one was computed from
  const Tensor* value = nullptr;   // the output: &own_value, or the caller's tensor for a leaf
  Tensor* grad = nullptr;          // dL/d(value): &own_grad, the caller's gradient, or nullptr
  std::function<void()> backward;  // adds this node's grad into the inputs' grads; empty for leaves
  Tensor own_value;                // storage for an op's output
  Tensor own_grad;                 // storage for an op's gradient
  std::vector<Tensor> saved;       // what the backward needs that is not an input or the output
};
// ANCHOR_END: tape_node

class Tape {
 public:
  Tape() = default;
  // subtle: every backward function holds a reference to its tape, so a copied (or moved) tape
  // would run its backward functions against the original. Tapes therefore stay where they are.
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;

  // Leaves. The tape keeps pointers: `value` (and `grad`) must outlive backward().
  Var param(const Tensor& value, Tensor& grad, const std::string& name = "param");
  Var input(const Tensor& value, const std::string& name = "input");

  // Recording an op (used by the taped wrappers of each op). `record` appends a node whose
  // output has `shape` (a reused buffer, contents unspecified) and which needs a gradient when
  // any input does. Then the wrapper computes into mutable_value(v) (the writable form of
  // value(v), for an op's own output only) and installs the backward function.
  Var record(const std::string& op, std::vector<int> inputs, const Shape& shape);
  Tensor& mutable_value(Var v);
  // The k-th saved buffer of node v, resized. subtle: asking for slot k can move the node's
  // earlier slots (their list grows), so a reference from an earlier call dangles after it;
  // create the highest slot first, or ask again for each slot once all exist.
  Tensor& saved(Var v, int k, const Shape& shape);
  void set_backward(Var v, std::function<void()> fn);

  const Tensor& value(Var v) const;
  bool needs_grad(Var v) const;  // does a gradient flow into this value?
  Tensor& grad(Var v);           // dL/d(value); throws if needs_grad(v) is false

  // Backpropagation. backward(loss) seeds dL/dL = 1 for a scalar loss; backward(out, dout)
  // seeds dL/d(out) = dout, which is what the gradient checker uses for its probe loss.
  // Gradients of params accumulate (+=) into the caller's tensors: zero them between steps.
  void backward(Var loss);
  void backward(Var out, const Tensor& dout);

  // Called by backward() after each node's backward function, with the node's id (the ids fall
  // from the loss down to 0). A param's gradient is final once the lowest-id node that consumed
  // it has run: data-parallel training (train/grad_reducer.h) sends gradients from here while
  // backward goes on. Empty (the default): nothing is called.
  void set_backward_hook(std::function<void(int)> hook) { backward_hook_ = std::move(hook); }

  // Forget all nodes but keep every buffer for the next step.
  void clear();

  // Gradient memory (the gradient-buffer policy). By default every op node owns a gradient
  // buffer as large as its output, sized and zeroed at the start of backward(): simple, and every
  // gradient can be inspected after backward (the lessons and tests do). With
  // set_reuse_grads(true) (what training uses) a node's gradient exists only while backward
  // needs it: from the moment the first node that consumed it runs its backward (which writes
  // into it) until the node's own backward has passed it on. Then the buffer goes back to a pool
  // and serves another node. The pool survives clear(), so after the first step no buffer is
  // allocated again, and only the few gradients alive at once take memory (about half of a
  // step's activation memory saved). Params' gradients are the caller's and are not affected.
  // After backward() in this mode, grad() of an op node is not available.
  void set_reuse_grads(bool on) { reuse_grads_ = on; }
  bool reuse_grads() const { return reuse_grads_; }
  size_t grad_pool_numbers() const;  // numbers the pool's free buffers can hold (their capacity)

  // A second tape owned by this one, for ops that record and re-run a piece of the graph on
  // their own (recomputation, model/block.h). Created on first use; like every tape it keeps its
  // buffers across clear(), so its memory is that of the largest piece ever recorded on it.
  Tape& scratch();
  const Tape* scratch_if_any() const { return scratch_.get(); }

  int size() const { return count_; }
  const TapeNode& node(int id) const;

  // A readable listing: one line per node with id, op, shape and inputs.
  std::string str() const;

 private:
  TapeNode& next_node(const std::string& op);
  TapeNode& recorded(Var v, const char* who);  // node v, which must be recorded since clear()
  void reach(int id);                          // a gradient flows into node id: mark it, open its gradient
  // The gradient-buffer policy (own buffers or pooled), in the order backward calls it:
  void start_grads();                    // before the reverse loop
  void open_grad(TapeNode& n);           // a gradient first reaches op node n
  void close_grad(TapeNode& n);          // n's backward has passed its gradient on
  void finish_grads();                   // after the reverse loop
  void take_grad_buffer(TapeNode& n);    // n.own_grad ← a pooled buffer, resized and zeroed
  void return_grad_buffer(TapeNode& n);  // n.own_grad's buffer → the pool
  std::deque<TapeNode> nodes_;           // a deque: growing it never moves existing nodes
  int count_ = 0;                        // nodes recorded since the last clear()
  bool reuse_grads_ = false;
  std::function<void(int)> backward_hook_;
  std::vector<char> reached_;                 // during backward: has a gradient flowed into node i?
  std::vector<std::vector<real>> grad_pool_;  // free gradient buffers (set_reuse_grads mode)
  std::unique_ptr<Tape> scratch_;             // scratch(): made on first use
};

}  // namespace foundry
