//! Empty: the package exists for its dependencies and the copied cryptoki test suite.
