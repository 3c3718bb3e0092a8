# %% [markdown]
# # 10 · Does BatchNorm fragment the decision regions, in input space and in hidden space?
#
# A lens of the same research group (Mouton, Rabe, Haasbroek, Theunissen, Potgieter & Davel, *Is
# network fragmentation a useful complexity measure?*, arXiv 2411.04695), with the plane procedure
# of Somepalli et al. (*Can Neural Nets Learn the Same Model Twice?*, arXiv 2203.08124). **Are
# BN's class regions less fragmented, and does fragmentation track generalisation across models?**
#
# **A plane.** Through three images: the origin at the first, one axis towards the second, the
# other in the plane of the third. A grid of `fragment_resolution`² points covers the three
# images' span, extended by half the span on each side; the network predicts a class at every
# point, and the fragmentation is the number of connected class regions (8-connectivity,
# `scipy.ndimage.label`), summed over classes. One region: the plane is all one class.
#
# **Where.** In the normalised input, and in hidden layers (`fragment_layers`): there the plane
# goes through the three images' representations of that layer, and the rest of the network runs
# from it (a point of the plane need not be a representation any input makes: the extension past
# the images leaves the ReLU's image).
#
# **Triplets.** `fragment_triplets` of each kind, fixed for every model: three images of one class
# (within) or of three classes (across), from the measured training images and from test images.
#
# **Statistics.** Per space, the mean regions over triplets, BN vs no BN: Welch's t over seeds,
# Hedges' g with a noncentral-t 95% interval, Holm's correction over each measure's spaces; and each
# measure's per-model mean against the generalisation gap. The verdict is printed by
# `bnlib.report`, the same function that writes the README's.

# %% tags=["parameters"]
profile = "quick"  # a params/<profile>.yaml; override any of its keys below or with papermill

# %%
from bnlib import analyses, claims, comparisons, lens_plots, measuring, params, plots, prose, stability, tables

P = params.from_notebook(globals())
accuracy, regions, summary, planes = measuring.measured(P, "accuracy", "fragmentation", "fragmentation_summary",
                                                      "planes")  # their .csv files
print(prose.describe_exclusions(accuracy))  # left out of every statistic below
print(prose.describe_fragmentation(regions))

# %%
fig = lens_plots.fragmentation_figure(planes, summary, accuracy, title=f"Fragmentation · {P.arch} on "
                                 f"{prose.dataset_title(P)}")
plots.save_figure(fig, regions, P.figures_dir(), "fragmentation")

# %% [markdown]
# ## What the numbers say
# Per measure and space, BN minus no BN of the mean class regions (lower: less fragmented), then
# each measure against the generalisation gap.

# %%
comparison = comparisons.comparisons(summary)
print(claims.lens_verdict(8, comparison))
print(stability.stability_of(P.figures_dir(), claims=(8,)))  # from the CSVs just written
gap = analyses.gap_correlations(tables.long_form(accuracy, summary), claims.LENSES[8][0])
print(claims.describe_gap(gap))
comparison[comparisons.SHOWN].round(4)

# %%
gap.round(4)
