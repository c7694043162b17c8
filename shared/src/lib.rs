//! qchat's shared library: domain types, the ports every function talks through, and their AWS and
//! embedded backends. Functions are thin: they parse at the edge, call into here, and map errors to HTTP.
