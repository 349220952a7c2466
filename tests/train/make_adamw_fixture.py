# Writes tests/fixtures/train/adamw_torch.json: what torch.optim.AdamW does to a matrix and a
# vector over three steps with fixed gradients. Run with Debian's Python (it has python3-torch):
#   /usr/bin/python3 tests/train/make_adamw_fixture.py
# The test suite reads the committed JSON and never needs Python.
import json
import os

import torch

torch.manual_seed(0)
lr, betas, eps, wd = 0.01, (0.9, 0.95), 1e-8, 0.1
matrix = torch.randn(3, 4)
vector = torch.randn(4)
grads = [(torch.randn(3, 4), torch.randn(4)) for _ in range(3)]
out = {"lr": lr, "beta1": betas[0], "beta2": betas[1], "eps": eps, "weight_decay": wd,
       "matrix0": matrix.flatten().tolist(), "vector0": vector.flatten().tolist(),
       "grads": [[g[0].flatten().tolist(), g[1].flatten().tolist()] for g in grads], "steps": []}
# Weight decay on the matrix only (the vector plays an RMSNorm gain), as two parameter groups.
pm = torch.nn.Parameter(matrix.clone())
pv = torch.nn.Parameter(vector.clone())
opt = torch.optim.AdamW([{"params": [pm], "weight_decay": wd}, {"params": [pv], "weight_decay": 0.0}],
                        lr=lr, betas=betas, eps=eps, foreach=False)
for gm, gv in grads:
    pm.grad = gm.clone()
    pv.grad = gv.clone()
    opt.step()
    out["steps"].append({"matrix": pm.detach().flatten().tolist(), "vector": pv.detach().flatten().tolist()})
path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "train", "adamw_torch.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", os.path.normpath(path), "with torch", torch.__version__)
