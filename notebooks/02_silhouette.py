# %% [markdown]
# # 02 · How well representations cluster by class: silhouette per layer
#
# Reproduces the paper's clustering figure: for every hidden layer, the silhouette score of
# the representations of training samples, with the true classes as clusters, for BN and
# no-BN models, mean ± std over seeds.
#
# The silhouette is exact (every pairwise distance, on the full flattened representation;
# it equals `sklearn.metrics.silhouette_score`). It ranges from −1 to 1; higher means that
# samples are closer to their own class than to the nearest other class. A second panel
# shows the cheaper **spatial-mean-pooled** variant (one value per channel), labelled as such.
#
# **The paper's claim tested here.** (3) BN models' representations cluster better.

# %% tags=["parameters"]
profile = "quick"  # a params/<profile>.yaml; override any of its keys below or with papermill

# %%
from bnlib import comparisons, measures, measuring, params, plots, prose, stats, tables

P = params.from_notebook(globals())
accuracy, silhouette = measuring.measured(P, "accuracy", "silhouette")  # accuracy.csv, silhouette.csv
df = tables.long_form(accuracy, silhouette)
print(prose.describe_exclusions(df))  # left out of every statistic below

# %%
metrics = ["silhouette"] + (["silhouette_pooled"] if P.silhouette_pooled else [])
title = f"Silhouette per layer ({P.silhouette_metric}) · {P.arch} on {prose.dataset_title(P)}"
fig = plots.metric_panels(df, metrics, kind="point", title=title)
plots.save_figure(fig, silhouette, P.figures_dir(), "silhouette")

# %% [markdown]
# ## What the numbers say

# %%
for metric in metrics:
    comparison = stats.compare_norms(df, metric)
    print(stats.describe_comparison(comparison, measures.axis(metric)), end="\n\n")
stats.compare_norms(df, "silhouette").round(4)

# %% [markdown]
# What the two silhouette views say on claim (3), Holm-corrected over layers. The verdict on the
# claim weighs every clustering view, these two included: notebook 04 prints it, as do the
# README's claims grid and `figures/<profile>/README.md`.

# %%
print(prose.views_say(comparisons.comparisons(df)))
