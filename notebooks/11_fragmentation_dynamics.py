# %% [markdown]
# # 11 · Does fragmentation track the test error along training, with and without BatchNorm?
#
# The fragmentation paper of the same research group (Mouton, Rabe, Haasbroek, Theunissen, Potgieter
# & Davel, *Is network fragmentation a useful complexity measure?*, arXiv 2411.04695) reports that
# fragmentation tracks the validation error during training. Notebook 10 measures it on the final
# models; here it is followed along training. **Does a model's fragmentation rise and fall with its
# test error, for BN and for no BN alike?**
#
# **Where.** At every snapshot of each model (the `snapshots` key; the end only without it): the
# input-space planes (the procedure of notebook 10) through the first `fragment_snapshot_triplets`
# triplets of each kind, the same triplets as the final models', so the last snapshot repeats
# notebook 10's numbers for them. The test accuracy at each snapshot is notebook 06's.
#
# **Verdict.** Per model, Spearman's rho between its mean class regions and its test error over its
# snapshots after the initialisation (an untrained network's planes say nothing of learning).
# Supported when rho is positive in every model of both variants, the opposite when negative in
# every one, else mixed: a sign over models, not a p value, since a model has only its snapshots to
# correlate. The sentence is printed by `bnlib.report`, the same function that writes the README's.

# %% tags=["parameters"]
profile = "quick"  # a params/<profile>.yaml; override any of its keys below or with papermill

# %%
from bnlib import analyses, claims, lens_plots, measuring, params, plots, prose, stability

P = params.from_notebook(globals())
accuracy, snapshot_regions, dynamics = measuring.measured(P, "accuracy", "fragmentation_dynamics", "dynamics")
along = analyses.fragmentation_along_training(snapshot_regions, dynamics)  # per model and snapshot
print(prose.describe_exclusions(accuracy))  # left out of every statistic below

# %%
fig = lens_plots.fragmentation_dynamics_figure(along, title=f"Fragmentation along training · {P.arch} on "
                                          f"{prose.dataset_title(P)}")
plots.save_figure(fig, snapshot_regions, P.figures_dir(), "fragmentation_dynamics")

# %% [markdown]
# ## What the numbers say
# Per model, the rank correlation of its class regions with its test error over its snapshots.

# %%
print(claims.describe_fragmentation_dynamics(along))
print(stability.stability_of(P.figures_dir(), claims=(9,)))  # from the CSVs just written
analyses.fragmentation_tracking(along).round(3)
