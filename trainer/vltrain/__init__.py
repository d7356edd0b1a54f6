"""vltrain: train Qwen3-VL with ms-swift from a verified vlprep cache."""

__version__ = "0.1.0"
