# %% [markdown]
# # 01 · Average channel sparsity, with and without BatchNorm
#
# Reproduces the paper's sparsity figure (Figure 1 style): for every conv layer and the
# hidden FC layer, the **average channel sparsity** of the post-ReLU representations of
# training samples, for BN and no-BN models.
#
# *Channel sparsity* of one sample at one layer is the fraction of channels whose whole
# feature map is zero (our reading of the paper's term; see the README's Assumptions).
# It is averaged over samples, then shown as mean ± std over seeds (error bars).
# Secondary panels: element sparsity (fraction of exactly-zero activations) and the
# fraction of dead channels (zero for every sample).
#
# **The paper's claims tested here.** (1) BN changes sparsity only a little, and not
# consistently across layers. (2) The sparsity difference does not explain the
# generalisation difference.

# %% tags=["parameters"]
profile = "quick"  # a params/<profile>.yaml; override any of its keys below or with papermill

# %%
from bnlib import claims, comparisons, measuring, params, plots, prose, stability, stats, tables

P = params.from_notebook(globals())
accuracy, sparsity = measuring.measured(P, "accuracy", "sparsity")  # accuracy.csv, sparsity.csv
df = tables.long_form(accuracy, sparsity)
print(prose.describe_exclusions(df))  # left out of every statistic below

# %%
metrics = ["channel_sparsity", "element_sparsity", "dead_channels"]
fig = plots.metric_panels(df, metrics, title=f"Sparsity per layer · {P.arch} on {prose.dataset_title(P)}")
plots.save_figure(fig, sparsity, P.figures_dir(), "sparsity")

# %% [markdown]
# ## What the numbers say
# Per layer, BN minus no-BN, with Welch's t-test across seeds.

# %%
comparison = stats.compare_norms(df, "channel_sparsity")
print(stats.describe_comparison(comparison, "Average channel sparsity"))
comparison.round(4)

# %% [markdown]
# Claim (2): does sparsity track generalisation? One row per model: its mean channel
# sparsity over layers, its test accuracy and its train–test gap.

# %%
per_model = stats.sparsity_vs_generalisation(df)
print(stats.describe_sparsity_vs_generalisation(per_model))
per_model.round(4)

# %% [markdown]
# The verdicts on claims (1) and (2), with Holm's correction over layers: the same sentences as the README's.

# %%
print(claims.verdicts(df, comparisons.comparisons(df), claims=(1, 2)))
print(stability.stability_of(P.figures_dir(), claims=(1, 2)))  # from the CSVs just written
