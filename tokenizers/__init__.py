"""Tokenizers (installed as ``gato.tokenizers``): every modality to ids of one vocabulary.

- :mod:`~gato.tokenizers.vocab`: the id layout (:class:`Vocab`).
- :mod:`~gato.tokenizers.discrete`: integers in ``[0, bins)`` to value ids.
- :mod:`~gato.tokenizers.continuous`: floats to value ids (mu-law for observations,
  linear for bounded actions).
- :mod:`~gato.tokenizers.image`: images to normalised patches in raster order.
- :mod:`~gato.tokenizers.text`: SentencePiece training, encoding and decoding.
"""

from gato.tokenizers.vocab import Vocab

__all__ = ["Vocab"]
