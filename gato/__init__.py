"""gato-agent: a Gato-style generalist agent (Reed et al., 2022).

Every modality becomes tokens in one id space and one decoder-only transformer
predicts the next token. See DESIGN.md in the repository for the specification.
"""

__version__ = "0.1.0"
