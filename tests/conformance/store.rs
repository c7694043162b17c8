//! The store conformance suite, instantiated for every backend.
