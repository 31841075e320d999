"""seethrough's outside view: explain a black box by what it does to its inputs.

LIME (tabular, image, text, SP-LIME), global decision-tree surrogates with measured fidelity,
and MMD-critic prototypes and criticisms. Black boxes are anything
:class:`training.blackbox.BlackBox` accepts.
"""

__version__ = "0.1.0"
