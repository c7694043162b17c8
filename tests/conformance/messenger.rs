//! The messenger conformance suite, instantiated for every backend.
