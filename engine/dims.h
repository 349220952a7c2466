// The dimension legend. Every shape comment in the project uses these letters.
//
// ANCHOR: dims_legend
//   B    batch size (rows of a batch)
//   T    time: positions in a sequence (context length)
//   C    channels: the model dimension (dim)
//   NH   number of query heads
//   NKV  number of key/value heads (NKV divides NH; NH / NKV query heads share one kv head)
//   HS   head size, C / NH
//   F    hidden size of the feed-forward network (hidden_dim)
//   V    vocabulary size
//   L    number of layers (transformer blocks)
//   N    any flattened row count, usually B * T
//   R    rank of a low-rank adapter (LoRA): the width of its bottleneck
//
// Tensors are row-major: in a (B, T, C) tensor, element (b, t, c) sits at (b * T + t) * C + c,
// so the last dimension is contiguous in memory.
// ANCHOR_END: dims_legend
#pragma once
