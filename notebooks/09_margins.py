# %% [markdown]
# # 09 · Does BatchNorm move the decision boundary, in input space and in hidden space?
#
# A lens of the same research group: how far correctly classified samples lie from the decision
# boundary, the other half of "clusters more advantageously" (tight clusters matter less if the
# boundary cuts through them). **Are BN's samples farther from the boundary, and does the margin
# track generalisation across models?**
#
# **Hidden margin** (Jiang, Krishnan, Mobahi & Bengio, arXiv 1810.00113). At layer l, for a sample
# of class i, the first-order distance to the boundary with class j is
# (f_i − f_j) / ‖∇_{h_l}(f_i − f_j)‖, minimised over j. BatchNorm changes a layer's scale, so the
# raw margin (in the layer's own units) is only descriptive; the compared one is divided by the
# square root of the layer's total variance over the same samples.
#
# **Input margin** (Mouton, Theunissen & Davel, *Input margins can predict generalization too*,
# arXiv 2308.15466; *The Missing Margin*, arXiv 2302.06925). DeepFool's iterative search for the
# smallest perturbation of the (normalised) input that changes the predicted class; the margin is
# the length that reaches the boundary. The **constrained** margin runs the same search inside the
# top `margin_pca_dims` principal directions of the measured training inputs.
#
# **Samples.** A fixed stratified draw of `margin_samples` measured training images; each model's
# margins are over the ones it classifies correctly. Per model and layer: quartiles and mean.
#
# **Statistics.** The median margins, BN vs no BN: Welch's t over seeds, Hedges' g with a noncentral-t
# 95% interval, Holm's correction over each measure's layers; and each measure's per-model mean
# against the generalisation gap (train − test accuracy), across all models and within a variant,
# Holm over those tests. The verdict is printed by `bnlib.report`, the same function that writes
# the README's.

# %% tags=["parameters"]
profile = "quick"  # a params/<profile>.yaml; override any of its keys below or with papermill

# %%
from bnlib import analyses, claims, comparisons, lens_plots, measuring, params, plots, prose, stability, tables

P = params.from_notebook(globals())
accuracy, margins, summary = measuring.measured(P, "accuracy", "margins", "margin_summary")  # their .csv files
print(prose.describe_exclusions(accuracy))  # left out of every statistic below
print(prose.describe_margins(margins))

# %%
fig = lens_plots.margins_figure(summary, accuracy, title=f"Margins · {P.arch} on {prose.dataset_title(P)}")
plots.save_figure(fig, margins, P.figures_dir(), "margins")

# %% [markdown]
# ## What the numbers say
# Per measure and layer, BN minus no BN of the median margin (higher: farther from the boundary),
# then each measure against the generalisation gap.

# %%
comparison = comparisons.comparisons(summary)
print(claims.lens_verdict(7, comparison))
print(stability.stability_of(P.figures_dir(), claims=(7,)))  # from the CSVs just written
gap = analyses.gap_correlations(tables.long_form(accuracy, summary), claims.LENSES[7][0])
print(claims.describe_gap(gap))
comparison[comparisons.SHOWN].round(4)

# %%
gap.round(4)
