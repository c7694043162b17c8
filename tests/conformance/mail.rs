//! The mail conformance suite, instantiated for every backend.
