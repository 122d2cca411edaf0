//! HCL build templates: parse, evaluate variables and functions, check, and produce a typed build.
