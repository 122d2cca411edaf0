//! The Sahara image-spec validator language: loader (YAML → typed tree) and engine.
