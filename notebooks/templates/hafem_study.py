# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # HAFEM on {{dataset}}
#
# EfficientNet backbone + CBAM + transformer over a 7×7 token grid, trained with the compound loss
# 0.60·CE + 0.25·center + 0.15·distribution-aware label smoothing (HAFEM: Chatterjee, JAIMLNN 6(1), 2026).
# Every seed in `seeds` gets its own run folder under `results/raw/hafem/<profile>/{{dataset}}/hafem/`, with test
# metrics of the validation-selected model (never selected on test), per-sample predictions, the confusion matrix
# and a checkpoint. On FER2013 only (as in the paper) the notebook also runs the ablation ladder, the timm Table-3
# baselines, zero-shot tests on RAF-DB / AffectNet and the optuna search of the loss weights and learning rate.
#
# The `demo` profile runs on **generated data** with a small Lite0 model: its numbers are **synthetic** and
# reproduce nothing. Statistics across runs (paired tests, intervals) are made only by `statistical_analysis/`.

# %% tags=["parameters"]
dataset = "FER2013"
variant = "hafem"
profile = "demo"
seed = 0
data_root = ""
epochs = None
seeds = None
backbone = None
pretrained = None
baseline_pretrained = None
ablation_resnet = None
baselines = None
input_size = None
token_grid = None
dim = None
depth = None
heads = None
ff_dim = None
cbam_placement = None
cbam_stages = None
dropout = None
loss = None
w_ce = None
w_center = None
w_dls = None
loss_weights = None
cv_folds = None
cv_epochs = None
cv_grid = None
smoothing = None
batch_size = None
lr_max = None
lr_min = None
warmup_epochs = None
weight_decay = None
layer_decay = None
patience = None
mixup_prob = None
mixup_alpha = None
augment = None
max_train = None
max_eval = None
ferplus_mode = None
alignment = None
on_no_face = None
affectnet_classes = None
comparisons = None
comparison_seeds = None
finetune_from = None
finetune_epochs = None
zeroshot_targets = None
tune_trials = None
tune_epochs = None
explain = None
shap_samples = None
measure_speed = None
threads = None
device = None
amp = None
grad_clip = None
num_workers = None
save_state_every = None

# %%
# %matplotlib inline
import pandas as pd

from common.config import get_study
from common.fer import data as fer_data
from common.fer import explain as fer_explain
from common.fer import figures, run

spec = get_study("hafem")
cfg = spec.resolve({name: globals()[name] for name in spec.params})
print("synthetic demo data: numbers reproduce nothing" if cfg["profile"] == "demo" else "real data")
pd.Series(dict(cfg)).to_frame("value")

# %% [markdown]
# ## Data: splits, class counts, skipped rows

# %%
run.setup(cfg)
data = fer_data.load_data(cfg)
figures.data_summary(data)

# %% [markdown]
# ## Train and evaluate every seed (plus, on FER2013, the ablation ladder, baselines and zero-shot tests: in every
# seed, or with `comparison_seeds='own'` (the demo) in the notebook's own seed only)

# %%
outcomes = run.run_study(cfg, data=data)
figures.summary_table(outcomes)

# %% [markdown]
# ## Test metrics of the notebook's seed: per-class F1 and confusion matrix

# %%
last = outcomes[-1]
figures.per_class_f1(last.metrics, data.classes);
figures.confusion_matrix(last.folder, figures.MAIN_VARIANT);

# %% [markdown]
# ## Training curves (validation macro-F1 selects the epoch)

# %%
figures.curves(last.folder, figures.MAIN_VARIANT);

# %% [markdown]
# ## Ablation ladder, Table-3 baselines and zero-shot (FER2013 only); the RAF-DB fine-tune from FER2013 (RAF-DB)

# %%
figures.comparisons_table(outcomes)

# %% [markdown]
# ## Explanations: Grad-CAM over the faces (a correct and a wrong prediction per class), attribution by facial
# region (Grad-CAM and SHAP, from the face mesh of each aligned face) and SHAP on the classifier's input features

# %%
if cfg["explain"]:
    fer_explain.plot_gradcam(last.explained["gradcam"])
    fer_explain.plot_regions(last.explained["regions"])
    fer_explain.plot_shap(last.explained["shap"], data.classes)

# %% [markdown]
# ## Where the loss weights came from (fixed, cross-validation or the search), the search, the CBAM placement and
# ## parameter count, and model speed

# %%
figures.run_record(last.folder)
