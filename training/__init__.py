"""seethrough's training side and the plumbing both analysis sides share.

Shared plumbing (import the module you need; nothing heavy is imported here):

- :mod:`training.blackbox`: any model as ``predict(X) -> (n, k)`` checked scores
- :mod:`training.runs`: run folders written all-or-nothing, with config, seed, versions, command
- :mod:`training.seeding`: one call that makes a run repeatable
- :mod:`training.checkpoints`: safe checkpoint loading with errors that say why
- :mod:`training.images`: image conversion, grids and overlays to PNG
- :mod:`training.pages`: the Jinja2 page base, autoescaped
- :mod:`training.cli`: the command-line family every command belongs to
- :mod:`training.pretrained`: the shipped models (``load_pretrained("generator")`` ...)
- :mod:`training.threads`: the CPU thread settings, set once (OpenMP waits passively)

Training (the models both sides explain):

- :mod:`training.scenes`: procedural street scenes with exact concept masks and lamp glow
- :mod:`training.data`: the scenes as a LightningDataModule
- :mod:`training.models`: Generator, Discriminator, Segmenter, LampClassifier
- :mod:`training.modules`: the LightningModules that train them
- :mod:`training.callbacks`: training record, per-epoch sample grids and GAN quality
- :mod:`training.evaluation`: segmenter IoU, classifier accuracy, GAN concept statistics
- :mod:`training.lightning_cli`: ``python -m training fit|validate|test`` (LightningCLI)
"""

from training.threads import set_wait_policy

set_wait_policy()  # before torch is imported anywhere: see training.threads

__version__ = "0.1.0"
