//! One test binary running every port conformance suite against every backend.
