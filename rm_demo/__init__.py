"""rm_demo: Reward Model Studio. Human feedback in, a trained reward model out."""

__version__ = "0.1.0"
