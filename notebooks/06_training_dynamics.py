# %% [markdown]
# # 06 · Is it BatchNorm, or is it accuracy? Representations along training, at matched accuracy
#
# Every other notebook compares BN and no-BN models at the *end* of training, where BN is
# usually the more accurate. A more accurate network separates its classes better in the late
# layers, whatever made it accurate, so "BN clusters better" mixes what BN does to the
# representations with how far each network got. This notebook asks the reviewer's question:
# **at the same test accuracy, does BN still cluster better?**
#
# Each model keeps its weights at the training points of the `snapshots` key (in epochs; 0 is
# the initialisation), and at the end. At each snapshot the notebook measures test accuracy and,
# per layer, sparsity, the silhouette (full and pooled), kNN accuracy and the linear probe, on a
# stratified draw of `snapshot_represent` of the measured training samples.
#
# **How to read the figure.** (a) Each measure along training, mean ± std over seeds, at the
# first and the last hidden layer. (b) The same against test accuracy, one line per model:
# where BN's line lies above no BN's at equal accuracy, the difference is BatchNorm's own. The
# circled points are the matched pairs. (c) The matched comparison: each no-BN model at the end
# of training against the snapshot of the BN model of the same seed closest to it in test
# accuracy (at most 1.5 points apart), Hedges' g with a noncentral-t 95% interval per layer and
# view; above 0, BN clusters better.
#
# **Statistics.** Welch's t over the seed pairs, Hedges' g, and Holm's correction over the
# layers of each view, as everywhere else; the verdict is printed by `bnlib.report`, the same
# function that writes the README's.

# %% tags=["parameters"]
profile = "quick"  # a params/<profile>.yaml; override any of its keys below or with papermill

# %%
from bnlib import analyses, claims, comparisons, measuring, params, plots, prose, stability, tables

P = params.from_notebook(globals())
accuracy, dynamics = measuring.measured(P, "accuracy", "dynamics")  # accuracy.csv, dynamics.csv
print(prose.describe_exclusions(accuracy))  # left out of every statistic below
print(prose.describe_snapshots(dynamics))

# %% [markdown]
# ## The matched pairs
# One per seed: no BN at the end of training, and the BN snapshot closest to it in test accuracy.

# %%
pairs = analyses.matched_pairs(dynamics)
matched = analyses.matched_models(dynamics, pairs)
plots.save_table(matched.merge(pairs[["seed", "accuracy_gap"]], on="seed"), P.figures_dir(), "matched")
pairs.round(4)

# %%
comparison = comparisons.comparisons(matched)
layers = [P.hidden_layers()[0], P.hidden_layers()[-1]]
fig = plots.dynamics_figure(dynamics, pairs, comparison, layers,
                            title=f"Training dynamics · {P.arch} on {prose.dataset_title(P)}")
plots.save_figure(fig, dynamics, P.figures_dir(), "dynamics")

# %% [markdown]
# ## What the numbers say
# Per view and layer, the BN snapshot minus no BN at the end, at matched test accuracy:

# %%
comparison[comparison.metric.isin(["silhouette", "knn_accuracy", "linear_probe"])][comparisons.SHOWN].round(4)

# %% [markdown]
# The verdict at matched accuracy, next to the verdict on the final models when this profile has
# measured them (notebook 04): does BN's advantage in clustering survive at equal accuracy?

# %%
silhouette, views = measuring.measured(P, "silhouette", "views")  # silhouette.csv, views.csv: the final models
final = tables.long_form(accuracy, silhouette, views)
print(claims.matched_verdict(dynamics))
print(stability.stability_of(P.figures_dir(), claims=(4,)))  # from the CSVs just written
print(claims.verdicts(final, comparisons.comparisons(final), claims=(3,)))
