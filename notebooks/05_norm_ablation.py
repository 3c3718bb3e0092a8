# %% [markdown]
# # 05 · Which ingredient of BatchNorm does it? A normalisation ablation
#
# The paper contrasts BatchNorm with no normalisation. This notebook asks which part of BN
# produces the differences, by training the same network with every normalisation in
# `bnlib.models.NORM_LAYERS`, 4 seeds each:
#
# | norm | what it keeps of BN |
# |---|---|
# | `batch` | everything: batch statistics, learned scale and shift, before the ReLU |
# | `batch_noaffine` | batch statistics without the learned γ, β |
# | `batch_after_relu` | BN after the ReLU (the representation is the ReLU output, before BN) |
# | `group`, `layer`, `instance` | per-sample statistics over channel groups, all channels, or each channel |
# | `none` | nothing |
#
# **How to read it.** Each panel is one measurement per layer, mean ± std over seeds (error
# bars), one colour per norm. The closing table lists each effect BN has over `none`
# (significant after Holm's correction over the layers of that metric) and which other norms
# share it: the same sign and significant too. Everything there is computed from the numbers.

# %% tags=["parameters"]
profile = "ablation"  # a params/<profile>.yaml; override any of its keys below or with papermill

# %%
from bnlib import measuring, params, plots, prose, stats, tables

P = params.from_notebook(globals())
accuracy, ablation = measuring.measured(P, "accuracy", "ablation")  # accuracy.csv, ablation.csv
df = tables.long_form(accuracy, ablation)
print(prose.describe_exclusions(df))  # left out of every statistic below

# %%
print(prose.describe_accuracy(df))

# %%
metrics = ["test_accuracy", "channel_sparsity", "element_sparsity", "silhouette", "silhouette_pooled"]
metrics = [m for m in metrics if m in set(df.metric)]
fig = plots.ablation_figure(stats.usable(df), metrics, title=f"Normalisation ablation · {P.arch} on "
                            f"{prose.dataset_title(P)}")
plots.save_figure(fig, ablation, P.figures_dir(), "ablation")

# %% [markdown]
# ## What the numbers say
# Every norm against `none`, per metric and layer: the difference of means, Welch's t-test over
# seeds, and Holm's correction over the layers of one metric.

# %%
versus_none = stats.compare_to_reference(df, metrics, reference="none")
plots.save_table(versus_none, P.figures_dir(), "ablation_vs_none")
versus_none.pivot_table(index=["metric", "layer_index", "layer"], columns="norm", values="diff").round(4)

# %% [markdown]
# Which ingredient carries each effect of BN? A norm *shares* an effect when its own
# difference from `none` has the same sign and survives the same correction. `ratio` columns
# give its difference as a fraction of BN's.

# %%
shared = stats.shared_effects(versus_none, effect_of="batch")
print(stats.describe_shared_effects(shared))
plots.save_table(shared, P.figures_dir(), "ablation_shared")
shared.round(3)
