//! End-to-end tests across several nodes live here (see `tests/`).
