# %% [markdown]
# # 04 · What "clusters more advantageously" means: more views of clustering
#
# The paper's third claim rests on one number, the silhouette with classes as clusters. This
# notebook asks whether other views agree, whether the clusters matter for classification, and
# how strong 4 seeds are. Per hidden layer, for the same measured training samples:
#
# | view | what it asks | better |
# |---|---|---|
# | silhouette | are samples closer to their own class than to the nearest other class? | higher |
# | kNN accuracy | do a sample's `knn_k` nearest other samples share its class (leave-one-out)? | higher |
# | linear probe | can a logistic regression on these representations classify held-out **test** images? | higher |
# | Davies–Bouldin | class spread relative to the distance between class centres | lower |
# | Calinski–Harabasz | between-class over within-class dispersion, scaled by degrees of freedom | higher |
# | within/between scatter | tr(S_within) / tr(S_between); = (N − k)/(k − 1) / Calinski–Harabasz | descriptive |
# | nearest binary code | does the nearest other on/off ReLU pattern (Hamming) belong to the same class? | higher |
# | code purity, distinct codes | how many patterns there are and how class-pure identical patterns are | descriptive |
#
# The last panel is linear CKA: per layer, how similar BN and no-BN representations of one seed
# are, next to the seed-to-seed similarity within each variant (the baseline). A layer where
# BN vs no BN sits far below the baseline is one that BN really changes.
#
# **Statistics.** Per view and layer: Welch's t over seeds, Hedges' g with a noncentral-t 95%
# interval, and Holm's correction over the layers of each view. A pooled view votes only in conv
# layers (in fc1 it is the unpooled one). The verdict is printed by the same function that writes
# the README's (`bnlib.report`), with how often it comes back when one seed a side is left out.

# %% tags=["parameters"]
profile = "quick"  # a params/<profile>.yaml; override any of its keys below or with papermill

# %%
from bnlib import claims, comparisons, measuring, params, plots, prose, stability, tables

P = params.from_notebook(globals())
views, silhouette, cka = measuring.measured(P, "views", "silhouette", "cka")  # views.csv, silhouette.csv, cka.csv
df = tables.long_form(silhouette, views)  # every view of claim 3, the pooled silhouette included
print(prose.describe_exclusions(df))  # left out of every statistic below

# %%
fig = plots.views_figure(views, cka, title=f"Views of clustering per layer · {P.arch} on {prose.dataset_title(P)}")
plots.save_figure(fig, views, P.figures_dir(), "views")

# %% [markdown]
# ## What the numbers say
# Per view and layer, BN minus no BN. `hedges_g` is the standardised difference; its interval
# comes from resampling the seeds. `p_holm` is corrected over the layers of one view.

# %%
comparison = comparisons.comparisons(df)
print(claims.verdicts(df, comparison, claims=(3,)))
print(stability.stability_of(P.figures_dir(), claims=(3,)))  # from the CSVs just written
print(prose.power(comparison))
comparison[comparisons.SHOWN].round(4)

# %% [markdown]
# Do the clusters matter for classification, and does BN change the representation itself?
# Which layers each view calls for BN, for no BN or for neither, and whether that agrees with
# the silhouette's answer for the same layer:

# %%
print(prose.describe_cka(cka))
comparisons.agreement_grid(comparison)
