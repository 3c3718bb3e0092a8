# %% [markdown]
# # 00 · The trained models: accuracy per variant and seed
#
# Every figure in this collection is measured on the same set of trained networks:
# one per (normalisation, seed). This notebook trains them (or reads them from the
# artifact cache), tabulates train and test accuracy, and plots the learning curves.
#
# **Measure, then analyse.** `measuring.measured` trains and measures, and writes each measured
# table to `figures/<profile>/<table>.csv`; everything after it is computed from those CSVs
# alone. `make refresh` re-runs every notebook from the committed CSVs (`from_csvs`), with no
# model and no cache, so the figures, verdicts and this notebook always match the numbers.
#
# **How to read it.** The table gives mean ± std over seeds per variant. The paper's
# premise is that BN and no-BN models both train well; their representations are then
# compared in notebooks 01–03. A run whose loss became non-finite is marked *diverged*.

# %% tags=["parameters"]
profile = "quick"  # a params/<profile>.yaml; override any of its keys below or with papermill

# %%
from bnlib import analyses, measuring, params, plots, prose, stats

P = params.from_notebook(globals())
print(P.to_yaml())  # the parameters that make these results

# %%
df, history = measuring.measured(P, "accuracy", "training")  # accuracy.csv, training.csv
print(prose.describe_exclusions(df))  # left out of every statistic below

# %%
accuracy = df[df.layer == "model"].pivot_table(index=["norm", "seed"], columns="metric", values="value")
accuracy

# %%
analyses.accuracy_summary(df).round(4)  # over the usable seeds only

# %%
fig = plots.training_curves(stats.usable(history, flags=df), title=f"{P.arch} on {prose.dataset_title(P)}")
plots.save_figure(fig, history, P.figures_dir(), "training")

# %% [markdown]
# ## What the numbers say

# %%
print(prose.describe_accuracy(df))
