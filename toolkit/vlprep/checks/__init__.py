"""Per-record checks: each function takes a canonical record (or one image) and returns (rule code, message) pairs."""
