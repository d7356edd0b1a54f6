"""vlprep: lint and pre-tokenize Qwen3-VL fine-tuning data for ms-swift."""

__version__ = "0.1.0"
