//! The crypto conformance suite, instantiated for every backend.
