// Growing a model's vocabulary: new token ids (the chat template's <|im_start|> and <|im_end|>)
// for a model trained without them.
//
// Every tensor with a vocabulary dimension (tok_embeddings.weight (V, C) and, when untied,
// output.weight (V, C)) gains rows V..V'-1; every other tensor is copied unchanged, so the old
// tokens' logits are exactly what they were (test: the logits of the old ids agree bit for bit).
//
// Initialisation of a new row: the mean of the existing rows. As an input embedding it sits in
// the middle of the cloud the blocks were trained on, not at a random point they never saw; as
// an output row its logit h · mean(E) is the mean of the old logits, so a new token starts with
// an ordinary probability (a random row of the init scale would too, but zeros would give every
// new token logit 0, far above the typical negative logit of a rare token in a trained model).
// Fine-tuning then moves the rows where they are needed. Deterministic: no random numbers.
#pragma once

#include "model/model.h"

namespace foundry {

// A new model with config.vocab_size = new_vocab (>= the old one); throws std::invalid_argument
// when new_vocab is smaller or the new config is invalid.
Model grow_vocab(const Model& model, int new_vocab);

}  // namespace foundry
