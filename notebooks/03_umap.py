# %% [markdown]
# # 03 · UMAP pictures of the representations
#
# Reproduces the paper's UMAP figure: 2-D UMAP embeddings of the representations of
# training samples at selected layers, coloured by class, BN (top row) and no-BN (bottom
# row), for one seed. Embeddings are cached with the model, keyed by every UMAP parameter.
#
# **How to read it.** UMAP keeps neighbourhoods, not distances: tight, separate colour
# islands mean that a layer already groups samples by class. The picture illustrates the
# silhouette numbers of notebook 02; it is not itself a measurement. As a number to go
# with each panel, the notebook ends with the silhouette of the 2-D embedding.

# %% tags=["parameters"]
profile = "quick"  # a params/<profile>.yaml; override any of its keys below or with papermill

# %%
from bnlib import analyses, measuring, params, plots, prose

P = params.from_notebook(globals())
accuracy, embedding = measuring.measured(P, "accuracy", "umap")  # accuracy.csv, umap.csv
print(prose.describe_exclusions(accuracy))  # no panel for an excluded run

# %%
fig = plots.umap_grid(embedding, title=f"UMAP · {P.arch} on {prose.dataset_title(P)}, seed {P.umap_model_seed}")
plots.save_figure(fig, embedding, P.figures_dir(), "umap")

# %% [markdown]
# ## What the numbers say

# %%
scores = analyses.embedding_silhouettes(embedding)
print(prose.describe_embedding_silhouettes(scores))
scores.round(4)
