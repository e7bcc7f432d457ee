"""Small shared pieces used by every family: seeding, atomic files, checkpoints, progress bars,
torch helpers and the augmented-Lagrangian schedule. Nothing here imports the rest of infozoo."""
