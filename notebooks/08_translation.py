# %% [markdown]
# # 08 · Does BatchNorm change how translation-sensitive each layer is?
#
# A lens of the same research group: the translation-sensitivity map (Kauderer-Abrams,
# arXiv 1801.01450) with the cosine similarity of Myburgh, Mouton & Davel (*Tracking translation
# invariance in CNNs*, arXiv 2104.05997), on the BN and no-BN models. **Is BN more
# translation-invariant, and where?**
#
# **The maps.** `shift_images` test images are each shifted by (dx, dy) over a square grid of
# ±`shift_max` pixels (a quarter of the image side by default), the uncovered border set to
# `shift_fill`. Per layer, the cosine similarity between the representation of the original and
# of the shifted image, averaged over the images, gives one map per layer and model; the output
# gives the fraction of unchanged predictions. A map is 1 where a shift changes nothing.
#
# **Dimensionality.** A conv layer's full representation has C·H·W values and any shift moves
# them; the paper warns that comparing layers or architectures of different sizes confounds
# invariance with dimension. The spatial-mean-pooled representation (C values a layer, the same
# for BN and no BN) is the dimension-matched view, shown next to the full one.
#
# **Statistics.** Per layer, each map's mean over every shift but (0, 0): Welch's t over seeds,
# Hedges' g with a noncentral-t 95% interval, Holm's correction over the layers of each view. The
# verdict is printed by `bnlib.report`, the same function that writes the README's.

# %% tags=["parameters"]
profile = "quick"  # a params/<profile>.yaml; override any of its keys below or with papermill

# %%
from bnlib import claims, comparisons, lens_plots, measuring, params, plots, prose, stability

P = params.from_notebook(globals())
accuracy, maps, invariance = measuring.measured(P, "accuracy", "translation", "invariance")  # their .csv files
print(prose.describe_exclusions(accuracy))  # left out of every statistic below
print(prose.describe_translation(maps))

# %%
hidden = P.hidden_layers()
layers = list(dict.fromkeys([hidden[0], hidden[len(hidden) // 2], hidden[-2], hidden[-1]])) + ["output"]
fig = lens_plots.translation_figure(maps, invariance, layers, title=f"Translation sensitivity · {P.arch} on "
                               f"{prose.dataset_title(P)}")
plots.save_figure(fig, maps, P.figures_dir(), "translation")

# %% [markdown]
# ## What the numbers say
# Per view and layer, BN minus no BN of the mean similarity over the shifts (higher: more invariant).

# %%
comparison = comparisons.comparisons(invariance)
print(claims.lens_verdict(6, comparison))
print(stability.stability_of(P.figures_dir(), claims=(6,)))  # from the CSVs just written
comparison[comparisons.SHOWN].round(4)
