"""bnlib: the helpers behind the bnrep notebooks.

Reproduces "Impact of Batch Normalization on Convolutional Network
Representations" (Potgieter, Mouton, Davel, 2025, arXiv:2501.14441).
Notebooks tell the story; the logic lives here and is unit-tested.
"""

__version__ = "0.1.0"
