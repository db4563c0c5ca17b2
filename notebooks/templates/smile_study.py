# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Smile study: {{dataset}} × {{variant}}, all folds
#
# HadaSmileNet-style genuine-vs-posed smile recognition from MediaPipe landmark sequences (the method in our words:
# `docs/smile-method.md`). This notebook only calls `common.smile`; it writes raw per-fold results
# (`results/raw/...`: rows, run.json, curves, checkpoints). Tables and tests across runs belong to
# `statistical_analysis/`. In the `demo` profile the data are **SYNTHETIC** and the numbers say nothing about the
# paper. Rows with `selection = test` pick the epoch on the test fold (the released code's behaviour) and are
# optimistic by construction; they are kept only to measure that optimism. `protocol = "released"` runs the notebook
# as the authors' released notebooks do (`common.smile.study.released_settings`); its results are labelled
# "as released (test-fold selection)" and kept apart from honest runs.

# %% tags=["parameters"]
dataset = "UvA-NEMO"
variant = "hadamard"
profile = "demo"
# protocol: "paper" = honest evaluation; "released" = as the authors' notebooks (sets the values marked below)
protocol = None
seed = 0
data_root = ""
epochs = None
selection = None
fusion_impl = None
dmarker_variant = None
dmarker_scope = None
dmarker_scaling = None
window_sampling = None
eval_windows = None
landmark_norm = None
backbone = None
backbone_size = None
n_points = None
knn_k = None
model_dim = None
n_tokens = None
spatial_depth = None
temporal_depth = None
dropout = None
clip_len = None
n_eval_clips = None
batch_size = None
lr = None
weight_decay = None
lr_step_epoch = None
lr_gamma = None
val_fraction = None
patience = None
folds = None
fold_order = None
max_train_minutes = None
save_checkpoints = None
device = None
amp = None
grad_clip = None
num_workers = None
save_state_every = None
threads = None
unlisted_arrays = None

# %%
from common.config import get_study
from common.smile import run as smile_run

params = {name: globals()[name] for name in get_study("smile").params}
cfg = smile_run.resolve_config(params)
dict(cfg)

# %%
run = smile_run.run_study(cfg)
print(run.folder)

# %%
smile_run.plot_curves(run);

# %%
run.table().round(3)

# %%
run.table().mean(numeric_only=True).round(3)
