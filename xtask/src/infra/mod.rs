//! Private stateful dependencies for dev and test: PostgreSQL, Redis, a registry.
